"""List views: what a paged list of candidates, investigations or reports reads, one view per
filter value, each keyed so that a page is one range of the views' primary key (view, key):

    list:<kind>:<status>   key "<time it took that status>|<id>"   the items in that status
    list:<kind>:all        key "<time it was created>|<id>"        every item
    listed:<kind>          key "<id>"                              the item's entry

for `kind` candidate, investigation and report. A page is "rows of one view with a key after
the cursor, in key order", so its cost is the page's, never the number of rows. Each row holds
the item's entry: ids, statuses, check types, times and counts, never a personal value (no
name, email, organisation, purpose or free text; no principal either), and its subject is the
candidate, as in every view. When an item's status changes, its row leaves the old status's
view and enters the new one; its place in `all` stays.

Investigations are listed by the domain's InvestigationStatus, moved as the aggregate moves
(resumed to the status it was suspended from; in progress again when a dispute is upheld after
it completed), reports by its ReportStatus (a report awaits review while it is a `draft`:
review approves or sends back only a draft).
Candidates are listed by their stage in the pipeline (`CandidateStage`), read from events:

    registered          registered; nothing asked of them yet
    consent requested   a consent was asked for
    consented           a consent was granted
    investigating       an investigation started (or resumed, in progress)
    reported            a report was compiled
    consent withdrawn   the candidate withdrew a consent
    erasure requested   the candidate asked for erasure
    erased              the candidate's personal data was erased

The pipeline stages (the first five) only move forward: a second consent asked of a
candidate under investigation leaves them investigating. A withdrawal moves a candidate to
`consent withdrawn` from any of them, and a consent asked or granted afterwards moves them on
again. An erasure request overrides every stage and is left only for `erased`, which is final.
An expired consent changes no stage (a consent expires in the normal course, after the report).
The dashboard's pipeline counts candidates by the same stages, moved by the same rules
(`stage_reached`, `next_stage`).

Rows are a function of the event and the rows already there, like every view's: rebuilt from
the start of the log, the lists come out identical.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from domain.investigation import InvestigationStatus
from domain.report import ReportStatus
from projections import events as ev
from projections.events import EventClass
from projections.rows import Doc, Rows, ident

ALL = "all"
KINDS = ("candidate", "investigation", "report")
# When each kind of item was created: the `all` list is in that order.
CREATED = {"candidate": "registered_at", "investigation": "planned_at", "report": "compiled_at"}

# A row's key: a fixed-width UTC time (so text order is time order), then the item's id.
KEY = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\|"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


class CandidateStage(StrEnum):
    """A candidate's stage in the pipeline (the module's docstring says how it moves)."""

    REGISTERED = "registered"
    CONSENT_REQUESTED = "consent requested"
    CONSENTED = "consented"
    INVESTIGATING = "investigating"
    REPORTED = "reported"
    CONSENT_WITHDRAWN = "consent withdrawn"
    ERASURE_REQUESTED = "erasure requested"
    ERASED = "erased"


_PIPELINE = {
    CandidateStage.REGISTERED: 0,
    CandidateStage.CONSENT_WITHDRAWN: 0,
    CandidateStage.CONSENT_REQUESTED: 1,
    CandidateStage.CONSENTED: 2,
    CandidateStage.INVESTIGATING: 3,
    CandidateStage.REPORTED: 4,
}
_OVERRIDING = {
    CandidateStage.CONSENT_WITHDRAWN,
    CandidateStage.ERASURE_REQUESTED,
    CandidateStage.ERASED,
}


def next_stage(current: CandidateStage, reached: CandidateStage) -> CandidateStage:
    """The stage a candidate in `current` is in after an event that reaches `reached`."""
    if current is CandidateStage.ERASED:
        return current
    if current is CandidateStage.ERASURE_REQUESTED:
        return reached if reached is CandidateStage.ERASED else current
    if reached in _OVERRIDING:
        return reached
    return reached if _PIPELINE[reached] > _PIPELINE[current] else current


# The stage each event brings its candidate to (as far as `next_stage` lets them move): what
# moves a candidate in these lists, and in the dashboard's pipeline (projections/dashboard.py).
_REACHED: dict[EventClass, CandidateStage] = {
    ev.ConsentRequested: CandidateStage.CONSENT_REQUESTED,
    ev.ConsentGranted: CandidateStage.CONSENTED,
    ev.ConsentWithdrawn: CandidateStage.CONSENT_WITHDRAWN,
    ev.ErasureRequested: CandidateStage.ERASURE_REQUESTED,
    ev.CandidateErased: CandidateStage.ERASED,
    ev.InvestigationStarted: CandidateStage.INVESTIGATING,
    ev.InvestigationResumed: CandidateStage.INVESTIGATING,
    ev.ReportCompiled: CandidateStage.REPORTED,
}
STAGE_EVENTS = frozenset(_REACHED)


def stage_reached(event: Any, resumed_to: str | None = None) -> CandidateStage | None:
    """The stage `event` brings its candidate to, None if it moves no candidate. A resumed
    investigation brings them to investigating only if it resumes in progress (`resumed_to`,
    the status it resumes to): one resumed to planned has yet to start."""
    if (
        type(event) is ev.InvestigationResumed
        and resumed_to != InvestigationStatus.IN_PROGRESS.value
    ):
        return None
    return _REACHED.get(type(event))


STATUSES: dict[str, tuple[str, ...]] = {
    "candidate": tuple(s.value for s in CandidateStage),
    "investigation": tuple(s.value for s in InvestigationStatus),
    "report": tuple(s.value for s in ReportStatus),
}


def list_view(kind: str, status: str | None = None) -> str:
    """The view listing the `kind` items in `status` (every one when None)."""
    return f"list:{kind}:{status or ALL}"


def entry_view(kind: str) -> str:
    return f"listed:{kind}"


# Every view this module writes: none holds a personal value.
LIST_VIEWS = frozenset(
    {entry_view(kind) for kind in KINDS}
    | {list_view(kind, status) for kind, statuses in STATUSES.items() for status in statuses}
    | {list_view(kind) for kind in KINDS}
)


def stamp(value: datetime) -> str:
    """A time as list rows hold it: UTC, fixed width, so its text sorts as the time does."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def key_of(kind: str, doc: Doc, *, by_status: bool) -> str:
    """The key of an item's row in a status list (or, if not `by_status`, in `all`)."""
    when = doc["status_since"] if by_status else doc[CREATED[kind]]
    return f"{when}|{doc[f'{kind}_id']}"


