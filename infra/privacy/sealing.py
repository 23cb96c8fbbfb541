"""Sealing personal values inside events: AES-GCM per subject and category, bound to their
place.

Each `PersonalField` in an event is stored as an envelope (its format: `envelope.py`)
encrypted with the subject's data key for the field's category, so retention can shred one
category and leave the rest of its tier (decision "keys per category"); envelopes written
before were sealed with the key of the field's tier, and still open with it. The associated
data binds the ciphertext to its subject, event (originator id and version) and path inside
the event, so a sealed value cannot be moved to another person, event or field without
failing to open.
Names and categories stay readable: access events and audits name categories, never values.

Once the subject's keys are destroyed an envelope opens to ERASED_VALUE; nothing else changes,
so the stored bytes — and the hash chain over them — stay exactly as they were. Only a recorded
erasure or retention run may do that (`erasures.py`): a key gone without one fails the value
loudly (DataKeyMissingError), and a replayed event holds KEY_MISSING_VALUE in its place, which
is never sealed again.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from functools import cache
from typing import Any, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.access import ReadFailure
from domain.classification import ERASED_VALUE, KEY_MISSING_VALUE, PersonalField, tier_of
from domain.errors import PersonalDataShreddedError
from infra.privacy import envelope
from infra.privacy.envelope import LEAF_TYPES, Envelope
from infra.privacy.keystore import SQLKeyStore
from services.errors import DataKeyMissingError, StoredDataAlteredError

Context = tuple[str, str, int]  # (subject, place: an event's originator id or a view row, version)


@functools.lru_cache(maxsize=4096)
def _cipher(key: bytes) -> AESGCM:
    """One cipher object per data key (building one costs more than a small decryption)."""
    return AESGCM(key)


@functools.lru_cache(maxsize=4096)
def _subject_id(subject: str) -> UUID:
    """A subject's id from the text every sealed value's context carries (parsed once: a
    read opens several values of the same subject)."""
    return UUID(subject)


class Erasures(Protocol):
    """Whether a recorded erasure or retention run destroyed any of the subject's keys named
    (`erasures.py`: RecordedErasures.covers)."""

    def __call__(self, subject: UUID, scope: str, /, *more: str) -> bool: ...


class SealBrokenError(ValueError, StoredDataAlteredError):
    """A sealed value does not open with its subject's key: it was moved or altered."""

    failure = ReadFailure.SEAL_BROKEN.value


@cache
def may_hold_personal(tp: Any) -> bool:
    """Whether values of this declared type can contain a PersonalField anywhere."""
    if tp is PersonalField:
        return True
    origin = typing.get_origin(tp)
    if origin is not None:
        return any(may_hold_personal(a) for a in typing.get_args(tp) if a is not Ellipsis)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return any(may_hold_personal(t) for t in typing.get_type_hints(tp).values())
    return False


@cache
def personal_fields_of(event_class: type) -> frozenset[str]:
    hints = typing.get_type_hints(event_class)
    return frozenset(name for name, tp in hints.items() if may_hold_personal(tp))


def _personal(
    event_class: type, state: dict[str, Any], originator_id: UUID | str, version: int
) -> tuple[frozenset[str], Context]:
    """The personal fields an event's state holds and the place their values are sealed for
    (subject, event, version); no fields when the event is about no data subject."""
    subject = state.get("candidate_id")
    ctx = (str(subject), str(originator_id), version)
    if subject is None:
        return frozenset(), ctx
    return personal_fields_of(event_class), ctx


