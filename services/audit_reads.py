"""A compliance officer's (or the candidate's own) look at one subject's history, recorded.

The timeline and the case overview as of a moment hold no personal value (who did what,
when, under which consent; statuses), but whose history they are makes them the subject's
business, as the access log is: they are decided by the same policy as the access log (the
candidate their own, compliance anyone's) and recorded first, each under its own view name,
so the subject's access log shows that someone replayed their history, and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from domain.access import AccessOutcome
from domain.errors import NotFoundError
from services.access import READ_ACCESS_LOG
from services.dto import Moment, Result, WholeViewRead
from services.history import HistoryQueries
from services.queries import QueryUseCases
from services.timeline import TimelineEntry
from services.unit import use_case

TIMELINE_VIEW = "timeline"
AS_OF_VIEW = "case as of"


class ReadTimeline(WholeViewRead):
    """Everything that happened to the candidate, in order: who, what, when, which consent."""


class ReadAsOf(WholeViewRead):
    """The candidate's case (consents, investigations, reports and their statuses) as it
    stood at a moment, rebuilt from the events up to then."""

    at: Moment = Field(description="the moment, ISO 8601 with its offset")


class TimelineView(Result):
    candidate_id: UUID
    access_id: UUID = Field(description="this read's own access record")
    outcome: str
    entries: list[TimelineEntry]


class AsOfView(Result):
    candidate_id: UUID
    access_id: UUID = Field(description="this read's own access record")
    outcome: str
    at: datetime
    case: dict[str, Any] | None = Field(description="none: the candidate was not yet registered")


class AuditReads(QueryUseCases, HistoryQueries):
    @use_case
    def read_timeline(self, cmd: ReadTimeline) -> TimelineView:
        """The subject's history, decided as the access log is and recorded first; then
        replayed from the store (the decision does not wait for the replay)."""
        access_id, _ = self._read_whole(cmd, READ_ACCESS_LOG, TIMELINE_VIEW, _nothing)
        entries = list(self.timeline(cmd.candidate_id))
        if not entries:
            raise NotFoundError(f"no events about candidate {cmd.candidate_id} in the store")
        return TimelineView(
            candidate_id=cmd.candidate_id,
            access_id=access_id,
            outcome=AccessOutcome.ALLOWED,
            entries=entries,
        )

    @use_case
    def read_as_of(self, cmd: ReadAsOf) -> AsOfView:
        """The subject's case as it stood at a moment, decided as the access log is and
        recorded first."""
        access_id, _ = self._read_whole(cmd, READ_ACCESS_LOG, AS_OF_VIEW, _nothing)
        rows = self.as_of(cmd.at, cmd.candidate_id)
        return AsOfView(
            candidate_id=cmd.candidate_id,
            access_id=access_id,
            outcome=AccessOutcome.ALLOWED,
            at=cmd.at,
            case=rows[0] if rows else None,
        )


def _nothing(_: object, __: str) -> None:
    return None
