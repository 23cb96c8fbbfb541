"""Case overview: one row per candidate — consents, investigations and reports with status.

A read model built from events alone (never by loading aggregates), idempotent by position,
so it can be rebuilt from the start of the log — or only up to a moment, for `audit as-of`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any
from uuid import UUID

from domain.classification import Tier
from domain.consent import ConsentStatus
from domain.investigation import InvestigationStatus
from domain.report import ReportStatus
from projections import events as ev
from projections.events import LOG_ONLY_EVENTS, EventClass


class ConsentStage(StrEnum):
    """How far a consent has come, by the last event about it. A granted consent is shown as
    granted until its window has passed (`as_dict`): whether it is active at a moment is the
    domain's rule (`consent_status`), and no decision here rests on it."""

    REQUESTED = ConsentStatus.REQUESTED.value
    GRANTED = "granted"
    WITHDRAWN = ConsentStatus.WITHDRAWN.value
    EXPIRED = ConsentStatus.EXPIRED.value


@dataclass
class ConsentRow:
    stage: ConsentStage
    valid_until: datetime | None = None


@dataclass
class InvestigationRow:
    status: InvestigationStatus
    checks: int
    concluded: int = 0
    open_disputes: int = 0
    suspended_from: InvestigationStatus | None = None


@dataclass
class ReportRow:
    status: ReportStatus
    edition: int = 1
    disclosures: int = 0


_OPEN = frozenset({InvestigationStatus.PLANNED, InvestigationStatus.IN_PROGRESS})


@dataclass(frozen=True)
class Step:
    """When a step of the candidate's erasure was recorded: its time and log position."""

    at: datetime
    position: int

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "position": self.position}


@dataclass
class CaseRow:
    candidate_id: UUID
    registered_at: datetime | None = None
    erasure_requested: bool = False
    consents: dict[UUID, ConsentRow] = field(default_factory=dict)
    investigations: dict[UUID, InvestigationRow] = field(default_factory=dict)
    reports: dict[UUID, ReportRow] = field(default_factory=dict)
    last_position: int = 0
    last_activity: datetime | None = None  # reads and disclosures do not count
    erased: bool = False
    erasure_requested_step: Step | None = None
    erased_step: Step | None = None
    shredded_tiers: set[str] = field(default_factory=set)
    shredded_categories: set[str] = field(default_factory=set)

    @property
    def case_open(self) -> bool:
        """Work in hand. A suspended investigation is not: a withdrawn consent must not keep
        the candidate's data forever."""
        return any(i.status in _OPEN for i in self.investigations.values())

    def as_dict(self, at: datetime | None = None) -> dict[str, Any]:
        def consent_status(row: ConsentRow) -> str:
            granted = row.stage is ConsentStage.GRANTED
            if at and granted and row.valid_until and at >= row.valid_until:
                return ConsentStage.EXPIRED.value
            return row.stage.value

        return {
            "candidate_id": str(self.candidate_id),
            "registered_at": self.registered_at.isoformat() if self.registered_at else None,
            "erasure_requested": self.erasure_requested,
            "erased": self.erased,
            # each step with its time and position, null until recorded: an erasure need not
            # follow a request (compliance may erase on a retention rule)
            "erasure": {
                "requested": _step(self.erasure_requested_step),
                "erased": _step(self.erased_step),
            },
            "consents": {str(k): consent_status(v) for k, v in self.consents.items()},
            "investigations": {
                str(k): f"{v.status.value} ({v.concluded}/{v.checks} checks concluded"
                + (f", {v.open_disputes} open dispute(s))" if v.open_disputes else ")")
                for k, v in self.investigations.items()
            },
            "reports": {
                str(k): f"{v.status.value}, edition {v.edition}, {v.disclosures} disclosure(s)"
                for k, v in self.reports.items()
            },
            "last_position": self.last_position,
        }


def _step(step: Step | None) -> dict[str, Any] | None:
    return None if step is None else step.as_dict()


# Events whose only effect on an investigation or report is its status (suspension and
# resumption keep where work was, below).
_INVESTIGATION_STATUS: dict[EventClass, InvestigationStatus] = {
    ev.InvestigationStarted: InvestigationStatus.IN_PROGRESS,
    ev.InvestigationCompleted: InvestigationStatus.COMPLETED,
    ev.InvestigationCancelled: InvestigationStatus.CANCELLED,
}
_REPORT_STATUS: dict[EventClass, ReportStatus] = {
    ev.ReportApproved: ReportStatus.APPROVED,
    ev.ChangesRequested: ReportStatus.CHANGES_REQUESTED,
    ev.ReportDestroyed: ReportStatus.DESTROYED,
}
_CONSENT_STAGE: dict[EventClass, ConsentStage] = {
    ev.ConsentWithdrawn: ConsentStage.WITHDRAWN,
    ev.ConsentExpired: ConsentStage.EXPIRED,
}
# Events that are not activity on the case: reads, hand-overs, and retention's own shredding
# (a quiet case must not wake itself up by being shredded).
QUIET_EVENTS: frozenset[EventClass] = frozenset(
    {*LOG_ONLY_EVENTS, ev.TierShredded, ev.CategoriesShredded}
)

Handler = Callable[[CaseRow, Any], None]


