"""Rules the Report aggregate enforces: compiled inside consent, four eyes, disclosed only
when approved and undisputed, shared with and disputable by the candidate, amended by edition,
kept while on legal hold."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from domain.check import CheckSummary, CheckType, Outcome, SourceRole
from domain.classification import PersonalField
from domain.consent import ConsentScope, ConsentStatus
from domain.errors import (
    ConsentNotActiveError,
    DisputeAlreadyResolvedError,
    InvalidInputError,
    LegalHoldError,
    OpenDisputeError,
    PurposeNotConsentedError,
    ReportNotSharedWithCandidateError,
    ReportStateError,
    SelfReviewError,
    ThirdPartyNotConsentedError,
    UnknownDisputeError,
    UnknownReportItemError,
)
from domain.report import Amendment, Flag, Report, ReportStatus
from tests.story import (
    DISCLOSER,
    HIRING_MANAGER,
    INVESTIGATOR,
    PURPOSE,
    RECRUITER,
    REVIEWER,
    active_scope,
    refuses,
)

CANDIDATE_ID = uuid4()
SECOND_REVIEWER = "reviewer:qian.yu"


def summary(check_type: CheckType = CheckType.EMPLOYMENT, **flags: bool) -> CheckSummary:
    single = flags.get("single_source", False)
    return CheckSummary(
        check_id=uuid4(),
        check_type=check_type,
        outcome=Outcome.CONFIRMED,
        source_roles=(SourceRole.REGISTRAR,) if single else (SourceRole.HR, SourceRole.PEER),
        source_count=1 if single else 2,
        single_source=single,
        contested=flags.get("contested", False),
        disputed=flags.get("disputed", False),
        possibly_biased=flags.get("possibly_biased", False),
    )


def scope(status: ConsentStatus = ConsentStatus.ACTIVE, **terms: object) -> ConsentScope:
    found = active_scope(CANDIDATE_ID, **terms)
    return ConsentScope(found.consent_id, found.candidate_id, status, found.terms)


def compiled(*summaries: CheckSummary) -> Report:
    return Report.compile(uuid4(), summaries or (summary(),), scope(), INVESTIGATOR)


def approved() -> Report:
    report = compiled()
    report.review(REVIEWER, approve=True, comments="")
    return report


def shared() -> Report:
    report = approved()
    report.share_with_candidate(RECRUITER)
    return report


def only_item(report: Report) -> UUID:
    (check_id,) = report.items
    return check_id


def disputed() -> tuple[Report, UUID]:
    report = shared()
    dispute_id = uuid4()
    report.dispute(dispute_id, only_item(report), "The title was Senior Engineer.")
    return report, dispute_id


def amend(report: Report, by: str = INVESTIGATOR, resolves: tuple[UUID, ...] = ()) -> None:
    report.amend(
        (Amendment(only_item(report), Outcome.CONFIRMED, "title corrected"),),
        "candidate's dispute upheld",
        resolves,
        by,
    )


def disclose(
    report: Report,
    in_force: ConsentScope | None = None,
    purpose: str = PURPOSE,
    recipient: str = HIRING_MANAGER,
) -> None:
    report.disclose(
        in_force or scope(), recipient, "hiring manager", purpose, RECRUITER, **DISCLOSER
    )


# --- compiling ---------------------------------------------------------------------------------


def test_a_report_is_compiled_only_under_an_active_consent() -> None:
    withdrawn = scope(ConsentStatus.WITHDRAWN)
    with refuses(None, ConsentNotActiveError, withdrawn.consent_id, "withdrawn"):
        Report.compile(uuid4(), (summary(),), withdrawn, INVESTIGATOR)


def test_a_report_leaves_out_checks_the_consent_no_longer_covers() -> None:
    employment = summary(CheckType.EMPLOYMENT)
    criminal = summary(CheckType.CRIMINAL_RECORD)
    report = Report.compile(
        uuid4(), (employment, criminal), scope(check_types=(CheckType.EMPLOYMENT,)), INVESTIGATOR
    )
    assert list(report.items) == [employment.check_id]
    assert report.excluded_checks == (criminal.check_id,)


def test_a_report_needs_a_concluded_check_within_consent() -> None:
    outside = scope(check_types=(CheckType.EDUCATION,))
    with refuses(None, InvalidInputError, "at least one concluded check"):
        Report.compile(uuid4(), (summary(CheckType.EMPLOYMENT),), outside, INVESTIGATOR)


def test_a_report_flags_single_source_contested_disputed_and_possibly_biased_items() -> None:
    plain = summary()
    flagged = summary(single_source=True, contested=True, disputed=True, possibly_biased=True)
    report = compiled(plain, flagged)
    assert report.items[plain.check_id].flags == ()
    assert report.items[flagged.check_id].flags == (
        Flag.SINGLE_SOURCE,
        Flag.CONTESTED,
        Flag.DISPUTED,
        Flag.POSSIBLY_BIASED,
    )


def test_a_new_report_is_a_first_edition_draft() -> None:
    report = compiled()
    assert report.status is ReportStatus.DRAFT
    assert report.edition == 1
    assert report.candidate_id == CANDIDATE_ID


# --- review ------------------------------------------------------------------------------------


def test_the_author_cannot_review_their_own_report() -> None:
    report = compiled()
    with refuses(report, SelfReviewError, report.id, INVESTIGATOR) as info:
        report.review(INVESTIGATOR, approve=True, comments="looks right")
    assert info.value.reviewer == INVESTIGATOR
    assert report.status is ReportStatus.DRAFT


def test_whoever_amended_a_report_cannot_review_it() -> None:
    # given: approved by a reviewer, who then amends it
    report = approved()
    amend(report, by=REVIEWER)
    # when / then
    with refuses(report, SelfReviewError, REVIEWER):
        report.review(REVIEWER, approve=True, comments="")


def test_another_person_approves_the_report() -> None:
    report = compiled()
    report.review(REVIEWER, approve=True, comments="")
    assert report.status is ReportStatus.APPROVED
    assert report.approved_by == REVIEWER


def test_requesting_changes_says_what_must_change() -> None:
    report = compiled()
    with refuses(report, InvalidInputError, "'comments'"):
        report.review(REVIEWER, approve=False, comments="  ")


def test_a_report_with_changes_requested_goes_back_for_review_after_amendment() -> None:
    report = compiled()
    report.review(REVIEWER, approve=False, comments="cite the contract")
    with refuses(report, ReportStateError, report.id, "changes requested", "review"):
        report.review(SECOND_REVIEWER, approve=True, comments="")
    amend(report, by=INVESTIGATOR)
    report.review(REVIEWER, approve=True, comments="")
    assert report.status is ReportStatus.APPROVED


def test_an_approved_report_is_not_reviewed_again() -> None:
    report = approved()
    with refuses(report, ReportStateError, report.id, "approved", "review"):
        report.review(SECOND_REVIEWER, approve=True, comments="")


# --- disclosure --------------------------------------------------------------------------------


def test_an_approved_report_is_disclosed_to_a_named_recipient_for_a_consented_purpose() -> None:
    report = approved()
    report.collect_events()
    disclose(report)
    (event,) = report.collect_events()
    assert isinstance(event, Report.Disclosed)
    assert event.disclosure.recipient == HIRING_MANAGER
    assert event.disclosure.purpose == PURPOSE
    assert event.disclosure.edition == 1


def test_a_draft_is_never_disclosed() -> None:
    report = compiled()
    with refuses(report, ReportStateError, report.id, "draft", "disclose"):
        disclose(report)


def test_a_report_with_an_open_dispute_is_not_disclosed() -> None:
    report, dispute_id = disputed()
    with refuses(report, OpenDisputeError, dispute_id, "disclose") as info:
        disclose(report)
    assert info.value.dispute_ids == [str(dispute_id)]


def test_a_report_is_disclosed_only_for_a_purpose_the_consent_allows() -> None:
    report = approved()
    in_force = scope()
    with refuses(report, PurposeNotConsentedError, in_force.consent_id, "credit scoring"):
        disclose(report, in_force, purpose="credit scoring")


@pytest.mark.parametrize("status", [ConsentStatus.WITHDRAWN, ConsentStatus.EXPIRED])
def test_a_report_is_disclosed_only_while_the_consent_is_active(status: ConsentStatus) -> None:
    report = approved()
    ended = scope(status)
    with refuses(report, ConsentNotActiveError, ended.consent_id, status.value):
        disclose(report, ended)


def test_a_report_goes_to_another_organisation_only_if_the_consent_names_it() -> None:
    report = approved()
    in_force = scope(third_parties=("Aegis Screening",))

    with refuses(
        report, ThirdPartyNotConsentedError, "'recipient_organisation'", "1 named"
    ) as info:
        report.disclose(
            in_force,
            "analyst",
            "buyer",
            PURPOSE,
            RECRUITER,
            organisation="Data Broker Ltd",
            **DISCLOSER,
        )
    assert info.value.consented == 1
    # neither organisation is named: a refusal is kept where erasure does not reach
    for name in ("data broker", "aegis"):
        assert name not in str(info.value).casefold()
        assert name not in repr(info.value.details).casefold()

    report.disclose(
        in_force,
        "case officer",
        "screening agency",
        PURPOSE,
        RECRUITER,
        organisation="aegis screening",
        **DISCLOSER,
    )
    (event,) = report.collect_events()
    assert event.disclosure.organisation == PersonalField(
        "recipient_organisation", "user.organisation", "aegis screening"
    )


def test_a_disclosure_names_its_recipient() -> None:
    report = approved()
    with refuses(report, InvalidInputError, "'recipient'"):
        disclose(report, recipient=" ")


# --- the candidate's copy and disputes ---------------------------------------------------------


def test_only_an_approved_report_is_shared_with_the_candidate() -> None:
    report = compiled()
    with refuses(report, ReportStateError, report.id, "draft", "share"):
        report.share_with_candidate(RECRUITER)


def test_an_edition_is_shared_with_the_candidate_once() -> None:
    report = shared()
    assert report.shared_edition == 1
    with refuses(report, ReportStateError, report.id, "edition 1 already shared"):
        report.share_with_candidate(RECRUITER)


def test_the_candidate_disputes_only_a_report_they_were_given() -> None:
    report = approved()
    with refuses(report, ReportNotSharedWithCandidateError, report.id):
        report.dispute(uuid4(), only_item(report), "wrong title")


def test_a_dispute_names_an_item_of_the_report() -> None:
    report = shared()
    unknown = uuid4()
    with refuses(report, UnknownReportItemError, report.id, unknown):
        report.dispute(uuid4(), unknown, "wrong title")


def test_a_dispute_says_what_is_wrong() -> None:
    report = shared()
    with refuses(report, InvalidInputError, "'statement'"):
        report.dispute(uuid4(), only_item(report), " ")


def test_a_rejected_dispute_is_answered_and_unblocks_disclosure() -> None:
    report, dispute_id = disputed()
    report.reject_dispute(dispute_id, "The contract says Engineer.", RECRUITER)
    assert report.open_disputes == []
    disclose(report)
    assert len(report.disclosures) == 1


def test_a_dispute_is_rejected_with_a_response() -> None:
    report, dispute_id = disputed()
    with refuses(report, InvalidInputError, "'response'"):
        report.reject_dispute(dispute_id, " ", RECRUITER)


def test_a_report_dispute_is_answered_once() -> None:
    report, dispute_id = disputed()
    report.reject_dispute(dispute_id, "The contract says Engineer.", RECRUITER)
    with refuses(report, DisputeAlreadyResolvedError, dispute_id):
        report.reject_dispute(dispute_id, "Still no.", RECRUITER)


def test_only_a_raised_report_dispute_is_answered() -> None:
    report = shared()
    unknown = uuid4()
    with refuses(report, UnknownDisputeError, unknown, report.id):
        report.reject_dispute(unknown, "No such thing.", RECRUITER)


# --- amendment and reissue ---------------------------------------------------------------------


def test_an_amendment_makes_a_new_edition_that_must_be_reviewed_again() -> None:
    # given: a disputed report
    report, dispute_id = disputed()
    check_id = only_item(report)
    # when
    amend(report, resolves=(dispute_id,))
    # then
    assert report.edition == 2
    assert report.status is ReportStatus.DRAFT
    assert report.approved_by is None
    assert report.open_disputes == []
    assert report.items[check_id].note == "title corrected"
    assert Flag.AMENDED in report.items[check_id].flags
    with refuses(report, ReportStateError, report.id, "draft", "disclose"):
        disclose(report)


def test_an_amendment_names_a_change_and_a_reason() -> None:
    report = approved()
    with refuses(report, InvalidInputError, "at least one change and a reason"):
        report.amend((), "no change", (), INVESTIGATOR)
    change = Amendment(only_item(report), Outcome.CONFIRMED, "title corrected")
    with refuses(report, InvalidInputError, "at least one change and a reason"):
        report.amend((change,), " ", (), INVESTIGATOR)


def test_an_amendment_changes_only_items_of_the_report() -> None:
    report = approved()
    unknown = uuid4()
    with refuses(report, UnknownReportItemError, unknown):
        report.amend((Amendment(unknown, Outcome.CONFIRMED, "x"),), "fix", (), INVESTIGATOR)


def test_an_amendment_resolves_only_open_disputes() -> None:
    report, dispute_id = disputed()
    report.reject_dispute(dispute_id, "The contract says Engineer.", RECRUITER)
    with refuses(report, DisputeAlreadyResolvedError, dispute_id):
        amend(report, resolves=(dispute_id,))
    unknown = uuid4()
    with refuses(report, UnknownDisputeError, unknown):
        amend(report, resolves=(unknown,))


def test_a_reviewed_amendment_is_reissued_to_the_candidate_as_a_new_edition() -> None:
    report, dispute_id = disputed()
    amend(report, resolves=(dispute_id,))
    report.review(REVIEWER, approve=True, comments="")
    report.reissue(RECRUITER)
    assert report.shared_edition == 2
    disclose(report)
    assert report.disclosures[-1].edition == 2


def test_an_amendment_is_reissued_only_after_review() -> None:
    report, dispute_id = disputed()
    amend(report, resolves=(dispute_id,))
    with refuses(report, ReportStateError, report.id, "draft", "share"):
        report.reissue(RECRUITER)


def test_a_first_edition_is_shared_not_reissued() -> None:
    report = approved()
    with refuses(report, ReportStateError, report.id, "first edition", "reissue"):
        report.reissue(RECRUITER)


# --- retention ---------------------------------------------------------------------------------


def test_a_report_on_legal_hold_is_not_destroyed() -> None:
    report = approved()
    report.place_legal_hold("employment tribunal case 2026-17", "legal:he.min")
    with refuses(report, LegalHoldError, report.id):
        report.destroy("retention period ended", RECRUITER)
    assert report.status is ReportStatus.APPROVED
    assert report.items


def test_a_report_is_destroyed_once_the_hold_is_released() -> None:
    report = approved()
    report.place_legal_hold("tribunal", "legal:he.min")
    report.release_legal_hold("legal:he.min")
    report.destroy("retention period ended", RECRUITER)
    assert report.status is ReportStatus.DESTROYED
    assert report.items == {}


def test_only_a_held_report_is_released() -> None:
    report = approved()
    with refuses(report, ReportStateError, report.id, "not on legal hold"):
        report.release_legal_hold("legal:he.min")


def test_a_destroyed_report_is_not_changed_again() -> None:
    report = shared()
    check_id = only_item(report)
    report.destroy("retention period ended", RECRUITER)
    with refuses(report, ReportStateError, report.id, "destroyed", "destroy"):
        report.destroy("again", RECRUITER)
    with refuses(report, ReportStateError, report.id, "destroyed", "amend"):
        report.amend((Amendment(check_id, Outcome.CONFIRMED, "x"),), "fix", (), INVESTIGATOR)
    with refuses(report, ReportStateError, report.id, "destroyed", "dispute"):
        report.dispute(uuid4(), check_id, "wrong")
    with refuses(report, ReportStateError, report.id, "destroyed", "place a legal hold"):
        report.place_legal_hold("too late", "legal:he.min")
