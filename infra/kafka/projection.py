"""The projections as the workers run them: relay messages applied to view stores, once each.

A worker runs the *same* projections as the in-process runners, one target for each of the
kept views (`infra/views/kept.py`: the read views, the dashboard), through the same view stores
(`infra/views/store.py`), into stores of their own. A message is
the stored event as the relay published it (`infra/kafka/cloudevent.py`); it is turned back
into the domain event with the store's mapper, so sealed personal values open only while the
subject's keys exist.

Tracking is per partition and by log position, written in the same transaction as the rows:
a redelivered message (a restarted worker, a rebalance, the relay's resent tail) has a
position at or below what its partition has applied, and changes nothing. A run another
worker applied first (two workers at once on one partition: a rebalance in flight, two groups
on one store's views) is refused whole by its tracking record (`Advance`): what that worker
applied is done, and the rest is applied from where it got. Positions rather than offsets,
because offsets start again if the broker loses a topic; log positions never do.
A message whose `ce_prevposition` is beyond what its partition's views hold follows a gap: it
is not applied, and its partition is named to be read again (`infra/kafka/recovery.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
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
from infra.kafka.event_types import accepted_types
from infra.kafka.topics import EVENTS_TOPIC
from infra.views.store import Advance, Projection, ViewStore

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
        return incoming_event(self.headers, self.value, self.where, accepted_types())

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


@dataclass
class Target:
    """One of the kept views as a worker keeps them (infra/views/kept.py): their store, their
    projection, and how far each partition's events have been applied there (read from the
    store's tracking records when first asked)."""

    store: ViewStore
    projection: Projection
    positions: dict[int, int] = field(default_factory=dict)  # partition -> last position

    def applied(self, name: str, partition: int) -> int:
        if partition not in self.positions:
            self.positions[partition] = self.store.max_tracking_id(name) or 0
        return self.positions[partition]


