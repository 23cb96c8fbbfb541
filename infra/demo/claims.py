"""Chapter 3: claims are collected within consent."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain import errors
from domain.candidate import ClaimKind
from infra.demo.consent import ConsentIds
from infra.demo.narrator import Narrator
from infra.demo.script import CANDIDATE
from services import dto
from services.application import Backcheck


@dataclass(frozen=True)
class ClaimIds:
    """What Wang Fang claims on her resume: her education and her employment."""

    education_claim_id: UUID
    employment_claim_id: UUID


def collect_claims(app: Backcheck, n: Narrator, consented: ConsentIds) -> ClaimIds:
    """Needs the consent signed (chapter 2)."""
    n.chapter("3. Claims are collected within consent")
    n.refused(
        "the candidate adds marital status to the resume without consent for it",
        errors.ConsentRequiredForCategoryError,
        lambda: app.submit_claims(
            _claims(
                consented,
                dto.ClaimIn(
                    kind=ClaimKind.PERSONAL,
                    fields=[_field("marital_status", "user.demographic.marital_status", "married")],
                ),
            )
        ),
    )
    education = dto.ClaimIn(
        kind=ClaimKind.EDUCATION,
        fields=[
            _field("school", "user.education", "Fudan University"),
            _field("degree", "user.education", "BSc Computer Science, 2016"),
        ],
    )
    employment = dto.ClaimIn(
        kind=ClaimKind.EMPLOYMENT,
        fields=[
            _field("employer", "user.employment.employer", "Acme Logistics"),
            _field("title", "user.employment.title", "Senior Engineer"),
            _field("dates", "user.employment.dates", "2016-07 to 2021-06"),
        ],
    )
    n.do(
        "the candidate submits education and employment claims",
        lambda: app.submit_claims(_claims(consented, education, employment)),
    )
    return ClaimIds(education_claim_id=education.claim_id, employment_claim_id=employment.claim_id)


def _claims(consented: ConsentIds, *claims: dto.ClaimIn) -> dto.SubmitClaims:
    return dto.SubmitClaims(
        candidate_id=consented.candidate_id,
        consent_id=consented.consent_id,
        claims=list(claims),
        actor=CANDIDATE,
    )


def _field(name: str, category: str, value: str) -> dto.PersonalFieldIn:
    return dto.PersonalFieldIn(name=name, category=category, value=value)
