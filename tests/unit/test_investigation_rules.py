"""Rules the Investigation aggregate enforces: plan and notice first, consent throughout, and
conclusions only on cross-verified findings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from uuid import uuid4

import pytest

from domain.check import CheckType, Method, Outcome, PlannedCheck, SourceRole
from domain.classification import ERASED_VALUE, PersonalField
from domain.consent import ConsentScope, ConsentStatus
from domain.errors import (
    CandidateNotNotifiedError,
    CheckAlreadyConcludedError,
    ChecksStillOpenError,
    ConclusionNeedsCorroborationError,
    ConsentBelongsToAnotherCandidateError,
    ConsentDoesNotCoverCheckError,
    ConsentNotActiveError,
    ConsentRequiredForCategoryError,
    DisputeAlreadyResolvedError,
    EmptyPlanError,
    FeedbackAlreadyAnsweredError,
    InvalidPlanError,
    InvestigationNotCompletedError,
    InvestigationStateError,
    InvestigatorNotAssignedError,
    MethodNotInPlanError,
    NegativeConclusionNeedsSecondSourceError,
    NoAttemptRecordedError,
    OpenDisputeError,
    PersonalValueUnreadableError,
    ProhibitedCategoryError,
    PurposeNotConsentedError,
    RecordingNotConsentedError,
    RefereeNotPermittedError,
    UnknownCheckError,
    UnknownDataCategoryError,
    UnknownDisputeError,
    UnknownFeedbackError,
)
from domain.investigation import Investigation, InvestigationStatus, Notice
from tests.story import (
    INVESTIGATOR,
    NOW,
    PURPOSE,
    RECRUITER,
    active_scope,
    concluded_investigation,
    finding,
    notice,
    only_check,
    planned_investigation,
    refuses,
    started_investigation,
)

OTHER_INVESTIGATOR = "investigator:sun.li"


def plan(
    checks: tuple[PlannedCheck, ...],
    investigators: tuple[str, ...] = (INVESTIGATOR,),
    purpose: str = PURPOSE,
) -> Investigation:
    return Investigation.plan(
        uuid4(), uuid4(), purpose, checks, investigators, NOW + timedelta(days=14), RECRUITER
    )


def employment_check() -> PlannedCheck:
    return PlannedCheck(uuid4(), CheckType.EMPLOYMENT, (Method.PHONE,))


def notified(*check_types: CheckType) -> Investigation:
    inv = planned_investigation(*check_types)
    inv.notify_candidate(notice(), "hr:test")
    return inv


def scope_with(
    inv: Investigation, status: ConsentStatus = ConsentStatus.ACTIVE, **terms: object
) -> ConsentScope:
    scope = active_scope(inv.candidate_id, **terms)
    return ConsentScope(inv.consent_id, scope.candidate_id, status, scope.terms)


# --- the plan ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checks", "investigators"),
    [((), (INVESTIGATOR,)), ((employment_check(),), ())],
    ids=["no-check", "no-investigator"],
)
def test_a_plan_needs_a_check_and_an_investigator(
    checks: tuple[PlannedCheck, ...], investigators: tuple[str, ...]
) -> None:
    with refuses(None, EmptyPlanError, "at least one check and one investigator"):
        plan(checks, investigators)


def test_a_plan_states_its_purpose() -> None:
    with refuses(None, InvalidPlanError, "'purpose'") as info:
        plan((employment_check(),), purpose="  ")
    assert info.value.field == "purpose"


def test_a_plan_names_each_check_once() -> None:
    check = employment_check()
    with refuses(None, InvalidPlanError, "'checks'"):
        plan((check, check))


def test_each_planned_check_has_a_method() -> None:
    check = PlannedCheck(uuid4(), CheckType.EDUCATION, ())
    with refuses(None, InvalidPlanError, str(check.check_id), "method"):
        plan((check,))


def test_a_new_plan_waits_for_notice_and_start() -> None:
    inv = planned_investigation()
    assert inv.status is InvestigationStatus.PLANNED
    assert inv.notice is None
    assert inv.scope is None


# --- notice and start --------------------------------------------------------------------------


@pytest.mark.parametrize("part", ["purpose", "process", "content", "time_required", "channel"])
def test_the_notice_tells_purpose_process_content_and_time_needed(part: str) -> None:
    inv = planned_investigation()
    parts = {**vars(notice()), part: " "}
    with refuses(inv, InvalidPlanError, f"notice.{part}"):
        inv.notify_candidate(Notice(**parts), "hr:test")
    assert inv.notice is None


def test_the_candidate_is_notified_before_the_start_only() -> None:
    inv = started_investigation()
    with refuses(inv, InvestigationStateError, inv.id, "in progress", "notify the candidate"):
        inv.notify_candidate(notice(), "hr:test")


def test_checks_do_not_start_before_the_candidate_is_notified() -> None:
    inv = planned_investigation()
    with refuses(inv, CandidateNotNotifiedError, inv.id):
        inv.start(scope_with(inv), "hr:test")
    assert inv.status is InvestigationStatus.PLANNED


def test_checks_start_under_an_active_consent_covering_every_check() -> None:
    inv = notified(CheckType.EMPLOYMENT, CheckType.REFERENCE)
    scope = scope_with(inv)
    inv.start(scope, "hr:test")
    assert inv.status is InvestigationStatus.IN_PROGRESS
    assert inv.scope == scope


@pytest.mark.parametrize(
    "status",
    [
        ConsentStatus.REQUESTED,
        ConsentStatus.NOT_YET_VALID,
        ConsentStatus.WITHDRAWN,
        ConsentStatus.EXPIRED,
    ],
)
def test_checks_do_not_start_without_an_active_consent(status: ConsentStatus) -> None:
    inv = notified()
    scope = scope_with(inv, status)
    with refuses(inv, ConsentNotActiveError, scope.consent_id, status.value) as info:
        inv.start(scope, "hr:test")
    assert info.value.status == status.value


def test_checks_do_not_start_under_another_candidates_consent() -> None:
    inv = notified()
    scope = active_scope(uuid4())
    with refuses(inv, ConsentBelongsToAnotherCandidateError, scope.consent_id, inv.candidate_id):
        inv.start(scope, "hr:test")


def test_checks_do_not_start_for_a_purpose_the_consent_does_not_name() -> None:
    inv = notified()
    scope = scope_with(inv, purposes=("promotion review",))
    with refuses(inv, PurposeNotConsentedError, scope.consent_id, PURPOSE):
        inv.start(scope, "hr:test")


def test_checks_do_not_start_unless_the_consent_covers_every_check() -> None:
    # given: employment and criminal record planned; the consent covers employment only
    inv = notified(CheckType.EMPLOYMENT, CheckType.CRIMINAL_RECORD)
    scope = scope_with(inv, check_types=(CheckType.EMPLOYMENT,))
    # when / then
    with refuses(inv, ConsentDoesNotCoverCheckError, scope.consent_id, "criminal_record") as info:
        inv.start(scope, "hr:test")
    assert info.value.check_type == "criminal_record"


def test_a_sensitive_check_needs_its_categories_named_in_the_consent() -> None:
    # given: the check type is consented but the secret category it reads is not named
    inv = notified(CheckType.CRIMINAL_RECORD)
    scope = scope_with(inv, check_types=(CheckType.CRIMINAL_RECORD,), categories=())
    with refuses(inv, ConsentDoesNotCoverCheckError, scope.consent_id, "user.criminal_history"):
        inv.start(scope, "hr:test")


def test_a_drug_test_needs_every_sensitive_category_it_touches_named() -> None:
    inv = notified(CheckType.DRUG_TEST)
    scope = scope_with(
        inv, check_types=(CheckType.DRUG_TEST,), categories=("user.health.drug_test",)
    )
    with refuses(
        inv, ConsentDoesNotCoverCheckError, scope.consent_id, "user.health.alcohol_test"
    ) as info:
        inv.start(scope, "hr:test")
    assert "user.health.drug_test" not in info.value.missing


def test_a_sensitive_check_starts_when_the_consent_names_its_categories() -> None:
    inv = notified(CheckType.CRIMINAL_RECORD, CheckType.DRUG_TEST)
    inv.start(
        scope_with(
            inv,
            check_types=(CheckType.CRIMINAL_RECORD, CheckType.DRUG_TEST),
            categories=(
                "user.criminal_history",
                "user.health.drug_test",
                "user.health.alcohol_test",
            ),
        ),
        "hr:test",
    )
    assert inv.status is InvestigationStatus.IN_PROGRESS


def test_an_investigation_starts_only_once() -> None:
    inv = started_investigation()
    with refuses(inv, InvestigationStateError, inv.id, "start"):
        inv.start(scope_with(inv), "hr:test")


# --- findings ----------------------------------------------------------------------------------


def test_findings_are_recorded_only_by_assigned_investigators() -> None:
    inv = started_investigation()
    stranger = finding(only_check(inv), SourceRole.HR, recorded_by=OTHER_INVESTIGATOR)
    with refuses(inv, InvestigatorNotAssignedError, OTHER_INVESTIGATOR, inv.id) as info:
        inv.record_finding(stranger, inv.scope)
    assert info.value.investigator == OTHER_INVESTIGATOR
    assert inv.findings == {}


def test_an_investigator_assigned_later_may_record_findings() -> None:
    inv = started_investigation()
    inv.assign(OTHER_INVESTIGATOR, RECRUITER)
    found = finding(only_check(inv), SourceRole.HR, recorded_by=OTHER_INVESTIGATOR)
    inv.record_finding(found, inv.scope)
    assert inv.findings == {found.finding_id: found}


def test_findings_are_gathered_only_by_planned_methods() -> None:
    inv = started_investigation()  # phone and email planned
    check_id = only_check(inv)
    with refuses(inv, MethodNotInPlanError, check_id, "interview") as info:
        inv.record_finding(finding(check_id, SourceRole.HR, method=Method.INTERVIEW), inv.scope)
    assert info.value.method == "interview"


def test_findings_come_only_from_referee_roles_the_consent_allows() -> None:
    inv = started_investigation(referee_roles=(SourceRole.DIRECT_SUPERVISOR, SourceRole.HR))
    assert inv.scope is not None
    with refuses(inv, RefereeNotPermittedError, inv.scope.consent_id, "subordinate"):
        inv.record_finding(finding(only_check(inv), SourceRole.SUBORDINATE), inv.scope)


def test_findings_never_come_from_an_organisation_the_consent_excludes() -> None:
    inv = started_investigation(excluded_organisations=("Current Employer Inc",))
    # written differently from the consent, still the same organisation
    excluded = finding(only_check(inv), SourceRole.HR, organisation="CURRENT EMPLOYER INC")
    assert inv.scope is not None
    with refuses(inv, RefereeNotPermittedError, inv.scope.consent_id, "excluded") as info:
        inv.record_finding(excluded, inv.scope)
    # the refusal names no organisation: it is kept where erasure does not reach
    assert "current employer" not in str(info.value).casefold()
    assert "current employer" not in repr(info.value.details).casefold()


def test_an_erased_exclusion_refuses_every_referee_finding() -> None:
    """Fail closed: once the consent's organisations are erased, no referee's organisation
    can be told apart from them, so no referee finding is taken."""
    inv = started_investigation(excluded_organisations=(ERASED_VALUE,))
    assert inv.scope is not None
    with refuses(inv, PersonalValueUnreadableError, "'excluded_organisations'", "erased"):
        inv.record_finding(
            finding(only_check(inv), SourceRole.HR, organisation="Elsewhere Ltd"), inv.scope
        )


@pytest.mark.parametrize("role", [SourceRole.REGISTRAR, SourceRole.OFFICIAL_DOCUMENT])
def test_authoritative_sources_are_not_referees_and_need_no_referee_consent(
    role: SourceRole,
) -> None:
    inv = started_investigation(referee_roles=())
    found = finding(only_check(inv), role, method=Method.EMAIL)
    inv.record_finding(found, inv.scope)
    assert found.finding_id in inv.findings


def test_conversations_are_recorded_only_if_the_consent_allows_it() -> None:
    inv = started_investigation(recording_allowed=False)
    assert inv.scope is not None
    recorded = finding(only_check(inv), SourceRole.HR, conversation_recorded=True)
    with refuses(inv, RecordingNotConsentedError, inv.scope.consent_id):
        inv.record_finding(recorded, inv.scope)


def test_a_recorded_conversation_is_accepted_when_the_consent_allows_recording() -> None:
    inv = started_investigation(recording_allowed=True)
    recorded = finding(only_check(inv), SourceRole.HR, conversation_recorded=True)
    inv.record_finding(recorded, inv.scope)
    assert inv.findings[recorded.finding_id].conversation_recorded


def test_finding_notes_of_a_prohibited_category_are_refused() -> None:
    inv = started_investigation()
    notes = PersonalField("notes", "user.demographic.religious_belief", "attends church")
    with refuses(inv, ProhibitedCategoryError, "'notes'", "user.demographic.religious_belief"):
        inv.record_finding(finding(only_check(inv), SourceRole.HR, notes=notes), inv.scope)


def test_finding_notes_of_a_sensitive_category_need_the_consent_to_name_it() -> None:
    inv = started_investigation(categories=())
    notes = PersonalField("notes", "user.health.mental", "was on sick leave for stress")
    with refuses(inv, ConsentRequiredForCategoryError, "'notes'", "user.health.mental"):
        inv.record_finding(finding(only_check(inv), SourceRole.HR, notes=notes), inv.scope)


def test_finding_notes_of_an_unknown_category_are_refused() -> None:
    inv = started_investigation()
    notes = PersonalField("notes", "user.gossip", "rumours")
    with refuses(inv, UnknownDataCategoryError, "'notes'", "user.gossip"):
        inv.record_finding(finding(only_check(inv), SourceRole.HR, notes=notes), inv.scope)


def test_finding_notes_of_an_admitted_category_are_kept_with_their_category() -> None:
    inv = started_investigation()
    notes = PersonalField("notes", "user.employment.evaluation", "dependable, good team lead")
    found = finding(only_check(inv), SourceRole.HR, notes=notes)
    inv.record_finding(found, inv.scope)
    assert inv.findings[found.finding_id].notes == notes


def test_findings_are_recorded_only_for_planned_checks() -> None:
    inv = started_investigation()
    unplanned = uuid4()
    with refuses(inv, UnknownCheckError, unplanned, inv.id):
        inv.record_finding(finding(unplanned, SourceRole.HR), inv.scope)


def test_findings_are_recorded_only_while_the_investigation_is_in_progress() -> None:
    inv = notified()
    check_id = only_check(inv)
    with refuses(inv, InvestigationStateError, inv.id, "planned", "record a finding"):
        inv.record_finding(finding(check_id, SourceRole.HR), inv.scope)


def test_no_finding_is_added_to_a_concluded_check() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(finding(check_id, SourceRole.REGISTRAR, method=Method.EMAIL), inv.scope)
    inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)
    with refuses(inv, CheckAlreadyConcludedError, check_id):
        inv.record_finding(finding(check_id, SourceRole.HR), inv.scope)


# --- cross-verification ------------------------------------------------------------------------


def test_two_sources_of_different_roles_confirm_a_check() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    supervisor = finding(check_id, SourceRole.DIRECT_SUPERVISOR)
    hr = finding(check_id, SourceRole.HR)
    inv.record_finding(supervisor, inv.scope)
    inv.record_finding(hr, inv.scope)
    inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)
    conclusion = inv.conclusions[check_id]
    assert conclusion.outcome is Outcome.CONFIRMED
    assert set(conclusion.basis) == {supervisor.finding_id, hr.finding_id}


def test_one_witness_cannot_confirm_a_check() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(finding(check_id, SourceRole.DIRECT_SUPERVISOR), inv.scope)
    with refuses(inv, ConclusionNeedsCorroborationError, check_id, "1 agreeing source(s)"):
        inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)
    assert check_id not in inv.conclusions


def test_the_same_role_twice_does_not_confirm_a_check() -> None:
    # given: two different peers, both confirming
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(finding(check_id, SourceRole.PEER, reference="ref-1"), inv.scope)
    inv.record_finding(finding(check_id, SourceRole.PEER, reference="ref-2"), inv.scope)
    # when / then
    with refuses(inv, ConclusionNeedsCorroborationError, check_id, "2 agreeing source(s) (peer)"):
        inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)


def test_one_witness_named_in_two_roles_is_still_one_witness() -> None:
    # given: the same person (one reference) recorded once as supervisor and once as HR
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(
        finding(check_id, SourceRole.DIRECT_SUPERVISOR, reference="ref-1"), inv.scope
    )
    inv.record_finding(finding(check_id, SourceRole.HR, reference="ref-1"), inv.scope)
    # when / then: not two independent sources
    with refuses(inv, ConclusionNeedsCorroborationError, check_id):
        inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)


@pytest.mark.parametrize("role", [SourceRole.REGISTRAR, SourceRole.OFFICIAL_DOCUMENT])
def test_one_authoritative_source_confirms_a_check(role: SourceRole) -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(finding(check_id, role, method=Method.EMAIL), inv.scope)
    inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)
    assert inv.conclusions[check_id].outcome is Outcome.CONFIRMED


def test_disagreeing_sources_do_not_corroborate_each_other() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(
        finding(check_id, SourceRole.DIRECT_SUPERVISOR, Outcome.CONFIRMED), inv.scope
    )
    inv.record_finding(finding(check_id, SourceRole.HR, Outcome.DISCREPANCY), inv.scope)
    with refuses(inv, ConclusionNeedsCorroborationError, check_id, "1 agreeing source(s)"):
        inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)


def test_a_discrepancy_never_rests_on_one_witness() -> None:
    # given: one former supervisor says the dates are wrong
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(
        finding(check_id, SourceRole.DIRECT_SUPERVISOR, Outcome.DISCREPANCY), inv.scope
    )
    # when / then
    with refuses(inv, NegativeConclusionNeedsSecondSourceError, check_id, "discrepancy") as info:
        inv.conclude_check(check_id, Outcome.DISCREPANCY, INVESTIGATOR)
    assert info.value.check_id == check_id
    assert check_id not in inv.conclusions


def test_a_discrepancy_from_two_witnesses_of_the_same_role_is_not_enough() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(
        finding(check_id, SourceRole.PEER, Outcome.DISCREPANCY, reference="ref-1"), inv.scope
    )
    inv.record_finding(
        finding(check_id, SourceRole.PEER, Outcome.DISCREPANCY, reference="ref-2"), inv.scope
    )
    with refuses(inv, NegativeConclusionNeedsSecondSourceError, check_id):
        inv.conclude_check(check_id, Outcome.DISCREPANCY, INVESTIGATOR)


def test_a_discrepancy_stands_on_two_witnesses_of_different_roles() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(
        finding(check_id, SourceRole.DIRECT_SUPERVISOR, Outcome.DISCREPANCY), inv.scope
    )
    inv.record_finding(finding(check_id, SourceRole.HR, Outcome.DISCREPANCY), inv.scope)
    inv.conclude_check(check_id, Outcome.DISCREPANCY, INVESTIGATOR)
    assert inv.conclusions[check_id].outcome is Outcome.DISCREPANCY


def test_a_registrar_alone_may_establish_a_discrepancy() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(
        finding(check_id, SourceRole.REGISTRAR, Outcome.DISCREPANCY, method=Method.EMAIL), inv.scope
    )
    inv.conclude_check(check_id, Outcome.DISCREPANCY, INVESTIGATOR)
    assert inv.conclusions[check_id].outcome is Outcome.DISCREPANCY


def test_unverifiable_needs_an_attempt_to_verify() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    with refuses(inv, NoAttemptRecordedError, check_id):
        inv.conclude_check(check_id, Outcome.UNVERIFIABLE, INVESTIGATOR)


def test_unverifiable_rests_on_the_attempts_made() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    attempt = finding(check_id, SourceRole.HR, Outcome.UNVERIFIABLE)
    inv.record_finding(attempt, inv.scope)
    inv.conclude_check(check_id, Outcome.UNVERIFIABLE, INVESTIGATOR)
    assert inv.conclusions[check_id].basis == (attempt.finding_id,)


def test_checks_are_concluded_only_by_assigned_investigators() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(finding(check_id, SourceRole.REGISTRAR, method=Method.EMAIL), inv.scope)
    with refuses(inv, InvestigatorNotAssignedError, OTHER_INVESTIGATOR):
        inv.conclude_check(check_id, Outcome.CONFIRMED, OTHER_INVESTIGATOR)


def test_a_check_is_concluded_once() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(finding(check_id, SourceRole.REGISTRAR, method=Method.EMAIL), inv.scope)
    inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)
    with refuses(inv, CheckAlreadyConcludedError, check_id):
        inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)


def test_only_planned_checks_are_concluded() -> None:
    inv = started_investigation()
    unplanned = uuid4()
    with refuses(inv, UnknownCheckError, unplanned):
        inv.conclude_check(unplanned, Outcome.CONFIRMED, INVESTIGATOR)


# --- feedback and disputes ---------------------------------------------------------------------


def test_feedback_is_answered_once() -> None:
    inv = started_investigation()
    feedback_id = uuid4()
    inv.give_feedback(feedback_id, "When will you call my former manager?")
    inv.answer_feedback(feedback_id, "This week.", RECRUITER)
    with refuses(inv, FeedbackAlreadyAnsweredError, feedback_id):
        inv.answer_feedback(feedback_id, "Again.", RECRUITER)


def test_only_given_feedback_is_answered() -> None:
    inv = started_investigation()
    unknown = uuid4()
    with refuses(inv, UnknownFeedbackError, unknown, inv.id):
        inv.answer_feedback(unknown, "An answer to nothing.", RECRUITER)


def test_feedback_must_say_something() -> None:
    inv = started_investigation()
    with refuses(inv, InvalidPlanError, "'text'"):
        inv.give_feedback(uuid4(), "   ")


def test_an_upheld_dispute_reopens_the_check_and_retracts_the_findings_it_rested_on() -> None:
    # given: a completed investigation whose one check was confirmed by two sources
    inv = concluded_investigation()
    check_id = only_check(inv)
    basis = inv.conclusions[check_id].basis
    dispute_id = uuid4()
    inv.raise_dispute(dispute_id, check_id, "I left in 2021, not 2022")
    # when
    inv.resolve_dispute(dispute_id, True, "Agreed, we will verify again.", RECRUITER)
    # then: the check is open again and its old findings no longer count
    assert check_id not in inv.conclusions
    assert inv.retracted == set(basis)
    assert inv.status is InvestigationStatus.IN_PROGRESS
    with refuses(inv, ConclusionNeedsCorroborationError, check_id, "0 agreeing source(s)"):
        inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)


def test_a_reopened_check_is_concluded_on_new_findings() -> None:
    inv = concluded_investigation()
    check_id = only_check(inv)
    dispute_id = uuid4()
    inv.raise_dispute(dispute_id, check_id, "wrong dates")
    inv.resolve_dispute(dispute_id, True, "We will verify again.", RECRUITER)
    registrar = finding(check_id, SourceRole.OFFICIAL_DOCUMENT, method=Method.EMAIL)
    inv.record_finding(registrar, inv.scope)
    inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)
    assert inv.conclusions[check_id].basis == (registrar.finding_id,)


def test_a_rejected_dispute_keeps_the_conclusion_and_is_answered() -> None:
    inv = concluded_investigation()
    check_id = only_check(inv)
    before = inv.conclusions[check_id]
    dispute_id = uuid4()
    inv.raise_dispute(dispute_id, check_id, "wrong dates")
    inv.resolve_dispute(dispute_id, False, "Two sources and the contract agree.", RECRUITER)
    assert inv.conclusions[check_id] == before
    assert inv.status is InvestigationStatus.COMPLETED
    assert inv.disputes[dispute_id].resolution == "Two sources and the contract agree."
    assert inv.open_disputes == []


def test_a_dispute_is_answered_with_a_response() -> None:
    inv = concluded_investigation()
    dispute_id = uuid4()
    inv.raise_dispute(dispute_id, only_check(inv), "wrong dates")
    with refuses(inv, InvalidPlanError, "'response'"):
        inv.resolve_dispute(dispute_id, False, " ", RECRUITER)


def test_a_dispute_is_resolved_once() -> None:
    inv = concluded_investigation()
    dispute_id = uuid4()
    inv.raise_dispute(dispute_id, only_check(inv), "wrong dates")
    inv.resolve_dispute(dispute_id, False, "The records agree.", RECRUITER)
    with refuses(inv, DisputeAlreadyResolvedError, dispute_id):
        inv.resolve_dispute(dispute_id, True, "Changed our mind.", RECRUITER)


def test_only_raised_disputes_are_resolved() -> None:
    inv = concluded_investigation()
    unknown = uuid4()
    with refuses(inv, UnknownDisputeError, unknown):
        inv.resolve_dispute(unknown, True, "?", RECRUITER)


def test_a_dispute_names_a_planned_check() -> None:
    inv = concluded_investigation()
    unplanned = uuid4()
    with refuses(inv, UnknownCheckError, unplanned):
        inv.raise_dispute(uuid4(), unplanned, "wrong")


def test_an_open_dispute_blocks_the_report() -> None:
    inv = concluded_investigation()
    dispute_id = uuid4()
    inv.raise_dispute(dispute_id, only_check(inv), "wrong dates")
    with refuses(inv, OpenDisputeError, dispute_id, "compile a report"):
        inv.results_for_report()


# --- completion --------------------------------------------------------------------------------


def test_an_investigation_completes_only_when_every_check_is_concluded() -> None:
    inv = started_investigation(CheckType.EMPLOYMENT, CheckType.REFERENCE)
    employment, reference = inv.checks
    inv.record_finding(finding(employment, SourceRole.REGISTRAR, method=Method.EMAIL), inv.scope)
    inv.conclude_check(employment, Outcome.CONFIRMED, INVESTIGATOR)
    with refuses(inv, ChecksStillOpenError, inv.id, reference) as info:
        inv.complete(INVESTIGATOR)
    assert info.value.open_checks == [str(reference)]


def test_a_report_is_compiled_only_from_a_completed_investigation() -> None:
    inv = started_investigation()
    with refuses(inv, InvestigationNotCompletedError, inv.id, "in progress"):
        inv.results_for_report()


def test_a_completed_investigation_summarises_each_check_with_its_provenance() -> None:
    inv = concluded_investigation()
    (summary,) = inv.results_for_report()
    assert summary.check_id == only_check(inv)
    assert summary.outcome is Outcome.CONFIRMED
    assert summary.source_roles == (SourceRole.DIRECT_SUPERVISOR, SourceRole.HR)
    assert summary.source_count == 2
    assert not summary.single_source
    assert not summary.contested
    assert not summary.disputed
    assert not summary.possibly_biased


def test_a_summary_flags_single_source_contested_and_possibly_biased_checks() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(
        finding(check_id, SourceRole.REGISTRAR, method=Method.EMAIL, possible_bias=True), inv.scope
    )
    inv.record_finding(finding(check_id, SourceRole.PEER, Outcome.DISCREPANCY), inv.scope)
    inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)
    inv.complete(INVESTIGATOR)
    (summary,) = inv.results_for_report()
    assert summary.single_source
    assert summary.contested
    assert summary.possibly_biased


# --- suspend, resume, cancel -------------------------------------------------------------------


def test_a_suspended_investigation_refuses_findings() -> None:
    inv = started_investigation()
    assert inv.scope is not None
    inv.suspend("consent withdrawn", inv.scope.consent_id)
    with refuses(inv, InvestigationStateError, inv.id, "suspended", "record a finding"):
        inv.record_finding(finding(only_check(inv), SourceRole.HR), inv.scope)


def test_a_suspended_investigation_neither_concludes_nor_completes() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(finding(check_id, SourceRole.REGISTRAR, method=Method.EMAIL), inv.scope)
    assert inv.scope is not None
    inv.suspend("consent withdrawn", inv.scope.consent_id)
    with refuses(inv, InvestigationStateError, inv.id, "suspended", "conclude a check"):
        inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)
    with refuses(inv, InvestigationStateError, inv.id, "suspended", "complete"):
        inv.complete(INVESTIGATOR)


def cancelled() -> Investigation:
    inv = started_investigation()
    inv.cancel("position filled", RECRUITER)
    return inv


def suspended() -> Investigation:
    inv = started_investigation()
    inv.suspend("consent withdrawn", uuid4())
    return inv


@pytest.mark.parametrize(
    ("given", "status"),
    [(concluded_investigation, "completed"), (cancelled, "cancelled"), (suspended, "suspended")],
)
def test_only_a_planned_or_running_investigation_is_suspended(
    given: Callable[[], Investigation], status: str
) -> None:
    inv = given()
    with refuses(inv, InvestigationStateError, inv.id, status, "suspend"):
        inv.suspend("consent withdrawn", uuid4())


def test_a_planned_investigation_can_be_suspended_and_resumes_as_planned() -> None:
    inv = notified()
    inv.suspend("consent withdrawn", uuid4())
    inv.resume(scope_with(inv), "hr:test")
    assert inv.status is InvestigationStatus.PLANNED
    assert inv.scope is None


def test_a_running_investigation_resumes_under_a_new_consent() -> None:
    inv = started_investigation()
    inv.suspend("consent withdrawn", uuid4())
    renewed = scope_with(inv)
    inv.resume(renewed, "hr:test")
    assert inv.status is InvestigationStatus.IN_PROGRESS
    assert inv.consent_id == renewed.consent_id
    assert inv.scope == renewed


def test_only_a_suspended_investigation_resumes() -> None:
    inv = started_investigation()
    with refuses(inv, InvestigationStateError, inv.id, "in progress", "resume"):
        inv.resume(scope_with(inv), "hr:test")


@pytest.mark.parametrize("status", [ConsentStatus.WITHDRAWN, ConsentStatus.EXPIRED])
def test_a_suspended_investigation_resumes_only_under_an_active_consent(
    status: ConsentStatus,
) -> None:
    inv = started_investigation()
    inv.suspend("consent withdrawn", uuid4())
    scope = scope_with(inv, status)
    with refuses(inv, ConsentNotActiveError, scope.consent_id):
        inv.resume(scope, "hr:test")
    assert inv.status is InvestigationStatus.SUSPENDED


def test_a_suspended_investigation_resumes_only_under_a_consent_covering_every_check() -> None:
    inv = started_investigation(CheckType.EMPLOYMENT, CheckType.REFERENCE)
    inv.suspend("consent withdrawn", uuid4())
    narrower = scope_with(inv, check_types=(CheckType.EMPLOYMENT,))
    with refuses(inv, ConsentDoesNotCoverCheckError, "reference"):
        inv.resume(narrower, "hr:test")


@pytest.mark.parametrize(
    ("given", "status"), [(concluded_investigation, "completed"), (cancelled, "cancelled")]
)
def test_an_ended_investigation_cannot_be_cancelled(
    given: Callable[[], Investigation], status: str
) -> None:
    inv = given()
    with refuses(inv, InvestigationStateError, inv.id, status, "cancel"):
        inv.cancel("again", RECRUITER)


def test_a_suspended_investigation_can_be_cancelled() -> None:
    inv = started_investigation()
    inv.suspend("consent withdrawn", uuid4())
    inv.cancel("candidate withdrew", RECRUITER)
    assert inv.status is InvestigationStatus.CANCELLED


def test_a_cancelled_investigation_takes_no_feedback_disputes_or_investigators() -> None:
    inv = started_investigation()
    check_id = only_check(inv)
    inv.cancel("position filled", RECRUITER)
    with refuses(inv, InvestigationStateError, inv.id, "cancelled", "take feedback"):
        inv.give_feedback(uuid4(), "What happens now?")
    with refuses(inv, InvestigationStateError, inv.id, "cancelled", "take a dispute"):
        inv.raise_dispute(uuid4(), check_id, "wrong")
    with refuses(inv, InvestigationStateError, inv.id, "cancelled", "assign an investigator"):
        inv.assign(OTHER_INVESTIGATOR, RECRUITER)


def test_the_candidate_may_still_speak_after_completion() -> None:
    inv = concluded_investigation()
    inv.give_feedback(uuid4(), "Thank you.")
    inv.raise_dispute(uuid4(), only_check(inv), "The title was Senior Engineer.")
    assert len(inv.open_disputes) == 1
    assert len(inv.feedback) == 1


def test_one_person_heard_in_two_roles_counts_as_one_source_in_the_summary() -> None:
    # given a registrar, and one referee recorded both as supervisor and as HR
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(
        finding(check_id, SourceRole.REGISTRAR, method=Method.EMAIL, reference="registry"),
        inv.scope,
    )
    inv.record_finding(
        finding(check_id, SourceRole.DIRECT_SUPERVISOR, reference="ref-1"), inv.scope
    )
    inv.record_finding(finding(check_id, SourceRole.HR, reference="ref-1"), inv.scope)
    inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)
    # when the report's view of the check is taken
    (summary,) = inv.summaries()
    # then ref-1 is one source, not two
    assert summary.source_count == 2
    assert not summary.single_source
