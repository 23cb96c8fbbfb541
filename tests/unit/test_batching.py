"""The batcher: callers queued behind a round share the next one, each gets its own outcome,
an item at fault fails alone, and the lead passes on so every caller finishes."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from services.batching import Batcher, Slot
from tests.batching import queued_behind_a_round


class Doubler:
    """Doubles each item; refuses negative ones; remembers the batches it was given."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __call__(self, slots: list[Slot[int, int]]) -> None:
        self.batches.append([slot.item for slot in slots])
        for slot in slots:
            if slot.item < 0:
                slot.fail(ValueError(f"item {slot.item} is negative"))
            else:
                slot.succeed(slot.item * 2)


def submit(batcher: Batcher[int, int], item: int) -> Callable[[], int]:
    return lambda: batcher.submit(item)


def test_a_caller_alone_runs_its_item_at_once() -> None:
    run = Doubler()
    batcher = Batcher(run)

    assert [batcher.submit(i) for i in (1, 2, 3)] == [2, 4, 6]
    assert run.batches == [[1], [2], [3]]
    assert (batcher.rounds, batcher.items, batcher.leading) == (3, 3, False)


def test_callers_queued_behind_a_round_share_the_next_one_each_with_its_own_outcome() -> None:
    run = Doubler()
    batcher = Batcher(run)

    results = queued_behind_a_round(batcher, [submit(batcher, i) for i in range(6)])

    assert results == [(i * 2, None) for i in range(6)]
    assert run.batches == [list(range(6))]
    assert (batcher.rounds, batcher.items) == (1, 6)
    assert batcher.submit(10) == 20  # and the next caller, alone, leads a round of its own


def test_an_item_at_fault_fails_alone() -> None:
    batcher = Batcher(Doubler())

    results = queued_behind_a_round(batcher, [submit(batcher, i) for i in (1, -1, 3)])

    assert results[0] == (2, None)
    assert results[2] == (6, None)
    assert isinstance(results[1][1], ValueError)
    assert str(results[1][1]) == "item -1 is negative"


def test_a_round_that_breaks_fails_every_caller_in_it_and_the_next_round_runs() -> None:
    broken = [True]

    def run(slots: list[Slot[int, int]]) -> None:
        if broken[0]:
            raise OSError("disk full")
        for slot in slots:
            slot.succeed(slot.item)

    batcher = Batcher(run)
    results = queued_behind_a_round(batcher, [submit(batcher, i) for i in range(3)])

    assert [type(error) for _, error in results] == [OSError] * 3
    broken[0] = False
    assert batcher.submit(7) == 7
    assert not batcher.leading


def test_an_item_the_round_forgot_fails_with_a_clear_error() -> None:
    def forgets_odd(slots: list[Slot[int, int]]) -> None:
        for slot in slots:
            if slot.item % 2 == 0:
                slot.succeed(slot.item)

    batcher = Batcher(forgets_odd)
    assert batcher.submit(2) == 2
    with pytest.raises(RuntimeError, match="left an item without an outcome"):
        batcher.submit(3)


def test_a_leader_hands_the_lead_on_and_every_caller_finishes() -> None:
    run = Doubler()
    batcher = Batcher(run, max_batch=2)

    results = queued_behind_a_round(batcher, [submit(batcher, i) for i in range(5)])

    assert results == [(i * 2, None) for i in range(5)]
    assert run.batches == [[0, 1], [2, 3], [4]]
    assert not batcher.leading
    assert not batcher.queue


def test_many_threads_at_once_each_get_their_own_answer() -> None:
    run = Doubler()
    batcher = Batcher(run)
    got: dict[int, int] = {}

    def caller(base: int) -> None:
        for i in range(base, base + 200):
            got[i] = batcher.submit(i)

    threads = [threading.Thread(target=caller, args=(k * 1000,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert got == {i: i * 2 for k in range(8) for i in range(k * 1000, k * 1000 + 200)}
    assert sum(len(b) for b in run.batches) == batcher.items == 1600
    assert not batcher.leading
    assert not batcher.queue


def test_an_item_submitted_from_inside_a_round_is_refused_instead_of_waiting_forever() -> None:
    batcher: Batcher[int, int]

    def nested(slots: list[Slot[int, int]]) -> None:
        for slot in slots:
            slot.succeed(batcher.submit(slot.item - 1) if slot.item > 0 else 0)

    batcher = Batcher(nested)

    with pytest.raises(RuntimeError, match="from inside one of its own rounds"):
        batcher.submit(1)
    assert batcher.submit(0) == 0  # the batcher is still usable