class Sealer:
    """Seals and opens personal values with their subject's data key for their category
    (`by_category`, the default; else for their tier, as before), bound to their subject,
    place and path (the associated data). `erased(subject, scope)` tells whether a recorded
    erasure or retention run destroyed that key (`erasures.py`); a scope is a category or a
    tier, as the key table and the envelope name it."""

    def __init__(self, keys: SQLKeyStore, erased: Erasures, *, by_category: bool = True) -> None:
        self.keys = keys
        self.erased = erased
        self.by_category = by_category

    def _aad(self, subject: str, originator_id: str, version: int, path: str) -> bytes:
        return _aad(subject, originator_id, version, path)

    def seal_state(
        self, event_class: type, state: dict[str, Any], originator_id: UUID, version: int
    ) -> dict[str, Any]:
        names, ctx = _personal(event_class, state, originator_id, version)
        if not names:
            return state

        keys = self._prepare_keys(state, names, ctx)

        def seal(value: PersonalField, path: str) -> Envelope:
            return self.seal_field(value, path, ctx, keys)

        return {k: (envelope.seal_tree(v, k, seal) if k in names else v) for k, v in state.items()}

    def _prepare_keys(
        self, state: dict[str, Any], names: frozenset[str], ctx: Context
    ) -> dict[str, bytes]:
        """The keys an event's values need, looked up together and the missing ones made in
        one transaction (a key per category: an event may need a few new ones); a key a
        recorded erasure destroyed is never made again (`seal_field` refuses it). Returned by
        scope, for the values to be sealed with without asking the key store again."""
        tiers: dict[str, str] = {}
        for name in names & state.keys():
            for value in _fields_in(state[name]):
                if value.value != KEY_MISSING_VALUE:
                    tier = tier_of(value.category).value
                    tiers[value.category if self.by_category else tier] = tier
        if not tiers:
            return {}
        subject = _subject_id(ctx[0])
        # the first event of the subject's own stream (their registration): no key of theirs
        # is stored yet, unless the write is refused for it (SQLKeyStore.data_keys)
        first = ctx[2] == 1 and ctx[1] == ctx[0]
        held = self.keys.data_keys(subject, tiers.keys(), create=False, sealing=True, first=first)
        missing = [s for s in tiers if s not in held]
        # made with the write, a key is checked against erasures where it is stored, in the
        # events' transaction (infra/store/recorder.py): refused there if need be, the same way
        checked_when_stored = self.keys.making_with_the_write()
        if missing and not checked_when_stored and self.erased(subject, *missing):
            for scope in missing:
                if self.erased(subject, scope):
                    raise PersonalDataShreddedError(subject, scope, tiers[scope])
        if missing:
            held = {**held, **self.keys.data_keys(subject, missing, create=True)}
        return held

    def seal_field(
        self, value: PersonalField, path: str, ctx: Context, keys: dict[str, bytes] | None = None
    ) -> Envelope:
        """One value sealed for its place: `ctx` is (subject, place, version) and `path` the
        value's path inside that place (an event, or a view row); `keys`: the subject's keys
        just looked up for it, by scope (else asked of the key store)."""
        tier = tier_of(value.category).value
        scope = value.category if self.by_category else tier
        if value.value == KEY_MISSING_VALUE:  # a value that could not be opened, carried on
            raise DataKeyMissingError(ctx[0], scope)
        subject = _subject_id(ctx[0])
        key = keys.get(scope) if keys else None
        if key is None:
            key = self.keys.data_key(subject, scope, create=False)
        if key is None:
            # made on demand, unless a recorded erasure destroyed it: a new key would make the
            # older values look altered, not erased (and break every replay of the subject)
            if self.erased(subject, scope):
                raise PersonalDataShreddedError(subject, scope, tier)
            key = self.keys.data_key(subject, scope, create=True)
        if key is None:  # never: made on demand
            raise RuntimeError(f"no data key made for {ctx[0]} ({scope})")
        nonce = os.urandom(12)
        ciphertext = _cipher(key).encrypt(nonce, value.value.encode(), self._aad(*ctx, path))
        return envelope.sealed(value, tier, nonce + ciphertext, by_category=self.by_category)

    def open_state(
        self, event_class: type, state: dict[str, Any], originator_id: UUID | str, version: int
    ) -> dict[str, Any]:
        names, ctx = _personal(event_class, state, originator_id, version)
        if not names:
            return state

        def open_one(sealed: Envelope, path: str) -> dict[str, Any]:
            try:
                value = self.open_field(sealed, path, ctx)
            except DataKeyMissingError:
                # The event still replays (audits, retention, the history need no values);
                # what would show or seal the value again fails (see seal_field).
                value = KEY_MISSING_VALUE
            return {"name": sealed["name"], "category": sealed["category"], "value": value}

        for k in names & state.keys():
            state[k] = envelope.open_tree(state[k], k, open_one)
        return state

    def open_field(self, sealed: Envelope, path: str, ctx: Context) -> str:
        """The value inside one envelope; ERASED_VALUE once its subject's key is destroyed by
        a recorded erasure or retention run; DataKeyMissingError if it is gone without one."""
        subject = _subject_id(ctx[0])
        scope = envelope.scope(sealed)
        key = self.keys.data_key(subject, scope, create=False)
        if key is None:
            if self.erased(subject, scope):
                return ERASED_VALUE
            raise DataKeyMissingError(subject, scope)
        if (opened := opened_with(key, sealed, path, ctx)) is not None:
            return opened
        raise SealBrokenError(
            f"the sealed value at {path} of event {ctx[1]} v{ctx[2]} does not open with "
            f"its subject's key: it was altered or moved"
        )


