"""`audit check`: the stored history judged rule by rule. Each seeded violation is an event
written around the domain (its state-assigning method called without the rule in front of it),
the way old code, an import or a compromised writer would."""

from __future__ import annotations

from uuid import uuid4

from domain.access import Access
from domain.check import Conclusion, Finding, Method, Outcome, Source, SourceRole
from domain.classification import PersonalField
from domain.consent import Consent
from domain.investigation import Investigation
from domain.report import Disclosure, Report
from domain.subject import recorded_at
from infra.demo import tell_story
from services.access import Role
from services.application import Backcheck
from services.compliance import StreamCheck, Violation, check_stream
from services.dto import DisputeReport, PlanInvestigation, PlannedCheckIn, ReadProfiles
from tests import story as s


def violations(app: Backcheck) -> list[Violation]:
    return list(app.violations())


def write_around_the_domain(app: Backcheck, *aggregates: object) -> int:
    app.save(*aggregates)  # type: ignore[arg-type]  # no unit of work, no policies, no rules
    position = app.recorder.max_notification_id()
    assert position is not None
    return position


def test_a_clean_demo_store_has_no_violations(sqlite_app: Backcheck) -> None:
    tell_story(sqlite_app)

    assert violations(sqlite_app) == []
    assert sqlite_app.recorder.max_notification_id() > 40  # type: ignore[operator]


def test_the_check_over_recorded_reads_holds_the_cases_not_the_reads(
    sqlite_app: Backcheck,
) -> None:
    """Issue 19: a store in use is mostly access records; the check judges each and keeps
    none, so what it holds is the same however many reads the store has recorded."""
    app = sqlite_app
    stories = [s.consented_candidate(app, f"Candidate {n}") for n in range(4)]
    before = StreamCheck()
    assert list(check_stream(app.replay(), before)) == []
    for page in range(50):
        app.read_profiles(
            ReadProfiles(
                candidate_ids=[story.candidate_id for story in stories],
                principal=s.RECRUITER if page % 2 else "growth:analyst",
                role=Role.RECRUITER,
                purpose=s.PURPOSE if page % 2 else "marketing",  # half of them refused
            )
        )
    after = StreamCheck()

    assert list(check_stream(app.replay(), after)) == []

    reads = [e for _, e in app.replay() if isinstance(e, Access.Recorded)]
    assert len(reads) == 200
    assert after.held.keys() == before.held.keys()
    assert all(story.consent_id in after.held for story in stories)
    assert not any(isinstance(a, Access) for a in after.held.values())


def test_a_check_started_without_active_consent_is_found(sqlite_app: Backcheck) -> None:
    app = sqlite_app
    candidate = s.register(app)
    consent_id = s.request_consent(app, candidate)  # requested, never granted
    result = app.plan_investigation(
        PlanInvestigation(
            candidate_id=candidate,
            consent_id=consent_id,
            purpose=s.PURPOSE,
            checks=[PlannedCheckIn(check_type="employment", methods=[Method.PHONE])],
            investigators=[s.INVESTIGATOR],
            due_by=app.clock(),
            actor=s.RECRUITER,
        )
    )
    inv = app.load(Investigation, result.investigation_id)
    inv._notify(s.notice(), s.RECRUITER)
    inv._start(app.load(Consent, consent_id).scope_at(app.clock()), s.RECRUITER)
    position = write_around_the_domain(app, inv)

    (found,) = violations(app)

    assert found.position == position
    assert found.rule == "check started without active consent covering it"
    assert "not active" in found.detail
    assert found.candidate_id == candidate


def test_a_conclusion_without_the_required_sources_is_found(sqlite_app: Backcheck) -> None:
    app = sqlite_app
    story = s.investigation_under_way(app)
    one_witness = s.record_finding(app, story, SourceRole.PEER, Outcome.DISCREPANCY)
    inv = app.load(Investigation, story.investigation)
    inv._conclude(Conclusion(story.check_id, Outcome.DISCREPANCY, (one_witness,), s.INVESTIGATOR))
    position = write_around_the_domain(app, inv)

    (found,) = violations(app)

    assert (found.position, found.rule) == (position, "conclusion without the required sources")
    assert "peer" in found.detail


