"""The dashboard views: counts and histograms of the whole store, never a personal value.

    dashboard       a handful of aggregate rows, each under a fixed key (`AGGREGATES`):
                    pipeline     candidates, investigations and reports by current status,
                                 each counted once: a candidate under their stage as the
                                 candidates list has it (projections/listing.py)
                    checks       concluded checks by type and outcome, findings by method and
                                 outcome, disputes raised, resolved and upheld
                    turnaround   per check type (and for whole investigations) a bounded
                                 histogram of hours from plan to conclusion
                                 (projections/histogram.py)
                    consents     consents by stage; withdrawals and expiries counted
                    erasures     erasures requested and done, tiers shredded by retention
                    retention    quiet candidates by the day their case went quiet, per tier
                                 still held: what retention will shred, and when
                    refusals     refused reads by principal, by deciding policy, per day
                    access       reads and hand-overs by outcome
                    daily        per day: events, conclusions, completions, refusals
    dashboard_case  one small state row per candidate, consent, investigation and report
                    (stage or status, timestamps, check types): what moves a count when it
                    changes

Every handler is a pure function of the event and the current rows, so the views rebuilt from
the start of the log come out identical; rows hold ids, statuses, categories, staff principals
and policy ids, never a value a candidate gave or one recorded about them. Per-day series keep
the last `DAYS_KEPT` days (of the newest event seen), and every mapping keyed by a name
(principal, policy) at most `MAX_NAMES` entries, the rest counted under `OTHER`
(projections/tally.py): the rows stay small however large the store grows, so a summary
is a few key lookups.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

from domain.access import AccessOutcome
from domain.investigation import InvestigationStatus
from domain.report import ReportStatus
from projections import events as ev
from projections import histogram as hist
from projections.access_log import NO_POLICY
from projections.events import LOG_ONLY_EVENTS, EventClass
from projections.listing import STAGE_EVENTS, CandidateStage, next_stage, stage_reached
from projections.rows import Doc, Rows, ident
from projections.tally import (
    bump,
    day_of,
    hours_between,
    keep_recent,
    quiet,
    tally,
    tiers_in,
)

DASHBOARD_VIEW = "dashboard"
CASE_VIEW = "dashboard_case"
DASHBOARD_VIEWS = frozenset({DASHBOARD_VIEW, CASE_VIEW})
AGGREGATES = (
    "pipeline",
    "checks",
    "turnaround",
    "consents",
    "erasures",
    "retention",
    "refusals",
    "access",
    "daily",
)
# The aggregate rows belong to no candidate: they are kept under the nil subject.
NO_SUBJECT = UUID(int=0)
INVESTIGATION = "investigation"  # the turnaround histogram of whole investigations
_OPEN = (InvestigationStatus.PLANNED.value, InvestigationStatus.IN_PROGRESS.value)
# Not activity on a case (as in projections/case_overview.py, which retention decides on):
# reads, hand-overs, and retention's own shredding.
QUIET_EVENTS: frozenset[EventClass] = frozenset(
    {*LOG_ONLY_EVENTS, ev.TierShredded, ev.CategoriesShredded}
)

_INVESTIGATION_STATUS: dict[EventClass, InvestigationStatus] = {
    ev.InvestigationStarted: InvestigationStatus.IN_PROGRESS,
    ev.InvestigationSuspended: InvestigationStatus.SUSPENDED,
    ev.InvestigationCompleted: InvestigationStatus.COMPLETED,
    ev.InvestigationCancelled: InvestigationStatus.CANCELLED,
}
_REPORT_STATUS: dict[EventClass, ReportStatus] = {
    ev.ReportApproved: ReportStatus.APPROVED,
    ev.ChangesRequested: ReportStatus.CHANGES_REQUESTED,
    ev.ReportDestroyed: ReportStatus.DESTROYED,
}

Handler = Callable[[Any, Rows], None]


class Dashboard:
    """Applies one event to the dashboard rows; `handlers` names, by class, the events that
    move a count beyond the daily event count and the case's last activity."""

    # Bumped whenever what a row holds changes: views of another version are rebuilt.
    # 2: days older than the last DAYS_KEPT dropped however few days are held (tally.py)
    # 3: a candidate counted once in the pipeline, under their current stage (the candidates
    #    list's, projections/listing.py), not every registration and erasure ever
    version = 3
    # The aggregate rows count every candidate's events: a worker keeping them per partition
    # applies one partition's run at a time (and the counts commute: any interleaving of the
    # partitions gives the same rows, see `keep_recent` and `MAX_NAMES` in tally.py).
    shared_rows = True

    def __init__(self) -> None:
        self.handlers: dict[EventClass, Handler] = {
            ev.CandidateRegistered: self.candidate_registered,
            ev.ErasureRequested: self.erasure_requested,
            ev.CandidateErased: self.candidate_erased,
            ev.TierShredded: self.tier_shredded,
            ev.CategoriesShredded: self.categories_shredded,
            ev.ConsentRequested: self.consent_requested,
            ev.ConsentGranted: partial(self.consent_stage, "granted"),
            ev.ConsentWithdrawn: partial(self.consent_stage, "withdrawn"),
            ev.ConsentExpired: partial(self.consent_stage, "expired"),
            ev.InvestigationPlanned: self.investigation_planned,
            **{
                cls: partial(self.investigation_status, status)
                for cls, status in _INVESTIGATION_STATUS.items()
            },
            ev.InvestigationResumed: self.investigation_resumed,
            ev.FindingRecorded: self.finding_recorded,
            ev.CheckConcluded: self.check_concluded,
            ev.DisputeRaised: self.dispute_raised,
            ev.DisputeResolved: self.dispute_resolved,
            ev.ReportCompiled: self.report_compiled,
            **{cls: partial(self.report_status, status) for cls, status in _REPORT_STATUS.items()},
            ev.ReportAmended: self.report_amended,
            ev.ReportDisputed: partial(self.report_dispute, "raised"),
            ev.ReportDisputeRejected: partial(self.report_dispute, "rejected"),
            ev.ReportDisclosed: self.report_disclosed,
            ev.LegalHoldPlaced: partial(self.legal_hold, 1),
            ev.LegalHoldReleased: partial(self.legal_hold, -1),
            ev.AccessRecorded: self.access_recorded,
            ev.DataDisclosed: self.data_disclosed,
        }

    def process(self, event: Any, rows: Rows, position: int) -> None:
        if type(event) is ev.StoreMigrated:
            return  # the copy's own record, no activity: a migrated store counts as its source
        self._daily(rows, event.timestamp, "events")
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(event, rows)
        if type(event) in STAGE_EVENTS:
            self._stage(event, rows)
        subject = getattr(event, "candidate_id", None)
        if isinstance(subject, UUID) and type(event) not in QUIET_EVENTS:
            tiers = tiers_in(vars(event))

            def active(doc: Doc) -> None:
                doc["last_activity"] = event.timestamp.isoformat()
                doc["tiers"] = sorted({*doc["tiers"], *tiers})

            self._candidate(rows, subject, active)

    # --- rows -----------------------------------------------------------------------------

    def _change(self, rows: Rows, key: str, change: Callable[[Doc], None]) -> None:
        doc = rows.get(DASHBOARD_VIEW, key) or {}
        change(doc)
        rows.put(DASHBOARD_VIEW, key, NO_SUBJECT, doc)

    def _count(self, rows: Rows, key: str, *path: str, n: int = 1) -> None:
        """Adds `n` to the count at `path` inside the aggregate row `key`."""

        def change(doc: Doc) -> None:
            inner = doc
            for step in path[:-1]:
                inner = inner.setdefault(step, {})
            bump(inner, path[-1], n)

        self._change(rows, key, change)

    def _case(
        self, rows: Rows, kind: str, ident: UUID, subject: UUID, change: Callable[[Doc], None]
    ) -> Doc | None:
        """Changes the state row of one consent, investigation or report (None: never seen)."""
        key = f"{kind}:{ident}"
        doc = rows.get(CASE_VIEW, key)
        if doc is None:
            return None
        change(doc)
        rows.put(CASE_VIEW, key, subject, doc)
        return doc

    def _daily(self, rows: Rows, moment: datetime, what: str, n: int = 1) -> None:
        day = day_of(moment)

        def change(doc: Doc) -> None:
            days = doc.setdefault("days", {})
            new = day not in days
            bump(days.setdefault(day, {}), what, n)
            if new:  # else the days held are those held before, kept already
                keep_recent(days)

        self._change(rows, "daily", change)

    # --- candidates, erasure and retention ---------------------------------------------------

    def _candidate(self, rows: Rows, subject: UUID, change: Callable[[Doc], None]) -> None:
        """Changes a candidate's state row, and moves their place in the retention counts."""
        key = f"candidate:{ident(subject)}"
        doc = rows.get(CASE_VIEW, key) or {
            "stage": None,  # None: never registered (nor listed)
            "last_activity": None,
            "open": [],
            "erased": False,
            "erasure_requested": False,
            "tiers": [],
            "shredded": [],
        }
        before = quiet(doc)
        change(doc)
        after = quiet(doc)
        rows.put(CASE_VIEW, key, subject, doc)
        if before != after:

            def move(retention: Doc) -> None:
                quiet = retention.setdefault("quiet", {})
                for tier, day in before:
                    bump(quiet.setdefault(tier, {}), day, -1)
                for tier, day in after:
                    bump(quiet.setdefault(tier, {}), day)

            self._change(rows, "retention", move)

    def candidate_registered(self, event: Any, rows: Rows) -> None:
        stage = CandidateStage.REGISTERED.value
        self._candidate(rows, event.candidate_id, lambda doc: doc.update(stage=stage))
        self._count(rows, "pipeline", "candidates", stage)

    def _stage(self, event: Any, rows: Rows) -> None:
        """The candidate moves to the stage the event brings them to, by the rules the
        candidates list moves them by (projections/listing.py), and their count with them. An
        investigation resumed has just been moved to where it resumes to."""
        resumed_to: str | None = None
        if type(event) is ev.InvestigationResumed:
            found = rows.get(CASE_VIEW, f"investigation:{event.originator_id}")
            resumed_to = found["status"] if found else None
        reached = stage_reached(event, resumed_to)
        if reached is None:
            return
        moved: list[tuple[str, str]] = []

        def change(doc: Doc) -> None:
            if doc["stage"] is not None:
                stage = next_stage(CandidateStage(doc["stage"]), reached).value
                moved.append((doc["stage"], stage))
                doc["stage"] = stage

        self._candidate(rows, event.candidate_id, change)
        for before, after in moved:
            if before != after:
                self._count(rows, "pipeline", "candidates", before, n=-1)
                self._count(rows, "pipeline", "candidates", after)

    def erasure_requested(self, event: Any, rows: Rows) -> None:
        self._count(rows, "erasures", "requested")
        self._count(rows, "erasures", "pending")
        self._candidate(rows, event.candidate_id, lambda doc: doc.update(erasure_requested=True))

    def candidate_erased(self, event: Any, rows: Rows) -> None:
        """An erasure done: a request for it is no longer pending (one may be done unasked,
        by the retention rule or an operator)."""
        self._count(rows, "erasures", "completed")
        asked: list[bool] = []

        def change(doc: Doc) -> None:
            asked.append(doc["erasure_requested"] and not doc["erased"])
            doc["erased"] = True

        self._candidate(rows, event.candidate_id, change)
        if asked[0]:
            self._count(rows, "erasures", "pending", n=-1)

    def tier_shredded(self, event: Any, rows: Rows) -> None:
        tier = str(event.tier)
        self._count(rows, "erasures", "tiers_shredded", tier)

        def change(doc: Doc) -> None:
            doc["shredded"] = sorted({*doc["shredded"], tier})

        self._candidate(rows, event.candidate_id, change)

    def categories_shredded(self, event: Any, rows: Rows) -> None:
        """Categories shredded on their own (the rest of their tier kept): counted by
        category."""
        for category in event.categories:
            self._count(rows, "erasures", "categories_shredded", str(category))

    # --- consents -------------------------------------------------------------------------

    def consent_requested(self, event: Any, rows: Rows) -> None:
        key = f"consent:{event.originator_id}"
        rows.put(CASE_VIEW, key, event.candidate_id, {"stage": "requested"})
        self._count(rows, "consents", "by_stage", "requested")

    def consent_stage(self, stage: str, event: Any, rows: Rows) -> None:
        before: list[str] = []

        def change(doc: Doc) -> None:
            before.append(doc["stage"])
            doc["stage"] = stage

        if self._case(rows, "consent", event.originator_id, event.candidate_id, change) is None:
            return
        self._count(rows, "consents", "by_stage", before[0], n=-1)
        self._count(rows, "consents", "by_stage", stage)
        self._count(rows, "consents", "events", stage)

    # --- investigations, checks, findings, disputes -----------------------------------------

    def investigation_planned(self, event: Any, rows: Rows) -> None:
        doc: Doc = {
            "status": InvestigationStatus.PLANNED.value,
            "suspended_from": None,
            "planned_at": event.timestamp.isoformat(),
            "completed_bucket": None,
            "checks": {
                str(c.check_id): {"type": c.check_type.value, "outcome": None, "bucket": None}
                for c in event.checks
            },
            "disputes": {},  # dispute id → the check it is about
        }
        rows.put(CASE_VIEW, f"investigation:{event.originator_id}", event.candidate_id, doc)
        self._count(rows, "pipeline", "investigations", doc["status"])
        for c in event.checks:
            self._count(rows, "checks", "planned", c.check_type.value)
        self._set_open(rows, event, doc["status"])

    def _move_status(self, rows: Rows, event: Any, status: str, doc: Doc) -> None:
        """The investigation's count moved from its old status to `status`."""
        old = doc["status"]
        doc["status"] = status
        if old != status:
            self._count(rows, "pipeline", "investigations", old, n=-1)
            self._count(rows, "pipeline", "investigations", status)
            self._set_open(rows, event, status)

    def _set_open(self, rows: Rows, event: Any, status: str) -> None:
        ident = str(event.originator_id)

        def change(doc: Doc) -> None:
            opened = set(doc["open"]) - {ident}
            doc["open"] = sorted(opened | {ident} if status in _OPEN else opened)

        self._candidate(rows, event.candidate_id, change)

    def _investigation(self, event: Any, rows: Rows, change: Callable[[Doc], None]) -> None:
        self._case(rows, "investigation", event.originator_id, event.candidate_id, change)

    def investigation_status(self, status: InvestigationStatus, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            if status is InvestigationStatus.SUSPENDED:
                doc["suspended_from"] = doc["status"]
            if status is InvestigationStatus.COMPLETED:
                bucket = hist.bucket_of(hours_between(doc["planned_at"], event.timestamp))
                doc["completed_bucket"] = bucket
                self._turnaround(rows, INVESTIGATION, bucket, 1)
                self._daily(rows, event.timestamp, "completed")
            self._move_status(rows, event, status.value, doc)

        self._investigation(event, rows, change)

    def investigation_resumed(self, event: Any, rows: Rows) -> None:
        """Work goes back to where it was suspended from (planned, or in progress)."""

        def change(doc: Doc) -> None:
            back = doc["suspended_from"] or InvestigationStatus.IN_PROGRESS.value
            self._move_status(rows, event, back, doc)

        self._investigation(event, rows, change)

    def _turnaround(self, rows: Rows, kind: str, bucket: int, n: int) -> None:
        self._change(rows, "turnaround", lambda doc: hist.add(doc.setdefault(kind, {}), bucket, n))

    def finding_recorded(self, event: Any, rows: Rows) -> None:
        f = event.finding
        self._count(rows, "checks", "findings", f.method.value, f.outcome.value)

    def check_concluded(self, event: Any, rows: Rows) -> None:
        conclusion = event.conclusion
        outcome = conclusion.outcome.value

        def change(doc: Doc) -> None:
            check = doc["checks"][str(conclusion.check_id)]
            bucket = hist.bucket_of(hours_between(doc["planned_at"], event.timestamp))
            check.update(outcome=outcome, bucket=bucket)
            self._count(rows, "checks", "concluded", check["type"], outcome)
            self._turnaround(rows, check["type"], bucket, 1)
            self._daily(rows, event.timestamp, "concluded")

        self._investigation(event, rows, change)

    def dispute_raised(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            if not doc["disputes"]:
                self._count(rows, "checks", "disputes", "investigations_disputed")
            doc["disputes"][str(event.dispute_id)] = str(event.check_id)

        self._count(rows, "checks", "disputes", "raised")
        self._investigation(event, rows, change)

    def dispute_resolved(self, event: Any, rows: Rows) -> None:
        """An upheld dispute takes the check's conclusion back (and reopens a completed
        investigation, as the domain does): its counts are taken back with it."""
        self._count(rows, "checks", "disputes", "upheld" if event.upheld else "rejected")
        if not event.upheld:
            return

        def change(doc: Doc) -> None:
            check = doc["checks"][doc["disputes"][str(event.dispute_id)]]
            if check["outcome"] is not None:
                self._count(rows, "checks", "concluded", check["type"], check["outcome"], n=-1)
                self._turnaround(rows, check["type"], check["bucket"], -1)
                check.update(outcome=None, bucket=None)
            if doc["status"] == InvestigationStatus.COMPLETED.value:
                self._turnaround(rows, INVESTIGATION, doc["completed_bucket"], -1)
                doc["completed_bucket"] = None
                self._move_status(rows, event, InvestigationStatus.IN_PROGRESS.value, doc)

        self._investigation(event, rows, change)

    # --- reports --------------------------------------------------------------------------

    def _report(self, event: Any, rows: Rows, status: str) -> None:
        def change(doc: Doc) -> None:
            old = doc["status"]
            doc["status"] = status
            if old != status:
                self._count(rows, "pipeline", "reports", old, n=-1)
                self._count(rows, "pipeline", "reports", status)

        self._case(rows, "report", event.originator_id, event.candidate_id, change)

    def report_compiled(self, event: Any, rows: Rows) -> None:
        status = ReportStatus.DRAFT.value
        key = f"report:{event.originator_id}"
        rows.put(CASE_VIEW, key, event.candidate_id, {"status": status})
        self._count(rows, "pipeline", "reports", status)

    def report_status(self, status: ReportStatus, event: Any, rows: Rows) -> None:
        self._report(event, rows, status.value)
        if status is ReportStatus.APPROVED:
            self._daily(rows, event.timestamp, "approved")

    def report_amended(self, event: Any, rows: Rows) -> None:
        self._report(event, rows, ReportStatus.DRAFT.value)
        self._count(rows, "pipeline", "report_amendments")
        self._count(rows, "checks", "report_disputes", "resolved", n=len(event.resolves))

    def report_dispute(self, what: str, event: Any, rows: Rows) -> None:
        self._count(rows, "checks", "report_disputes", what)

    def report_disclosed(self, event: Any, rows: Rows) -> None:
        self._count(rows, "pipeline", "report_disclosures")

    def legal_hold(self, n: int, event: Any, rows: Rows) -> None:
        self._count(rows, "pipeline", "legal_holds", n=n)

    # --- reads ----------------------------------------------------------------------------

    def access_recorded(self, event: Any, rows: Rows) -> None:
        outcome = str(event.outcome)
        self._count(rows, "access", "by_outcome", outcome)
        if outcome != AccessOutcome.REFUSED.value:
            return
        principal = str(event.principal)
        policies = [str(p) for p in event.policy_ids] or [NO_POLICY]
        day = day_of(event.timestamp)

        def change(doc: Doc) -> None:
            bump(doc, "total")
            tally(doc, principal, policies)
            days = doc.setdefault("days", {})
            tally(days.setdefault(day, {}), principal, policies)
            bump(days[day], "total")
            keep_recent(days)

        self._change(rows, "refusals", change)
        self._daily(rows, event.timestamp, "refused")

    def data_disclosed(self, event: Any, rows: Rows) -> None:
        self._count(rows, "access", "by_outcome", AccessOutcome.DISCLOSED.value)
