"""The sealed-envelope format: how a personal value is stored, wherever it is stored.

A `PersonalField` leaves memory as an envelope

    {"name": ..., "category": ..., "tier": ..., "key": "category",
     "sealed": base64(nonce | ciphertext)}

in the event store, in the views and on Kafka alike. `"key": "category"` says the value was
sealed with the subject's data key for its category (decision "keys per category"); an
envelope without it, as every envelope written before, was sealed with the key for its tier.
A view may also hold the marker of a value erased before it was written,
`{"name": ..., "category": ..., "erased": true}`: it is kept as such, never sealed again
(that would mint a new key for an erased subject); or of a value whose data key was gone,
with no erasure recorded, when it was written,
`{"name": ..., "category": ..., "tier": ..., "unreadable": true}`: reading it fails.
A view row may also hold the very envelope an event was stored with (decision 0048), with
where it was sealed: `"at": [event id, event version, path in the event]`; it is opened as
it would be in that event (the subject is the row's), not as a value sealed for the row.

This module is the one owner of that format: it builds and recognises envelopes and walks a
value tree to seal or open them. What a value is sealed with, and how, is `sealing.py`'s.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from domain.classification import PersonalField

Envelope = dict[str, Any]
Step = str | int
Where = tuple[Step, ...]  # the steps from a parsed row's root to one envelope
SealOne = Callable[[PersonalField, str], Any]  # a value and its path → what is stored
OpenOne = Callable[[Envelope, str], Any]  # an envelope and its path → what is read


KEY = "key"
BY_CATEGORY = "category"
AT = "at"
EventPlace = tuple[str, int, str]  # an event's originator id and version, a path inside it


def sealed(field: PersonalField, tier: str, blob: bytes, *, by_category: bool = False) -> Envelope:
    """The envelope of one value: name and category readable, the value as `blob`, and which
    of the subject's keys sealed it (the category's, or without `key` the tier's)."""
    found: Envelope = {"name": field.name, "category": field.category, "tier": tier}
    if by_category:
        found[KEY] = BY_CATEGORY
    found["sealed"] = base64.b64encode(blob).decode()
    return found


def scope(envelope: Envelope) -> str:
    """The data key a sealed value was sealed with, as the key table names it: its category
    (`user.education`), or its tier (`general`) for an envelope without `key`."""
    if envelope.get(KEY) == BY_CATEGORY:
        return str(envelope["category"])
    return str(envelope["tier"])


def placed(found: Envelope, originator_id: str, version: int, path: str) -> Envelope:
    """An event's envelope as a view row keeps it: the same, saying where it was sealed."""
    return {**found, AT: [originator_id, version, path]}


def place_of(found: Envelope) -> EventPlace | None:
    """Where an envelope a view row keeps from an event was sealed (None: sealed for the row)."""
    at = found.get(AT)
    if at is None:
        return None
    return str(at[0]), int(at[1]), str(at[2])


def erased(field: PersonalField) -> Envelope:
    """The marker of a value already erased (views only)."""
    return {"name": field.name, "category": field.category, "erased": True}


def unreadable(field: PersonalField, tier: str) -> Envelope:
    """The marker of a value whose key was gone with no erasure recorded (views only)."""
    return {"name": field.name, "category": field.category, "tier": tier, "unreadable": True}


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and "sealed" in value


def is_erased(value: Any) -> bool:
    return isinstance(value, dict) and value.get("erased") is True and "category" in value


def is_unreadable(value: Any) -> bool:
    return isinstance(value, dict) and value.get("unreadable") is True and "tier" in value


def is_marker(value: Any) -> bool:
    """An erased or an unreadable value's marker (views only)."""
    return is_erased(value) or is_unreadable(value)


def blob(envelope: Envelope) -> bytes:
    """The sealed bytes of an envelope (nonce | ciphertext)."""
    return base64.b64decode(envelope["sealed"])


def may_hold_envelopes(data: bytes | str) -> bool:
    """Whether stored bytes may hold an envelope or a marker. Conservative (a profile's own
    "erased" flag also matches); PostgreSQL's jsonb text puts a space after the colon, so
    look for the keys alone."""
    raw = data.encode() if isinstance(data, str) else data
    return b'"sealed"' in raw or b'"erased"' in raw or b'"unreadable"' in raw


