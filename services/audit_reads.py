"""A compliance officer's (or the candidate's own) look at one subject's history, recorded.

The timeline and the case overview as of a moment hold no personal value (who did what,
when, under which consent; statuses), but whose history they are makes them the subject's
business, as the access log is: they are decided by the same policy as the access log (the
candidate their own, compliance anyone's) and recorded first, each under its own view name,
so the subject's access log shows that someone replayed their history, and why.

The same holds on the operator's command line (decision record 0006: every read of data about
a subject is recorded; reading an access log is itself a read). `audit timeline`, `audit
as-of`, `events` and `show` tell who was checked, when, by whom and why, though no value: they
are read through these use cases, by the operator (authenticated as `operator`), never
replayed unrecorded. Store-wide, each candidate shown gets a read of their own, all of them
recorded in one write before anything about them is shown (`events` a page at a time).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from pydantic import Field

from domain.access import AccessOutcome
from domain.candidate import Candidate
from domain.errors import AccessRefusedError, NotFoundError
from services.access import READ_ACCESS_LOG
from services.dto import EventRecord, Moment, Reader, Result, WholeViewRead
from services.errors import ScopedListError
from services.history import HistoryQueries, event_record
from services.identity import current_identity
from services.ports import ReadModel
from services.recording import READ_FAILURES
from services.timeline import TimelineEntry
from services.unit import use_case
from services.whole_reads import WholeViewReads

TIMELINE_VIEW = "timeline"
AS_OF_VIEW = "case as of"
EVENTS_VIEW = "events"  # the stored events about them, values shown as their tier
CASE_LIST = "case"  # the whole store's overview as of a moment, to a scoped caller: a list


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


class ReadCasesAsOf(Reader):
    """Every candidate's case as it stood at a moment: one read recorded per candidate shown."""

    at: Moment = Field(description="the moment, ISO 8601 with its offset")


class CasesAsOfView(Result):
    at: datetime
    access_ids: list[UUID] = Field(description="the reads recorded, one per candidate shown")
    cases: list[dict[str, Any]]


class ReadEvents(Reader):
    """A page of the stored events (each personal value shown as its category and tier only),
    of one candidate or of the whole store, from position `start` up to `until`."""

    candidate_id: UUID | None = None
    start: int = Field(default=1, ge=1)
    until: int | None = Field(
        default=None,
        ge=0,
        description="the last position to show: the head when the listing began, so the "
        "reads it records are not listed (and recorded) in turn",
    )
    limit: int = Field(default=500, ge=1, le=500)


class EventsPage(Result):
    events: list[EventRecord]
    next_start: int | None = Field(description="where the next page starts; null: no more")
    access_ids: list[UUID] = Field(description="the reads recorded, one per candidate shown")


