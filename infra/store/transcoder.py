"""orjson transcoding for the event store.

orjson writes UUIDs, datetimes, enums, tuples and frozen dataclasses natively and fast; what it
cannot do is tell them apart again on the way back. The mapper below restores each attribute to
the type the event class declares, so stored JSON stays plain (no type tags) and readable by
other consumers (Kafka, compliance exports).

A stored topic is looked up among the domain's event classes (`projections/events.py`), never
imported: a record or a Kafka message naming anything else is refused. And an event whose stored
form would exceed `max_event_bytes` is refused before it is stored, so every event fits in one
Kafka message (BACKCHECK_MAX_EVENT_BYTES).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import UTC, date, datetime
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING, Any, Union
from uuid import UUID

import orjson
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import get_topic

from domain.errors import InvalidInputError
from projections.events import stored_event_types

if TYPE_CHECKING:
    from infra.privacy.sealing import Sealer

Convert = Callable[[Any], Any]
_HANDLED_BY_MAPPER = frozenset({"originator_id", "originator_version"})


@dataclasses.dataclass(frozen=True)
class KeyedStoredEvent(StoredEvent):
    """A stored event carrying the data keys made to seal it, for the recorder to store in
    the event's own transaction (infra/privacy/write_keys.py: KeysWithTheWrite.with_the_write;
    infra/store/recorder.py: `_insert_new_keys`)."""

    new_keys: tuple[Any, ...] = ()


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
        return cls(**{k: _restored(fields.get(k), v) for k, v in d.items()})

    return build


def _restored(convert: Convert | None, value: Any) -> Any:
    return convert(value) if convert is not None else value


@cache
def converter(tp: Any) -> Convert | None:
    """How to turn the JSON form of a value back into `tp`; None when JSON already is `tp`."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"cannot restore values of the ambiguous union {tp}")
        inner = converter(members[0])
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
        return _moment
    if tp is date:
        return date.fromisoformat
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp)
    return None


def _moment(text: str) -> datetime:
    """A stored time. One stored without its offset (commands took such times before they
    required one) is read as UTC, the store's own clock: compared with an aware time, a naive
    one raises, and every later read or rule of its aggregate would fail."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@cache
def fields_of(cls: type) -> dict[str, Convert | None]:
    hints = typing.get_type_hints(cls)
    return {
        name: converter(tp)
        for name, tp in hints.items()
        if name not in _HANDLED_BY_MAPPER and typing.get_origin(tp) is not typing.ClassVar
    }


class UnknownEventTypeError(MapperDeserialisationError):
    """A stored event or a relayed message names a topic that is no event of the domain."""


def event_class(topic: str) -> type:
    """The domain's event class that `topic` names; UnknownEventTypeError for any other topic
    (nothing is imported to find out)."""
    found = stored_event_types().get(topic)
    if found is None:
        shown = topic if len(topic) <= 120 else f"{topic[:120]}..."
        raise UnknownEventTypeError(
            f"{shown!r} is no event type of backcheck's domain "
            "(domain.<module>:<Aggregate>.<Event>)"
        )
    return found


class EventTooLargeError(InvalidInputError):
    """The event a command would record is larger than one event may be: it could not be
    published to Kafka as one message. Nothing was stored."""

    def __init__(self, event: str, size: int, limit: int, largest: str) -> None:
        super().__init__(
            f"the {event} event this command records would be {size:,} bytes, above the "
            f"{limit:,} bytes one event may take (BACKCHECK_MAX_EVENT_BYTES, kept below the Kafka "
            f"broker's message size); its largest field is {largest}: send less",
            event=event,
            size=size,
            limit=limit,
        )


def _largest_field(state: dict[str, Any]) -> str:
    sizes = {name: len(orjson.dumps(value)) for name, value in state.items()}
    name = max(sizes, key=sizes.__getitem__)
    return f"{name!r} ({sizes[name]:,} bytes)"


def typed_mapper(mapper: Mapper[UUID]) -> TypedMapper:
    """The application's mapper as infra/config has the library make it (MAPPER_TOPIC)."""
    if not isinstance(mapper, TypedMapper):
        raise TypeError(
            f"{type(mapper).__name__} is not infra/store/transcoder.py's TypedMapper; the "
            "store's environment names it (infra/config: MAPPER_TOPIC)"
        )
    return mapper


class TypedMapper(Mapper[UUID]):
    """The library's mapping (topics, class versions, upcasting), plus:
    personal values sealed on the way in and opened on the way out (when a sealer is set),
    and attributes restored to the types their event class declares."""

    sealer: Sealer | None = None
    max_event_bytes: int | None = None  # the stored state's bound; None: unbounded

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        cls = type(domain_event)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        if self.sealer is not None:
            if self.max_event_bytes is not None:  # too large already: refused before any key
                self._check_size(cls, state, self.transcoder.encode(state))
            state = self.sealer.seal_state(cls, state, originator_id, originator_version)
        encoded = self.transcoder.encode(state)
        if self.max_event_bytes is not None:
            self._check_size(cls, state, encoded)
        made = self.sealer.keys.take_made() if self.sealer is not None else ()
        if made:  # the keys made to seal it, stored with it
            return KeyedStoredEvent(
                originator_id=originator_id,
                originator_version=originator_version,
                topic=get_topic(cls),
                state=encoded,
                new_keys=made,
            )
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(cls),
            state=encoded,
        )

    def _check_size(self, cls: type, state: dict[str, Any], encoded: bytes) -> None:
        assert self.max_event_bytes is not None
        if len(encoded) > self.max_event_bytes:
            raise EventTooLargeError(
                cls.__qualname__, len(encoded), self.max_event_bytes, _largest_field(state)
            )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = event_class(stored_event.topic)
        try:
            state: dict[str, Any] = self.transcoder.decode(stored_event.state)
        except orjson.JSONDecodeError as e:
            raise MapperDeserialisationError(
                f"stored event {stored_event.originator_id} v{stored_event.originator_version} "
                f"({stored_event.topic}) is not valid JSON: {e}"
            ) from e
        if self.sealer is not None:
            state = self.sealer.open_state(
                cls, state, stored_event.originator_id, stored_event.originator_version
            )
        originator_id = stored_event.originator_id
        state["originator_id"] = (
            originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        )
        state["originator_version"] = stored_event.originator_version
        from_version = state.pop("class_version", 1)
        while from_version < getattr(cls, "class_version", 1):
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        for name, convert in fields_of(cls).items():
            if convert is not None and name in state:
                state[name] = convert(state[name])
        domain_event: Any = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return domain_event