Handler = Callable[[Any, Rows], None]
Change = Callable[[Doc], Any]


class Listing:
    """Applies one event to the list views; called by the read views (projections/read_views.py)
    for every event, it acts on those in `handlers`."""

    def __init__(self) -> None:
        status = self._status
        self.handlers: dict[EventClass, Handler] = {
            ev.CandidateRegistered: self.candidate_registered,
            **dict.fromkeys(
                (
                    ev.ConsentRequested,
                    ev.ConsentGranted,
                    ev.ConsentWithdrawn,
                    ev.ErasureRequested,
                    ev.CandidateErased,
                ),
                self.candidate_stage,
            ),
            ev.InvestigationPlanned: self.investigation_planned,
            ev.InvestigationStarted: self.investigation_started,
            ev.InvestigationResumed: self.investigation_resumed,
            ev.InvestigationSuspended: self.investigation_suspended,
            ev.DisputeResolved: self.dispute_resolved,
            ev.InvestigationCompleted: status("investigation", InvestigationStatus.COMPLETED),
            ev.InvestigationCancelled: status("investigation", InvestigationStatus.CANCELLED),
            ev.ReportCompiled: self.report_compiled,
            ev.ReportApproved: status("report", ReportStatus.APPROVED),
            ev.ChangesRequested: status("report", ReportStatus.CHANGES_REQUESTED),
            ev.ReportAmended: self.report_amended,
            ev.ReportDestroyed: status("report", ReportStatus.DESTROYED),
            ev.ReportDisclosed: self._count("disclosures"),
            ev.LegalHoldPlaced: self._report(lambda doc: doc.update(legal_hold=True)),
            ev.LegalHoldReleased: self._report(lambda doc: doc.update(legal_hold=False)),
        }

    def process(self, event: Any, rows: Rows) -> None:
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(event, rows)

    # --- writing an item's rows -----------------------------------------------------------

    def _write(self, kind: str, rows: Rows, subject: Any, doc: Doc) -> None:
        rows.put(entry_view(kind), doc[f"{kind}_id"], subject, doc)
        rows.put(list_view(kind), key_of(kind, doc, by_status=False), subject, dict(doc))
        by_status = key_of(kind, doc, by_status=True)
        rows.put(list_view(kind, doc["status"]), by_status, subject, dict(doc))

    def _change(self, kind: str, item_id: Any, event: Any, rows: Rows, change: Change) -> None:
        """The item's entry changed by `change`; if its status changed, its row moves from
        the old status's list to the new one's, placed by the event's time."""
        doc = rows.get(entry_view(kind), str(item_id))
        if doc is None:
            return
        before = doc["status"], key_of(kind, doc, by_status=True)
        change(doc)
        if doc["status"] != before[0]:
            rows.delete(list_view(kind, before[0]), before[1])
            doc["status_since"] = stamp(event.timestamp)
        self._write(kind, rows, event.candidate_id, doc)

    def _status(self, kind: str, to: StrEnum) -> Handler:
        def handle(event: Any, rows: Rows) -> None:
            self._change(kind, event.originator_id, event, rows, lambda d: d.update(status=to))

        return handle

    def _report(self, change: Change) -> Handler:
        return lambda event, rows: self._change("report", event.originator_id, event, rows, change)

    def _count(self, name: str) -> Handler:
        return self._report(lambda doc: doc.update({name: doc[name] + 1}))

    # --- candidates -----------------------------------------------------------------------

    def candidate_registered(self, event: Any, rows: Rows) -> None:
        at = stamp(event.timestamp)
        doc: Doc = {
            "candidate_id": ident(event.candidate_id),
            "status": CandidateStage.REGISTERED.value,
            "registered_at": at,
            "status_since": at,
            "investigations": 0,
            "reports": 0,
        }
        self._write("candidate", rows, event.candidate_id, doc)

    def candidate_stage(self, event: Any, rows: Rows) -> None:
        self._candidate(event, rows, stage_reached(event))

    def _candidate(
        self, event: Any, rows: Rows, stage: CandidateStage | None, count: str | None = None
    ) -> None:
        def change(doc: Doc) -> None:
            if count is not None:
                doc[count] += 1
            if stage is not None:
                doc["status"] = next_stage(CandidateStage(doc["status"]), stage).value

        self._change("candidate", event.candidate_id, event, rows, change)

    # --- investigations -------------------------------------------------------------------

    def investigation_planned(self, event: Any, rows: Rows) -> None:
        at = stamp(event.timestamp)
        doc: Doc = {
            "investigation_id": str(event.originator_id),
            "candidate_id": str(event.candidate_id),
            "consent_id": str(event.consent_id),
            "status": InvestigationStatus.PLANNED.value,
            "check_types": sorted({c.check_type.value for c in event.checks}),
            "checks": len(event.checks),
            "planned_at": at,
            "status_since": at,
            "due_by": stamp(event.due_by),
            "suspended_from": None,  # the status a suspended investigation resumes to
        }
        self._write("investigation", rows, event.candidate_id, doc)
        # planning moves no candidate on: the investigation has yet to start
        self._candidate(event, rows, None, "investigations")

    def investigation_started(self, event: Any, rows: Rows) -> None:
        self._status("investigation", InvestigationStatus.IN_PROGRESS)(event, rows)
        self._candidate(event, rows, stage_reached(event))

    def investigation_suspended(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            doc.update(suspended_from=doc["status"], status=InvestigationStatus.SUSPENDED.value)

        self._change("investigation", event.originator_id, event, rows, change)

    def investigation_resumed(self, event: Any, rows: Rows) -> None:
        """Back to the status it was suspended from: planned, or in progress."""
        doc = rows.get(entry_view("investigation"), str(event.originator_id))
        if doc is None:
            return
        to = doc["suspended_from"] or InvestigationStatus.IN_PROGRESS.value

        def change(doc: Doc) -> None:
            doc.update(suspended_from=None, status=to)

        self._change("investigation", event.originator_id, event, rows, change)
        if (reached := stage_reached(event, resumed_to=to)) is not None:
            self._candidate(event, rows, reached)

    def dispute_resolved(self, event: Any, rows: Rows) -> None:
        """An upheld dispute reopens its check: a completed investigation is in progress again."""
        if not event.upheld:
            return

        def change(doc: Doc) -> None:
            if doc["status"] == InvestigationStatus.COMPLETED.value:
                doc["status"] = InvestigationStatus.IN_PROGRESS.value

        self._change("investigation", event.originator_id, event, rows, change)

    # --- reports --------------------------------------------------------------------------

    def report_compiled(self, event: Any, rows: Rows) -> None:
        at = stamp(event.timestamp)
        doc: Doc = {
            "report_id": str(event.originator_id),
            "candidate_id": str(event.candidate_id),
            "investigation_id": str(event.investigation_id),
            "status": ReportStatus.DRAFT.value,
            "edition": 1,
            "items": len(event.items),
            "disclosures": 0,
            "legal_hold": False,
            "compiled_at": at,
            "status_since": at,
        }
        self._write("report", rows, event.candidate_id, doc)
        self._candidate(event, rows, stage_reached(event), "reports")

    def report_amended(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            doc.update(status=ReportStatus.DRAFT.value, edition=doc["edition"] + 1)

        self._change("report", event.originator_id, event, rows, change)
