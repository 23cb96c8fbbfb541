"""Which data keys may be gone: those a recorded erasure or retention run destroyed.

Only a recorded event may make a personal value unreadable: `Candidate.Erased` for every key
of the subject, `Candidate.TierShredded` for the keys of one tier (its own and its
categories'), `Candidate.CategoriesShredded` for the keys of the categories it names. A key
missing without one was deleted around the application, and a value sealed with it must not
read as "erased".

The events are looked up as stored, by the subject's own stream (the candidate's id is the
id of their Candidate aggregate), never decoded: decoding opens personal values, which is
what asks this. An erasure is never undone, so what is found is kept; what is not found is
asked again next time (an erasure may be recorded meanwhile).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from projections import events as ev
from services.shredding import scopes_of_tier

SelectEvents = Callable[[UUID], Sequence[StoredEvent]]

ERASED_TOPIC = get_topic(ev.CandidateErased)
SHREDDED_TOPIC = get_topic(ev.TierShredded)
CATEGORIES_SHREDDED_TOPIC = get_topic(ev.CategoriesShredded)
ERASURE_TOPICS = (ERASED_TOPIC, SHREDDED_TOPIC, CATEGORIES_SHREDDED_TOPIC)  # what destroys keys
MAX_SHREDDED_CATEGORIES = 100  # more than there are categories: a longer list is not ours


def shredded_in(topic: str | bytes, state: bytes) -> set[str]:
    """The keys (scopes) a stored retention event destroyed; nothing for another event. Tiers
    and categories are not personal: they are read from the state directly."""
    name = topic.decode() if isinstance(topic, bytes) else topic
    if name == SHREDDED_TOPIC:
        return scopes_of_tier(str(orjson.loads(state)["tier"]))
    if name == CATEGORIES_SHREDDED_TOPIC:
        categories = orjson.loads(state)["categories"]
        return {str(c) for c in categories[:MAX_SHREDDED_CATEGORIES]}
    return set()


def erasures_in(stored: Iterable[tuple[str, bytes]]) -> tuple[bool, set[str]]:
    """Whether a subject's stored events, as (topic, state), record their erasure, and which
    keys (tiers and categories) retention shredded."""
    erased, scopes = False, set()
    for topic, state in stored:
        if topic == ERASED_TOPIC:
            erased = True
        else:
            scopes |= shredded_in(topic, state)
    return erased, scopes


class RecordedErasures:
    """`covers(subject, scope)`: whether a recorded erasure or retention run destroyed that
    key (a tier's or a category's)."""

    def __init__(self, select_events: SelectEvents) -> None:
        self._select = select_events
        self._erased: set[UUID] = set()
        self._shredded: set[tuple[UUID, str]] = set()
        self._lock = threading.Lock()

    def covers(self, subject: UUID, scope: str, *more: str) -> bool:
        """Whether any of the scopes named was destroyed: the subject's stream read once for
        all of them (an event's new keys are checked together)."""
        asked = (scope, *more)
        with self._lock:
            if subject in self._erased or any((subject, s) in self._shredded for s in asked):
                return True
        erased, scopes = erasures_in((e.topic, e.state) for e in self._select(subject))
        with self._lock:
            if erased:
                self._erased.add(subject)
            self._shredded.update((subject, s) for s in scopes)
        return erased or not scopes.isdisjoint(asked)
