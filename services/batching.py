"""One caller does the work of everyone waiting: concurrent callers' items run as one batch.

When many threads each need the same costly step — a durable commit, a view catch-up — it is
cheaper for one of them to take that step once for all: the first caller to arrive leads, takes
every item queued so far, runs them together and wakes each caller with its own outcome.
Callers arriving meanwhile queue for the next round; alone, a caller runs at once. A leader
whose own item is done hands the lead to the next caller in line, so nobody serves forever.

Used for the recorder's group commit (infra/store/group_commit.py) and for recorded reads
(services/queries.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Slot(Generic[T, R]):
    """One caller's item and, once its round has run, its outcome: a value or an error."""

    __slots__ = ("_asleep", "done", "error", "item", "value")

    def __init__(self, item: T) -> None:
        self.item = item
        self.value: R | None = None
        self.error: BaseException | None = None
        self.done = False
        # Held until the caller is woken: when done, or when handed the lead. A bare lock,
        # not a threading.Event (a Condition and an RLock in Python): a slot is made and
        # woken once per call, and is woken at most once.
        self._asleep = threading.Lock()
        self._asleep.acquire()

    def sleep(self) -> None:
        self._asleep.acquire()

    def wake(self) -> None:
        self._asleep.release()

    def succeed(self, value: R) -> None:
        self.value, self.error, self.done = value, None, True

    def fail(self, error: BaseException) -> None:
        self.value, self.error, self.done = None, error, True


class Batcher(Generic[T, R]):
    """Runs `run(slots)` for every round of queued items. `run` settles each slot (succeed or
    fail); a slot it leaves unsettled fails with whatever `run` raised, or with an error saying
    it was forgotten."""

    def __init__(self, run: Callable[[list[Slot[T, R]]], None], max_batch: int = 512) -> None:
        self.run = run
        self.max_batch = max_batch
        self.mutex = threading.Lock()
        self.queue: list[Slot[T, R]] = []
        self.leading = False  # a caller is running a round now
        self.rounds = 0  # rounds run, and items carried by them (for benches and status)
        self.items = 0
        self._running = threading.local()  # set in the thread running a round

    def submit(self, item: T) -> R:
        if getattr(self._running, "round", False):
            raise RuntimeError(
                f"an item was submitted to {self.run!r} from inside one of its own rounds: "
                "it would wait for the round that is waiting for it"
            )
        mine: Slot[T, R] = Slot(item)
        with self.mutex:
            self.queue.append(mine)
            leads = not self.leading
            self.leading = True
        if not leads:
            mine.sleep()  # each caller is woken alone: no herd on a shared condition
            if mine.done:
                return _outcome(mine)
        # Leading: run rounds until ours is done, then hand the lead to the next in line.
        while True:
            with self.mutex:
                batch = self.queue[: self.max_batch]
                del self.queue[: self.max_batch]
            try:
                self._round(batch)
            finally:
                for slot in batch:
                    if slot is not mine:
                        slot.wake()
            with self.mutex:
                if not self.queue:
                    self.leading = False
                    break
                if mine.done:
                    self.queue[0].wake()  # it finds itself not done: it leads
                    break
        return _outcome(mine)

    def _round(self, batch: list[Slot[T, R]]) -> None:
        self.rounds += 1
        self.items += len(batch)
        self._running.round = True
        try:
            self.run(batch)
        except BaseException as error:
            for slot in batch:
                if not slot.done:
                    slot.fail(error)
            return
        finally:
            self._running.round = False
        for slot in batch:
            if not slot.done:
                slot.fail(RuntimeError(f"{self.run!r} left an item without an outcome"))


def _outcome(slot: Slot[T, R]) -> R:
    if slot.error is not None:
        raise slot.error
    return slot.value  # type: ignore[return-value]
