"""The demo's chapters, each run alone on a store that holds what its predecessors made: each
makes what it promises (checked through the application's queries, never its printed prose),
takes its steps and meets its refusals; told together they are the whole story."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from uuid import UUID

import pytest

from domain import errors
from domain.candidate import Candidate
from domain.classification import ERASED_VALUE
from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import DemoFailedError, Narrator, tell_story
from infra.demo.claims import ClaimIds, collect_claims
from infra.demo.consent import ConsentIds, ask_for_consent
from infra.demo.erasure import erase_on_request
from infra.demo.findings import FindingIds, cross_verify
from infra.demo.hearing import HearingIds, hear_the_candidate
from infra.demo.plan import PlanIds, plan_within_consent
from infra.demo.reads import read_personal_data
from infra.demo.report import ReportIds, report_and_disclose
from infra.demo.withdrawal import WithdrawalIds, withdraw_another_candidate
from services import dto
from services.access import Role
from services.application import Backcheck
from tests.conftest import FakeClock

COMPLIANCE = "compliance:audit"


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[Backcheck]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    yield app
    app.close()


# --- the predecessors, each made by its own chapter, told silently ---------------------------


@pytest.fixture
def asked(app: Backcheck) -> ConsentIds:
    return ask_for_consent(app, Narrator(app))


@pytest.fixture
def planned(app: Backcheck, asked: ConsentIds) -> PlanIds:
    return plan_within_consent(app, Narrator(app), asked)


@pytest.fixture
def claimed(app: Backcheck, asked: ConsentIds, planned: PlanIds) -> ClaimIds:
    return collect_claims(app, Narrator(app), asked)


@pytest.fixture
def verified(app: Backcheck, planned: PlanIds, claimed: ClaimIds) -> FindingIds:
    return cross_verify(app, Narrator(app), planned)


@pytest.fixture
def heard(app: Backcheck, planned: PlanIds, verified: FindingIds) -> HearingIds:
    return hear_the_candidate(app, Narrator(app), planned)


@pytest.fixture
def reported(app: Backcheck, planned: PlanIds, heard: HearingIds) -> ReportIds:
    return report_and_disclose(app, Narrator(app), planned)


@pytest.fixture
def withdrawn(app: Backcheck, reported: ReportIds) -> WithdrawalIds:
    return withdraw_another_candidate(app, Narrator(app))


def access_log(app: Backcheck, candidate_id: UUID) -> list[dto.AccessEntry]:
    """The subject's access log as compliance reads it (a read recorded after the entries)."""
    return app.read_access_log(
        dto.ReadAccessLog(
            candidate_id=candidate_id, principal=COMPLIANCE, role=Role.COMPLIANCE, purpose="audit"
        )
    ).entries


# --- each chapter alone ----------------------------------------------------------------------


def test_consent_registers_the_candidate_and_asks_for_four_checks(app: Backcheck) -> None:
    n = Narrator(app)

    made = ask_for_consent(app, n)

    consent = app.get_consent(made.consent_id)
    assert consent.candidate_id == made.candidate_id
    assert consent.status == "requested"
    assert consent.check_types == ["education", "employment", "reference", "criminal_record"]
    assert consent.categories == ["user.criminal_history"]
    assert set(app.get_candidate(made.candidate_id).categories) == {
        "user.name",
        "user.contact.email",
        "user.contact.phone",
    }
    assert (n.steps, n.refusals) == (2, ["ProhibitedCategory"])


