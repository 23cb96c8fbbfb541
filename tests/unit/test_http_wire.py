"""The server's plumbing: the worker threads requests run in, and answers leaving in one write."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import threading

import pytest

from infra.http.wire import JoinedWrites
from infra.http.workers import Workers

caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="nobody")


def test_a_job_runs_in_a_worker_thread_in_the_callers_context() -> None:
    workers = Workers(4, "t")

    async def main() -> tuple[str, str]:
        caller.set("alice")
        return await workers.run(lambda x: (caller.get() + x, threading.current_thread().name), "!")

    try:
        said, where = asyncio.run(main())
    finally:
        workers.close()
    assert said == "alice!"
    assert where.startswith("t-")
    assert where != threading.current_thread().name


def test_a_jobs_exception_is_raised_to_whoever_awaits_it() -> None:
    workers = Workers(2, "t")

    def fails() -> None:
        raise LookupError("no such candidate")

    try:
        with pytest.raises(LookupError, match="no such candidate"):
            asyncio.run(workers.run(fails))
    finally:
        workers.close()


def test_threads_start_only_when_none_is_idle_and_never_beyond_the_count() -> None:
    workers = Workers(3, "t")
    release = threading.Event()

    async def sequential() -> None:
        for _ in range(20):
            await workers.run(lambda: None)

    async def concurrent() -> list[None]:
        return await asyncio.gather(*(workers.run(release.wait, 5) for _ in range(8)))

    try:
        asyncio.run(sequential())
        assert len(workers._threads) == 1  # one at a time: the same thread each time
        threading.Timer(0.3, release.set).start()
        asyncio.run(concurrent())
        assert len(workers._threads) == 3
    finally:
        workers.close()
    assert workers._threads == []


def test_writes_in_one_turn_of_the_loop_leave_together() -> None:
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)

    async def main() -> tuple[bytes | None, bytes]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
        joined = JoinedWrites(transport, loop)  # type: ignore[arg-type]
        joined.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        joined.write(b"{}")
        try:
            before: bytes | None = theirs.recv(1024)
        except BlockingIOError:
            before = None  # nothing sent yet, in the middle of the turn
        await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        after = theirs.recv(1024)
        joined.write(b"last")
        joined.close()  # sends what is pending first
        return before, after

    try:
        before, after = asyncio.run(main())
        theirs.setblocking(True)
        theirs.settimeout(2)
        assert theirs.recv(1024) == b"last"
    finally:
        theirs.close()
    assert before is None
    assert after == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
