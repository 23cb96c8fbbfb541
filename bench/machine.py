"""How fast this machine runs Python right now, printed beside a bench's figures.

The shared 2-core machine the benches run on is not equally fast all day: in its slow spells
the same code, the raw eventsourcing baseline included, runs at a third to a half of its best
rate. A tight arithmetic loop does not always show it (on 12-02 it ran at its best speed
while the read bench and its raw baseline ran at half theirs), so three fixed pieces of work
are timed, each the best of three: arithmetic in a loop, making and dropping many small
objects (what a request does most), and a cheap system call (what every lock, read and write
of the store pays).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def best_of_three(work: Callable[[], object]) -> float:
    """Seconds the fastest of three runs of `work` took: shared machines are noisy."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def _arithmetic() -> int:
    total = 0
    for i in range(5_000_000):
        total += i
    return total


def _objects() -> int:
    rows = {}
    for i in range(100_000):
        rows[str(i)] = {"id": i, "tags": [i, str(i)], "pair": (i, i + 1)}
    return len(rows)


def _system_calls() -> None:
    for _ in range(100_000):
        os.getppid()


def speed_line() -> str:
    loop, objects, calls = (
        best_of_three(_arithmetic),
        best_of_three(_objects),
        best_of_three(_system_calls),
    )
    return (
        f"machine now: 5M additions {loop:.2f} s; 100k small dicts made {objects * 1000:.0f} ms; "
        f"a system call {calls * 1e4:.0f} ns"
    )
