"""Which data keys may be gone: those a recorded erasure or retention run destroyed.

Only a recorded event may make a personal value unreadable: `Candidate.Erased` for every key
of the subject, `Candidate.TierShredded` for the key of one tier. A key missing without one
was deleted around the application, and a value sealed with it must not read as "erased".

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

SelectEvents = Callable[[UUID], Sequence[StoredEvent]]

ERASED_TOPIC = get_topic(ev.CandidateErased)
SHREDDED_TOPIC = get_topic(ev.TierShredded)


def erasures_in(stored: Iterable[tuple[str, bytes]]) -> tuple[bool, set[str]]:
    """Whether a subject's stored events, as (topic, state), record their erasure, and which
    tiers retention shredded (a tier is not personal: it is read from the state directly)."""
    erased, tiers = False, set()
    for topic, state in stored:
        if topic == ERASED_TOPIC:
            erased = True
        elif topic == SHREDDED_TOPIC:
            tiers.add(str(orjson.loads(state)["tier"]))
    return erased, tiers


class RecordedErasures:
    """`covers(subject, tier)`: whether a recorded erasure or retention run destroyed that key."""

    def __init__(self, select_events: SelectEvents) -> None:
        self._select = select_events
        self._erased: set[UUID] = set()
        self._shredded: set[tuple[UUID, str]] = set()
        self._lock = threading.Lock()

    def covers(self, subject: UUID, tier: str) -> bool:
        with self._lock:
            if subject in self._erased or (subject, tier) in self._shredded:
                return True
        erased, tiers = erasures_in((e.topic, e.state) for e in self._select(subject))
        with self._lock:
            if erased:
                self._erased.add(subject)
            self._shredded.update((subject, t) for t in tiers)
        return erased or tier in tiers