class AuditReads(WholeViewReads, HistoryQueries):
    def _read_subjects(
        self, cmd: Reader, subjects: list[UUID], view_name: str, held_only: bool = False
    ) -> list[UUID]:
        """One read of each subject's `view_name`, decided as the access log is (the candidate
        their own, compliance anyone's), all recorded in one write before anything about them
        is shown; refused for one, refused for all (each refusal recorded). Returns their
        access ids, in the order of `subjects`. `held_only`: an id no candidate holds is
        passed over, not read (a listing shows a scoped token's refused read of such an id,
        recorded under it: no one's data), where otherwise it is not found."""

        def decide(views: ReadModel) -> tuple[list[Aggregate], tuple[Any, ...]]:
            accesses, refused = [], []
            for subject in subjects:
                if held_only and views.get("profile", str(subject), frozenset()) is None:
                    continue
                profile = self._profile(views, subject, opening=frozenset())
                access, decision = self._decide_view(
                    cmd, subject, READ_ACCESS_LOG, view_name, views, profile
                )
                accesses.append(access)
                if not decision.allowed:
                    refused.append((subject, list(decision.policy_ids)))
            return list(accesses), ([a.id for a in accesses], refused)

        if not subjects:
            return []
        attempt = self._attempt(cmd, view_name, *subjects)
        access_ids, refused = self._recorded(decide, attempt)  # recorded first; fails closed
        if refused:
            raise AccessRefusedError(refused[0][0], view_name, refused[0][1])
        return access_ids  # type: ignore[no-any-return]

    @use_case
    def read_cases_as_of(self, cmd: ReadCasesAsOf) -> CasesAsOfView:
        """Every candidate's case as it stood at a moment, rebuilt from the events up to then;
        a read of each candidate shown is recorded first, all in one write. It names every
        candidate, as a list does: a caller scoped to some candidates is refused it before
        anything is read (nothing recorded), never told of a candidate outside its scope."""
        identity = current_identity()
        if identity is not None and identity.assignments:
            raise ScopedListError(identity.principal, CASE_LIST)
        rows = self.as_of(cmd.at)
        shown = [UUID(row["candidate_id"]) for row in rows]
        access_ids = self._read_subjects(cmd, shown, AS_OF_VIEW)
        return CasesAsOfView(at=cmd.at, access_ids=access_ids, cases=rows)

    @use_case
    def read_events(self, cmd: ReadEvents) -> EventsPage:
        """A page of the stored events, each personal value shown as its tier only; a read of
        each candidate the page is about is recorded first, all in one write."""
        limit = cmd.limit
        if cmd.until is not None:
            limit = max(0, min(limit, cmd.until - cmd.start + 1))
        found = (
            []
            if limit == 0
            else self.recorder.select_notifications(start=cmd.start, limit=limit)
            if cmd.candidate_id is None
            else self.subjects.select_subject_notifications(cmd.candidate_id, cmd.start, limit)
        )
        page = [n for n in found if cmd.until is None or n.id <= cmd.until]
        more = bool(page) and len(page) == limit and (cmd.until is None or page[-1].id < cmd.until)
        if cmd.candidate_id is not None and not page and cmd.start == 1:
            self.load(Candidate, cmd.candidate_id)  # an unknown candidate is not found
        decoded = [(n.id, self._decoded(cmd, n)) for n in page]
        subjects = list(
            dict.fromkeys(
                s for _, e in decoded if isinstance(s := getattr(e, "candidate_id", None), UUID)
            )
        )
        access_ids = self._read_subjects(
            cmd, subjects, EVENTS_VIEW, held_only=cmd.candidate_id is None
        )
        return EventsPage(
            events=[event_record(p, e) for p, e in decoded],
            next_start=page[-1].id + 1 if more else None,
            access_ids=access_ids,
        )

    def _decoded(self, cmd: ReadEvents, stored: Any) -> Any:
        """A stored event, opened; one whose values are altered or whose key is gone fails the
        page, recorded first as a failed read of its candidate (named in clear in it)."""
        try:
            return self.mapper.to_domain_event(stored)
        except READ_FAILURES as error:
            subject = cmd.candidate_id or json.loads(stored.state).get("candidate_id")
            if subject is None:
                raise
            raise self._record_failure(cmd, EVENTS_VIEW, UUID(str(subject)), error) from None

    @use_case
    def read_timeline(self, cmd: ReadTimeline) -> TimelineView:
        """The subject's history, decided as the access log is, replayed from the store once
        allowed, and recorded before it is answered: a replay that meets a value altered or
        with its key gone is recorded as failed, for why (services/recording.py)."""
        access_id, entries = self._read_whole(
            cmd, READ_ACCESS_LOG, TIMELINE_VIEW, lambda _, __: list(self.timeline(cmd.candidate_id))
        )
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
        """The subject's case as it stood at a moment, decided as the access log is, rebuilt
        once allowed, and recorded before it is answered (a failed rebuild as failed)."""
        access_id, rows = self._read_whole(
            cmd, READ_ACCESS_LOG, AS_OF_VIEW, lambda _, __: self.as_of(cmd.at, cmd.candidate_id)
        )
        return AsOfView(
            candidate_id=cmd.candidate_id,
            access_id=access_id,
            outcome=AccessOutcome.ALLOWED,
            at=cmd.at,
            case=rows[0] if rows else None,
        )
