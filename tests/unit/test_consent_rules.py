"""Rules the Consent aggregate enforces: what may be asked, what granted, and when it ends."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.check import CheckType, SourceRole
from domain.consent import Consent, ConsentStatus, ConsentTerms, SignatureMethod
from domain.errors import (
    ConsentBelongsToAnotherCandidateError,
    ConsentGrantExceedsRequestError,
    ConsentNotActiveError,
    ConsentNotExpiredError,
    ConsentNotPendingError,
    InvalidInputError,
    InvalidValidityWindowError,
    ProhibitedCategoryError,
    UnknownDataCategoryError,
    ValidityWindowOverError,
)
from tests.story import (
    CALLER,
    DOCUMENT_SHA256,
    NOW,
    PURPOSE,
    RECRUITER,
    VALID_FOR,
    granted_consent,
    new_consent,
    refuses,
    terms,
)

UNTIL = NOW + VALID_FOR


def grant(consent: Consent, given: ConsentTerms | None = None, **kwargs: object) -> None:
    values: dict[str, object] = {
        "document_sha256": DOCUMENT_SHA256,
        "signature_method": SignatureMethod.WET_INK,
        "valid_from": NOW,
        "valid_until": UNTIL,
        "recorded_by": "esign-service",
        "now": NOW,
        "authenticated": CALLER,
    }
    values.update(kwargs)
    consent.grant(given or consent.requested, **values)  # type: ignore[arg-type]


# --- the request -------------------------------------------------------------------------------


def test_a_consent_request_may_not_ask_for_a_prohibited_category() -> None:
    asked = terms(categories=("user.criminal_history", "user.health.hiv_status"))
    with refuses(None, ProhibitedCategoryError, "'categories'", "user.health.hiv_status") as info:
        Consent.request(uuid4(), asked, RECRUITER)
    assert info.value.category == "user.health.hiv_status"


def test_a_consent_request_may_not_name_an_unknown_category() -> None:
    with refuses(None, UnknownDataCategoryError, "'categories'", "user.horoscope"):
        Consent.request(uuid4(), terms(categories=("user.horoscope",)), RECRUITER)


@pytest.mark.parametrize("field", ["purposes", "check_types"])
def test_a_consent_request_names_at_least_one_purpose_and_check_type(field: str) -> None:
    with refuses(None, InvalidInputError, f"'{field}'") as info:
        Consent.request(uuid4(), terms(**{field: ()}), RECRUITER)
    assert info.value.field == field


def test_a_requested_consent_is_not_yet_in_force() -> None:
    consent = new_consent()
    assert consent.status_at(NOW) is ConsentStatus.REQUESTED
    assert consent.scope_at(NOW).terms == consent.requested


# --- the grant ---------------------------------------------------------------------------------


def test_a_grant_may_narrow_the_request() -> None:
    # given: a broad request
    consent = new_consent(
        terms(
            purposes=(PURPOSE, "promotion review"),
            categories=("user.criminal_history", "user.demographic.marital_status"),
            check_types=(CheckType.EMPLOYMENT, CheckType.REFERENCE, CheckType.CRIMINAL_RECORD),
            recording_allowed=True,
            third_parties=("Screening Partner Co",),
        )
    )
    narrower = terms(
        check_types=(CheckType.EMPLOYMENT,),
        referee_roles=(SourceRole.HR,),
        excluded_organisations=("Current Employer Inc",),
    )
    # when
    grant(consent, narrower)
    # then: the narrower terms are what is in force
    assert consent.status_at(NOW) is ConsentStatus.ACTIVE
    assert consent.scope_at(NOW).terms == narrower
    assert consent.document_sha256 == DOCUMENT_SHA256


@pytest.mark.parametrize(
    ("asked", "given", "scope", "extra"),
    [
        pytest.param(
            {}, {"purposes": (PURPOSE, "marketing")}, "purposes", "marketing", id="purposes"
        ),
        pytest.param(
            {},
            {"check_types": (CheckType.EMPLOYMENT, CheckType.DRUG_TEST)},
            "check types",
            "drug_test",
            id="check-types",
        ),
        pytest.param(
            {"categories": ("user.criminal_history",)},
            {"categories": ("user.criminal_history", "user.health.mental")},
            "categories",
            "user.health.mental",
            id="categories",
        ),
        pytest.param(
            {"referee_roles": (SourceRole.HR,)},
            {"referee_roles": (SourceRole.HR, SourceRole.SUBORDINATE)},
            "referee roles",
            "subordinate",
            id="referee-roles",
        ),
        pytest.param(
            {},
            {"third_parties": ("Data Broker Ltd",)},
            "third parties",
            "1 organisation(s) not asked for",  # never by name (test below)
            id="third-parties",
        ),
        pytest.param({}, {"recording_allowed": True}, "permissions", "recording", id="recording"),
        pytest.param(
            {"excluded_organisations": ("Current Employer Inc",)},
            {"excluded_organisations": ()},
            "referee organisations",
            "1 exclusion(s) dropped",  # never by name (test below)
            id="dropped-exclusion",
        ),
    ],
)
def test_a_grant_never_widens_the_request(
    asked: dict[str, object], given: dict[str, object], scope: str, extra: str
) -> None:
    # given
    consent = new_consent(terms(**asked))
    # when / then
    with refuses(consent, ConsentGrantExceedsRequestError, consent.id, scope, extra) as info:
        grant(consent, terms(**{**asked, **given}))
    assert info.value.scope == scope
    assert info.value.extra == [extra]
    # said once, in order (it read "adds third parties 1 organisation(s) not asked for that
    # were not requested")
    assert f"the grant goes beyond the request's {scope}: {extra}; " in info.value.message
    assert consent.status_at(NOW) is ConsentStatus.REQUESTED


@pytest.mark.parametrize(
    ("asked", "given", "name"),
    [
        ({}, {"third_parties": ("Data Broker Ltd",)}, "data broker"),
        (
            {"excluded_organisations": ("Current Employer Inc",)},
            {"excluded_organisations": ()},
            "current employer",
        ),
    ],
)
def test_a_refused_grant_names_no_organisation(
    asked: dict[str, object], given: dict[str, object], name: str
) -> None:
    """A refusal is kept where erasure does not reach (a command's outcome): the candidate's
    organisations are never in it."""
    consent = new_consent(terms(**asked))
    with refuses(consent, ConsentGrantExceedsRequestError) as info:
        grant(consent, terms(**{**asked, **given}))
    assert name not in str(info.value).casefold()
    assert name not in repr(info.value.details).casefold()


def test_a_grant_may_add_excluded_organisations() -> None:
    consent = new_consent(terms(excluded_organisations=("Current Employer Inc",)))
    # the candidate excludes one more organisation and writes the first one differently
    given = terms(excluded_organisations=("current employer inc", "Former Rival Co"))
    grant(consent, given)
    assert consent.scope_at(NOW).terms == given


def test_a_grant_may_not_add_a_prohibited_category() -> None:
    consent = new_consent()
    with refuses(consent, ProhibitedCategoryError, "'categories'", "user.family_life"):
        grant(consent, terms(categories=("user.family_life",)))


@pytest.mark.parametrize(
    "document_sha256",
    [
        pytest.param(DOCUMENT_SHA256.upper(), id="uppercase"),
        pytest.param(DOCUMENT_SHA256[:-1], id="63-chars"),
        pytest.param(DOCUMENT_SHA256 + "0", id="65-chars"),
        pytest.param("g" * 64, id="not-hex"),
        pytest.param("", id="empty"),
    ],
)
def test_a_grant_records_the_sha256_of_the_signed_document(document_sha256: str) -> None:
    consent = new_consent()
    with refuses(consent, InvalidInputError, "'document_sha256'") as info:
        grant(consent, document_sha256=document_sha256)
    assert info.value.field == "document_sha256"


@pytest.mark.parametrize("until", [NOW, NOW - timedelta(seconds=1)], ids=["empty", "reversed"])
def test_a_grant_needs_a_validity_window_that_ends_after_it_starts(until: object) -> None:
    consent = new_consent()
    with refuses(consent, InvalidValidityWindowError, consent.id):
        grant(consent, valid_until=until)


@pytest.mark.parametrize(
    ("valid_from", "valid_until"),
    [
        (datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 6, 1, tzinfo=UTC)),
        (NOW - VALID_FOR, NOW),  # ends the moment it is recorded
    ],
    ids=["in-the-past", "ends-now"],
)
def test_a_grant_whose_window_is_over_when_recorded_is_refused(
    valid_from: datetime, valid_until: datetime
) -> None:
    consent = new_consent()
    with refuses(consent, ValidityWindowOverError, consent.id, "valid_until") as info:
        grant(consent, valid_from=valid_from, valid_until=valid_until)
    assert info.value.field == "valid_until"
    assert consent.status_at(NOW) is ConsentStatus.REQUESTED  # still open to a proper grant


def test_a_grant_whose_window_started_in_the_past_and_goes_on_is_taken() -> None:
    consent = new_consent()
    grant(consent, valid_from=NOW - VALID_FOR, valid_until=NOW + timedelta(seconds=1))
    assert consent.status_at(NOW) is ConsentStatus.ACTIVE


def test_a_consent_is_granted_only_once() -> None:
    consent = granted_consent()
    with refuses(consent, ConsentNotPendingError, consent.id, "active") as info:
        grant(consent)
    assert info.value.status == "active"


def test_a_withdrawn_request_can_no_longer_be_granted() -> None:
    consent = new_consent()
    consent.withdraw("changed my mind", NOW, "candidate", CALLER)
    with refuses(consent, ConsentNotPendingError, consent.id, "withdrawn"):
        grant(consent)


# --- the validity window -----------------------------------------------------------------------


def test_a_consent_is_in_force_only_inside_its_validity_window() -> None:
    # given: granted from tomorrow for ninety days
    consent = new_consent()
    tomorrow = NOW + timedelta(days=1)
    grant(consent, valid_from=tomorrow, valid_until=tomorrow + VALID_FOR)
    # then
    assert consent.status_at(NOW) is ConsentStatus.NOT_YET_VALID
    assert consent.status_at(tomorrow) is ConsentStatus.ACTIVE
    assert consent.status_at(tomorrow + VALID_FOR - timedelta(seconds=1)) is ConsentStatus.ACTIVE
    assert consent.status_at(tomorrow + VALID_FOR) is ConsentStatus.EXPIRED


def test_the_scope_of_a_consent_carries_its_status_at_that_moment() -> None:
    consent = granted_consent()
    assert consent.scope_at(NOW).status is ConsentStatus.ACTIVE
    assert consent.scope_at(UNTIL).status is ConsentStatus.EXPIRED
    assert consent.scope_at(NOW).candidate_id == consent.candidate_id


def test_a_scope_belongs_to_the_candidate_who_gave_it() -> None:
    scope = granted_consent().scope_at(NOW)
    other = uuid4()
    with refuses(None, ConsentBelongsToAnotherCandidateError, scope.consent_id, other):
        scope.require_candidate(other)


# --- withdrawal --------------------------------------------------------------------------------


def test_a_consent_can_be_withdrawn_at_any_time_while_in_force() -> None:
    consent = granted_consent()
    consent.collect_events()
    consent.withdraw("no longer interested", NOW + timedelta(days=3), "candidate", CALLER)
    (event,) = consent.collect_events()
    assert isinstance(event, Consent.Withdrawn)
    assert consent.status_at(NOW + timedelta(days=3)) is ConsentStatus.WITHDRAWN
    # withdrawal outranks everything, even a moment inside the window
    assert consent.status_at(NOW + timedelta(days=10)) is ConsentStatus.WITHDRAWN


def test_a_request_can_be_declined_by_withdrawing_it() -> None:
    consent = new_consent()
    consent.withdraw("declined", NOW, "candidate", CALLER)
    assert consent.status_at(NOW) is ConsentStatus.WITHDRAWN


def test_a_consent_cannot_be_withdrawn_twice() -> None:
    consent = granted_consent()
    consent.withdraw("no longer interested", NOW, "candidate", CALLER)
    with refuses(consent, ConsentNotActiveError, consent.id, "already withdrawn") as info:
        consent.withdraw("again", NOW + timedelta(hours=1), "candidate", CALLER)
    # a second click on "withdraw" is told it is done, not to get a new consent granted
    assert "nothing is left to withdraw" in info.value.message
    assert "new, granted consent" not in info.value.message


def test_an_expired_consent_cannot_be_withdrawn() -> None:
    consent = granted_consent()
    with refuses(consent, ConsentNotActiveError, consent.id, "expired") as info:
        consent.withdraw("too late", UNTIL, "candidate", CALLER)
    assert info.value.status == "expired"
    assert "nothing is left to withdraw" in info.value.message


# --- expiry ------------------------------------------------------------------------------------


def test_a_consent_expires_once_its_window_has_passed() -> None:
    consent = granted_consent()
    consent.collect_events()
    consent.expire(UNTIL + timedelta(days=2))
    (event,) = consent.collect_events()
    assert isinstance(event, Consent.Expired)
    assert event.expired_at == UNTIL  # when it ended, not when it was noticed
    assert consent.status_at(NOW) is ConsentStatus.EXPIRED


def test_a_consent_cannot_be_expired_early() -> None:
    consent = granted_consent()
    with refuses(consent, ConsentNotExpiredError, consent.id, UNTIL) as info:
        consent.expire(UNTIL - timedelta(seconds=1))
    assert info.value.valid_until == UNTIL
    assert consent.status_at(NOW) is ConsentStatus.ACTIVE


def test_a_consent_never_granted_does_not_expire() -> None:
    consent = new_consent()
    with refuses(consent, ConsentNotActiveError, consent.id, "is requested"):
        consent.expire(UNTIL + timedelta(days=365))


def test_a_consent_expires_only_once() -> None:
    consent = granted_consent()
    consent.expire(UNTIL)
    with refuses(consent, ConsentNotActiveError, consent.id, "expired"):
        consent.expire(UNTIL + timedelta(days=1))


def test_a_withdrawn_consent_does_not_expire() -> None:
    consent = granted_consent()
    consent.withdraw("no longer interested", NOW, "candidate", CALLER)
    with refuses(consent, ConsentNotActiveError, consent.id, "withdrawn"):
        consent.expire(UNTIL)


def test_reliance_is_remembered_so_withdrawal_can_reach_the_investigation() -> None:
    consent = granted_consent()
    investigation_id = uuid4()
    consent.record_reliance(investigation_id)
    assert consent.relied_on_by == [investigation_id]


def test_the_requested_terms_are_kept_next_to_the_granted_ones() -> None:
    asked = terms(recording_allowed=True)
    consent = new_consent(asked)
    grant(consent, replace(asked, recording_allowed=False))
    assert consent.requested == asked
    assert consent.granted == replace(asked, recording_allowed=False)
