"""Group commit: concurrent writers share one transaction, and one flush to disk.

A durable commit costs a flush (fsync on SQLite, a WAL flush on PostgreSQL). When many
requests each save one small event — every read of personal data records its access event
before answering — the flush, not the work, sets the pace. Here the first writer to arrive
becomes the leader: it takes every write queued so far, inserts them in one transaction and
wakes the others with their own notification ids. Writers that arrive meanwhile queue up for
the next round. Alone, a writer commits at once, as before.

A round that fails (one writer's optimistic-concurrency conflict, say) is retried writer by
writer, so only the writer at fault sees the error and the others still commit. Everything
else — the chain, the triggers, notification ids in commit order — is the recorder's own.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent


class _Write:
    __slots__ = ("done", "error", "events", "ids", "wake")

    def __init__(self, events: Sequence[StoredEvent]) -> None:
        self.events = events
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None
        self.done = False
        self.wake = threading.Event()  # set when written, or when handed the lead


class GroupCommit:
    """Mixin for an application recorder; put it before the recorder class in the bases."""

    max_group = 512

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._group_mutex = threading.Lock()
        self._group_queue: list[_Write] = []
        self._group_writing = False
        self.group_sizes: list[int] = []  # how many writes each round carried (for benches)
        # Topics of what this process wrote, by position, until the views have caught up
        # (see ViewRunner.catch_up_for_decisions): known before any writer wakes up.
        self.written: dict[int, str] = {}

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if any(v is not None for v in kwargs.values()):
            # A tracked write (a process recorder's) keeps its own transaction. The
            # application passes `tracking=None` on every save: that is an ordinary write.
            return super().insert_events(stored_events, **kwargs)  # type: ignore[misc,no-any-return]
        mine = _Write(stored_events)
        with self._group_mutex:
            self._group_queue.append(mine)
            leading = not self._group_writing
            self._group_writing = True
        if not leading:
            mine.wake.wait()  # each writer is woken alone: no herd on a shared condition
            if mine.done:
                return self._result(mine)
        # Leading: write rounds until ours is done, then hand the lead to the next in line.
        while True:
            with self._group_mutex:
                group = self._group_queue[: self.max_group]
                del self._group_queue[: self.max_group]
            try:
                self._write(group)
            finally:
                for w in group:
                    w.done = True
                    if w is not mine:
                        w.wake.set()
            with self._group_mutex:
                if not self._group_queue:
                    self._group_writing = False
                    break
                if mine.done:
                    self._group_queue[0].wake.set()  # it finds itself not done: it leads
                    break
        return self._result(mine)

    def _write(self, group: list[_Write]) -> None:
        self.group_sizes.append(len(group))
        try:
            ids = super().insert_events([e for w in group for e in w.events])  # type: ignore[misc]
        except BaseException as error:
            if len(group) == 1:
                group[0].error = error
                group[0].done = True
                return
            for w in group:  # find the writer at fault; the rest still commit
                try:
                    w.ids = super().insert_events(w.events)  # type: ignore[misc]
                    if w.ids is not None:
                        self.written.update(zip(w.ids, (e.topic for e in w.events), strict=True))
                except BaseException as e:
                    w.error = e
                w.done = True
            return
        start = 0
        for w in group:
            n = len(w.events)
            w.ids = list(ids[start : start + n]) if ids is not None else None
            start += n
            w.done = True
        if ids is not None:
            batch = [e for w in group for e in w.events]
            self.written.update(zip(ids, (e.topic for e in batch), strict=True))

    def forget_written(self, through: int) -> None:
        for position in [p for p in self.written if p <= through]:
            self.written.pop(position, None)

    @staticmethod
    def _result(write: _Write) -> Sequence[int] | None:
        if write.error is not None:
            raise write.error
        return write.ids
