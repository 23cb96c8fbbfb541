"""The compliance dashboard: what the whole store holds, as counts, rates and percentiles.

Answered from the dashboard views alone (projections/dashboard.py): a fixed handful of rows,
read by key after the views catch up with the log, so the answer costs the same for a store of
a thousand events or a million. No personal value is in those rows, so no access decision is
taken and no access event recorded; the entry points decide who may see the dashboard at all.

Two things are not projections of the log: the chain's health (the last signed checkpoint is
a file an outside witness keeps; infra/audit/health.py reads it and passes it in) and the
projection lag (the views' position against the log's head, measured by the query itself).
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import Field

from domain.report import ReportStatus
from projections import histogram as hist
from projections.dashboard import AGGREGATES, DASHBOARD_VIEW, INVESTIGATION
from projections.listing import CandidateStage
from services.dto import Result
from services.ports import DashboardModel
from services.unit import UnitOfWork

Counts = dict[str, int]


class Turnaround(Result):
    """Hours from an investigation's plan to a check's conclusion (or, for `investigation`,
    to the investigation's completion): each percentile is the upper edge of its histogram
    bucket, never below the true value and at most 19 % above it."""

    check_type: str
    count: int
    p50_hours: float | None
    p90_hours: float | None
    p99_hours: float | None


class Pipeline(Result):
    """Each candidate, investigation and report counted once, under its current status: the
    statuses `GET /v1/candidates`, `/v1/investigations` and `/v1/reports` list them by."""

    candidates: Counts = Field(description=f"by current stage: {', '.join(CandidateStage)}")
    investigations: Counts = Field(description="by current status")
    reports: Counts = Field(description="by current status")
    reports_awaiting_review: int
    report_disclosures: int
    report_amendments: int
    legal_holds: int


class Checks(Result):
    planned: Counts = Field(description="checks planned, by check type")
    concluded: dict[str, Counts] = Field(description="current conclusions: type → outcome → n")
    findings: dict[str, Counts] = Field(description="findings: method → outcome → n")
    discrepancy_rate: float | None = Field(description="conclusions that are discrepancies")
    disputes: Counts = Field(description="raised, upheld, rejected, investigations_disputed")
    dispute_rate: float | None = Field(description="investigations disputed / planned")
    report_disputes: Counts = Field(description="raised, rejected, resolved (by amendment)")


class Consents(Result):
    by_stage: Counts = Field(description="requested, granted, withdrawn, expired: current")
    withdrawals: int
    expiries: int


class Erasures(Result):
    requested: int
    completed: int
    pending: int
    tiers_shredded: Counts = Field(description="tiers shredded by retention, by tier")
    categories_shredded: Counts = Field(
        default_factory=dict,
        description="categories shredded by retention on their own rule, by category",
    )
    retention_due: Counts = Field(description="candidates due a shred by the end of today")
    retention_due_30_days: Counts = Field(description="due within the next 30 days")


class RefusalDay(Result):
    """One day's refused reads: what a drill-down to the access events needs (the day, the
    principals, the deciding policies)."""

    day: date
    total: int
    by_principal: Counts
    by_policy: Counts


class Refusals(Result):
    total: int
    by_principal: Counts
    by_policy: Counts
    days: list[RefusalDay] = Field(max_length=90, description="the last 90 days with refusals")


class DailyPoint(Result):
    day: date
    events: int
    concluded: int
    completed: int
    approved: int
    refused: int


class ChainHealth(Result):
    """The last signed checkpoint of the chain, as kept for the outside witness. Nothing
    records a verification yet: `last_verified_at` stays None until something does."""

    last_checkpoint_position: int | None = Field(
        default=None, description="the last record it covers (none: no checkpoint kept)"
    )
    last_checkpoint_size: int | None = Field(
        default=None,
        description="the records its signed tree holds (a checkpoint note; none for the JSON "
        "checkpoints kept before, which sign a position)",
    )
    last_checkpoint_at: datetime | None = Field(
        default=None, description="when it was signed (a note: when it was kept)"
    )
    last_checkpoint_age_seconds: float | None = None
    events_since_checkpoint: int | None = None
    last_verified_at: datetime | None = None


class ProjectionLag(Result):
    head: int = Field(description="the log's last position")
    position_before: int = Field(description="where the dashboard stood when asked")
    behind: int = Field(description="events it had not applied yet when asked")
    catch_up_ms: float = Field(description="time spent applying them")


class DashboardSummary(Result):
    generated_at: datetime
    lag: ProjectionLag
    pipeline: Pipeline
    checks: Checks
    turnaround: list[Turnaround]
    consents: Consents
    erasures: Erasures
    refusals: Refusals
    access: Counts = Field(description="reads and hand-overs by outcome")
    daily: list[DailyPoint] = Field(max_length=90)
    chain: ChainHealth


class DashboardUnavailableError(RuntimeError):
    """A bug, not a refusal: this application was wired without the dashboard's views."""


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class DashboardQueries(UnitOfWork):
    def _dashboard(self) -> DashboardModel:
        if self.dashboard_views is None:
            raise DashboardUnavailableError("this application keeps no dashboard views")
        return self.dashboard_views

    def dashboard_summary(
        self, chain: ChainHealth | None = None, now: datetime | None = None
    ) -> DashboardSummary:
        """The dashboard from its own rows, caught up with the log first: a fixed number of
        key lookups whatever the store's size. `chain` is the chain's health as the caller
        found it (the checkpoints are kept outside the store); `now` the moment retention
        and ages are judged at (the application's clock by default)."""
        views = self._dashboard()
        now = now or self.clock()
        before = views.position
        started = time.perf_counter()
        position = views.catch_up()
        took = (time.perf_counter() - started) * 1000
        head = max(self.recorder.max_notification_id() or 0, position)
        rows = {key: views.get(DASHBOARD_VIEW, key) or {} for key in _KEYS}
        chain = chain or ChainHealth()
        return DashboardSummary(
            generated_at=now,
            lag=ProjectionLag(
                head=head,
                position_before=before,
                behind=max(head - before, 0),
                catch_up_ms=round(took, 3),
            ),
            pipeline=_pipeline(rows["pipeline"]),
            checks=_checks(rows["checks"], rows["pipeline"]),
            turnaround=_turnaround(rows["turnaround"]),
            consents=_consents(rows["consents"]),
            erasures=self._erasures(rows["erasures"], rows["retention"], now),
            refusals=_refusals(rows["refusals"]),
            access=dict(rows["access"].get("by_outcome", {})),
            daily=_daily(rows["daily"]),
            chain=_chain(chain, head, now),
        )

    def _erasures(self, row: dict[str, Any], retention: dict[str, Any], now: datetime) -> Erasures:
        """Retention due from the quiet candidates' days and the configured periods: a
        candidate counts once the tier's period has passed by the end of today (UTC)."""
        today = now.date()
        due: Counts = {}
        soon: Counts = {}
        for tier, days in self.retention.days.items():
            by_day: Counts = retention.get("quiet", {}).get(tier.value, {})
            for day, n in by_day.items():
                at = date.fromisoformat(day) + timedelta(days=days)
                if at <= today:
                    due[tier.value] = due.get(tier.value, 0) + n
                if at <= today + timedelta(days=30):
                    soon[tier.value] = soon.get(tier.value, 0) + n
        requested, completed = row.get("requested", 0), row.get("completed", 0)
        return Erasures(
            requested=requested,
            completed=completed,
            pending=row.get("pending", 0),
            tiers_shredded=dict(row.get("tiers_shredded", {})),
            categories_shredded=dict(row.get("categories_shredded", {})),
            retention_due=due,
            retention_due_30_days=soon,
        )


