"""What can be checked, how, and from which kinds of source.

The vocabulary is shared by consents (which checks the candidate allowed), plans (which checks
will run, by which methods) and findings (which source said what).
"""

from __future__ import annotations

from enum import StrEnum


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