def test_plan_starts_the_investigation_only_within_the_signed_consent(
    app: Backcheck, asked: ConsentIds
) -> None:
    n = Narrator(app)

    made = plan_within_consent(app, n, asked)

    assert app.get_investigation(made.cancelled_investigation_id).status == "cancelled"
    started = app.get_investigation(made.investigation_id)
    assert (started.status, started.notified) == ("in progress", True)
    assert (started.candidate_id, started.consent_id) == (asked.candidate_id, asked.consent_id)
    assert [(c.check_id, c.check_type) for c in started.checks] == [
        (made.education_check_id, "education"),
        (made.employment_check_id, "employment"),
        (made.reference_check_id, "reference"),
    ]
    consent = app.get_consent(asked.consent_id)
    assert (consent.status, consent.categories) == ("active", [])
    assert consent.check_types == ["education", "employment", "reference"]
    assert n.steps == 7
    assert n.refusals == [
        "ConsentNotActive",
        "ConsentGrantExceedsRequest",
        "ConsentDoesNotCoverCheck",
        "CandidateNotNotified",
    ]


def test_claims_collects_education_and_employment_but_not_marital_status(
    app: Backcheck, asked: ConsentIds, planned: PlanIds
) -> None:
    n = Narrator(app)

    made = collect_claims(app, n, asked)

    candidate = app.get_candidate(asked.candidate_id)
    assert candidate.claim_ids == [made.education_claim_id, made.employment_claim_id]
    assert {"user.education", "user.employment.employer"} <= set(candidate.categories)
    assert "user.demographic.marital_status" not in candidate.categories
    assert (n.steps, n.refusals) == (1, ["ConsentRequiredForCategory"])


def test_findings_conclude_every_check_on_enough_sources(
    app: Backcheck, planned: PlanIds, claimed: ClaimIds
) -> None:
    n = Narrator(app)

    made = cross_verify(app, n, planned)

    checks = app.get_investigation(planned.investigation_id).checks
    assert [(c.check_type, c.findings, c.conclusion) for c in checks] == [
        ("education", 1, "confirmed"),
        ("employment", 2, "discrepancy"),
        ("reference", 2, "confirmed"),
    ]
    assert len(set(made.finding_ids)) == 5
    assert n.steps == 8
    assert n.refusals == [
        "RefereeNotPermitted",
        "RecordingNotConsented",
        "NegativeConclusionNeedsSecondSource",
    ]


def test_hearing_answers_her_question_and_dispute_and_completes_the_investigation(
    app: Backcheck, asked: ConsentIds, planned: PlanIds, verified: FindingIds
) -> None:
    n = Narrator(app)

    made = hear_the_candidate(app, n, planned)

    investigation = app.get_investigation(planned.investigation_id)
    assert (investigation.status, investigation.open_disputes) == ("completed", [])
    case = app.read_investigation(
        dto.ReadInvestigation(
            investigation_id=planned.investigation_id,
            principal=f"candidate:{asked.candidate_id}",
            role=Role.CANDIDATE,
            purpose="follow my check",
        )
    )
    assert [(f.id, f.answer) for f in case.feedback] == [
        (made.feedback_id, "Within two working days.")
    ]
    assert [(d.id, d.check_id, d.upheld) for d in case.disputes] == [
        (made.dispute_id, planned.employment_check_id, False)
    ]
    assert (n.steps, n.refusals) == (5, ["OpenDispute"])


def test_report_is_amended_on_her_dispute_and_disclosed_in_its_second_edition(
    app: Backcheck, planned: PlanIds, heard: HearingIds
) -> None:
    n = Narrator(app)

    made = report_and_disclose(app, n, planned)

    report = app.get_report(made.report_id)
    assert report.investigation_id == planned.investigation_id
    assert (report.status, report.edition, report.disclosures) == ("approved", 2, 1)
    assert report.open_disputes == []
    (employment,) = [i for i in report.items if i.check_id == planned.employment_check_id]
    assert {"disputed", "amended"} <= set(employment.flags)
    assert n.steps == 8
    assert n.refusals == ["SelfReview", "PurposeNotConsented", "OpenDispute"]


