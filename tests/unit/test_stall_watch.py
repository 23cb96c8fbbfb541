"""A worker's partition whose views stand still below what the relay delivered there is read
again, even when no later message arrives to show the gap."""

from __future__ import annotations

from typing import Any, cast

from infra.kafka.recovery import StallWatch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Views:
    """Where each partition's views stand (what `StreamProjection.applied` answers)."""

    def __init__(self, standing: dict[int, int]) -> None:
        self.standing = standing

    def applied(self, partition: int) -> int:
        return self.standing.get(partition, 0)


def watch_of(
    standing: dict[int, int], delivered: dict[int, int]
) -> tuple[StallWatch, Views, Clock]:
    views, clock = Views(standing), Clock()
    return StallWatch(cast(Any, views), lambda: delivered, stall=10.0, clock=clock), views, clock


def test_a_partition_below_what_was_delivered_and_not_moving_is_named_after_the_stall() -> None:
    watch, _, clock = watch_of({0: 16, 1: 50}, {0: 149, 1: 50})
    assert watch.stalled([0, 1]) == {}  # first seen below: the clock starts
    clock.now += 9.9
    assert watch.stalled([0, 1]) == {}
    clock.now += 0.2
    stalled = watch.stalled([0, 1])
    assert list(stalled) == [0]  # partition 1 has all that was delivered
    assert stalled[0] == (
        "partition 0: its views stand at 16 for 10 s, below 149, which the relay delivered there"
    )
    assert watch.stalled([0, 1]) == {}  # named again only after another stall
    clock.now += 10.0
    assert list(watch.stalled([0, 1])) == [0]


def test_a_partition_whose_views_move_is_not_stalled() -> None:
    watch, views, clock = watch_of({0: 16}, {0: 149})
    watch.stalled([0])
    for standing in (40, 80, 120):  # behind, but catching up
        clock.now += 8.0
        views.standing[0] = standing
        assert watch.stalled([0]) == {}
    views.standing[0] = 149
    clock.now += 30.0
    assert watch.stalled([0]) == {}


def test_only_this_workers_partitions_and_forgotten_ones_start_again() -> None:
    watch, _, clock = watch_of({0: 0, 2: 0}, {0: 10, 2: 10})
    watch.stalled([0])
    clock.now += 11.0
    assert watch.stalled([0]) == {0: stalled_reason(0, 0, 11, 10)}
    watch.forget([0])  # revoked: another worker's now
    clock.now += 11.0
    assert watch.stalled([0]) == {}  # seen anew: the clock starts again
    assert watch.stalled([2]) == {}


def stalled_reason(partition: int, standing: int, seconds: int, target: int) -> str:
    return (
        f"partition {partition}: its views stand at {standing} for {seconds} s, below {target}, "
        "which the relay delivered there"
    )
