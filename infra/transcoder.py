"""orjson transcoding for the event store.

orjson writes UUIDs, datetimes, enums, tuples and frozen dataclasses natively and fast; what it
cannot do is tell them apart again on the way back. The mapper below restores each attribute to
the type the event class declares, so stored JSON stays plain (no type tags) and readable by
other consumers (Kafka, compliance exports).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import Any, Union
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder

Convert = Callable[[Any], Any]
_HANDLED_BY_MAPPER = frozenset({"originator_id", "originator_version"})


class OrjsonTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


def _optional(convert: Convert) -> Convert:
    return lambda v: None if v is None else convert(v)


def _sequence(kind: type, convert: Convert | None) -> Convert:
    if convert is None:
        return kind
    return lambda v: kind(map(convert, v))


def _mapping(kconv: Convert | None, vconv: Convert | None) -> Convert:
    k = kconv or (lambda x: x)
    v = vconv or (lambda x: x)
    return lambda d: {k(key): v(value) for key, value in d.items()}


def _dataclass(cls: type) -> Convert:
    fields = fields_of(cls)

    def build(d: dict[str, Any]) -> Any:
        return cls(**{k: (fields[k](v) if fields.get(k) else v) for k, v in d.items()})

    return build


@cache
def converter(tp: Any) -> Convert | None:
    """How to turn the JSON form of a value back into `tp`; None when JSON already is `tp`."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"cannot restore values of the ambiguous union {tp}")
        inner = converter(args[0])
        return _optional(inner) if inner else None
    if origin in (tuple, list, frozenset, set):
        args = typing.get_args(tp)
        return _sequence(origin, converter(args[0]) if args else None)
    if origin is dict:
        kt, vt = typing.get_args(tp)
        kc, vc = converter(kt), converter(vt)
        return _mapping(kc, vc) if kc or vc else None
    if tp is UUID:
        return UUID
    if tp is datetime:
        return datetime.fromisoformat
    if tp is date:
        return date.fromisoformat
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp)
    return None


@cache
def fields_of(cls: type) -> dict[str, Convert | None]:
    hints = typing.get_type_hints(cls)
    return {
        name: converter(tp)
        for name, tp in hints.items()
        if name not in _HANDLED_BY_MAPPER and typing.get_origin(tp) is not typing.ClassVar
    }


class TypedMapper(Mapper[UUID]):
    """The library's mapper (upcasting included), plus restoring declared attribute types."""

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        state = domain_event.__dict__
        for name, convert in fields_of(type(domain_event)).items():
            if convert is not None and name in state:
                state[name] = convert(state[name])
        return domain_event
