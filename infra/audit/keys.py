"""The data keys held against the stored records, for `audit verify`.

Only a recorded erasure may make a personal value unreadable (services/shredding.py): a data
key that values in the store were sealed with, gone without a `Candidate.Erased` of its
subject, a `Candidate.TierShredded` of its tier or a `Candidate.CategoriesShredded` naming its
category, was deleted around the application. Like the rest of verification this reads the
raw tables: envelopes name their key (a category's, or a tier's) in the clear, the key table
is only listed (nothing is unwrapped), so no master key is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

import orjson

from infra.privacy.envelope import sealed_scopes
from infra.privacy.erasures import (
    CATEGORIES_SHREDDED_TOPIC,
    ERASED_TOPIC,
    SHREDDED_TOPIC,
    shredded_in,
)
from services.shredding import KeyFinding, KeyLedger, Pair, Recorded

_ERASED = ERASED_TOPIC.encode()
_SHREDDED = frozenset({SHREDDED_TOPIC.encode(), CATEGORIES_SHREDDED_TOPIC.encode()})
ERASURE_TOPICS = frozenset({_ERASED, *_SHREDDED})
SEALED = b'"sealed"'  # in a record's state: it may hold an envelope

# the subjects' erasures as stored now: erased or not, and the keys (scopes) shredded
Erasures = Callable[[Iterable[UUID]], dict[UUID, tuple[bool, set[str]]]]


def note(
    ledger: KeyLedger, position: int, originator_id: bytes, topic: bytes, state: bytes
) -> tuple[UUID, set[str], Any] | None:
    """One stored record into the ledger: an erasure, a retention run, or sealed values; for
    sealed values, their subject, their keys (scopes) and the parsed state. (A verifier reading
    many records calls it only for those whose topic is in ERASURE_TOPICS or whose state holds
    SEALED: most records are neither.)"""
    if topic == _ERASED:
        ledger.see_erasure(UUID(bytes=originator_id), Recorded(position))
    elif topic in _SHREDDED:
        for scope in shredded_in(topic, state):
            ledger.see_shred(UUID(bytes=originator_id), scope, Recorded(position))
    elif SEALED in state:
        parsed = orjson.loads(state)
        subject = parsed.get("candidate_id") if isinstance(parsed, dict) else None
        scopes = sealed_scopes(parsed) if subject else set()
        if scopes:
            found = UUID(str(subject))
            ledger.see_values(position, found, scopes)
            return found, scopes, parsed
    return None


def missing_keys(ledger: KeyLedger, held: set[Pair], erasures: Erasures) -> list[KeyFinding]:
    """Keys of values in the records that are gone with nothing recorded to destroy them.

    The records are read before the keys, and the subjects' erasures again after them: a
    key destroyed meanwhile was destroyed after its erasure was recorded, so is not missing."""
    found = ledger.missing(held)
    if not found:
        return found
    now = erasures({f.candidate_id for f in found})
    nothing: tuple[bool, set[str]] = (False, set())
    return [
        f
        for f in found
        if not (
            now.get(f.candidate_id, nothing)[0]
            or any(s in now.get(f.candidate_id, nothing)[1] for s in f.tiers)
        )
    ]
