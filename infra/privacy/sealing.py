"""Sealing personal values inside events: AES-GCM per subject and tier, bound to their place.

Each `PersonalField` in an event is stored as an envelope
    {"name": ..., "category": ..., "tier": ..., "sealed": base64(nonce | ciphertext)}
encrypted with the subject's data key for the field's tier. The associated data binds the
ciphertext to its subject, event (originator id and version) and path inside the event, so a
sealed value cannot be moved to another person, event or field without failing to open.
Names and categories stay readable: access events and audits name categories, never values.

Once the subject's keys are destroyed an envelope opens to ERASED_VALUE; nothing else changes,
so the stored bytes — and the hash chain over them — stay exactly as they were.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import os
import typing
from functools import cache
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.classification import ERASED_VALUE, PersonalField, tier_of
from infra.privacy.keystore import SQLKeyStore


@functools.lru_cache(maxsize=4096)
def _cipher(key: bytes) -> AESGCM:
    """One cipher object per data key (building one costs more than a small decryption)."""
    return AESGCM(key)


@functools.lru_cache(maxsize=4096)
def _subject_id(subject: str) -> UUID:
    """A subject's id from the text every sealed value's context carries (parsed once: a
    read opens several values of the same subject)."""
    return UUID(subject)


class SealBrokenError(ValueError):
    """A sealed value does not open with its subject's key: it was moved or altered."""


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


class Sealer:
    def __init__(self, keys: SQLKeyStore) -> None:
        self.keys = keys

    def _aad(self, subject: str, originator_id: str, version: int, path: str) -> bytes:
        return f"{subject}|{originator_id}|{version}|{path}".encode()

    def seal_state(
        self, event_class: type, state: dict[str, Any], originator_id: UUID, version: int
    ) -> dict[str, Any]:
        names = personal_fields_of(event_class)
        subject = state.get("candidate_id")
        if not names or subject is None:
            return state
        ctx = (str(subject), str(originator_id), version)
        return {k: (self._seal(v, k, ctx) if k in names else v) for k, v in state.items()}

    def _seal(self, value: Any, path: str, ctx: tuple[str, str, int]) -> Any:
        if isinstance(value, PersonalField):
            tier = tier_of(value.category).value
            key = self.keys.data_key(_subject_id(ctx[0]), tier, create=True)
            assert key is not None  # created on demand
            nonce = os.urandom(12)
            sealed = _cipher(key).encrypt(nonce, value.value.encode(), self._aad(*ctx, path))
            return {
                "name": value.name,
                "category": value.category,
                "tier": tier,
                "sealed": base64.b64encode(nonce + sealed).decode(),
            }
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                f.name: self._seal(getattr(value, f.name), f"{path}.{f.name}", ctx)
                for f in dataclasses.fields(value)
            }
        if isinstance(value, tuple | list):
            return [self._seal(v, f"{path}.{i}", ctx) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self._seal(v, f"{path}.{k}", ctx) for k, v in value.items()}
        return value

    def seal_field(
        self, value: PersonalField, path: str, ctx: tuple[str, str, int]
    ) -> dict[str, Any]:
        """One value sealed for a place outside the event store (a view row): `ctx` is
        (subject, place, version) and `path` the value's path inside that place."""
        envelope: dict[str, Any] = self._seal(value, path, ctx)
        return envelope

    def open_field(self, envelope: dict[str, Any], path: str, ctx: tuple[str, str, int]) -> str:
        return self._open_value(envelope, path, ctx)

    def open_state(
        self, event_class: type, state: dict[str, Any], originator_id: UUID | str, version: int
    ) -> dict[str, Any]:
        names = personal_fields_of(event_class)
        subject = state.get("candidate_id")
        if not names or subject is None:
            return state
        ctx = (str(subject), str(originator_id), version)
        for k in names & state.keys():
            state[k] = self._open(state[k], k, ctx)
        return state

    def _open(self, value: Any, path: str, ctx: tuple[str, str, int]) -> Any:
        if isinstance(value, dict):
            if "sealed" in value:
                return {
                    "name": value["name"],
                    "category": value["category"],
                    "value": self._open_value(value, path, ctx),
                }
            return {k: self._open(v, f"{path}.{k}", ctx) for k, v in value.items()}
        if isinstance(value, list):
            return [self._open(v, f"{path}.{i}", ctx) for i, v in enumerate(value)]
        return value

    def _open_value(self, envelope: dict[str, Any], path: str, ctx: tuple[str, str, int]) -> str:
        key = self.keys.data_key(_subject_id(ctx[0]), envelope["tier"], create=False)
        if key is None:
            return ERASED_VALUE
        raw = base64.b64decode(envelope["sealed"])
        try:
            return _cipher(key).decrypt(raw[:12], raw[12:], self._aad(*ctx, path)).decode()
        except InvalidTag:
            raise SealBrokenError(
                f"the sealed value at {path} of event {ctx[1]} v{ctx[2]} does not open with "
                f"its subject's key: it was altered or moved"
            ) from None
