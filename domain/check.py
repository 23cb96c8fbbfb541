"""What can be checked, how, from which kinds of source, and what verifies a check.

The vocabulary is shared by consents (which checks the candidate allowed), plans (which checks
will run, by which methods) and findings (which source said what). The value objects a check
is made of (planned check, source, finding, conclusion, a report's summary of it) and the
cross-verification rule (`corroborates`) live here too; the investigation aggregate that holds
them is `domain/investigation.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations
from uuid import UUID

from domain.classification import ORGANISATION, REFEREE, PersonalField, readable


class CheckType(StrEnum):
    IDENTITY = "identity"
    EDUCATION = "education"
    EMPLOYMENT = "employment"
    REFERENCE = "reference"
    CREDENTIAL = "credential"
    CRIMINAL_RECORD = "criminal_record"
    DRUG_TEST = "drug_test"
    HEALTH = "health"

    @property
    def categories(self) -> frozenset[str]:
        """The data categories a check of this type reads or produces."""
        return _CHECK_CATEGORIES[self]


_CHECK_CATEGORIES: dict[CheckType, frozenset[str]] = {
    CheckType.IDENTITY: frozenset({"user.name", "user.government_id"}),
    CheckType.EDUCATION: frozenset({"user.education"}),
    CheckType.EMPLOYMENT: frozenset(
        {"user.employment.employer", "user.employment.title", "user.employment.dates"}
    ),
    CheckType.REFERENCE: frozenset(
        {"user.employment.evaluation", "user.employment.experience", "user.reference.contact"}
    ),
    CheckType.CREDENTIAL: frozenset({"user.credential"}),
    CheckType.CRIMINAL_RECORD: frozenset({"user.criminal_history"}),
    CheckType.DRUG_TEST: frozenset({"user.health.drug_test", "user.health.alcohol_test"}),
    CheckType.HEALTH: frozenset({"user.health.job_relevant"}),
}


class Method(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    INTERVIEW = "interview"
    ONLINE_SURVEY = "online_survey"
    DOCUMENT = "document"
    REGISTRY = "registry"


class SourceRole(StrEnum):
    DIRECT_SUPERVISOR = "direct_supervisor"
    HR = "hr"
    PEER = "peer"
    SUBORDINATE = "subordinate"
    CLIENT = "client"
    REGISTRAR = "registrar"
    OFFICIAL_DOCUMENT = "official_document"

    @property
    def is_authoritative(self) -> bool:
        """A registrar or an official document settles a fact alone; a person never does."""
        return self in (SourceRole.REGISTRAR, SourceRole.OFFICIAL_DOCUMENT)

    @property
    def is_referee(self) -> bool:
        """People who are asked about the candidate; the consent says which may be contacted."""
        return not self.is_authoritative


class Outcome(StrEnum):
    CONFIRMED = "confirmed"
    DISCREPANCY = "discrepancy"
    UNVERIFIABLE = "unverifiable"


@dataclass(frozen=True)
class PlannedCheck:
    check_id: UUID
    check_type: CheckType
    methods: tuple[Method, ...]
    claim_id: UUID | None = None


@dataclass(frozen=True)
class Source:
    """Who or what a finding came from. `reference` is a handle (e.g. "ref-2"), so the same
    witness is recognised across findings; it and the organisation are personal values
    (sealed at rest, shredded on erasure): together they tie the candidate to a place and a
    person. Only the role stays in clear."""

    role: SourceRole
    reference: PersonalField
    organisation: PersonalField

    @classmethod
    def of(cls, role: SourceRole, reference: str, organisation: str) -> Source:
        """A source from the values given for it, classified."""
        return cls(
            role,
            PersonalField("source_reference", REFEREE, reference),
            PersonalField("source_organisation", ORGANISATION, organisation),
        )


@dataclass(frozen=True)
class Finding:
    finding_id: UUID
    check_id: UUID
    source: Source
    method: Method
    outcome: Outcome
    recorded_by: str
    notes: PersonalField | None = None
    conversation_recorded: bool = False
    possible_bias: bool = False


@dataclass(frozen=True)
class Conclusion:
    check_id: UUID
    outcome: Outcome
    basis: tuple[UUID, ...]
    concluded_by: str


@dataclass(frozen=True)
class CheckSummary:
    """A concluded check as a report sees it: no finding notes, just outcome and provenance."""

    check_id: UUID
    check_type: CheckType
    outcome: Outcome
    source_roles: tuple[SourceRole, ...]
    source_count: int
    single_source: bool
    contested: bool
    disputed: bool
    possibly_biased: bool


# Where a finding's notes are classified: evaluations by references and records.
NOTES_CATEGORY = "user.employment.evaluation"


def corroborates(findings: list[Finding]) -> bool:
    """≥2 independent sources of different roles, or one authoritative source."""
    if any(f.source.role.is_authoritative for f in findings):
        return True
    # A witness whose handle can no longer be read (erased) cannot be told apart from
    # another: it corroborates nothing (fails closed).
    witnesses = {
        (f.source.role, f.source.reference.value) for f in findings if readable(f.source.reference)
    }
    # Two different people (references) in two different roles; one person in two roles
    # is still one witness.
    return any(
        role_a != role_b and ref_a != ref_b
        for (role_a, ref_a), (role_b, ref_b) in combinations(witnesses, 2)
    )
