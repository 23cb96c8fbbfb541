"""Every value held about a candidate, as the store holds it: the records of their access package.

The package's reads answer from the views, and a view holds what its question needs: an
investigation's row counts its findings, it does not tell them; the consent register keeps
when a consent was withdrawn, not why. What the store holds about the candidate is more: each
finding with its source (who, where from), method, outcome and notes; each reviewer's
comments; each withdrawal's reason; each amendment's note and reason; the disputes, the
feedback and the answers given. So the package also carries the events of the candidate's
case — about them, their consents, investigations and reports — in log order, each with every
field it holds and each personal value opened (name, category, tier, value). They are built
from the events as stored, not field by field, so a value a later version of an event holds
is in the package without a change here (tests/integration/test_subject_export.py holds every
personal field the domain declares to it).

Of the other events about the candidate (access and disclosure records, delivered commands'
receipts) only those holding a value of theirs are records too (a break-glass read's sealed
justification); the package's access log tells the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import Field

from domain.classification import ERASED_VALUE, KEY_MISSING_VALUE, PersonalField
from services.dto import Result
from services.errors import DataKeyMissingError

# The aggregates of a candidate's case, by the name their events' classes are nested in.
CASE = frozenset({"Candidate", "Consent", "Investigation", "Report"})


class HeldRecord(Result):
    position: int = Field(description="the event's position in the log")
    at: datetime = Field(description="when it was recorded")
    aggregate: str = Field(
        description="Candidate, Consent, Investigation or Report (or Access: a break-glass "
        "read's justification)"
    )
    aggregate_id: UUID
    event: str = Field(description="what was recorded, e.g. FindingRecorded")
    data: dict[str, Any] = Field(
        description="every field the event holds; each personal value as "
        "{name, category, tier, value} (⟨erased⟩ once erased)"
    )


def _opened(value: Any, found: set[str], subject: UUID) -> Any:
    """An event attribute as JSON, personal values opened (and their categories noted in
    `found`); a value whose key is gone without a recorded erasure stops the package."""
    if isinstance(value, PersonalField):
        if value.value == KEY_MISSING_VALUE:
            raise DataKeyMissingError(subject, value.category)
        if value.value != ERASED_VALUE:
            found.add(value.category)
        return {
            "name": value.name,
            "category": value.category,
            "tier": value.tier.value,
            "value": value.value,
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _opened(getattr(value, f.name), found, subject)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, tuple | list | frozenset | set):
        return [_opened(v, found, subject) for v in value]
    if isinstance(value, dict):
        return {str(k): _opened(v, found, subject) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID | datetime):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    return value


def held_records(
    replayed: Iterable[tuple[int, Any]], subject: UUID
) -> tuple[list[HeldRecord], set[str]]:
    """The records of the candidate's case among `replayed` (their events, in log order),
    and the categories of the personal values they hold that can still be read."""
    records: list[HeldRecord] = []
    found: set[str] = set()
    for position, event in replayed:
        aggregate, _, name = type(event).__qualname__.rpartition(".")
        state = {
            k: v
            for k, v in vars(event).items()
            if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")
        }
        held: set[str] = set()
        data = _opened(state, held, subject)
        if aggregate not in CASE and not _holds_personal(state):
            continue
        found |= held
        records.append(
            HeldRecord(
                position=position,
                at=event.timestamp,
                aggregate=aggregate,
                aggregate_id=event.originator_id,
                event=name,
                data=data,
            )
        )
    return records, found


def _holds_personal(value: Any) -> bool:
    if isinstance(value, PersonalField):
        return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_holds_personal(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, tuple | list | frozenset | set):
        return any(_holds_personal(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_personal(v) for v in value.values())
    return False
