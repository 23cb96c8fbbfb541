"""Sealing for a store being copied into a new one (`backcheck store migrate`).

The copy seals every personal value as the new store's own sealer does (its keys, minted on
demand in the new store), with three exceptions that must stay as the old store left them —
never sealed again under a key made now (decision 0004):

- **erased**: the subject's erasure is recorded in the old store (or the tier's retention, at
  a later position than the event). The value's key is gone, or must be: the envelope the old
  store holds is carried over byte for byte; a value the old store kept in clear (written
  before its field was sealed) is sealed under a key that is made for it and never kept, so
  the new store holds nothing readable of it either. No data key of the subject is made.
- **key missing**: the old store sealed values with a key that is gone with no erasure
  recorded (`audit verify`'s `key missing`). Their envelopes are carried over byte for byte,
  so the new store says the same: the key is missing. A value of that subject and tier the
  old store kept in clear cannot be sealed without making the key the carried envelopes lack:
  refused (`DataKeyMissingError`), as the old store refuses to show them.
- a value that reads `⟨erased⟩` or `⟨key missing⟩` in the old store, whatever the reason, is
  carried, never sealed as text.

The carried envelopes keep their associated data (subject, event, version, path): the copy
keeps event ids and versions, so they sit where they were sealed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.classification import ERASED_VALUE, KEY_MISSING_VALUE, PersonalField, tier_of
from infra.privacy import envelope
from infra.privacy.envelope import Envelope
from infra.privacy.keystore import SQLKeyStore
from infra.privacy.sealing import Context, Erasures, Sealer
from services.errors import DataKeyMissingError

# (subject, scope, old position) -> whether the old store records that key (a category's or a
# tier's) destroyed before that position
Destroyed = Callable[[UUID, str, int], bool]


@dataclass
class Tally:
    """What the copy did with the personal values it met."""

    sealed: int = 0  # sealed under the new store's keys (opened from the old, or in clear)
    sealed_from_clear: int = 0  # of those, kept in clear by the old store
    erased: int = 0  # of erased subjects or shredded tiers: carried or sealed for no one
    erased_from_clear: int = 0  # of those, kept in clear by the old store
    key_missing: int = 0  # carried as they were: their key is missing in both stores
    missing_pairs: set[tuple[UUID, str]] = field(default_factory=set)

    def as_dict(self) -> dict[str, int]:
        return {
            "sealed": self.sealed,
            "sealed_from_clear": self.sealed_from_clear,
            "erased": self.erased,
            "erased_from_clear": self.erased_from_clear,
            "key_missing": self.key_missing,
        }


def old_envelopes(state: bytes) -> dict[str, Envelope]:
    """The sealed envelopes of an old stored state, by the path they were sealed at."""
    if not envelope.may_hold_envelopes(state):
        return {}
    import orjson

    parsed = orjson.loads(state)
    if not isinstance(parsed, dict):
        return {}
    found: dict[str, Envelope] = {}
    for root, value in parsed.items():
        for where in envelope.locate(value):
            sealed: Any = value
            for step in where:
                sealed = sealed[step]
            if envelope.is_sealed(sealed):
                found[envelope.path_of(root, where)] = sealed
    return found


class CarryingSealer(Sealer):
    """The new store's sealer, told before each event which old position it comes from and
    which envelopes the old store held in it (`copying`)."""

    def __init__(
        self,
        keys: SQLKeyStore,
        erased: Erasures,
        destroyed: Destroyed,
        missing: set[tuple[UUID, str]],
    ) -> None:
        super().__init__(keys, erased)
        self.destroyed = destroyed
        self.missing = missing
        self.tally = Tally()
        self._position = 0
        self._carried: dict[str, Envelope] = {}

    def copying(self, position: int, state: bytes) -> None:
        self._position = position
        self._carried = old_envelopes(state)

    def _prepare_keys(
        self, state: dict[str, Any], names: frozenset[str], ctx: Context
    ) -> dict[str, bytes]:
        """No keys made ahead: a value carried or sealed for no one needs none, and a key made
        for an erased subject would be one the erasure never destroyed (`seal_field` makes
        each key the copy needs, on demand)."""
        return {}

    def seal_field(
        self, value: PersonalField, path: str, ctx: Context, keys: dict[str, bytes] | None = None
    ) -> Envelope:
        tier = tier_of(value.category).value
        subject = UUID(ctx[0])
        carried = self._carried.get(path)
        # the old store's key of the value: the carried envelope's; for a value it kept in
        # clear, its category's or its tier's (either destroyed erases it)
        scopes = (envelope.scope(carried),) if carried is not None else (value.category, tier)
        gone = next((s for s in scopes if self.destroyed(subject, s, self._position)), None)
        if gone is not None or value.value == ERASED_VALUE:
            self.tally.erased += 1
            if carried is not None:
                return carried
            self.tally.erased_from_clear += 1
            return _sealed_for_no_one(value, tier, by_category=gone == value.category)
        # a value in clear is sealed with its category's key here: refused if that is a key
        # the carried envelopes lack (making it would make them look altered, not missing)
        lacking = scopes[0] if carried is not None else value.category
        if (subject, lacking) in self.missing or value.value == KEY_MISSING_VALUE:
            if carried is None:
                raise DataKeyMissingError(subject, lacking)
            self.tally.key_missing += 1
            self.tally.missing_pairs.add((subject, lacking))
            return carried
        self.tally.sealed += 1
        if carried is None:
            self.tally.sealed_from_clear += 1
        return super().seal_field(value, path, ctx, keys)


def _sealed_for_no_one(value: PersonalField, tier: str, *, by_category: bool) -> Envelope:
    """An envelope like any other, under a key made for it and dropped at once: no one can
    open it, and it is as long as the value (as every envelope is)."""
    nonce = os.urandom(12)
    blob = AESGCM(os.urandom(32)).encrypt(nonce, value.value.encode(), None)
    return envelope.sealed(value, tier, nonce + blob, by_category=by_category)