def test_withdrawal_suspends_the_other_candidates_investigation_and_reads_her_register(
    app: Backcheck, reported: ReportIds
) -> None:
    n = Narrator(app)

    made = withdraw_another_candidate(app, n)

    assert app.get_consent(made.other_consent_id).status == "withdrawn"
    suspended = app.get_investigation(made.other_investigation_id)
    assert (suspended.status, suspended.candidate_id) == ("suspended", made.other_candidate_id)
    entries = access_log(app, made.other_candidate_id)
    assert [(e.access_id, e.view, e.outcome) for e in entries] == [
        (made.consent_register_access_id, "consent register", "allowed")
    ]
    assert (n.steps, n.refusals) == (8, [])


def test_reads_are_recorded_allowed_and_refused_in_her_access_log(
    app: Backcheck, asked: ConsentIds, planned: PlanIds, withdrawn: WithdrawalIds
) -> None:
    n = Narrator(app)

    made = read_personal_data(app, n, asked, planned)

    entries = access_log(app, asked.candidate_id)
    outcome = {e.access_id: e.outcome for e in entries}
    assert outcome[made.profile_access_id] == "allowed"
    assert outcome[made.access_log_access_id] == "allowed"
    assert outcome[made.candidate_investigation_access_id] == "allowed"
    assert outcome[made.recruiter_investigation_access_id] == "partial"  # some withheld from HR
    refused = [(e.principal, e.view) for e in entries if e.outcome == "refused"]
    assert refused == [("growth:wu.hao", "profile"), ("hr:li.na", "access log")]
    assert (n.steps, n.refusals) == (3, ["AccessRefused", "AccessRefused"])


def test_erasure_destroys_the_other_candidates_keys_and_keeps_her_history(
    app: Backcheck, withdrawn: WithdrawalIds
) -> None:
    n = Narrator(app)

    made = erase_on_request(app, n, withdrawn)

    assert made.erased_candidate_id == withdrawn.other_candidate_id
    assert made.keys_destroyed >= 1
    identity = app.load(Candidate, made.erased_candidate_id).identity
    assert {f.value for f in identity} == {ERASED_VALUE}
    history = [e.event for e in app.iter_events(made.erased_candidate_id)]
    assert history[0] == "Registered"
    assert history[-1] == "Erased"
    assert (n.steps, n.refusals) == (1, [])


# --- the whole story, and the narrator -------------------------------------------------------


def test_the_whole_story_told_silently_takes_43_steps_and_meets_15_refusals(
    app: Backcheck, capsys: pytest.CaptureFixture[str]
) -> None:
    told = tell_story(app)

    assert (told.steps, len(told.refusals)) == (43, 15)
    ids = told.as_json()
    chapters = (told.consent, told.plan, told.claims, told.findings, told.hearing)
    chapters += (told.report, told.withdrawal, told.reads, told.erasure)
    assert len(ids) == sum(len(fields(c)) for c in chapters) + 3  # no chapter hides another's id
    assert (ids["steps"], ids["refusals"]) == (43, 15)
    assert ids["rules"] == list(dict.fromkeys(told.refusals))
    assert app.get_report(told.report.report_id).candidate_id == told.consent.candidate_id
    assert capsys.readouterr() == ("", "")


def test_a_wrong_thing_that_is_accepted_fails_the_demo(app: Backcheck) -> None:
    n = Narrator(app)

    with pytest.raises(DemoFailedError, match="accepted"):
        n.refused(
            "register a candidate",
            errors.ProhibitedCategoryError,
            lambda: app.register_candidate(dto.RegisterCandidate(name="Li Lei", actor="hr:x")),
        )
    assert n.refusals == []


def test_a_refusal_that_stores_more_than_it_should_fails_the_demo(
    app: Backcheck, asked: ConsentIds
) -> None:
    n = Narrator(app)
    read = dto.ReadProfile(
        candidate_id=asked.candidate_id, principal="growth:x", role=Role.RECRUITER, purpose="ads"
    )

    with pytest.raises(DemoFailedError, match="1 event"):
        n.refused("read for ads", errors.AccessRefusedError, lambda: app.read_profile(read))