class CaseOverview:
    """The view and its position; `process` is idempotent (a replayed position is ignored).

    Every event about a candidate moves their row's position (and, unless quiet, its last
    activity); `handlers` names, by class, the events that change more than that, `ignores`
    the ones that do not (tests hold the two to the domain)."""

    ignores: frozenset[EventClass] = frozenset(
        {
            ev.ClaimsSubmitted,
            ev.ConsentReliedUpon,
            ev.CandidateNotified,
            ev.InvestigatorAssigned,
            ev.FindingRecorded,
            ev.FeedbackGiven,
            ev.FeedbackAnswered,
            ev.SharedWithCandidate,
            ev.ReportDisputed,
            ev.ReportDisputeRejected,
            ev.LegalHoldPlaced,
            ev.LegalHoldReleased,
            ev.AccessRecorded,
            ev.DataDisclosed,
            ev.CommandApplied,
            *ev.PRINCIPAL_EVENTS,
            *ev.DUTY_EVENTS,
            *ev.OPERATOR_EVENTS,
        }
    )

    def __init__(self) -> None:
        self.rows: dict[UUID, CaseRow] = {}
        self.position = 0
        self.handlers: dict[EventClass, Handler] = {
            ev.CandidateRegistered: self.registered,
            ev.ErasureRequested: self.erasure_requested,
            ev.CandidateErased: self.erased,
            ev.TierShredded: self.tier_shredded,
            ev.CategoriesShredded: self.categories_shredded,
            ev.ConsentRequested: self.consent_requested,
            ev.ConsentGranted: self.consent_granted,
            **{cls: partial(self.consent_ended, stage) for cls, stage in _CONSENT_STAGE.items()},
            ev.InvestigationPlanned: self.investigation_planned,
            **{
                cls: partial(self.investigation_status, status)
                for cls, status in _INVESTIGATION_STATUS.items()
            },
            ev.InvestigationSuspended: self.investigation_suspended,
            ev.InvestigationResumed: self.investigation_resumed,
            ev.CheckConcluded: self.check_concluded,
            ev.DisputeRaised: self.dispute_raised,
            ev.DisputeResolved: self.dispute_resolved,
            ev.ReportCompiled: self.report_compiled,
            **{cls: partial(self.report_status, status) for cls, status in _REPORT_STATUS.items()},
            ev.ReportAmended: self.report_amended,
            ev.ReportDisclosed: self.report_disclosed,
        }

    def process(self, position: int, event: Any) -> None:
        if position <= self.position:
            return
        self.position = position
        candidate_id = getattr(event, "candidate_id", None)
        if candidate_id is None:
            return
        row = self.rows.setdefault(candidate_id, CaseRow(candidate_id))
        row.last_position = position
        if type(event) not in QUIET_EVENTS:
            row.last_activity = event.timestamp
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(row, event)

    # --- the candidate ------------------------------------------------------------------------

    def registered(self, row: CaseRow, event: Any) -> None:
        row.registered_at = event.timestamp

    def erasure_requested(self, row: CaseRow, event: Any) -> None:
        row.erasure_requested = True
        row.erasure_requested_step = Step(event.timestamp, row.last_position)

    def erased(self, row: CaseRow, event: Any) -> None:
        row.erased = True
        row.erased_step = Step(event.timestamp, row.last_position)

    def tier_shredded(self, row: CaseRow, event: Any) -> None:
        row.shredded_tiers.add(Tier(event.tier).value)

    def categories_shredded(self, row: CaseRow, event: Any) -> None:
        row.shredded_categories.update(str(c) for c in event.categories)

    # --- consents -----------------------------------------------------------------------------

    def consent_requested(self, row: CaseRow, event: Any) -> None:
        row.consents[event.originator_id] = ConsentRow(ConsentStage.REQUESTED)

    def consent_granted(self, row: CaseRow, event: Any) -> None:
        row.consents[event.originator_id] = ConsentRow(ConsentStage.GRANTED, event.valid_until)

    def consent_ended(self, stage: ConsentStage, row: CaseRow, event: Any) -> None:
        row.consents[event.originator_id].stage = stage

    # --- investigations -----------------------------------------------------------------------

    def investigation_planned(self, row: CaseRow, event: Any) -> None:
        row.investigations[event.originator_id] = InvestigationRow(
            InvestigationStatus.PLANNED, len(event.checks)
        )

    def investigation_status(self, status: InvestigationStatus, row: CaseRow, event: Any) -> None:
        row.investigations[event.originator_id].status = status

    def investigation_suspended(self, row: CaseRow, event: Any) -> None:
        inv = row.investigations[event.originator_id]
        inv.suspended_from, inv.status = inv.status, InvestigationStatus.SUSPENDED

    def investigation_resumed(self, row: CaseRow, event: Any) -> None:
        """Work goes back to where it was suspended from: planned, or in progress."""
        inv = row.investigations[event.originator_id]
        inv.status = inv.suspended_from or InvestigationStatus.IN_PROGRESS
        inv.suspended_from = None

    def check_concluded(self, row: CaseRow, event: Any) -> None:
        row.investigations[event.originator_id].concluded += 1

    def dispute_raised(self, row: CaseRow, event: Any) -> None:
        row.investigations[event.originator_id].open_disputes += 1

    def dispute_resolved(self, row: CaseRow, event: Any) -> None:
        inv = row.investigations[event.originator_id]
        inv.open_disputes -= 1
        if event.upheld:
            inv.concluded -= 1
            if inv.status is InvestigationStatus.COMPLETED:
                inv.status = InvestigationStatus.IN_PROGRESS

    # --- reports ------------------------------------------------------------------------------

    def report_compiled(self, row: CaseRow, event: Any) -> None:
        row.reports[event.originator_id] = ReportRow(ReportStatus.DRAFT)

    def report_status(self, status: ReportStatus, row: CaseRow, event: Any) -> None:
        row.reports[event.originator_id].status = status

    def report_amended(self, row: CaseRow, event: Any) -> None:
        report = row.reports[event.originator_id]
        report.status = ReportStatus.DRAFT
        report.edition += 1

    def report_disclosed(self, row: CaseRow, event: Any) -> None:
        row.reports[event.originator_id].disclosures += 1