def locate(value: Any, where: Where = ()) -> list[Where]:
    """Where in a parsed tree its envelopes (sealed, or a marker) sit."""
    if isinstance(value, dict):
        if "sealed" in value or is_marker(value):
            return [where]
        return [p for k, v in value.items() for p in locate(v, (*where, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in locate(v, (*where, i))]
    return []


def sealed_scopes(value: Any) -> set[str]:
    """The data keys (`scope`) of the sealed envelopes anywhere in a parsed tree."""
    if isinstance(value, dict):
        if "sealed" in value:
            return {scope(value)}
        return {t for v in value.values() for t in sealed_scopes(v)}
    if isinstance(value, list):
        return {t for v in value for t in sealed_scopes(v)}
    return set()


def path_of(root: str, where: Where) -> str:
    """The dotted path a value is bound to when sealed (`root.step.step`)."""
    return root + "".join(f".{step}" for step in where)


# Values a tree walk passes over as they are: no path is built for them (building one for
# every leaf was most of a walk's cost, and a view row is mostly such leaves).
LEAF_TYPES = frozenset((str, int, float, bool, type(None)))


def seal_tree(value: Any, path: str, seal_one: SealOne) -> Any:
    """`value` as stored: each PersonalField replaced by `seal_one(field, path)`, dataclasses
    as dicts, tuples as lists; everything else as it is."""
    kind = type(value)
    if kind in LEAF_TYPES:
        return value
    if kind is PersonalField:
        return seal_one(value, path)
    if kind is dict:
        return {
            k: v if type(v) in LEAF_TYPES else seal_tree(v, f"{path}.{k}", seal_one)
            for k, v in value.items()
        }
    if kind is list or kind is tuple:
        return [
            v if type(v) in LEAF_TYPES else seal_tree(v, f"{path}.{i}", seal_one)
            for i, v in enumerate(value)
        ]
    return _seal_other(value, path, seal_one)


@functools.cache
def field_names(cls: type) -> tuple[str, ...]:
    """A dataclass's field names, in order (`dataclasses.fields`, asked once a class)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def _seal_other(value: Any, path: str, seal_one: SealOne) -> Any:
    """The kinds `seal_tree` does not name exactly: subclasses, and dataclasses."""
    if isinstance(value, PersonalField):
        return seal_one(value, path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            name: seal_tree(getattr(value, name), f"{path}.{name}", seal_one)
            for name in field_names(type(value))
        }
    if isinstance(value, tuple | list):
        return [seal_tree(v, f"{path}.{i}", seal_one) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: seal_tree(v, f"{path}.{k}", seal_one) for k, v in value.items()}
    return value


def open_tree(value: Any, path: str, open_one: OpenOne, *, markers: bool = False) -> Any:
    """A parsed tree with each envelope replaced by `open_one(envelope, path)`; with
    `markers`, markers too (views hold them, events never do)."""
    if isinstance(value, dict):
        if "sealed" in value or (markers and is_marker(value)):
            return open_one(value, path)
        return {
            k: v
            if type(v) in LEAF_TYPES
            else open_tree(v, f"{path}.{k}", open_one, markers=markers)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            v if type(v) in LEAF_TYPES else open_tree(v, f"{path}.{i}", open_one, markers=markers)
            for i, v in enumerate(value)
        ]
    return value


def open_in_place(value: Any, path: str, open_one: OpenOne, *, markers: bool = False) -> Any:
    """As `open_tree`, on a tree parsed for the purpose: its envelopes replaced where they
    are, no container copied (a batch reads each row it changes: a walk that copied every
    container was most of reading one)."""
    if isinstance(value, dict) and ("sealed" in value or (markers and is_marker(value))):
        return open_one(value, path)
    _open_children(value, path, open_one, markers)
    return value


def _open_children(value: Any, path: str, open_one: OpenOne, markers: bool) -> None:
    items: Any
    if type(value) is dict:
        items = value.items()
    elif type(value) is list:
        items = enumerate(value)
    else:
        return
    for step, child in items:
        kind = type(child)
        if kind is dict:
            if "sealed" in child or (markers and is_marker(child)):
                value[step] = open_one(child, f"{path}.{step}")  # a value, in place: no resize
            else:
                _open_children(child, f"{path}.{step}", open_one, markers)
        elif kind is list:
            _open_children(child, f"{path}.{step}", open_one, markers)
