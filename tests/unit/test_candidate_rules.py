"""Rules the Candidate aggregate enforces: minimal registration and classified collection."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.candidate import Candidate, Claim, ClaimKind, ErasureGround
from domain.classification import CATEGORIES, PersonalField, Tier
from domain.errors import (
    CandidateErasedError,
    ConsentRequiredForCategoryError,
    DuplicateClaimError,
    EmptyClaimError,
    ErasureAlreadyRequestedError,
    InvalidInputError,
    ProhibitedCategoryError,
    UnknownDataCategoryError,
)
from tests.story import CANDIDATE, NOW, RECRUITER, claim, new_candidate, refuses

PROHIBITED = sorted(k for k, c in CATEGORIES.items() if c.tier is Tier.PROHIBITED)
NEEDS_NAMED_CONSENT = sorted(k for k, c in CATEGORIES.items() if c.tier.needs_named_consent)
GENERAL_OR_CONFIDENTIAL = sorted(
    k for k, c in CATEGORIES.items() if c.tier in (Tier.GENERAL, Tier.CONFIDENTIAL)
)


def name(value: str = "Li Lei") -> PersonalField:
    return PersonalField("name", "user.name", value)


# --- registration ------------------------------------------------------------------------------


def test_a_candidate_is_registered_with_a_name_and_contact_details() -> None:
    # when
    candidate = Candidate.register(
        uuid4(), (name(), PersonalField("email", "user.contact.email", "li@example.com")), RECRUITER
    )
    # then
    (registered,) = candidate.collect_events()
    assert isinstance(registered, Candidate.Registered)
    assert registered.candidate_id == candidate.id
    assert candidate.claims == {}
    assert not candidate.erasure_requested


def test_registration_takes_minimal_identity_only() -> None:
    # given: an education record offered at registration
    school = PersonalField("school", "user.education", "Fudan University")
    # when / then: it must arrive as a claim instead
    with refuses(None, InvalidInputError, "'school'", "user.education", "as a claim") as info:
        Candidate.register(uuid4(), (name(), school), RECRUITER)
    assert info.value.field == "school"


def test_registration_needs_a_name() -> None:
    email = PersonalField("email", "user.contact.email", "li@example.com")
    with refuses(None, InvalidInputError, "'name'"):
        Candidate.register(uuid4(), (email,), RECRUITER)


@pytest.mark.parametrize("category", PROHIBITED)
def test_a_prohibited_category_is_refused_at_registration_as_prohibited(category: str) -> None:
    # given: a prohibited value slipped into the identity
    field = PersonalField("extra", category, "anything")
    # when / then: refused for what it is, not redirected to "submit it as a claim"
    with refuses(None, ProhibitedCategoryError, "'extra'", category) as info:
        Candidate.register(uuid4(), (name(), field), RECRUITER)
    assert info.value.category == category


def test_an_unknown_category_is_refused_at_registration() -> None:
    field = PersonalField("nickname", "user.nickname", "Lei")
    with refuses(None, UnknownDataCategoryError, "'nickname'", "user.nickname"):
        Candidate.register(uuid4(), (name(), field), RECRUITER)


# --- claims ------------------------------------------------------------------------------------


@pytest.mark.parametrize("category", PROHIBITED)
def test_a_prohibited_category_is_refused_at_collection_even_with_consent(category: str) -> None:
    # given
    candidate = new_candidate()
    # when / then: not even a consent naming it makes it collectable
    with refuses(candidate, ProhibitedCategoryError, "'detail'", category) as info:
        candidate.submit_claims((claim(category),), uuid4(), frozenset({category}), "candidate")
    assert info.value.field == "detail"
    assert candidate.claims == {}


@pytest.mark.parametrize("category", NEEDS_NAMED_CONSENT)
def test_a_sensitive_or_consent_required_category_is_refused_without_a_consent_naming_it(
    category: str,
) -> None:
    # given: a consent that names other categories only
    candidate = new_candidate()
    others = frozenset(NEEDS_NAMED_CONSENT) - {category}
    # when / then
    with refuses(candidate, ConsentRequiredForCategoryError, "'detail'", category):
        candidate.submit_claims((claim(category),), uuid4(), others, "candidate")
    assert candidate.claims == {}


@pytest.mark.parametrize("category", NEEDS_NAMED_CONSENT)
def test_a_sensitive_or_consent_required_category_is_accepted_with_a_consent_naming_it(
    category: str,
) -> None:
    # given
    candidate = new_candidate()
    candidate.collect_events()
    consent_id = uuid4()
    submitted = claim(category)
    # when
    candidate.submit_claims((submitted,), consent_id, frozenset({category}), "candidate")
    # then: the claim is kept, and the event names the consent relied on
    (event,) = candidate.collect_events()
    assert isinstance(event, Candidate.ClaimsSubmitted)
    assert event.consent_id == consent_id
    assert candidate.claims == {submitted.claim_id: submitted}


@pytest.mark.parametrize("category", GENERAL_OR_CONFIDENTIAL)
def test_general_and_confidential_claims_need_no_named_consent(category: str) -> None:
    candidate = new_candidate()
    submitted = claim(category)
    candidate.submit_claims((submitted,), None, frozenset(), "candidate")
    assert submitted.claim_id in candidate.claims


def test_an_unknown_category_is_refused_at_collection() -> None:
    candidate = new_candidate()
    with refuses(candidate, UnknownDataCategoryError, "'detail'", "user.star_sign") as info:
        candidate.submit_claims((claim("user.star_sign"),), None, frozenset(), "candidate")
    assert info.value.category == "user.star_sign"


def test_one_refused_field_refuses_the_whole_submission() -> None:
    # given: a good employment claim and a claim mixing an allowed and a prohibited field
    candidate = new_candidate()
    good = claim("user.employment.title", "engineer")
    mixed = Claim(
        uuid4(),
        ClaimKind.PERSONAL,
        (
            PersonalField("title", "user.employment.title", "lead"),
            PersonalField("blood", "user.health.blood_type", "AB"),
        ),
    )
    # when / then: nothing of it is kept
    with refuses(candidate, ProhibitedCategoryError, "'blood'"):
        candidate.submit_claims((good, mixed), None, frozenset(), "candidate")
    assert candidate.claims == {}


def test_a_claim_cannot_be_submitted_twice() -> None:
    # given
    candidate = new_candidate()
    first = claim("user.education")
    candidate.submit_claims((first,), None, frozenset(), "candidate")
    # when / then
    with refuses(candidate, DuplicateClaimError, first.claim_id) as info:
        candidate.submit_claims((first,), None, frozenset(), "candidate")
    assert info.value.claim_id == first.claim_id


def test_a_claim_cannot_appear_twice_in_one_submission() -> None:
    candidate = new_candidate()
    twice = claim("user.education")
    with refuses(candidate, DuplicateClaimError, twice.claim_id):
        candidate.submit_claims((twice, twice), None, frozenset(), "candidate")
    assert candidate.claims == {}


def test_a_claim_needs_at_least_one_field() -> None:
    candidate = new_candidate()
    empty = Claim(uuid4(), ClaimKind.EDUCATION, ())
    with refuses(candidate, EmptyClaimError, empty.claim_id):
        candidate.submit_claims((empty,), None, frozenset(), "candidate")


# --- erasure -----------------------------------------------------------------------------------


def test_no_personal_data_is_collected_after_erasure_is_requested() -> None:
    # given
    candidate = new_candidate()
    candidate.request_erasure("withdrew application", CANDIDATE)
    # when / then
    with refuses(candidate, CandidateErasedError, candidate.id) as info:
        candidate.submit_claims((claim("user.education"),), None, frozenset(), "candidate")
    assert info.value.candidate_id == candidate.id
    assert candidate.claims == {}


def test_erasure_is_requested_only_once() -> None:
    candidate = new_candidate()
    candidate.request_erasure("withdrew application", CANDIDATE)
    with refuses(candidate, ErasureAlreadyRequestedError, candidate.id):
        candidate.request_erasure("again", CANDIDATE)


@pytest.mark.parametrize(
    ("typed", "ground"),
    [
        ("candidate-request", ErasureGround.CANDIDATE_REQUEST),
        ("Candidate request", ErasureGround.CANDIDATE_REQUEST),
        (" RETENTION_ENDED ", ErasureGround.RETENTION_ENDED),
        ("legal obligation", ErasureGround.LEGAL_OBLIGATION),
    ],
)
def test_an_erasure_is_recorded_for_a_fixed_ground_as_typed(
    typed: str, ground: ErasureGround
) -> None:
    assert ErasureGround.given(typed) is ground


@pytest.mark.parametrize(
    "typed", ["Li Lei asked by phone", "", "not recorded (stated as free text before v2)"]
)
def test_an_erasure_reason_in_free_text_is_refused_naming_the_field(typed: str) -> None:
    with pytest.raises(InvalidInputError, match="field 'reason'") as refused:
        ErasureGround.given(typed)
    assert refused.value.field == "reason"


def test_an_erasure_request_after_its_category_was_shredded_keeps_no_reason() -> None:
    candidate = new_candidate()
    candidate.shred_tier("confidential", 365, NOW, [])

    candidate.request_erasure("Li Lei wants out", CANDIDATE)

    (requested,) = candidate.collect_events()[-1:]
    assert candidate.erasure_requested
    assert requested.reason is None  # type: ignore[attr-defined]
