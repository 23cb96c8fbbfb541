"""Chapter 1: the candidate is registered and asked for written consent."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain import errors
from domain.check import CheckType
from infra.demo.narrator import Narrator
from infra.demo.script import HR, PURPOSE, requested_terms
from services import dto
from services.application import Backcheck


@dataclass(frozen=True)
class ConsentIds:
    """Wang Fang, and the consent HR asked her for (requested, not yet signed)."""

    candidate_id: UUID
    consent_id: UUID


def ask_for_consent(app: Backcheck, n: Narrator) -> ConsentIds:
    n.chapter("1. The candidate is registered and asked for written consent")
    candidate = n.do(
        "HR registers Wang Fang with minimal identity (name, email, phone)",
        lambda: app.register_candidate(
            dto.RegisterCandidate(
                name="Wang Fang", email="wang.fang@example.cn", phone="+86 138 0000 1234", actor=HR
            )
        ),
    )
    candidate_id = candidate.candidate_id
    n.refused(
        "HR asks consent to look into the candidate's religious belief",
        errors.ProhibitedCategoryError,
        lambda: app.request_consent(
            dto.RequestConsent(
                candidate_id=candidate_id,
                terms=dto.ConsentTermsIn(
                    purposes=[PURPOSE],
                    check_types=[CheckType.REFERENCE],
                    categories=["user.demographic.religious_belief"],
                ),
                actor=HR,
            )
        ),
    )
    consent = n.do(
        "HR requests consent: education, employment, references, criminal record",
        lambda: app.request_consent(
            dto.RequestConsent(candidate_id=candidate_id, terms=requested_terms(), actor=HR)
        ),
    )
    return ConsentIds(candidate_id=candidate_id, consent_id=consent.consent_id)
