"""The projection as the workers run it: relay messages applied to a view store, once each.

A worker runs the *same* projection as the in-process runner (`projections/read_views.py`)
through the same view stores (`infra/views/runner.py`), into a table of its own. A message is
the stored event as the relay published it (`infra/kafka/cloudevent.py`); it is turned back
into the domain event with the store's mapper, so sealed personal values open only while the
subject's keys exist.

Tracking is per partition and by log position, written in the same transaction as the rows:
a redelivered message (a restarted worker, a rebalance, the relay's resent tail) has a
position at or below what its partition has applied, and changes nothing. Positions rather
than offsets, because offsets start again if the broker loses a topic; log positions never do.
A message whose `ce_prevposition` is beyond what its partition's views hold follows a gap: it
is not applied, and its partition is named to be read again (`infra/kafka/recovery.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, MapperDeserialisationError, Tracking

from infra.kafka.cloudevent import (
    BadEventMessageError,
    DeadLetter,
    DeadLetterReason,
    Headers,
    IncomingEvent,
    dead_letter_headers,
    incoming_event,
)
from infra.kafka.topics import EVENTS_TOPIC
from infra.views.store import Advance, ViewStore
from projections.events import stored_event_types
from projections.read_views import ReadViews

OnBad = Callable[["Record", BadEventMessageError], None]


@dataclass(frozen=True)
class Record:
    """What the worker needs of one Kafka message."""

    partition: int
    offset: int
    value: bytes
    headers: dict[str, bytes]

    @property
    def where(self) -> str:
        return f"partition {self.partition} offset {self.offset}"

    def event(self) -> IncomingEvent:
        """The relayed event this message is, or BadEventMessageError (one whose type is none
        of the domain's among them)."""
        return incoming_event(self.headers, self.value, self.where, stored_event_types())

    def dead_letter_headers(
        self,
        error: str,
        topic: str,
        now: datetime,
        reason: DeadLetterReason = DeadLetterReason.MALFORMED,
    ) -> Headers:
        """Its headers as a dead letter: a message on `topic` that is not the relay's."""
        letter = DeadLetter(reason, error, topic, self.partition, self.offset, now)
        return dead_letter_headers(list(self.headers.items()), letter)


class GapError(RuntimeError):
    """Events are missing before a message: applying it would skip them."""


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
        self.partitions_applied: set[int] = set()

    def tracking_name(self, partition: int) -> str:
        return f"{self.topic}/{partition}"

    def applied(self, partition: int) -> int:
        if partition not in self._applied:
            found = self.store.max_tracking_id(self.tracking_name(partition))
            self._applied[partition] = found or 0
        return self._applied[partition]

    def apply(
        self,
        records: Iterable[Record],
        on_bad: OnBad | None = None,
        on_gap: Callable[[int, str], None] | None = None,
    ) -> int:
        """Applies what is new in `records`, every partition of the batch in one transaction
        (with each partition's tracking record); returns how many events that was.

        A record that is not a relay message (its headers wrong, its type none of the domain's,
        its value no JSON) goes to `on_bad` with the reason; it is passed over. A record whose
        previous position on the partition was not applied (messages lost or skipped before
        it) is not applied, nor is anything after it on that partition in this batch: the
        partition goes to `on_gap` with the reason, to be read again. Without the handlers,
        both are errors (a gap raised once the rest of the batch is applied)."""
        by_partition: dict[int, list[Record]] = {}
        for record in records:
            by_partition.setdefault(record.partition, []).append(record)
        with self._lock:
            decoded = {
                partition: self._decode(found, on_bad)
                for partition, found in sorted(by_partition.items())
            }
            done, gaps, bad = self._apply_decoded(decoded)
        self.applied_events += done
        for record, error in bad:
            if on_bad is None:
                raise error
            on_bad(record, error)
        for partition, gap in gaps.items():
            if on_gap is None:
                raise GapError(gap)
            on_gap(partition, gap)
        return done

    @staticmethod
    def _decode(
        records: Sequence[Record], on_bad: OnBad | None
    ) -> list[tuple[Record, IncomingEvent]]:
        decoded: list[tuple[Record, IncomingEvent]] = []
        for record in records:
            try:
                decoded.append((record, record.event()))
            except BadEventMessageError as e:
                if on_bad is None:
                    raise
                on_bad(record, e)
        return decoded

    def _apply_decoded(
        self, decoded: dict[int, list[tuple[Record, IncomingEvent]]]
    ) -> tuple[int, dict[int, str], list[tuple[Record, BadEventMessageError]]]:
        """(events applied, the gap of each partition that has one, the records passed over
        as not the relay's)."""
        for attempt in (1, 2):
            runs: list[tuple[list[tuple[int, Any]], Tracking]] = []
            gaps: dict[int, str] = {}
            reached: dict[int, int] = {}
            bad: list[tuple[Record, BadEventMessageError]] = []
            for partition, items in decoded.items():
                start = self.applied(partition)
                events, last, gap = self._new_events(partition, items, bad)
                if events:
                    runs.append((events, Advance(self.tracking_name(partition), last, start)))
                    reached[partition] = last
                if gap is not None:
                    gaps[partition] = gap
            if runs:
                try:
                    self.store.apply_tracked(runs, self.projection)
                except IntegrityError:
                    # another worker applied one of these partitions meanwhile (a rebalance in
                    # flight): what it applied is in the views; read how far it got, apply the rest
                    for partition in reached:
                        self._applied.pop(partition, None)
                    if attempt == 2:
                        raise
                    continue
                self._applied.update(reached)
                self.partitions_applied.update(reached)
            return sum(len(events) for events, _ in runs), gaps, bad
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _new_events(
        self,
        partition: int,
        items: list[tuple[Record, IncomingEvent]],
        bad: list[tuple[Record, BadEventMessageError]],
    ) -> tuple[list[tuple[int, Any]], int, str | None]:
        """The events of `items` past what the partition's views hold, up to a gap if there is
        one: (events, the last position among them, the gap). A value that is no stored event's
        goes to `bad`."""
        last = self.applied(partition)
        events: list[tuple[int, Any]] = []
        for record, (position, previous, stored) in items:
            if position <= last:
                continue  # delivered before: already in the views
            if previous is not None and previous > last:
                gap = (
                    f"partition {partition} offset {record.offset}: position {position} "
                    f"follows {previous}, but this partition's views stand at {last}"
                )
                return events, last, gap
            try:
                event = self.app.mapper.to_domain_event(stored)
            except MapperDeserialisationError as e:
                bad.append((record, BadEventMessageError(f"{record.where}: {e}")))
                continue
            events.append((position, event))
            last = position
        return events, last, None
