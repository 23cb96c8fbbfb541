"""The dashboard on each backend: its numbers equal counts taken independently from the events
and the aggregates; built incrementally it equals the same projection rebuilt from the log (and
run over the whole log in memory); its pipeline counts each candidate, investigation and report
once, under the status the lists give it; a store kept by the previous version is rebuilt; no
personal value of a story reaches any of its rows; turnaround percentiles bound the true ones;
retention due agrees with the retention rule."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import Tracking

from domain.access import AccessOutcome
from domain.classification import ERASED_VALUE, PersonalField
from domain.errors import AccessRefusedError
from domain.investigation import Investigation, InvestigationStatus
from domain.report import Report, ReportStatus
from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from infra.views.kept import DASHBOARD
from infra.views.runner import ViewRunner
from projections.dashboard import CASE_VIEW, DASHBOARD_VIEW, NO_SUBJECT, Dashboard
from projections.listing import CandidateStage
from projections.rows import MemoryRows
from projections.rows import Rows as ViewRows
from services.access import Role
from services.application import Backcheck
from services.dashboard import DashboardSummary
from services.dto import ReadProfile, ResumeInvestigation, RunRetention
from services.lists import MAX_LIMIT, ListCandidates, ListInvestigations, ListReports
from tests import story as s
from tests.conftest import FakeClock
from tests.listing_story import story_of, withdraw

Rows = list[tuple[str, str, str, dict[str, Any]]]


def dashboard_of(app: Backcheck) -> ViewRunner:
    assert isinstance(app.dashboard_views, ViewRunner)
    return app.dashboard_views


def reference(app: Backcheck) -> Rows:
    """The dashboard projection run over the whole log at once, into memory."""
    rows, projection = MemoryRows(), Dashboard()
    for position, event in app.replay():
        projection.process(event, rows, position)
    return list(rows.dump())


def kind(event: Any) -> str:
    """An event's class as the domain names it (`Candidate.Registered`): independent of the
    read side's own table of event classes."""
    return type(event).__qualname__


