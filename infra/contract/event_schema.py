"""JSON Schemas of the domain's events as they are on the wire, read from the event classes.

An event's message value is its stored state (`infra/store/transcoder.py`): the attributes its
class declares, as orjson writes them (UUIDs, datetimes and dates as strings, enums as their
values, tuples as arrays, dataclasses as objects), without the originator id and version (the
`ce_id` header carries them), with `class_version` when the class is past version 1, and each
personal value as its sealed envelope (`infra/privacy/envelope.py`). So the schema is made
from the same type hints the transcoder restores the values with: a field added, removed or
retyped changes the schema, and with it the fingerprint that asks for a version bump
(`fingerprints.py`). A type the transcoder could not restore is refused here too.

Shared shapes (the domain's dataclasses and enums, the personal value) are named once in the
document's `components/schemas`, as `domain.<module>.<Name>`; `Schemas.refs` collects them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime
from enum import Enum
from typing import Any, Union
from uuid import UUID

from domain.classification import PersonalField
from infra.kafka.event_types import EventType

JsonSchema = dict[str, Any]
COMPONENTS = "#/components/schemas/"
PERSONAL_VALUE = "domain.PersonalValue"
_NOT_ON_THE_WIRE = frozenset({"originator_id", "originator_version"})

_PERSONAL_VALUE: JsonSchema = {
    "description": "A personal value. Sealed (AES-GCM with the data subject's key for its "
    "category when `key` is `category`, else, as sealed before keys per category, for its "
    "tier; the name and category stay readable, the value opens only inside backcheck and "
    "never once the subject is erased or its category shredded), or, for free text stored "
    "by a version before the field was classified, the value as it was stored then.",
    "oneOf": [
        {
            "type": "object",
            "title": "sealed",
            "properties": {
                "name": {"type": "string"},
                "category": {"type": "string"},
                "tier": {"type": "string"},
                "key": {
                    "const": "category",
                    "description": "sealed with the subject's key for the category; absent: "
                    "for the tier",
                },
                "sealed": {"type": "string", "contentEncoding": "base64"},
            },
            "required": ["name", "category", "tier", "sealed"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "title": "unsealed (upcast from before the field was classified)",
            "properties": {
                "name": {"type": "string"},
                "category": {"type": "string"},
                "value": {"type": "string"},
            },
            "required": ["name", "category", "value"],
            "additionalProperties": False,
        },
    ],
}

_SCALARS: dict[Any, JsonSchema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    UUID: {"type": "string", "format": "uuid"},
    datetime: {"type": "string", "format": "date-time"},
    date: {"type": "string", "format": "date"},
    Any: {},
}


def component_name(tp: type) -> str:
    """`domain.<module>.<Name>` (`domain.check.Finding`): the domain's names, one per shape."""
    return f"domain.{tp.__module__.rpartition('.')[2]}.{tp.__qualname__}"


def _doc(tp: type) -> str:
    """A class's own docstring on one line; none for the one `dataclass` makes up."""
    doc = " ".join((tp.__doc__ or "").split())
    return "" if doc.startswith(f"{tp.__name__}(") else doc


class Schemas:
    """The schemas of event payloads, and the shared shapes they refer to (`refs`)."""

    def __init__(self) -> None:
        self.refs: dict[str, JsonSchema] = {}

    def _ref(self, name: str, make: typing.Callable[[], JsonSchema]) -> JsonSchema:
        if name not in self.refs:
            self.refs[name] = {}  # taken before it is made: a shape that holds itself ends
            self.refs[name] = make()
        return {"$ref": COMPONENTS + name}

    def of_type(self, tp: Any, where: str) -> JsonSchema:
        """The wire form of a value of type `tp`; `where` names it in an error."""
        if tp in _SCALARS:
            return dict(_SCALARS[tp])
        if tp is PersonalField:
            return self._ref(PERSONAL_VALUE, lambda: _PERSONAL_VALUE)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (Union, types.UnionType):
            return {"anyOf": [self.of_type(a, where) for a in args]}
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin in (tuple, list, frozenset, set):
            if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
                raise TypeError(f"{where}: a fixed-length tuple {tp} has no schema here")
            items = self.of_type(args[0], where) if args else {}
            return {"type": "array", "items": items}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.of_type(args[1], where)}
        if isinstance(tp, type) and issubclass(tp, Enum):
            values = [member.value for member in tp]
            return self._ref(component_name(tp), lambda: {"enum": values})
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self._ref(component_name(tp), lambda: self._dataclass(tp))
        raise TypeError(f"{where}: no wire form is known for {tp!r}")

    def _dataclass(self, tp: type) -> JsonSchema:
        hints = typing.get_type_hints(tp)
        fields = [f.name for f in dataclasses.fields(tp)]
        schema: JsonSchema = {
            "type": "object",
            "properties": {
                name: self.of_type(hints[name], f"{tp.__qualname__}.{name}") for name in fields
            },
            "required": fields,  # orjson writes every field of a dataclass
            "additionalProperties": False,
        }
        doc = _doc(tp)
        if doc:
            schema["description"] = doc
        return schema

    def event(self, kind: EventType) -> JsonSchema:
        """The payload of `kind`'s messages: its state as stored, in its current version."""
        hints = typing.get_type_hints(kind.cls)
        fields = {
            name: tp
            for name, tp in hints.items()
            if name not in _NOT_ON_THE_WIRE and typing.get_origin(tp) is not typing.ClassVar
        }
        where = kind.public
        properties = {name: self.of_type(tp, f"{where}: {name}") for name, tp in fields.items()}
        if kind.version > 1:
            properties["class_version"] = {"const": kind.version}
        doc = _doc(kind.cls)
        schema: JsonSchema = {
            "title": kind.public,
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }
        if doc:
            schema["description"] = doc
        return schema