class StreamProjection:
    """Applies batches of relay messages to each of its targets (the read views, the
    dashboard), once each (idempotent). Each target tracks every partition apart, in its own
    store: one may stand behind another (added later, or rebuilt), and is filled from the
    partition read again (a gap), while the others pass over what they hold."""

    def __init__(
        self, app: Application[UUID], targets: Sequence[Target], topic: str = EVENTS_TOPIC
    ) -> None:
        if not targets:
            raise ValueError("a stream projection needs at least one target")
        self.app = app
        self.targets = list(targets)
        self.topic = topic
        self._lock = threading.Lock()
        self.applied_events = 0  # log positions applied to at least one target
        self.partitions_applied: set[int] = set()

    @property
    def store(self) -> ViewStore:
        """The first target's store (in a worker, the read views')."""
        return self.targets[0].store

    def tracking_name(self, partition: int) -> str:
        return f"{self.topic}/{partition}"

    def applied(self, partition: int) -> int:
        """How far every target holds the partition's events: a partition is read again (a
        gap, a stall) until the one furthest behind has them."""
        name = self.tracking_name(partition)
        return min(target.applied(name, partition) for target in self.targets)

    def apply(
        self,
        records: Iterable[Record],
        on_bad: OnBad | None = None,
        on_gap: Callable[[int, str], None] | None = None,
    ) -> int:
        """Applies what is new in `records` to each target, every partition of the batch in
        one transaction per target (with each partition's tracking record); returns how many
        events that was (each counted once, however many targets took it).

        A record that is not a relay message (its headers wrong, its type none of the domain's,
        its value no JSON) goes to `on_bad` with the reason; it is passed over. A record whose
        previous position on the partition was not applied to a target (messages lost or
        skipped before it) is not applied there, nor is anything after it on that partition in
        this batch: the partition goes to `on_gap` with the reason, to be read again. Without
        the handlers, both are errors (a gap raised once the rest of the batch is applied)."""
        by_partition: dict[int, list[Record]] = {}
        for record in records:
            by_partition.setdefault(record.partition, []).append(record)
        with self._lock:
            decoded = {
                partition: self._decode(found, on_bad)
                for partition, found in sorted(by_partition.items())
            }
            events = _Events(self.app)
            gaps: dict[int, str] = {}
            positions: set[int] = set()
            for target in self.targets:
                done, found = self._apply_decoded(target, decoded, events)
                positions |= done
                for partition, gap in found.items():
                    gaps.setdefault(partition, gap)
        self.applied_events += len(positions)
        for record, error in events.bad:
            if on_bad is None:
                raise error
            on_bad(record, error)
        for partition, gap in gaps.items():
            if on_gap is None:
                raise GapError(gap)
            on_gap(partition, gap)
        return len(positions)

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
        self,
        target: Target,
        decoded: dict[int, list[tuple[Record, IncomingEvent]]],
        events: _Events,
    ) -> tuple[set[int], dict[int, str]]:
        """(the log positions applied to `target`, the gap of each partition that has one)."""
        while True:
            runs: list[tuple[list[tuple[int, Any]], Tracking]] = []
            gaps: dict[int, str] = {}
            starts: dict[int, int] = {}
            reached: dict[int, int] = {}
            for partition, items in decoded.items():
                name = self.tracking_name(partition)
                start = target.applied(name, partition)
                new, last, gap = self._new_events(partition, start, items, events)
                if new:
                    runs.append((new, Advance(name, last, start)))
                    starts[partition] = start
                    reached[partition] = last
                if gap is not None:
                    gaps[partition] = gap
            if runs:
                try:
                    target.store.apply_tracked(runs, target.projection)
                except IntegrityError:
                    # another worker applied some of these partitions while this one waited
                    # for the views (a rebalance in flight; two groups on one store's views):
                    # what it applied is in them, done. Read how far it got and apply the rest,
                    # as often as it has moved on again meanwhile; a refusal it does not
                    # explain is raised
                    if not self._moved_on(target, starts):
                        raise
                    continue
                target.positions.update(reached)
                self.partitions_applied.update(reached)
            return {position for new, _ in runs for position, _ in new}, gaps

    def _moved_on(self, target: Target, starts: dict[int, int]) -> bool:
        """Whether `target` holds any of these partitions at another position than the one
        this worker's runs began from (`starts`), each read again from its store."""
        moved = False
        for partition, start in starts.items():
            target.positions.pop(partition, None)
            moved |= target.applied(self.tracking_name(partition), partition) != start
        return moved

    @staticmethod
    def _new_events(
        partition: int,
        last: int,
        items: list[tuple[Record, IncomingEvent]],
        events: _Events,
    ) -> tuple[list[tuple[int, Any]], int, str | None]:
        """The events of `items` past `last`, where a target holds the partition, up to a gap
        if there is one: (events, the last position among them, the gap)."""
        new: list[tuple[int, Any]] = []
        for record, (position, previous, stored) in items:
            if position <= last:
                continue  # delivered before: already in the views
            if previous is not None and previous > last:
                gap = (
                    f"partition {partition} offset {record.offset}: position {position} "
                    f"follows {previous}, but this partition's views stand at {last}"
                )
                return new, last, gap
            event = events.of(record, position, stored)
            if event is None:
                continue
            new.append((position, event))
            last = position
        return new, last, None


class _Events:
    """The domain events of one batch, each turned back from its stored form once, whatever
    number of targets take it; a value that is no stored event's is noted once, in `bad`."""

    def __init__(self, app: Application[UUID]) -> None:
        self.app = app
        self.found: dict[int, Any] = {}
        self.bad: list[tuple[Record, BadEventMessageError]] = []
        self.refused: set[int] = set()

    def of(self, record: Record, position: int, stored: Any) -> Any:
        """The event at `position` (None: its value is no stored event's)."""
        if position in self.refused:
            return None
        if position not in self.found:
            try:
                self.found[position] = self.app.mapper.to_domain_event(stored)
            except MapperDeserialisationError as e:
                self.refused.add(position)
                self.bad.append((record, BadEventMessageError(f"{record.where}: {e}")))
                return None
        return self.found[position]
