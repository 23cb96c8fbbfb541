"""The application through its use cases, on each event store backend.

One contract, run on SQLite and on PostgreSQL by subclassing (as the eventsourcing library tests
its recorders): the same commands must leave the same facts in either store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from domain.candidate import ClaimKind
from domain.check import CheckType, Outcome, SourceRole
from domain.errors import (
    CandidateErasedError,
    CandidateNotNotifiedError,
    ChecksStillOpenError,
    ConsentDoesNotCoverCheckError,
    ConsentGrantExceedsRequestError,
    ConsentNotActiveError,
    ConsentNotExpiredError,
    ConsentRequiredForCategoryError,
    DomainError,
    InvestigationStateError,
    LegalHoldError,
    NegativeConclusionNeedsSecondSourceError,
    OpenDisputeError,
    ProhibitedCategoryError,
    PurposeNotConsentedError,
    RefereeNotPermittedError,
    SelfReviewError,
)
from domain.principal import portal_name, principal_id
from services.application import Backcheck
from services.dto import (
    ClaimIn,
    CompileReport,
    CompleteInvestigation,
    ConcludeCheck,
    DestroyReport,
    ExpireConsent,
    LegalHold,
    PersonalFieldIn,
    RaiseDispute,
    RequestConsent,
    RequestErasure,
    ResumeInvestigation,
    ReviewReport,
    ShareReport,
    StartInvestigation,
    SubmitClaims,
    WithdrawConsent,
)
from services.errors import AggregateMissingError
from tests import story
from tests.conftest import FakeClock
from tests.story import CANDIDATE, INVESTIGATOR, RECRUITER, REVIEWER, VALID_FOR, Story

# --- refusals: each given a story, a command that breaks one rule, and what it must not touch --


@dataclass(frozen=True)
class Refusal:
    name: str
    given: Callable[[Backcheck], Story]
    command: Callable[[Backcheck, Story], object]
    error: type[DomainError]
    untouched: Callable[[Story], Iterable[UUID]]


def requested_consent(app: Backcheck) -> Story:
    candidate_id = story.register(app)
    return Story(candidate_id, story.request_consent(app, candidate_id))


def erased_candidate(app: Backcheck) -> Story:
    s = story.consented_candidate(app)
    app.request_erasure(
        RequestErasure(candidate_id=s.candidate_id, reason="not hired", actor=CANDIDATE)
    )
    return s


def planned_unnotified(app: Backcheck) -> Story:
    return story.plan(app, story.consented_candidate(app))


def planned_criminal_check_without_consent_for_it(app: Backcheck) -> Story:
    s = story.plan(app, story.consented_candidate(app), CheckType.CRIMINAL_RECORD)
    story.notify(app, s)
    return s


def one_discrepancy_recorded(app: Backcheck) -> Story:
    s = story.investigation_under_way(app)
    story.record_finding(app, s, SourceRole.DIRECT_SUPERVISOR, Outcome.DISCREPANCY)
    return s


def two_checks_one_concluded(app: Backcheck) -> Story:
    s = story.plan(app, story.consented_candidate(app), CheckType.EMPLOYMENT, CheckType.REFERENCE)
    story.notify(app, s)
    story.start(app, s)
    story.confirm_check(app, s, s.check_ids[0])
    return s


def completed_and_disputed(app: Backcheck) -> Story:
    s = story.completed_investigation(app)
    app.raise_dispute(
        RaiseDispute(
            investigation_id=s.investigation,
            check_id=s.check_id,
            statement="I left in 2021, not 2022",
            actor=CANDIDATE,
        )
    )
    return s


def approved_on_hold(app: Backcheck) -> Story:
    s = story.approved_report(app)
    app.place_legal_hold(LegalHold(report_id=s.report, reason="tribunal", actor="legal:he.min"))
    return s


def claim_of(category: str) -> ClaimIn:
    return ClaimIn(
        kind=ClaimKind.PERSONAL,
        fields=[PersonalFieldIn(name="detail", category=category, value="anything")],
    )


REFUSALS = [
    Refusal(
        "prohibited-claim",
        story.consented_candidate,
        lambda app, s: app.submit_claims(
            SubmitClaims(
                candidate_id=s.candidate_id,
                claims=[claim_of("user.demographic.religious_belief")],
                actor=RECRUITER,
            )
        ),
        ProhibitedCategoryError,
        lambda s: [s.candidate_id],
    ),
    Refusal(
        "claim-after-erasure",
        erased_candidate,
        lambda app, s: app.submit_claims(
            SubmitClaims(
                candidate_id=s.candidate_id, claims=[claim_of("user.education")], actor=RECRUITER
            )
        ),
        CandidateErasedError,
        lambda s: [s.candidate_id],
    ),
    Refusal(
        "consent-request-for-prohibited-data",
        story.consented_candidate,
        lambda app, s: app.request_consent(
            RequestConsent(
                candidate_id=s.candidate_id,
                terms=story.terms_in(categories=["user.health.blood_type"]),
                actor=RECRUITER,
            )
        ),
        ProhibitedCategoryError,
        lambda s: [s.candidate_id, s.consent_id],
    ),
    Refusal(
        "grant-wider-than-request",
        requested_consent,
        lambda app, s: story.grant_consent(
            app, s.consent_id, story.terms_in(purposes=[story.PURPOSE, "marketing"])
        ),
        ConsentGrantExceedsRequestError,
        lambda s: [s.consent_id],
    ),
    Refusal(
        "expire-before-the-window-ends",
        story.consented_candidate,
        lambda app, s: app.expire_consent(ExpireConsent(consent_id=s.consent_id, actor=RECRUITER)),
        ConsentNotExpiredError,
        lambda s: [s.consent_id],
    ),
    Refusal(
        "start-before-notice",
        planned_unnotified,
        story.start,
        CandidateNotNotifiedError,
        lambda s: [s.investigation, s.consent_id],
    ),
    Refusal(
        "start-without-consent-for-every-check",
        planned_criminal_check_without_consent_for_it,
        story.start,
        ConsentDoesNotCoverCheckError,
        lambda s: [s.investigation, s.consent_id],
    ),
    Refusal(
        "finding-from-a-referee-not-consented",
        story.investigation_under_way,
        lambda app, s: story.record_finding(app, s, SourceRole.SUBORDINATE),
        RefereeNotPermittedError,
        lambda s: [s.investigation],
    ),
    Refusal(
        "discrepancy-on-one-witness",
        one_discrepancy_recorded,
        lambda app, s: app.conclude_check(
            ConcludeCheck(
                investigation_id=s.investigation,
                check_id=s.check_id,
                outcome=Outcome.DISCREPANCY,
                actor=INVESTIGATOR,
            )
        ),
        NegativeConclusionNeedsSecondSourceError,
        lambda s: [s.investigation],
    ),
    Refusal(
        "complete-with-a-check-open",
        two_checks_one_concluded,
        lambda app, s: app.complete_investigation(
            CompleteInvestigation(investigation_id=s.investigation, actor=INVESTIGATOR)
        ),
        ChecksStillOpenError,
        lambda s: [s.investigation],
    ),
    Refusal(
        "compile-with-an-open-dispute",
        completed_and_disputed,
        lambda app, s: app.compile_report(
            CompileReport(investigation_id=s.investigation, actor=INVESTIGATOR)
        ),
        OpenDisputeError,
        lambda s: [s.investigation, s.consent_id],
    ),
    Refusal(
        "review-by-the-author",
        story.compiled_report,
        lambda app, s: app.review_report(
            ReviewReport(report_id=s.report, approve=True, actor=INVESTIGATOR)
        ),
        SelfReviewError,
        lambda s: [s.report],
    ),
    Refusal(
        "disclose-for-a-purpose-not-consented",
        story.approved_report,
        lambda app, s: story.disclose(app, s, purpose="credit scoring"),
        PurposeNotConsentedError,
        lambda s: [s.report, s.consent_id],
    ),
    Refusal(
        "destroy-on-legal-hold",
        approved_on_hold,
        lambda app, s: app.destroy_report(
            DestroyReport(report_id=s.report, reason="retention ended", actor=RECRUITER)
        ),
        LegalHoldError,
        lambda s: [s.report],
    ),
]


# --- not found: every use case names what it acts on by id -------------------------------------

NOT_FOUND: list[tuple[str, str, Callable[[Backcheck, UUID], object]]] = [
    ("get-candidate", "candidate", lambda app, i: app.get_candidate(i)),
    ("get-consent", "consent", lambda app, i: app.get_consent(i)),
    ("get-investigation", "investigation", lambda app, i: app.get_investigation(i)),
    ("get-report", "report", lambda app, i: app.get_report(i)),
    (
        "submit-claims",
        "candidate",
        lambda app, i: app.submit_claims(
            SubmitClaims(candidate_id=i, claims=[claim_of("user.education")], actor=RECRUITER)
        ),
    ),
    (
        "request-consent",
        "candidate",
        lambda app, i: app.request_consent(
            RequestConsent(candidate_id=i, terms=story.terms_in(), actor=RECRUITER)
        ),
    ),
    ("grant-consent", "consent", lambda app, i: story.grant_consent(app, i)),
    (
        "withdraw-consent",
        "consent",
        lambda app, i: app.withdraw_consent(
            WithdrawConsent(consent_id=i, reason="no", actor=CANDIDATE)
        ),
    ),
    (
        "start-investigation",
        "investigation",
        lambda app, i: app.start_investigation(
            StartInvestigation(investigation_id=i, actor=RECRUITER)
        ),
    ),
    (
        "compile-report",
        "investigation",
        lambda app, i: app.compile_report(CompileReport(investigation_id=i, actor=INVESTIGATOR)),
    ),
    (
        "share-report",
        "report",
        lambda app, i: app.share_report(ShareReport(report_id=i, actor=RECRUITER)),
    ),
]


def events_after(app: Backcheck, position: int) -> list[tuple[str, str, UUID]]:
    return [
        (e.aggregate, e.event, e.originator_id) for e in app.iter_events() if e.position > position
    ]


def position(app: Backcheck) -> int:
    return app.recorder.max_notification_id() or 0


class ApplicationContract:
    """What every backend must show; subclasses provide the `app` fixture."""

    def test_a_background_check_runs_from_registration_to_disclosure(self, app: Backcheck) -> None:
        # given: a candidate who consents as asked
        candidate_id = story.register(app)
        consent_id = story.request_consent(app, candidate_id)
        story.grant_consent(app, consent_id)
        assert app.get_consent(consent_id).status == "active"
        s = Story(candidate_id, consent_id)
        # when: the plan is made, the candidate told, the checks run and concluded
        story.plan(app, s)
        story.notify(app, s)
        story.start(app, s)
        story.record_finding(app, s, SourceRole.DIRECT_SUPERVISOR)
        story.record_finding(app, s, SourceRole.HR)
        app.conclude_check(
            ConcludeCheck(
                investigation_id=s.investigation,
                check_id=s.check_id,
                outcome=Outcome.CONFIRMED,
                actor=INVESTIGATOR,
            )
        )
        done = app.complete_investigation(
            CompleteInvestigation(investigation_id=s.investigation, actor=INVESTIGATOR)
        )
        # and the report is compiled, reviewed by someone else, shared and disclosed
        compiled = app.compile_report(
            CompileReport(investigation_id=s.investigation, actor=INVESTIGATOR)
        )
        s.report_id = compiled.report_id
        app.review_report(ReviewReport(report_id=s.report, approve=True, actor=REVIEWER))
        app.share_report(ShareReport(report_id=s.report, actor=RECRUITER))
        story.disclose(app, s)
        # then
        assert done.status == "completed"
        assert [c.conclusion for c in done.checks] == ["confirmed"]
        report = app.get_report(s.report)
        assert report.status == "approved"
        assert report.candidate_id == candidate_id
        assert report.disclosures == 1
        assert [(i.check_id, i.outcome, i.flags) for i in report.items] == [
            (s.check_id, "confirmed", [])
        ]
        assert sorted(report.items[0].source_roles) == ["direct_supervisor", "hr"]
        assert [(e.aggregate, e.event) for e in app.iter_events()] == [
            ("Candidate", "Registered"),
            ("Consent", "Requested"),
            ("Principal", "Added"),  # the candidate's portal link, sent with the request
            ("Consent", "Granted"),
            ("Investigation", "Planned"),
            ("Consent", "ReliedUpon"),
            ("Investigation", "CandidateNotified"),
            ("Investigation", "Started"),
            ("Investigation", "FindingRecorded"),
            ("Investigation", "FindingRecorded"),
            ("Investigation", "CheckConcluded"),
            ("Investigation", "Completed"),
            ("Report", "Compiled"),
            ("Report", "Approved"),
            ("Report", "SharedWithCandidate"),
            ("Report", "Disclosed"),
        ]

    @pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.name)
    def test_a_refused_command_leaves_the_store_untouched(
        self, app: Backcheck, case: Refusal
    ) -> None:
        # given
        s = case.given(app)
        before = position(app)
        versions = {i: app.repository.get(i).version for i in case.untouched(s)}
        # when
        with pytest.raises(case.error) as info:
            case.command(app, s)
        # then: the rule named, and nothing recorded
        assert type(info.value) is case.error
        assert position(app) == before
        assert {i: app.repository.get(i).version for i in versions} == versions

    def test_withdrawing_consent_suspends_the_open_investigation_in_the_same_save(
        self, app: Backcheck
    ) -> None:
        # given
        s = story.investigation_under_way(app)
        before = position(app)
        # when
        result = app.withdraw_consent(
            WithdrawConsent(consent_id=s.consent_id, reason="changed my mind", actor=CANDIDATE)
        )
        # then: both facts, the suspension right after the withdrawal, from one command
        assert result.status == "withdrawn"
        assert result.suspended_investigations == [s.investigation]
        assert events_after(app, before) == [
            ("Consent", "Withdrawn", s.consent_id),
            ("Investigation", "Suspended", s.investigation),
        ]
        assert position(app) == before + 2
        assert app.get_investigation(s.investigation).status == "suspended"

    def test_a_suspended_investigation_refuses_findings(self, app: Backcheck) -> None:
        # given
        s = story.investigation_under_way(app)
        app.withdraw_consent(
            WithdrawConsent(consent_id=s.consent_id, reason="changed my mind", actor=CANDIDATE)
        )
        before = position(app)
        version = app.repository.get(s.investigation).version
        # when / then
        with pytest.raises(InvestigationStateError, match="suspended"):
            story.record_finding(app, s, SourceRole.HR)
        assert position(app) == before
        assert app.repository.get(s.investigation).version == version

    def test_a_suspended_investigation_resumes_under_a_new_consent(self, app: Backcheck) -> None:
        # given: suspended by withdrawal, then the candidate signs again
        s = story.investigation_under_way(app)
        app.withdraw_consent(
            WithdrawConsent(consent_id=s.consent_id, reason="changed my mind", actor=CANDIDATE)
        )
        renewed = story.request_consent(app, s.candidate_id)
        story.grant_consent(app, renewed)
        # when
        result = app.resume_investigation(
            ResumeInvestigation(
                investigation_id=s.investigation, consent_id=renewed, actor=RECRUITER
            )
        )
        # then: work goes on under the new consent
        assert result.status == "in progress"
        assert result.consent_id == renewed
        story.record_finding(app, s, SourceRole.HR)
        assert app.get_investigation(s.investigation).checks[0].findings == 1

    def test_consent_expiry_also_suspends_the_open_investigation(
        self, app: Backcheck, clock: FakeClock
    ) -> None:
        # given: the validity window has passed
        s = story.investigation_under_way(app)
        clock.advance(days=VALID_FOR.days + 1)
        before = position(app)
        # when
        result = app.expire_consent(ExpireConsent(consent_id=s.consent_id, actor=RECRUITER))
        # then
        assert result.status == "expired"
        assert result.suspended_investigations == [s.investigation]
        assert events_after(app, before) == [
            ("Consent", "Expired", s.consent_id),
            ("Investigation", "Suspended", s.investigation),
        ]
        with pytest.raises(InvestigationStateError):
            story.record_finding(app, s, SourceRole.HR)

    def test_withdrawing_consent_leaves_a_completed_investigation_completed(
        self, app: Backcheck
    ) -> None:
        s = story.completed_investigation(app)
        before = position(app)
        result = app.withdraw_consent(
            WithdrawConsent(consent_id=s.consent_id, reason="changed my mind", actor=CANDIDATE)
        )
        assert result.suspended_investigations == []
        assert events_after(app, before) == [("Consent", "Withdrawn", s.consent_id)]
        assert app.get_investigation(s.investigation).status == "completed"

    def test_a_withdrawn_consent_stops_disclosure_of_an_approved_report(
        self, app: Backcheck
    ) -> None:
        s = story.approved_report(app)
        app.withdraw_consent(
            WithdrawConsent(consent_id=s.consent_id, reason="changed my mind", actor=CANDIDATE)
        )
        before = position(app)
        with pytest.raises(ConsentNotActiveError, match="withdrawn"):
            story.disclose(app, s)
        assert position(app) == before

    @pytest.mark.parametrize(
        ("kind", "command"), [(k, c) for _, k, c in NOT_FOUND], ids=[n for n, _, _ in NOT_FOUND]
    )
    def test_an_unknown_id_is_reported_as_missing(
        self, app: Backcheck, kind: str, command: Callable[[Backcheck, UUID], object]
    ) -> None:
        story.consented_candidate(app)  # a store that is not empty
        before = position(app)
        unknown = uuid4()
        with pytest.raises(AggregateMissingError) as info:
            command(app, unknown)
        assert info.value.kind == kind
        assert info.value.aggregate_id == unknown
        assert str(unknown) in info.value.message
        assert position(app) == before

    def test_an_id_of_another_kind_is_reported_as_missing(self, app: Backcheck) -> None:
        s = story.consented_candidate(app)
        with pytest.raises(AggregateMissingError) as info:
            app.get_investigation(s.consent_id)
        assert info.value.kind == "investigation"
        assert info.value.aggregate_id == s.consent_id

    def test_every_stored_event_names_its_data_subject(self, app: Backcheck) -> None:
        # given: two candidates, each with a full history
        first = story.shared_report(app, "Li Lei")
        story.disclose(app, first)
        second = story.investigation_under_way(app, "Han Meimei")
        app.withdraw_consent(
            WithdrawConsent(consent_id=second.consent_id, reason="declined", actor=CANDIDATE)
        )
        subject = {
            aggregate_id: s.candidate_id
            for s in (first, second)
            for aggregate_id in (s.candidate_id, s.consent_id, s.investigation_id, s.report_id)
            if aggregate_id is not None
        }
        # and their portal links, sent when consent was asked for: principals, which hold no
        # personal data and name no subject (domain/principal.py)
        links = {principal_id(portal_name(s.candidate_id)) for s in (first, second)}
        # when
        events = list(app.iter_events())
        # then: each event carries the candidate its aggregate is about
        assert len(events) == position(app)
        for e in events:
            if e.originator_id in links:
                assert (e.aggregate, e.event) == ("Principal", "Added")
                assert "candidate_id" not in e.data
                continue
            assert e.data["candidate_id"] == str(subject[e.originator_id]), (e.aggregate, e.event)
        assert {e.originator_id for e in events if e.aggregate == "Principal"} == links
        # and one subject's history is exactly their events
        mine = list(app.iter_events(candidate_id=second.candidate_id))
        assert mine == [e for e in events if subject.get(e.originator_id) == second.candidate_id]
        assert {e.aggregate for e in mine} == {"Candidate", "Consent", "Investigation"}

    def test_claims_needing_consent_are_collected_under_a_consent_naming_them(
        self, app: Backcheck
    ) -> None:
        # given: a consent that names marital status
        candidate_id = story.register(app)
        asked = story.terms_in(categories=["user.demographic.marital_status"])
        consent_id = story.request_consent(app, candidate_id, asked)
        story.grant_consent(app, consent_id, asked)
        claims = [claim_of("user.demographic.marital_status")]
        # when: submitted without naming the consent, then with it
        with pytest.raises(ConsentRequiredForCategoryError, match="marital_status"):
            app.submit_claims(
                SubmitClaims(candidate_id=candidate_id, claims=claims, actor=RECRUITER)
            )
        result = app.submit_claims(
            SubmitClaims(
                candidate_id=candidate_id, claims=claims, consent_id=consent_id, actor=RECRUITER
            )
        )
        # then
        assert "user.demographic.marital_status" in result.categories
        assert result.claim_ids == [claims[0].claim_id]

    def test_a_grant_may_start_later_and_checks_wait_for_it(
        self, app: Backcheck, clock: FakeClock
    ) -> None:
        candidate_id = story.register(app)
        consent_id = story.request_consent(app, candidate_id)
        story.grant_consent(app, consent_id, valid_from=clock() + timedelta(days=2))
        s = story.plan(app, Story(candidate_id, consent_id))
        story.notify(app, s)
        with pytest.raises(ConsentNotActiveError, match="not yet valid"):
            story.start(app, s)
        clock.advance(days=2)
        story.start(app, s)
        assert app.get_investigation(s.investigation).status == "in progress"


class TestOnSQLite(ApplicationContract):
    @pytest.fixture
    def app(self, sqlite_app: Backcheck) -> Backcheck:
        return sqlite_app


@pytest.mark.postgres
class TestOnPostgreSQL(ApplicationContract):
    @pytest.fixture
    def app(self, pg_app: Backcheck) -> Backcheck:
        return pg_app
