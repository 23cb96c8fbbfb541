"""Projection workers: the read views built from the Kafka events topic, in faust.

Each worker of the consumer group takes some partitions of `backcheck.events.v1` and runs the
*same* projection as the in-process runner (`projections/read_views.py`) through the same view
stores (`infra/views.py`), into a table of its own. A message is the stored event as the relay
published it (binary-mode CloudEvents: the state as value, the topic in `ce_type`, the log
position in `ce_position`); the worker turns it back into the domain event with the store's
mapper, so sealed personal values open only while the subject's keys exist.

Tracking is per partition and by log position, written in the same transaction as the rows:
a redelivered message (a restarted worker, a rebalance, the relay's resent tail) has a
position at or below what its partition has applied, and changes nothing. Positions rather
than offsets, because offsets start again if the broker loses a topic; log positions never do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent, Tracking

from infra.views import ViewStore
from projections.read_views import ReadViews

EVENTS_TOPIC = "backcheck.events.v1"


class BadEventMessageError(ValueError):
    """A message on the events topic that is not a stored event as the relay publishes it."""


@dataclass(frozen=True)
class Record:
    """What the worker needs of one Kafka message."""

    partition: int
    offset: int
    value: bytes
    headers: dict[str, bytes]


def _header(record: Record, name: str) -> bytes:
    found = record.headers.get(name)
    if found is None:
        raise BadEventMessageError(
            f"partition {record.partition} offset {record.offset}: no {name} header"
        )
    return found


def stored_event_of(record: Record) -> tuple[int, StoredEvent]:
    """(log position, stored event) from a relay message."""
    ce_id = _header(record, "ce_id").decode()
    originator, _, version = ce_id.rpartition(":")
    try:
        position = int(_header(record, "ce_position"))
        stored = StoredEvent(
            originator_id=UUID(originator),
            originator_version=int(version),
            topic=_header(record, "ce_type").decode(),
            state=record.value,
        )
    except ValueError as e:
        raise BadEventMessageError(
            f"partition {record.partition} offset {record.offset}: ce_id {ce_id!r} or "
            f"ce_position is not what the relay writes ({e})"
        ) from None
    return position, stored


class StreamProjection:
    """Applies batches of relay messages to a view store, once each (idempotent)."""

    def __init__(
        self,
        app: Application[UUID],
        store: ViewStore,
        topic: str = EVENTS_TOPIC,
        projection: ReadViews | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.topic = topic
        self.projection = projection or ReadViews()
        self._applied: dict[int, int] = {}  # partition -> highest log position applied
        self._lock = threading.Lock()
        self.applied_events = 0

    def tracking_name(self, partition: int) -> str:
        return f"{self.topic}/{partition}"

    def applied(self, partition: int) -> int:
        if partition not in self._applied:
            found = self.store.max_tracking_id(self.tracking_name(partition))
            self._applied[partition] = found or 0
        return self._applied[partition]

    def apply(self, records: Iterable[Record]) -> int:
        """Applies what is new in `records`; returns how many events that was."""
        by_partition: dict[int, list[Record]] = {}
        for record in records:
            by_partition.setdefault(record.partition, []).append(record)
        done = 0
        with self._lock:
            for partition, found in sorted(by_partition.items()):
                done += self._apply_partition(partition, found)
        self.applied_events += done
        return done

    def _apply_partition(self, partition: int, records: Sequence[Record]) -> int:
        floor = self.applied(partition)
        events: list[tuple[int, Any]] = []
        for record in records:
            position, stored = stored_event_of(record)
            if position <= floor or (events and position <= events[-1][0]):
                continue  # delivered before: already in the views
            events.append((position, self.app.mapper.to_domain_event(stored)))
        if not events:
            return 0
        last = events[-1][0]
        self.store.apply(events, Tracking(self.tracking_name(partition), last), self.projection)
        self._applied[partition] = last
        return len(events)


def faust_app(
    projection: StreamProjection,
    bootstrap: str,
    group: str = "backcheck-views",
    partitions: int = 6,
    batch: int = 500,
    within: float = 0.05,
    consumer_settings: dict[str, Any] | None = None,
) -> Any:
    """The faust application of one worker: one agent over the events topic, applying what
    arrives in batches (up to `batch` messages or `within` seconds)."""
    import faust

    settings = consumer_settings or {}
    app = faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=partitions,
        topic_allow_declare=False,  # the relay creates the topic with its partitions
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.get("session_timeout_ms", 10_000) / 1000,
        broker_heartbeat_interval=settings.get("heartbeat_interval_ms", 3_000) / 1000,
        broker_max_poll_interval=settings.get("max_poll_interval_ms", 300_000) / 1000,
    )
    topic = app.topic(
        projection.topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )

    @app.agent(topic)  # type: ignore[misc]
    async def project(stream: Any) -> None:
        async for events in stream.take_events(batch, within=within):
            projection.apply(
                Record(
                    partition=e.message.partition,
                    offset=e.message.offset,
                    value=e.value,
                    headers={k: bytes(v) for k, v in (e.headers or {}).items()},
                )
                for e in events
            )

    return app
