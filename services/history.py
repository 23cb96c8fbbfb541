"""Reading the store back: the events about one data subject, in log order.

Personal values never leave through this path: each is shown as its data category only.
Reading values is the access-controlled query service's job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from domain.candidate import Candidate
from domain.classification import PersonalField
from projections.case_overview import CaseOverview
from services.compliance import Violation, check_stream
from services.dto import EventRecord
from services.errors import AggregateMissingError
from services.shredding import KeyLedger
from services.timeline import TimelineEntry, timeline
from services.unit import UnitOfWork


def redacted(value: Any) -> Any:
    """JSON-friendly copy of an event attribute with personal values replaced by category."""
    if isinstance(value, PersonalField):
        return {"name": value.name, "category": value.category, "value": f"<{value.tier.value}>"}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: redacted(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [redacted(v) for v in value]
    if isinstance(value, dict):
        return {str(k): redacted(v) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID | datetime):
        return str(value)
    return value


def event_record(position: int, event: Any) -> EventRecord:
    """A stored event as `events` shows it: its personal values as their category and tier."""
    state = dict(vars(event))
    aggregate, _, name = type(event).__qualname__.rpartition(".")
    originator_id = state.pop("originator_id")
    version = state.pop("originator_version")
    timestamp = state.pop("timestamp")
    state.pop("originator_topic", None)
    return EventRecord(
        position=position,
        aggregate=aggregate,
        event=name,
        originator_id=originator_id,
        version=version,
        timestamp=timestamp,
        data=redacted(state),
    )


class HistoryQueries(UnitOfWork):
    def iter_events(self, candidate_id: UUID | None = None) -> Iterator[EventRecord]:
        """Every stored event in notification-log order, optionally for one data subject.
        Not a read: nothing is recorded; the command line's `events` reads pages of them
        through `read_events` (services/audit_reads.py), which records who they are about."""
        for position, event in self.replay(subject=candidate_id):
            yield event_record(position, event)

    def timeline(self, candidate_id: UUID) -> Iterator[TimelineEntry]:
        """What happened to one candidate: who, what, when, under which consent."""
        return timeline(self.replay(subject=candidate_id), candidate_id)

    def as_of(self, moment: datetime, candidate_id: UUID | None = None) -> list[dict[str, Any]]:
        """The case overview as it stood at `moment`, rebuilt from the events up to then: a
        case for each candidate registered by then. An id no candidate held then has no case,
        though events may name it (a scoped token's refused read of an id outside its
        assignments is recorded under that id, whether a candidate holds it or not)."""
        view = CaseOverview()
        for position, event in self.replay(subject=candidate_id):
            if event.timestamp <= moment:
                view.process(position, event)
        rows = [
            r
            for r in view.rows.values()
            if r.registered_at is not None and candidate_id in (None, r.candidate_id)
        ]
        return [r.as_dict(moment) for r in rows]

    def violations(self) -> Iterator[Violation]:
        """Replays the whole stream and yields every broken rule with its position; then each
        data key held that must not be (an erasure or retention run recorded but not
        finished) and each one gone that must not be (nothing recorded destroyed it)."""
        ledger = KeyLedger()
        yield from check_stream(ledger.observe(self.replay()))
        held = self.keys.held()  # after the stream: a key destroyed since is one it records
        findings = ledger.unfinished(held) + [
            f for f in ledger.missing(held) if not self._erased_since(f.candidate_id, f.tiers)
        ]
        for f in sorted(findings, key=lambda f: f.position):
            yield Violation(f.position, f.rule, f.candidate_id, f.candidate_id, f.detail)

    def _erased_since(self, subject: UUID, scopes: tuple[str, ...]) -> bool:
        """Whether an erasure or retention of this key (a tier's or a category's, whichever
        sealed the values) was recorded after the replay ended."""
        try:
            candidate = self.load(Candidate, subject)
        except AggregateMissingError:
            return False
        gone = candidate.shredded_tiers | candidate.categories_shredded
        return candidate.erased or any(s in gone for s in scopes)
