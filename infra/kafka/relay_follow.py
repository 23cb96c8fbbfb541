"""The relay following the log: publishing what is new, waiting out what waiting cures.

A following relay (`backcheck relay` without `--once`) waits out the broker away or not
acknowledging, a topic with another partition count than configured (until an operator settles
it) and the store's server away or locked: each tried again with exponential backoff and
jitter (tenacity, `infra/ops/retry.py`), its reason said once until it changes. Anything else
is raised, so the process stops with one line and a non-zero exit: a bug is not retried.
With `--once` nothing is waited out: the first failure is the command's error.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_when_event_set

from infra.kafka.relay import PartitionCountError, RelayFailedError
from infra.kafka.topics import BrokerUnavailableError
from infra.ops import metrics
from infra.ops.retry import backoff, is_transient
from infra.store.recorder import datastore_of

if TYPE_CHECKING:
    from infra.kafka.relay import Relay


def waits_out(error: BaseException) -> bool:
    """Whether a following relay waits `error` out (see the module's docstring)."""
    waits = (RelayFailedError, BrokerUnavailableError, PartitionCountError)
    return isinstance(error, waits) or is_transient(error)


def follow(
    relay: Relay,
    once: bool,
    poll: float,
    retry: float,
    progress: Callable[[int, int], None] | None,
    on_retry: Callable[[Exception], None] | None,
) -> int:
    """`Relay.run`: up to the head (`once`), or until `relay.stop` is set; how many events."""
    target = relay.head()
    if once:
        relay.connect()  # the topic exists, the broker answers: or say so now
    said = [""]  # why the last try failed, said once (not once a try) until it changes

    def waiting(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        _drop_lost_connections(relay)
        if isinstance(error, Exception) and str(error) != said[0]:
            said[0] = str(error)
            if on_retry is not None:
                on_retry(error)
        metrics.retried("relay")

    while not relay.stop.is_set():
        try:
            done = relay.publish() if once else _publish_retrying(relay, retry, waiting)
        except Exception:
            if relay.stop.is_set() and not once:
                break  # told to stop while waiting for the broker or the store
            raise
        said[0] = ""
        relay.observe(done)
        if progress is not None:
            progress(relay.position, max(target, relay.position))
        if done:
            continue
        if once:
            break
        relay.stop.wait(poll)
    return relay.sent


def _drop_lost_connections(relay: Relay) -> None:
    """On PostgreSQL, the pool's idle connections checked and the lost ones dropped, so the
    next try gets a live one (rather than one stale connection per try, each a backoff)."""
    from eventsourcing.postgres import PostgresDatastore

    datastore = datastore_of(relay.app.recorder)
    if isinstance(datastore, PostgresDatastore):
        with contextlib.suppress(Exception):  # the server still away: the next try says so
            datastore.pool.check()


def _pause(relay: Relay, seconds: float) -> None:
    relay.stop.wait(seconds)


def _publish_retrying(relay: Relay, first: float, waiting: Callable[[RetryCallState], None]) -> int:
    """`relay.publish()`, tried again while it fails in a way `waits_out`, until told to stop."""
    for attempt in Retrying(
        retry=retry_if_exception(waits_out),
        wait=backoff(first),
        stop=stop_when_event_set(relay.stop),
        sleep=functools.partial(_pause, relay),  # woken by a stop
        before_sleep=waiting,
        reraise=True,
    ):
        with attempt:
            return relay.publish()
    return 0  # not reached: tenacity returns or raises
