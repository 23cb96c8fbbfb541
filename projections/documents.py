"""Event values as view documents, and the overwriting of personal values in them.

A document is JSON-like (see projections/rows.py); personal values stay `PersonalField`s, so a
durable store can seal them. Erasure and shredding overwrite those values in the documents
themselves, not only their keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from enum import Enum
from typing import Any
from uuid import UUID

from domain.classification import ERASED_VALUE, PersonalField, Tier, tier_of
from projections.rows import Doc, Rows


def iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def plain(value: Any) -> Any:
    """An event value as a JSON-like document value; personal fields stay fields."""
    if isinstance(value, PersonalField):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list | frozenset | set):
        items = [plain(v) for v in value]
        return sorted(items) if isinstance(value, frozenset | set) else items
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


# What a shredding reaches: every value (None, an erasure), a tier's, or some categories'.
Shred = Tier | frozenset[str] | None


def _reached(f: PersonalField, which: Shred) -> bool:
    if which is None:
        return True
    if isinstance(which, Tier):
        return tier_of(f.category) is which
    return f.category in which


def erase(fields: Iterable[PersonalField], tier: Shred = None) -> list[PersonalField]:
    """The fields with every value of `tier` (of every tier when None; of the categories
    when a set of them) overwritten."""
    return [
        PersonalField(f.name, f.category, ERASED_VALUE) if _reached(f, tier) else f for f in fields
    ]


def keyed(rows: Rows, view: str, subject: UUID) -> list[tuple[str, Doc]]:
    """The subject's rows of `view`, each with its key (the row's `<view>_id`)."""
    id_field = f"{view}_id"
    return [(doc[id_field], doc) for doc in rows.of_subject(view, subject)]


def shred_profile(doc: Doc, tier: Shred) -> None:
    """Overwrites a profile's identity and claims of `tier` (all when None; of the categories
    when a set of them), noting the tier or the categories."""
    doc["identity"] = erase(doc["identity"], tier)
    for claim in doc["claims"]:
        claim["fields"] = erase(claim["fields"], tier)
    if isinstance(tier, Tier) and tier.value not in doc["shredded_tiers"]:
        doc["shredded_tiers"] = sorted([*doc["shredded_tiers"], tier.value])
    elif isinstance(tier, frozenset):
        noted = doc.get("shredded_categories", [])
        doc["shredded_categories"] = sorted({*noted, *tier})


def shred_nested(value: Any, tier: Shred) -> Any:
    """Overwrites, in place, every personal field of the given tier (all when None)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, PersonalField):
                value[k] = erase([v], tier)[0]
            else:
                shred_nested(v, tier)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, PersonalField):
                value[i] = erase([v], tier)[0]
            else:
                shred_nested(v, tier)
    return value