_KEYS = AGGREGATES


def _pipeline(row: dict[str, Any]) -> Pipeline:
    reports: Counts = dict(row.get("reports", {}))
    return Pipeline(
        candidates=dict(row.get("candidates", {})),
        investigations=dict(row.get("investigations", {})),
        reports=reports,
        reports_awaiting_review=reports.get(ReportStatus.DRAFT.value, 0),
        report_disclosures=row.get("report_disclosures", 0),
        report_amendments=row.get("report_amendments", 0),
        legal_holds=row.get("legal_holds", 0),
    )


def _checks(row: dict[str, Any], pipeline: dict[str, Any]) -> Checks:
    concluded: dict[str, Counts] = {k: dict(v) for k, v in row.get("concluded", {}).items()}
    outcomes = [n for by_outcome in concluded.values() for n in by_outcome.values()]
    discrepancies = sum(by.get("discrepancy", 0) for by in concluded.values())
    disputes: Counts = dict(row.get("disputes", {}))
    planned = sum(pipeline.get("investigations", {}).values())
    return Checks(
        planned=dict(row.get("planned", {})),
        concluded=concluded,
        findings={k: dict(v) for k, v in row.get("findings", {}).items()},
        discrepancy_rate=_rate(discrepancies, sum(outcomes)),
        disputes=disputes,
        dispute_rate=_rate(disputes.get("investigations_disputed", 0), planned),
        report_disputes=dict(row.get("report_disputes", {})),
    )


def _turnaround(row: dict[str, Any]) -> list[Turnaround]:
    kinds = [*sorted(k for k in row if k != INVESTIGATION), INVESTIGATION]
    return [
        Turnaround(
            check_type=kind,
            count=hist.total(row.get(kind, {})),
            p50_hours=_rounded(hist.percentile(row.get(kind, {}), 0.5)),
            p90_hours=_rounded(hist.percentile(row.get(kind, {}), 0.9)),
            p99_hours=_rounded(hist.percentile(row.get(kind, {}), 0.99)),
        )
        for kind in kinds
    ]


def _rounded(hours: float | None) -> float | None:
    return None if hours is None else round(hours, 3)


def _consents(row: dict[str, Any]) -> Consents:
    events: Counts = row.get("events", {})
    return Consents(
        by_stage=dict(row.get("by_stage", {})),
        withdrawals=events.get("withdrawn", 0),
        expiries=events.get("expired", 0),
    )


def _refusals(row: dict[str, Any]) -> Refusals:
    return Refusals(
        total=row.get("total", 0),
        by_principal=dict(row.get("by_principal", {})),
        by_policy=dict(row.get("by_policy", {})),
        days=[
            RefusalDay(
                day=date.fromisoformat(day),
                total=found.get("total", 0),
                by_principal=dict(found.get("by_principal", {})),
                by_policy=dict(found.get("by_policy", {})),
            )
            for day, found in sorted(row.get("days", {}).items())
        ],
    )


def _daily(row: dict[str, Any]) -> list[DailyPoint]:
    return [
        DailyPoint(
            day=date.fromisoformat(day),
            events=found.get("events", 0),
            concluded=found.get("concluded", 0),
            completed=found.get("completed", 0),
            approved=found.get("approved", 0),
            refused=found.get("refused", 0),
        )
        for day, found in sorted(row.get("days", {}).items())
    ]


def _chain(chain: ChainHealth, head: int, now: datetime) -> ChainHealth:
    """The caller's checkpoint, with its age and the events written since, as of now."""
    position = chain.last_checkpoint_position
    age = (now - chain.last_checkpoint_at).total_seconds() if chain.last_checkpoint_at else None
    return chain.model_copy(
        update={
            "last_checkpoint_age_seconds": age,
            "events_since_checkpoint": None if position is None else max(head - position, 0),
        }
    )
