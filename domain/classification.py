"""Data categories of personal fields and the tier each one belongs to.

Category keys are dotted, in the style of the Fides taxonomy. The tiers come from the seeds
(002): general facts may not leave the company, confidential ones are need-to-know inside it,
secret ones stay within the responsibility of the assigned people (and are PIPL "sensitive":
each needs to be named in the consent), consent-required ones need explicit consent, and
prohibited ones are never collected.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.errors import (
    ConsentRequiredForCategoryError,
    ProhibitedCategoryError,
    UnknownDataCategoryError,
)


class Tier(StrEnum):
    GENERAL = "general"
    CONFIDENTIAL = "confidential"
    SECRET = "secret"
    CONSENT_REQUIRED = "consent_required"
    PROHIBITED = "prohibited"

    @property
    def needs_named_consent(self) -> bool:
        """Sensitive and consent-required data is collected only when the consent names it."""
        return self in (Tier.SECRET, Tier.CONSENT_REQUIRED)


@dataclass(frozen=True)
class DataCategory:
    key: str
    tier: Tier
    description: str


_CATEGORIES = (
    # general: never disclosed outside the company
    DataCategory("user.name", Tier.GENERAL, "name"),
    DataCategory("user.contact.email", Tier.GENERAL, "email address"),
    DataCategory("user.contact.phone", Tier.GENERAL, "phone number"),
    DataCategory("user.contact.address", Tier.GENERAL, "postal address"),
    DataCategory("user.education", Tier.GENERAL, "schools, degrees and dates"),
    DataCategory("user.employment.employer", Tier.GENERAL, "employer names"),
    DataCategory("user.employment.title", Tier.GENERAL, "job titles"),
    DataCategory("user.employment.dates", Tier.GENERAL, "employment dates"),
    DataCategory("user.credential", Tier.GENERAL, "professional qualifications"),
    DataCategory("user.reference.contact", Tier.GENERAL, "how to reach a named referee"),
    DataCategory("user.reference.identity", Tier.GENERAL, "who a referee is: name or handle"),
    DataCategory(
        "user.organisation",
        Tier.GENERAL,
        "organisations the candidate's case names: sources, exclusions, third parties",
    ),
    # confidential: need-to-know inside the company
    DataCategory("user.government_id", Tier.CONFIDENTIAL, "ID document numbers"),
    DataCategory("user.health.job_relevant", Tier.CONFIDENTIAL, "health relevant to the job"),
    DataCategory("user.employment.evaluation", Tier.CONFIDENTIAL, "job evaluations, assessments"),
    DataCategory("user.employment.experience", Tier.CONFIDENTIAL, "details of past experience"),
    DataCategory("user.statement", Tier.CONFIDENTIAL, "the candidate's feedback and disputes"),
    DataCategory("user.case_correspondence", Tier.CONFIDENTIAL, "answers given to the candidate"),
    DataCategory(
        "user.case_note",
        Tier.CONFIDENTIAL,
        "why someone acted on the candidate's case: a break-glass justification, the reason "
        "an erasure was asked for, an investigation was cancelled or a report put on hold",
    ),
    # secret: within the responsibility of assigned people only; PIPL sensitive
    DataCategory("user.health.mental", Tier.SECRET, "mental status"),
    DataCategory("user.criminal_history", Tier.SECRET, "judicial and criminal records"),
    DataCategory("user.health.drug_test", Tier.SECRET, "drug test results"),
    DataCategory("user.health.alcohol_test", Tier.SECRET, "alcohol test results"),
    # consent-required: related to management but not necessary for employment
    DataCategory("user.demographic.marital_status", Tier.CONSENT_REQUIRED, "marital status"),
    # prohibited: purely private, no bearing on employment
    DataCategory("user.demographic.religious_belief", Tier.PROHIBITED, "religious belief"),
    DataCategory("user.family_life", Tier.PROHIBITED, "family life"),
    DataCategory("user.health.blood_type", Tier.PROHIBITED, "blood type"),
    DataCategory("user.social_relationships", Tier.PROHIBITED, "social relationships"),
    DataCategory("user.financial.property", Tier.PROHIBITED, "property status"),
    DataCategory("user.health.hiv_status", Tier.PROHIBITED, "HIV status"),
)

ERASED_VALUE = "\u27e8erased\u27e9"  # what a personal value reads as once its keys are destroyed
# what a personal value reads as when a read left it sealed: the reader may not see it, so it
# was never decrypted
WITHHELD_VALUE = "\u27e8withheld\u27e9"
# what a personal value in a replayed event holds when its data key is gone and no erasure or
# retention is recorded (tampering): never shown, never sealed again; a read of it fails
KEY_MISSING_VALUE = "\u27e8key missing\u27e9"

CATEGORIES: dict[str, DataCategory] = {c.key: c for c in _CATEGORIES}

# Where the values that tie the candidate to other people and organisations are classified
# (decision "everything identifying sealed"): a finding's source, the consent's exclusions
# and third parties, a disclosure's organisation.
ORGANISATION = "user.organisation"
REFEREE = "user.reference.identity"
# Free text someone writes of why they act on the case (decision "free text about a subject
# sealed"): it may name the candidate, so it is theirs, and goes with their erasure.
CASE_NOTE = "user.case_note"
# The values a rule cannot compare: erased, withheld from this reader, or with the key gone.
UNREADABLE_VALUES = frozenset({ERASED_VALUE, WITHHELD_VALUE, KEY_MISSING_VALUE})


def category(key: str, *, field: str = "category") -> DataCategory:
    try:
        return CATEGORIES[key]
    except KeyError:
        raise UnknownDataCategoryError(field, key) from None


def tier_of(key: str) -> Tier:
    return category(key).tier


def key_name(scope: str) -> str:
    """A data key's scope as a person reads it: a category with its tier
    (`user.education (general)`), or a tier's own key (`general`)."""
    found = CATEGORIES.get(scope)
    return f"{scope} ({found.tier.value})" if found else scope


def admit(field: str, key: str, consented_categories: frozenset[str]) -> DataCategory:
    """Admit one field of the given category at collection, or refuse it with the rule broken."""
    found = category(key, field=field)
    if found.tier is Tier.PROHIBITED:
        raise ProhibitedCategoryError(field, key)
    if found.tier.needs_named_consent and key not in consented_categories:
        raise ConsentRequiredForCategoryError(field, key)
    return found


def refuse_prohibited(keys: frozenset[str] | tuple[str, ...], *, field: str) -> None:
    """Consents, plans and requests may never name a prohibited category."""
    for key in keys:
        if category(key, field=field).tier is Tier.PROHIBITED:
            raise ProhibitedCategoryError(field, key)


@dataclass(frozen=True)
class PersonalField:
    """A personal value as stored in an event, marked with its data category.

    The category travels with the value so that the store can encrypt it per subject and tier,
    and access events can name categories without holding values.
    """

    name: str
    category: str
    value: str

    @property
    def tier(self) -> Tier:
        return tier_of(self.category)


def readable(value: PersonalField) -> bool:
    """Whether a rule may compare this value: not erased, withheld or unreadable (a rule that
    meets such a value refuses: it fails closed)."""
    return value.value not in UNREADABLE_VALUES


def upcast_personal(value: object, name: str, category: str) -> object:
    """A value stored in clear by an older event version, as the personal value the current
    version holds (an upcaster's step); anything else as it is."""
    if isinstance(value, str):
        return {"name": name, "category": category, "value": value}
    return value
