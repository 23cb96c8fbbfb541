"""The small counting rules the dashboard's rows are kept by: days, bounded name counts, the
tiers an event holds values of, and where a quiet case stands for retention."""

from __future__ import annotations

import dataclasses
import functools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from domain.classification import PersonalField
from projections.rows import Doc

DAYS_KEPT = 90
MAX_NAMES = 500
OTHER = "(other)"


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


def hours_between(start: str, end: datetime) -> float:
    return (end - datetime.fromisoformat(start)).total_seconds() / 3600


def bump(counts: dict[str, Any], key: str, n: int = 1, *, bounded: bool = False) -> None:
    """Adds `n` to counts[key], dropping a count that reaches zero; `bounded`: a new key past
    MAX_NAMES is counted under OTHER instead. Which names those are depends on the order they
    came in: past the bound, the workers' counts (each partition at its own pace) may name
    other principals than the in-process runner's, with the same totals."""
    if bounded and key not in counts and len(counts) >= MAX_NAMES:
        key = OTHER
    value = counts.get(key, 0) + n
    if value:
        counts[key] = value
    else:
        counts.pop(key, None)


def tiers_in(value: Any) -> set[str]:
    """The tiers of the personal values anywhere in an event's state (their categories say,
    whether or not the value can still be read)."""
    found: set[str] = set()
    _gather_tiers(value, found)
    return found


# What most of an event's state is made of, and none of them holds a personal value: looked
# for first, since every event of the log is searched (`audit check`, the dashboard).
_PLAIN = (str, int, float, UUID, datetime, date, type(None))


def _gather_tiers(value: Any, found: set[str]) -> None:
    if isinstance(value, PersonalField):
        found.add(value.tier.value)
    elif isinstance(value, dict):
        for v in value.values():
            if not isinstance(v, _PLAIN):
                _gather_tiers(v, found)
    elif isinstance(value, (tuple, list)):
        for v in value:
            if not isinstance(v, _PLAIN):
                _gather_tiers(v, found)
    else:
        kind: type = type(value)
        for name in _field_names(kind) or ():
            _gather_tiers(getattr(value, name), found)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """A dataclass type's field names, None for any other type (asked once a type:
    `dataclasses.fields` walks them anew on every call)."""
    if not dataclasses.is_dataclass(cls):
        return None
    return tuple(f.name for f in dataclasses.fields(cls))


def tally(doc: Doc, principal: str, policies: list[str]) -> None:
    bump(doc.setdefault("by_principal", {}), principal, bounded=True)
    for policy in policies:
        bump(doc.setdefault("by_policy", {}), policy, bounded=True)


def keep_recent(days: dict[str, Any]) -> None:
    """Only the last DAYS_KEPT days, counted back from the newest day seen, however few days
    are held: so the days kept do not depend on the order events came in (a projection worker
    applies each partition's events at its own pace), only on which events came."""
    if not days:
        return
    newest = date.fromisoformat(max(days))
    cut = (newest - timedelta(days=DAYS_KEPT - 1)).isoformat()
    for day in [d for d in days if d < cut]:
        del days[day]


def quiet(doc: Doc) -> list[tuple[str, str]]:
    """(tier, day the case went quiet) for each tier retention will shred of a candidate whose
    case is quiet: not erased, no investigation planned or running, the tier held and not
    shredded yet (the rule of services/retention.py)."""
    if doc["erased"] or doc["open"] or doc["last_activity"] is None:
        return []
    day = day_of(datetime.fromisoformat(doc["last_activity"]))
    return [(tier, day) for tier in doc["tiers"] if tier not in doc["shredded"]]
