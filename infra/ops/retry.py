"""Retrying what fails for a while and then works again, and only that (tenacity).

A transient fault is one that waiting cures: the broker unavailable or not acknowledging, the
store's server unreachable or its connection lost, a SQLite file locked by another writer, a
socket timing out. Those are tried again with exponential backoff and jitter (from
`first_delay` up to `MAX_DELAY` seconds), each failure one log line, for as long as the process
runs: the message being handled is never passed over, so the ones behind it wait rather than
being lost. Anything else is not retried. A broken message never gets here (the intake and the
workers dead-letter it first, with its reason); what is left is a bug, and retrying a bug is a
silent infinite loop: `until_done` raises it, and the process stops with one line naming it
and a non-zero exit (`stop_on_bug`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
import psycopg_pool
from eventsourcing.persistence import InterfaceError, OperationalError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential_jitter,
)

T = TypeVar("T")
MAX_DELAY = 30.0  # seconds between tries, at most
EX_SOFTWARE = 70  # sysexits.h: an internal software error (a bug)

_TRANSIENT_PROBLEMS = frozenset(
    {"store-unreachable", "store-busy", "broker-unavailable", "relay-failed", "topic-missing"}
)
# the clients' errors for a broker away that they do not mark retriable (aiokafka's timeout)
_KAFKA_UNAVAILABLE = frozenset({"KafkaTimeoutError", "NoBrokersAvailable", "KafkaConnectionError"})
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    OperationalError,  # the store's library: connection lost, database locked
    InterfaceError,
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    sqlite3.OperationalError,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
)


def is_transient(error: BaseException) -> bool:
    """Whether waiting may cure `error` (see the module's docstring)."""
    if isinstance(error, _TRANSIENT_TYPES):
        return True
    if getattr(error, "retriable", False):  # kafka-python's and aiokafka's retriable errors
        return True
    if type(error).__name__ in _KAFKA_UNAVAILABLE and type(error).__module__.split(".")[0] in (
        "kafka",
        "aiokafka",
    ):
        return True
    from infra.problem import problem_for  # (it knows the Kafka adapters, which use this)

    problem = problem_for(error) if isinstance(error, Exception) else None
    return problem is not None and problem.type in _TRANSIENT_PROBLEMS


def backoff(first_delay: float = 1.0) -> wait_exponential_jitter:
    """Doubling from `first_delay`, with up to `first_delay` of jitter, at most `MAX_DELAY`."""
    return wait_exponential_jitter(multiplier=first_delay, max=MAX_DELAY, jitter=first_delay)


async def until_done(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    log: logging.Logger,
    first_delay: float = 1.0,
) -> T:
    """Tries `attempt` until it succeeds, as long as it fails transiently: each failure one
    line (`<what> failed (<Error>: <text>); trying again in N s`, its traceback at debug level).
    A failure that is not transient is raised at once (a bug: `stop_on_bug`)."""
    from infra.ops import metrics

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        kind = type(error).__name__
        log.error("%s failed (%s: %s); trying again in %.1f s", what, kind, error, delay)
        log.debug("%s failed", what, exc_info=error)
        metrics.retried(what.split(" ", 1)[0])

    retrying = AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=backoff(first_delay),
        before_sleep=before_sleep,
        reraise=True,
    )
    async for tried in retrying:
        with tried:
            return await attempt()
    raise AssertionError("unreachable: tenacity retries until success or raises")


def stop_on_bug(
    process: str, what: str, error: BaseException, exit_code: int = EX_SOFTWARE
) -> None:
    """Stops the process at once with one line: `error` is not worth retrying. What it was
    handling is not committed, so it is delivered again when the process restarts (after the
    fix), and applied once. An error the problem table knows (a master key that is no longer
    the store's after a rotation, a data key gone) is said as every command says it, with its
    own exit code (78, 65); anything else is a bug (70)."""
    from infra.problem import problem_for

    problem = problem_for(error) if isinstance(error, Exception) else None
    if problem is not None:
        line = f"{process} stopped: {what} failed: {problem.line()}\n"
        exit_code = problem.exit_code
    else:
        line = (
            f"{process} stopped: {what} failed with a bug, not retried "
            f"({type(error).__name__}: {error}); fix it and start it again\n"
        )
    try:
        logging.getLogger("backcheck").critical(line.strip())
        sys.stderr.flush()
    finally:
        os._exit(exit_code)