def test_a_report_disclosed_with_an_open_dispute_is_found(sqlite_app: Backcheck) -> None:
    app = sqlite_app
    story = s.shared_report(app)
    app.dispute_report(
        DisputeReport(
            report_id=story.report,
            check_id=story.check_id,
            statement="wrong dates",
            actor=s.CANDIDATE,
        )
    )
    report = app.load(Report, story.report)
    report._disclose(
        Disclosure("hiring-manager", "hiring manager", s.PURPOSE, 1, s.RECRUITER),
        s.CALLER,
        "recruiter",
    )
    position = write_around_the_domain(app, report)

    (found,) = violations(app)

    assert found.position == position
    assert found.rule == "report disclosed with an open dispute or outside consent"
    assert "open dispute" in found.detail


def test_a_report_disclosed_to_an_organisation_the_consent_does_not_name_is_found(
    sqlite_app: Backcheck,
) -> None:
    app = sqlite_app
    story = s.shared_report(app)
    report = app.load(Report, story.report)
    with recorded_at(app.clock()):  # while the consent is in force: only the recipient is wrong
        report._disclose(
            Disclosure(
                "analyst",
                "buyer",
                s.PURPOSE,
                1,
                s.RECRUITER,
                organisation=PersonalField(
                    "recipient_organisation", "user.organisation", "Data Broker Ltd"
                ),
            ),
            s.CALLER,
            "recruiter",
        )
    position = write_around_the_domain(app, report)

    (found,) = violations(app)

    assert found.position == position
    assert found.rule == "report disclosed with an open dispute or outside consent"
    assert "not a third party named in consent" in found.detail
    # the report of it names no organisation: the candidate's personal data stays sealed
    assert "Data Broker" not in found.detail


def test_a_review_by_the_reports_own_author_is_found(sqlite_app: Backcheck) -> None:
    app = sqlite_app
    story = s.compiled_report(app)
    report = app.load(Report, story.report)
    (author,) = report.authors
    report._approve(
        author, PersonalField("comments", "user.employment.evaluation", "looks fine to me")
    )
    position = write_around_the_domain(app, report)

    (found,) = violations(app)

    assert (found.position, found.rule) == (position, "review by the report's own author")


def test_a_finding_recorded_after_consent_was_withdrawn_is_found(sqlite_app: Backcheck) -> None:
    app = sqlite_app
    story = s.investigation_under_way(app)
    consent = app.load(Consent, story.consent_id)
    consent._withdraw(
        PersonalField("reason", "user.statement", "changed my mind"),
        app.clock(),
        s.CANDIDATE,
        s.CALLER,
    )
    write_around_the_domain(app, consent)  # the suspension policy never ran
    inv = app.load(Investigation, story.investigation)
    inv._record_finding(
        Finding(
            uuid4(),
            story.check_id,
            Source.of(SourceRole.HR, "ref-1", s.EMPLOYER),
            Method.PHONE,
            Outcome.CONFIRMED,
            s.INVESTIGATOR,
        )
    )
    position = write_around_the_domain(app, inv)

    (found,) = violations(app)

    assert (found.position, found.rule) == (position, "finding outside consent or scope")
    assert "withdrawn" in found.detail


def test_a_break_glass_read_without_active_consent_is_found(sqlite_app: Backcheck) -> None:
    """Break glass opens values to compliance only under an active consent naming the purpose,
    as the decision point's forbid policies say: a justification is recorded, it is no waiver."""
    app = sqlite_app
    candidate = s.register(app)  # no consent asked, none given
    read = Access.record(
        candidate_id=candidate,
        principal="compliance:zhou",
        role="compliance",
        purpose="looking into a complaint",
        view="profile",
        returned=("user.name",),
        withheld=(),
        outcome="allowed",
        policy_ids=("compliance-reads-values-only-with-recorded-break-glass",),
        policy_set_hash="0" * 64,
        consent_ids=(),
        break_glass="a complaint from the candidate needs the record",
        authentication="operator",
    )
    position = write_around_the_domain(app, read)

    (found,) = violations(app)
    assert (found.position, found.rule) == (position, "access outside consent")
