"""The base of every aggregate: each event names its data subject (the candidate)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, datetime_now_with_tzinfo

from domain.caller import CALLER_UNKNOWN, Authenticated, called_by, with_caller

A = TypeVar("A", bound=Aggregate)
_recording_time: ContextVar[datetime | None] = ContextVar("recording_time", default=None)


@contextmanager
def recorded_at(when: datetime, by: Authenticated | None = None) -> Iterator[None]:
    """Events triggered inside carry `when` as their timestamp (and, given `by`, the command
    events among them it as who called them: domain/caller.py).

    A command is decided at one moment, by the application's clock: the events it records
    carry that same moment, so replaying the history judges each event by the time at which
    its command was decided (consent windows, as-of views), not by when the disk was written.
    """
    token = _recording_time.set(when)
    try:
        with called_by(by) if by is not None else nullcontext():
            yield
    finally:
        _recording_time.reset(token)


def recording_time() -> datetime | None:
    """The moment the command being decided was set at (`recorded_at`), if one is."""
    return _recording_time.get()


def time_ordered_id() -> UUID:
    """A UUID of version 7 (RFC 9562): 48 bits of Unix time in milliseconds, then 74 random
    bits. Records made one after another get ids in the same order, so the store's index on
    ids takes each new one at its end instead of at a random page: a commit of many access
    records rewrites one index page, not one per record."""
    millis = time.time_ns() // 1_000_000
    rand = secrets.randbits(74)
    return UUID(
        int=(millis & (1 << 48) - 1) << 80
        | 0x7 << 76  # version
        | (rand >> 62) << 64  # 12 random bits
        | 0b10 << 62  # variant
        | rand & (1 << 62) - 1  # 62 random bits
    )


class TimeOrderedIds:
    """Mixin for aggregates recorded in great numbers, one after another, and never changed
    (access records, disclosures): their ids are time-ordered (`time_ordered_id`)."""

    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        return time_ordered_id()


UNRECORDED_ACTOR = "unrecorded (stored before v2 recorded who acted)"


class RecordedAggregate(Aggregate):
    """An aggregate about no data subject (a principal, a scheduled run, a rotation, …) whose
    events are timed like every other: at the moment of the use case that records them
    (`recorded_at`), not when the library makes them."""

    class Event(Aggregate.Event):
        @staticmethod
        def create_timestamp() -> datetime:
            return _recording_time.get() or datetime_now_with_tzinfo()

    class Created(Event, Aggregate.Created):
        pass

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        with_caller(event_class, kwargs)
        super().trigger_event(event_class, **kwargs)

    @classmethod
    def _create(cls: type[A], event_class: type[Any], *, id: Any = None, **kwargs: Any) -> A:
        with_caller(event_class, kwargs)
        return super()._create(event_class, id=id, **kwargs)


class SubjectAggregate(Aggregate):
    """An aggregate whose every event carries the id of the candidate it is about.

    Keying on the data subject lets the store encrypt per subject, the relay partition by
    subject, and a compliance officer replay one person's history.
    """

    candidate_id: UUID

    class Event(Aggregate.Event):
        candidate_id: UUID

        @staticmethod
        def create_timestamp() -> datetime:
            return _recording_time.get() or datetime_now_with_tzinfo()

    class Created(Event, Aggregate.Created):
        pass

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        kwargs.setdefault("candidate_id", self.candidate_id)
        with_caller(event_class, kwargs)
        super().trigger_event(event_class, **kwargs)

    @classmethod
    def _create(cls: type[A], event_class: type[Any], *, id: Any = None, **kwargs: Any) -> A:
        with_caller(event_class, kwargs)
        return super()._create(event_class, id=id, **kwargs)


class ActorSinceV2(SubjectAggregate.Event):
    """An event whose v1 did not record who acted: v1 records replay naming the actor as
    unrecorded. Subclasses name their actor field in `actor_field`."""

    actor_field: ClassVar[str]
    class_version = 2

    @classmethod
    def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
        state[cls.actor_field] = UNRECORDED_ACTOR


class FreeTextSinceV2(SubjectAggregate.Event):
    """An event whose v1 stored free text as a plain string; v2 stores it as a classified
    personal value (sealed at rest, shredded on erasure). Subclasses map each such field to
    the (name, category) its v1 strings are upcast to in `free_text`."""

    free_text: ClassVar[dict[str, tuple[str, str]]]
    class_version = 2

    @classmethod
    def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
        for field, (name, category) in cls.free_text.items():
            if isinstance(state.get(field), str):
                state[field] = {"name": name, "category": category, "value": state[field]}


# Command events that record who called them, as authenticated (`authenticated`, domain/caller.py),
# from the version each of these bases names on; records from before read as unknown.


class CalledSinceV2(SubjectAggregate.Event):
    """A command event whose v1 did not say who called it, as authenticated."""

    class_version = 2
    authenticated: Authenticated
    upcast_v1_v2 = CALLER_UNKNOWN


class CreatedCalledSinceV2(SubjectAggregate.Created):
    """As `CalledSinceV2`, for the event that creates its aggregate."""

    class_version = 2
    authenticated: Authenticated
    upcast_v1_v2 = CALLER_UNKNOWN


class ActorCalledSinceV3(ActorSinceV2):
    """An `ActorSinceV2` whose v2 did not say who called it, as authenticated."""

    class_version = 3
    authenticated: Authenticated
    upcast_v2_v3 = CALLER_UNKNOWN


class FreeTextCalledSinceV3(FreeTextSinceV2):
    """A `FreeTextSinceV2` whose v2 did not say who called it, as authenticated."""

    class_version = 3
    authenticated: Authenticated
    upcast_v2_v3 = CALLER_UNKNOWN


class RecordedCalledSinceV2(RecordedAggregate.Event):
    """As `CalledSinceV2`, for an aggregate about no data subject (a principal, ...)."""

    class_version = 2
    authenticated: Authenticated
    upcast_v1_v2 = CALLER_UNKNOWN


class RecordedCreatedCalledSinceV2(RecordedAggregate.Created):
    """As `CreatedCalledSinceV2`, for an aggregate about no data subject."""

    class_version = 2
    authenticated: Authenticated
    upcast_v1_v2 = CALLER_UNKNOWN
