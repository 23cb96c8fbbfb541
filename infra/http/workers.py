"""The threads a request's work runs in, off the event loop.

A store read or write must not hold the loop up while another request's write is being made
durable, so the API hands each request's work (its token checked, its use case run) to one of
these threads, once. They take jobs from one queue and settle the request's future on the
loop: lighter than a `ThreadPoolExecutor` (no future of its own to chain, no thread-count
bookkeeping per job), which matters when the job itself is a fraction of a millisecond.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from contextlib import suppress
from contextvars import copy_context
from typing import Any

Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the client went away: nothing to answer
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class Workers:
    """Up to `count` threads, each started when a job finds no idle one; stopped by
    `close()`."""

    def __init__(self, count: int, name: str) -> None:
        self.count = count
        self.name = name
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._idle = 0  # threads done with their last job and not yet given another

    def _reserve(self) -> None:
        """An idle thread for the job about to be queued, or a new one if none is idle (a
        burst of jobs in one turn of the loop gets as many threads, up to the count)."""
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
            elif len(self._threads) < self.count:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    async def run(self, work: Callable[..., Any], *args: Any) -> Any:
        """`work(*args)` in one of the threads, in the caller's context; its result, or its
        exception raised here."""
        self._reserve()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        context = copy_context()
        self._jobs.put((loop, future, lambda: context.run(work, *args)))
        return await future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, call = job
            try:
                value, error = call(), None
            except BaseException as e:  # handed to the request, which answers it
                value, error = None, e
            with self._lock:
                self._idle += 1  # before the answer: the caller's next job finds it idle
            with suppress(RuntimeError):  # the loop has closed: the server is stopping
                loop.call_soon_threadsafe(_settle, future, value, error)

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