def plaintexts(app: Backcheck) -> set[str]:
    """Every personal value the stored events still hold readably (long enough to be telling)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, PersonalField):
            if value.value != ERASED_VALUE and len(value.value) >= 5:
                found.add(value.value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)
        elif hasattr(value, "__dataclass_fields__"):
            for name in value.__dataclass_fields__:
                walk(getattr(value, name))

    for _, event in app.replay():
        walk(vars(event))
    return found


def refused_read(app: Backcheck, candidate_id: UUID, principal: str) -> None:
    with pytest.raises(AccessRefusedError):
        app.read_profile(
            ReadProfile(
                candidate_id=candidate_id,
                principal=principal,
                role=Role.RECRUITER,
                purpose="marketing",
            )
        )


def test_the_summary_after_the_demo_story_equals_counts_taken_from_the_events(
    demo_app: Backcheck,
) -> None:
    summary = demo_app.dashboard_summary()

    events = [event for _, event in demo_app.replay()]
    kinds = Counter(kind(e) for e in events)
    refused = [
        e
        for e in events
        if kind(e) == "Access.Recorded" and e.outcome == AccessOutcome.REFUSED.value
    ]
    investigations = [
        demo_app.load(Investigation, e.originator_id)
        for e in events
        if kind(e) == "Investigation.Planned"
    ]
    reports = [
        demo_app.load(Report, e.originator_id) for e in events if kind(e) == "Report.Compiled"
    ]
    concluded = Counter(
        (inv.checks[c.check_id].check_type.value, c.outcome.value)
        for inv in investigations
        for c in inv.conclusions.values()
    )
    findings = Counter(
        (e.finding.method.value, e.finding.outcome.value)
        for e in events
        if kind(e) == "Investigation.FindingRecorded"
    )

    assert summary.lag.head == len(events)
    assert summary.lag.position_before + summary.lag.behind == len(events)
    assert demo_app.dashboard_summary().lag.behind == 0  # caught up by the first
    # each candidate once, under their stage: the erased ones (erasure is final) among them
    assert sum(summary.pipeline.candidates.values()) == kinds["Candidate.Registered"]
    assert summary.pipeline.candidates.get("erased", 0) == kinds["Candidate.Erased"] > 0
    assert summary.pipeline.investigations == Counter(i.status.value for i in investigations)
    assert summary.pipeline.reports == Counter(r.status.value for r in reports)
    assert summary.pipeline.reports_awaiting_review == sum(
        r.status is ReportStatus.DRAFT for r in reports
    )
    assert summary.pipeline.report_disclosures == kinds["Report.Disclosed"]
    assert {
        (t, o): n for t, by in summary.checks.concluded.items() for o, n in by.items()
    } == concluded
    assert {
        (m, o): n for m, by in summary.checks.findings.items() for o, n in by.items()
    } == findings
    assert sum(concluded.values()) > 0
    assert summary.checks.discrepancy_rate == round(
        sum(n for (_, o), n in concluded.items() if o == "discrepancy") / sum(concluded.values()),
        4,
    )
    assert summary.checks.disputes.get("raised", 0) == kinds["Investigation.DisputeRaised"]
    assert summary.consents.withdrawals == kinds["Consent.Withdrawn"]
    assert summary.consents.expiries == kinds["Consent.Expired"]
    assert summary.erasures.completed == kinds["Candidate.Erased"]
    assert summary.refusals.total == len(refused) > 0
    assert summary.refusals.by_principal == Counter(e.principal for e in refused)
    assert summary.refusals.by_policy == Counter(p for e in refused for p in e.policy_ids)
    assert [(d.day, d.total) for d in summary.refusals.days] == sorted(
        Counter(e.timestamp.date() for e in refused).items()
    )
    assert summary.access == Counter(
        e.outcome for e in events if kind(e) == "Access.Recorded"
    ) + Counter({"disclosed": kinds["DataDisclosure.DataDisclosed"]})
    assert sum(p.events for p in summary.daily) == len(events)
    checks_done = [t for t in summary.turnaround if t.check_type != "investigation"]
    assert sum(t.count for t in checks_done) == sum(concluded.values())


def test_the_dashboard_built_as_events_arrive_equals_it_rebuilt_from_the_log(
    demo_app: Backcheck,
) -> None:
    runner = dashboard_of(demo_app)
    runner.catch_up()
    built = runner.store.dump()
    assert {view for view, *_ in built} == {DASHBOARD_VIEW, CASE_VIEW}
    assert built == reference(demo_app)

    runner.rebuild(batch=7)  # batches that cut the story anywhere
    assert runner.store.dump() == built
    assert demo_app.dashboard_summary().model_dump(exclude={"lag", "generated_at"}) == (
        demo_app.dashboard_summary().model_dump(exclude={"lag", "generated_at"})
    )


def listed(app: Backcheck) -> dict[str, Counter[str]]:
    """How many items each status's list holds (`GET /v1/candidates?status=` and its
    siblings), as the lists' own use cases answer; the story's lists fit in a page."""
    pages: dict[str, dict[str, Any]] = {
        "candidates": {
            stage.value: app.list_candidates(
                ListCandidates(status=stage, limit=MAX_LIMIT), Role.RECRUITER
            )
            for stage in CandidateStage
        },
        "investigations": {
            status.value: app.list_investigations(
                ListInvestigations(status=status, limit=MAX_LIMIT), Role.INVESTIGATOR
            )
            for status in InvestigationStatus
        },
        "reports": {
            status.value: app.list_reports(
                ListReports(status=status, limit=MAX_LIMIT), Role.REVIEWER
            )
            for status in ReportStatus
        },
    }
    counts: dict[str, Counter[str]] = {}
    for what, by_status in pages.items():
        assert all(page.next_cursor is None for page in by_status.values())
        counts[what] = Counter({k: len(page.items) for k, page in by_status.items() if page.items})
    return counts


def test_the_pipeline_counts_each_candidate_once_under_the_stage_the_candidates_list_gives(
    settings: Settings, clock: FakeClock
) -> None:
    app = build_app(settings, clock=clock)
    try:
        # given candidates left at every stage (reported and erased among them), through the
        # use cases; and one whose investigation was suspended by a withdrawal, then resumed
        # in progress under a new consent: investigating again
        told = story_of(app, clock)
        back = s.investigation_under_way(app, "Zq Resumed")
        withdraw(app, back.consent_id)
        renewed = s.request_consent(app, back.candidate_id)
        s.grant_consent(app, renewed)
        app.resume_investigation(
            ResumeInvestigation(
                investigation_id=back.investigation, consent_id=renewed, actor=s.RECRUITER
            )
        )
        told.stages[back.candidate_id] = CandidateStage.INVESTIGATING
        registered = sum(kind(e) == "Candidate.Registered" for _, e in app.replay())

        # when the dashboard is asked, and asked again once rebuilt from the log
        pipeline = app.dashboard_summary().pipeline
        lists = listed(app)
        runner = dashboard_of(app)
        built = runner.store.dump()
        runner.rebuild(batch=5)
        rebuilt = runner.store.dump()
        again = app.dashboard_summary().pipeline
        whole_log = reference(app)
    finally:
        app.close()

    # then each candidate is counted once, under the stage the story left them at
    assert set(told.stages.values()) == set(CandidateStage)
    assert registered == len(told.stages)
    assert pipeline.candidates == Counter(stage.value for stage in told.stages.values())
    assert sum(pipeline.candidates.values()) == registered
    # the same counts the lists give, investigations and reports too
    assert pipeline.candidates == lists["candidates"]
    assert pipeline.investigations == lists["investigations"]
    assert pipeline.reports == lists["reports"]
    assert sum(pipeline.investigations.values()) == sum(lists["investigations"].values()) > 0
    assert pipeline.reports_awaiting_review == lists["reports"][ReportStatus.DRAFT.value] == 2
    # and the same rebuilt from the log, as kept while the events came
    assert rebuilt == built == whole_log
    assert again == pipeline


class KeptByVersion2:
    """The dashboard's pipeline as version 2 of the projection kept it: every registration
    counted for good (the row as an existing store holds it)."""

    version = 2
    shared_rows = True

    def process(self, event: Any, rows: ViewRows, position: int) -> None:
        if kind(event) == "Candidate.Registered":
            doc = rows.get(DASHBOARD_VIEW, "pipeline") or {"candidates": {}}
            doc["candidates"]["registered"] = doc["candidates"].get("registered", 0) + 1
            rows.put(DASHBOARD_VIEW, "pipeline", NO_SUBJECT, doc)


def test_a_dashboard_kept_by_the_previous_version_is_rebuilt_on_opening(
    settings: Settings, clock: FakeClock
) -> None:
    # given a store whose dashboard was kept by version 2 (one candidate reported, one new)
    app = build_app(settings, clock=clock)
    try:
        s.compiled_report(app, "Zq Reported")
        s.register(app, "Zq New")
        events = list(app.replay())
        runner = dashboard_of(app)
        runner.catch_up()  # nothing left for this version to apply on closing
        store = runner.store
        store.clear()
        old = DASHBOARD.tracking_name(app.name, KeptByVersion2.version)
        store.apply(events, Tracking(old, events[-1][0]), KeptByVersion2())
        assert [(view, key, row) for view, key, _, row in store.dump()] == [
            (DASHBOARD_VIEW, "pipeline", {"candidates": {"registered": 2}})
        ]
    finally:
        app.close()
    assert Dashboard.version > KeptByVersion2.version

    # when it is opened by this version
    app = build_app(settings, clock=clock)
    try:
        pipeline = app.dashboard_summary().pipeline
        kept = dashboard_of(app).store.dump()
        whole_log = reference(app)
    finally:
        app.close()

    # then its rows are this version's, rebuilt from the log
    assert pipeline.candidates == {"registered": 1, "reported": 1}
    assert kept == whole_log


def test_no_personal_value_of_a_story_enters_a_dashboard_row(
    settings: Settings, clock: FakeClock
) -> None:
    app = build_app(settings, clock=clock)
    try:
        st = s.completed_investigation(app, "Zhang Xiaoming")
        refused_read(app, st.candidate_id, "hr:someone.else")
        tell_story(app)
        values = plaintexts(app)
        assert "Zhang Xiaoming" in values
        app.dashboard_summary()
        raw = orjson.dumps(dashboard_of(app).store.dump()).decode()
        leaked = sorted(v for v in values if v in raw)
        assert leaked == []
        if settings.backend == "sqlite":
            files = settings.dashboard_path.read_bytes()
            assert not [v for v in values if v.encode() in files]
    finally:
        app.close()


def test_turnaround_percentiles_bound_the_true_ones(settings: Settings, clock: FakeClock) -> None:
    app = build_app(settings, clock=clock)
    try:
        hours = [float(h) for h in range(1, 21)]  # 1 h .. 20 h from plan to conclusion
        for h in hours:
            st = s.investigation_under_way(app, "Wang Wu")
            clock.advance(hours=h)
            s.confirm_check(app, st)
            clock.advance(hours=-h)
        summary = app.dashboard_summary()
    finally:
        app.close()
    (employment,) = [t for t in summary.turnaround if t.check_type == "employment"]
    assert employment.count == len(hours)
    step = 2 ** (1 / 4)
    for reported, true in (
        (employment.p50_hours, 10.0),  # nearest rank: the 10th of 20
        (employment.p90_hours, 18.0),
        (employment.p99_hours, 20.0),
    ):
        assert reported is not None
        assert true <= reported <= true * step


def test_retention_due_agrees_with_the_retention_rule_and_shredding_moves_it(
    demo_app: Backcheck, clock: FakeClock
) -> None:
    assert demo_app.dashboard_summary().erasures.retention_due == {}
    later = clock() + timedelta(days=800)

    summary = demo_app.dashboard_summary(now=later)

    due = Counter(d.tier for d in demo_app.retention_due(later))
    assert sum(due.values()) > 0
    assert summary.erasures.retention_due == due
    clock.advance(days=800)
    result = demo_app.run_retention(RunRetention(dry_run=False))
    after = demo_app.dashboard_summary()
    assert after.erasures.tiers_shredded == Counter(d.tier for d in result.shredded)
    assert after.erasures.retention_due == Counter(d.tier for d in result.held)


def test_a_new_refusal_shows_at_once_and_another_process_writes_show_as_lag(
    settings: Settings, clock: FakeClock
) -> None:
    app = build_app(settings, clock=clock)
    other = build_app(settings, clock=clock)
    try:
        st = s.consented_candidate(app)
        before = app.dashboard_summary()
        refused_read(app, st.candidate_id, "hr:nosy")
        after = app.dashboard_summary()
        assert after.refusals.total == before.refusals.total + 1
        assert after.refusals.by_principal.get("hr:nosy") == 1
        assert after.lag.behind == 1  # the refusal's access record, applied on asking

        s.register(other, "Zhao Liu")
        s.register(other, "Qian Qi")
        seen: DashboardSummary = app.dashboard_summary()
        assert seen.lag.behind == 2
        assert seen.pipeline.candidates == {"consented": 1, "registered": 2}
    finally:
        other.close()
        app.close()