def stored_envelopes(
    event: Any, stored: dict[str, Any]
) -> list[tuple[PersonalField, Envelope, Context, str]]:
    """Each personal value of a domain event with the envelope its stored state (`stored`, as
    `seal_state` made it) holds for it, the place it is sealed for and its path there: a
    view row may keep that envelope rather than seal the value again (decision 0048). Only
    envelopes found where `seal_state` put the value, with its name and category; none for an
    event stored at another class version (an upcast may have moved or changed a value)."""
    cls: type = type(event)
    if stored.get("class_version", 1) != getattr(cls, "class_version", 1):
        return []
    state = vars(event)
    subject = state.get("candidate_id")
    if subject is None:
        return []
    ctx = (_text(subject), _text(state["originator_id"]), state["originator_version"])
    found: list[tuple[PersonalField, Envelope, Context, str]] = []
    for name in personal_fields_of(cls):
        if name in state and name in stored:
            _pair(state[name], stored[name], name, ctx, found)
    return found


def _pair(
    value: Any,
    stored: Any,
    path: str,
    ctx: Context,
    found: list[tuple[PersonalField, Envelope, Context, str]],
) -> None:
    """The walk of `envelope.seal_tree` (the same paths) over a value and its stored form."""
    kind: type = type(value)
    if kind in LEAF_TYPES:
        return
    if kind is list or kind is tuple:
        if type(stored) is list and len(stored) == len(value):
            for i, v in enumerate(value):
                if type(v) not in LEAF_TYPES:
                    _pair(v, stored[i], f"{path}.{i}", ctx, found)
    elif isinstance(value, PersonalField):
        if (
            type(stored) is dict
            and "sealed" in stored
            and stored.get("name") == value.name
            and stored.get("category") == value.category
            and value.value not in (ERASED_VALUE, KEY_MISSING_VALUE)
        ):
            found.append((value, stored, ctx, path))
    elif kind is dict:
        if type(stored) is dict:
            for k, v in value.items():
                if k in stored and type(v) not in LEAF_TYPES:
                    _pair(v, stored[k], f"{path}.{k}", ctx, found)
    elif (names := _dataclass_fields(kind)) is not None:
        if type(stored) is dict:
            for name in names:
                if name in stored:
                    _pair(getattr(value, name), stored[name], f"{path}.{name}", ctx, found)
    elif isinstance(value, tuple | list) and type(stored) is list and len(stored) == len(value):
        for i, v in enumerate(value):
            _pair(v, stored[i], f"{path}.{i}", ctx, found)


@functools.lru_cache(maxsize=4096)
def _text(ident: UUID) -> str:
    """An id's text as a context holds it (made once: several events of a batch name it)."""
    return str(ident)


@functools.cache
def _dataclass_fields(cls: type) -> tuple[str, ...] | None:
    """A dataclass type's field names (None for any other type), asked once a type."""
    return envelope.field_names(cls) if dataclasses.is_dataclass(cls) else None


def _aad(subject: str, originator_id: str, version: int, path: str) -> bytes:
    """What a sealed value is bound to: its subject, its place and version, its path."""
    return f"{subject}|{originator_id}|{version}|{path}".encode()


def opened_with(key: bytes, sealed: Envelope, path: str, ctx: Context) -> str | None:
    """The value inside one envelope at `path` of the place `ctx` names, opened with `key`;
    None if it does not open with it (the value, or the key, is not what was sealed there)."""
    raw = envelope.blob(sealed)
    try:
        return _cipher(key).decrypt(raw[:12], raw[12:], _aad(*ctx, path)).decode()
    except InvalidTag:
        return None


def _fields_in(value: Any) -> list[PersonalField]:
    """The personal fields anywhere in a value, as `envelope.seal_tree` walks it."""
    if type(value) in LEAF_TYPES:
        return []
    if isinstance(value, PersonalField):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [f for n in envelope.field_names(type(value)) for f in _fields_in(getattr(value, n))]
    if isinstance(value, tuple | list):
        return [f for v in value for f in _fields_in(v)]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _fields_in(v)]
    return []
