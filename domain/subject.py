"""The base of every aggregate: each event names its data subject (the candidate)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate


class SubjectAggregate(Aggregate):
    """An aggregate whose every event carries the id of the candidate it is about.

    Keying on the data subject lets the store encrypt per subject, the relay partition by
    subject, and a compliance officer replay one person's history.
    """

    candidate_id: UUID

    class Event(Aggregate.Event):
        candidate_id: UUID

    class Created(Event, Aggregate.Created):
        pass

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        kwargs.setdefault("candidate_id", self.candidate_id)
        super().trigger_event(event_class, **kwargs)
