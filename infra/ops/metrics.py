"""The Prometheus metrics of every backcheck process, defined once (one registry per process:
prometheus-client's default), and the few functions the code calls to move them.

Names are `backcheck_*`; counters end in `_total`. Labels are bounded: an enumeration
(`DeadLetterReason`, an access outcome) is bounded by itself; a free value (a policy id, a
partition number, a topic) goes through `Bounded`, which keeps the first `MAX_VALUES` values
it sees and counts every later one as `other`, so a stream of odd values cannot grow the
registry without end. Nothing here connects anywhere: a metric is a number in memory until
`/metrics` is scraped (`infra/ops/health.py`, `infra/http/app.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import Counter, Gauge

MAX_VALUES = 64  # distinct values a free label keeps before counting the rest as `other`
OTHER = "other"


class Bounded:
    """A label's values, at most `limit` distinct ones (then `other`), each at most 100
    characters."""

    def __init__(self, limit: int = MAX_VALUES) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        text = str(value)[:100]
        if text in self._seen:
            return text
        with self._lock:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(text)
        return text


_topics, _policies, _partitions, _operations = Bounded(16), Bounded(), Bounded(256), Bounded(32)

RELAYED = Counter("backcheck_relay_events", "events the relay published, acknowledged", ["topic"])
RELAY_POSITION = Gauge(
    "backcheck_relay_position", "the log position the broker acknowledged up to", ["topic"]
)
RELAY_LAG = Gauge(
    "backcheck_relay_lag_events", "events stored but not yet acknowledged by the broker", ["topic"]
)
VIEW_POSITION = Gauge(
    "backcheck_view_position",
    "the log position a projection worker's views hold on a partition",
    ["topic", "partition"],
)
VIEW_LAG = Gauge(
    "backcheck_view_lag_events",
    "log positions the relay delivered to a partition beyond what its views hold",
    ["topic", "partition"],
)
COMMANDS = Counter(
    "backcheck_commands", "commands taken from the command topic, by outcome", ["outcome"]
)
DEAD_LETTERS = Counter(
    "backcheck_dead_letters",
    "dead letters sent (acknowledged by the broker), by topic and reason",
    ["topic", "reason"],
)
READ_DECISIONS = Counter(
    "backcheck_read_decisions",
    "access decisions on reads, by outcome and deciding policy",
    ["outcome", "policy"],
)
CHAIN_VERIFICATIONS = Counter(
    "backcheck_chain_verifications", "hash chain verifications, by result", ["result"]
)
RETRIES = Counter(
    "backcheck_transient_retries",
    "transient failures waited out and tried again, by operation",
    ["operation"],
)


def relayed(topic: str, count: int, position: int, head: int) -> None:
    label = _topics(topic)
    if count:
        RELAYED.labels(label).inc(count)
    RELAY_POSITION.labels(label).set(position)
    RELAY_LAG.labels(label).set(max(head - position, 0))


def view_positions(topic: str, held: dict[int, int], delivered: dict[int, int]) -> None:
    """Each partition's position in the views (`held`) and its lag behind what the relay
    delivered there (`delivered`)."""
    label = _topics(topic)
    for partition in sorted(held.keys() | delivered.keys()):
        at = held.get(partition, 0)
        part = _partitions(partition)
        VIEW_POSITION.labels(label, part).set(at)
        VIEW_LAG.labels(label, part).set(max(delivered.get(partition, 0) - at, 0))


def command(outcome: str) -> None:
    """`outcome`: applied, redelivered, dead-lettered (a closed set, named by the intake)."""
    COMMANDS.labels(outcome).inc()


def dead_letter(topic: str, reason: str) -> None:
    """One dead letter sent, `reason` a `DeadLetterReason` value (an enumeration: bounded)."""
    DEAD_LETTERS.labels(_topics(topic), reason).inc()


def read_decision(outcome: str, policies: Iterable[str]) -> None:
    """One access decision: counted once per deciding policy (`none` when none decided)."""
    for policy in sorted(set(policies)) or ["none"]:
        READ_DECISIONS.labels(outcome, _policies(policy)).inc()


def chain_verified(intact: bool) -> None:
    CHAIN_VERIFICATIONS.labels("intact" if intact else "broken").inc()


SCHEDULED_RUNS = Counter(
    "backcheck_scheduled_runs",
    "scheduled duties' runs this scheduler ran, by duty and how they ended (ran, failed, lost)",
    ["duty", "status"],
)


def scheduled_run(duty: str, status: str) -> None:
    SCHEDULED_RUNS.labels(duty[:40], status[:20]).inc()


WITNESS_CHECKPOINTS = Counter(
    "backcheck_witness_checkpoints",
    "checkpoints a witness judged, by finding (accepted, held, unproven, bad-signature, "
    "malformed, fork, rollback)",
    ["finding"],
)
WITNESS_ALARMS = Counter(
    "backcheck_witness_alarms", "forks and rollbacks a witness found, by finding", ["finding"]
)
WITNESS_SIZE = Gauge(
    "backcheck_witness_tree_size", "the tree size of the checkpoint a witness holds"
)


def witnessed(finding: str, size: int | None = None, alarm: bool = False) -> None:
    WITNESS_CHECKPOINTS.labels(finding[:20]).inc()
    if alarm:
        WITNESS_ALARMS.labels(finding[:20]).inc()
    if size is not None:
        WITNESS_SIZE.set(size)


def retried(operation: str) -> None:
    RETRIES.labels(_operations(operation)).inc()


_checkpoint_age: list[Gauge] = []  # made by the first process part that watches checkpoints


def watch_checkpoints(directory: Path, now: Callable[[], float]) -> None:
    """Checkpoint age, read from `directory` when scraped: the newest kept checkpoint file's
    age (its modification time: it is written once, when it is signed). Only the processes
    that watch the checkpoints (the HTTP server, the scheduler) export it."""
    if not _checkpoint_age:
        _checkpoint_age.append(
            Gauge(
                "backcheck_checkpoint_age_seconds",
                "seconds since the newest kept signed checkpoint was written (-1: none kept)",
            )
        )

    def age() -> float:
        try:
            kept = [*directory.glob("*.json"), *directory.glob("*.note")]
            newest = max((p.stat().st_mtime for p in kept), default=None)
        except OSError:
            newest = None
        return -1.0 if newest is None else max(now() - newest, 0.0)

    _checkpoint_age[0].set_function(age)
