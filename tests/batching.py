"""Calls that queue up behind a round already running, so the next round takes them together.

Shared by the batcher's own tests, the group commit's and the recorded reads'.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from services.batching import Batcher

Outcome = tuple[Any, BaseException | None]  # (value, error) of one call


def queued_behind_a_round(
    batcher: Batcher[Any, Any],
    calls: list[Callable[[], Any]],
    before_each: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """Runs each call in its own thread while the batcher is busy, one after the other (each
    queued before the next starts; `before_each(i)` runs first), then lets the next round go
    as a finishing leader would. Returns each call's (value, error)."""
    results: list[Outcome] = [(None, None)] * len(calls)

    def call(i: int) -> None:
        try:
            results[i] = (calls[i](), None)
        except BaseException as e:
            results[i] = (None, e)

    with batcher.mutex:
        assert not batcher.leading, "a round is already running"
        batcher.leading = True  # as if another caller were running a round now
    threads = []
    for i in range(len(calls)):
        if before_each is not None:
            before_each(i)
        thread = threading.Thread(target=call, args=(i,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 10
        while len(batcher.queue) < i + 1 and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert len(batcher.queue) == i + 1, f"call {i} did not queue: {results[i]}"
    with batcher.mutex:
        batcher.queue[0].wake()  # that caller finds itself not done: it leads
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive(), "a queued call never finished"
    return results
