"""What a consent allows: its terms, the scope handed to other aggregates, and its status at a
moment. Split from domain/consent.py (the aggregate), which re-exports them; they hold no
events of their own (an event's topic names the aggregate's module)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.check import CheckType, SourceRole
from domain.classification import (
    CATEGORIES,
    ORGANISATION,
    PersonalField,
    readable,
    upcast_personal,
)
from domain.errors import (
    ConsentBelongsToAnotherCandidateError,
    ConsentDoesNotCoverCheckError,
    ConsentNotActiveError,
    PersonalValueUnreadableError,
    PurposeNotConsentedError,
    RecordingNotConsentedError,
    RefereeNotPermittedError,
    ThirdPartyNotConsentedError,
)


class ConsentStatus(StrEnum):
    REQUESTED = "requested"
    ACTIVE = "active"
    NOT_YET_VALID = "not yet valid"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


EXCLUDED = "excluded_organisation"
THIRD_PARTY = "third_party"


def organisations(name: str, values: Iterable[str]) -> tuple[PersonalField, ...]:
    """Organisations named in consent terms, as the personal values the terms hold."""
    return tuple(PersonalField(name, ORGANISATION, v) for v in values)


@dataclass(frozen=True)
class ConsentTerms:
    """The scope a consent is asked for, or granted with. The organisations it names (those
    the candidate excluded from contact, usually their current employer, and the third
    parties a report may go to) are personal values: sealed at rest, shredded on erasure."""

    purposes: tuple[str, ...]
    check_types: tuple[CheckType, ...]
    categories: tuple[str, ...]
    referee_roles: tuple[SourceRole, ...]
    excluded_organisations: tuple[PersonalField, ...] = ()
    recording_allowed: bool = False
    third_parties: tuple[PersonalField, ...] = ()


def upcast_terms(terms: dict[str, Any]) -> None:
    """Terms stored before their organisations were personal values (names in clear), as
    they are now (an upcaster's step, in place)."""
    for field, name in (("excluded_organisations", EXCLUDED), ("third_parties", THIRD_PARTY)):
        terms[field] = [upcast_personal(v, name, ORGANISATION) for v in terms.get(field, ())]


def folded(consent_id: UUID, field: str, values: tuple[PersonalField, ...]) -> set[str]:
    """The names, case-folded, for comparing; a name that can no longer be read (erased, or
    withheld) is refused rather than taken as matching nothing: fail closed."""
    if not all(readable(v) for v in values):
        raise PersonalValueUnreadableError(consent_id, field)
    return {v.value.strip().casefold() for v in values}


@dataclass(frozen=True)
class ConsentScope:
    """What a consent allows at one moment; handed to other aggregates instead of the consent."""

    consent_id: UUID
    candidate_id: UUID
    status: ConsentStatus
    terms: ConsentTerms

    def require_active(self) -> None:
        if self.status is not ConsentStatus.ACTIVE:
            raise ConsentNotActiveError(self.consent_id, self.status.value)

    def require_recipient(self, organisation: PersonalField | None) -> None:
        """Inside the employer a report may go to whoever needs it for the purpose; to another
        organisation only if the consent names it as a third party (seed 002). Compared on
        the opened values; an erased one on either side refuses (fail closed)."""
        if organisation is None:
            return
        named = folded(self.consent_id, "third_parties", self.terms.third_parties)
        (given,) = folded(self.consent_id, "recipient_organisation", (organisation,))
        if given not in named:
            raise ThirdPartyNotConsentedError(self.consent_id, len(named))

    def require_candidate(self, candidate_id: UUID) -> None:
        if self.candidate_id != candidate_id:
            raise ConsentBelongsToAnotherCandidateError(self.consent_id, candidate_id)

    def require_check(self, check_type: CheckType) -> None:
        """A check is covered when its type is consented and every sensitive or
        consent-required category it touches is named in the consent individually."""
        if check_type not in self.terms.check_types:
            raise ConsentDoesNotCoverCheckError(
                self.consent_id, check_type.value, "the check type is not in the consent"
            )
        named = set(self.terms.categories)
        missing = sorted(
            c
            for c in check_type.categories
            if CATEGORIES[c].tier.needs_named_consent and c not in named
        )
        if missing:
            raise ConsentDoesNotCoverCheckError(
                self.consent_id,
                check_type.value,
                f"sensitive categories not named: {', '.join(missing)}",
            )

    def require_purpose(self, purpose: str) -> None:
        if purpose not in self.terms.purposes:
            raise PurposeNotConsentedError(self.consent_id, purpose)

    def require_referee(self, role: SourceRole, organisation: PersonalField) -> None:
        """A referee of a consented role, at no organisation the candidate excluded; compared
        on the opened values, and an erased one on either side refuses (fail closed)."""
        if not role.is_referee:
            return
        if role not in self.terms.referee_roles:
            raise RefereeNotPermittedError(self.consent_id, role.value)
        excluded = folded(
            self.consent_id, "excluded_organisations", self.terms.excluded_organisations
        )
        (given,) = folded(self.consent_id, "source.organisation", (organisation,))
        if given in excluded:
            raise RefereeNotPermittedError(self.consent_id, role.value, excluded_organisation=True)

    def require_recording(self) -> None:
        if not self.terms.recording_allowed:
            raise RecordingNotConsentedError(self.consent_id)

    @property
    def categories(self) -> frozenset[str]:
        return frozenset(self.terms.categories)


def consent_status(
    now: datetime,
    window: tuple[datetime | None, datetime | None] | None,
    withdrawn: bool,
    expired: bool,
) -> ConsentStatus:
    """Where a consent stands at `now`: withdrawal ends it for good, then expiry (recorded or
    simply past its window), then the window. `window` is None until the consent is granted.
    The aggregate and the consent register view both judge a consent by this one rule."""
    if withdrawn:
        return ConsentStatus.WITHDRAWN
    valid_from, valid_until = window or (None, None)
    if valid_from is None or valid_until is None:
        return ConsentStatus.REQUESTED
    if expired or now >= valid_until:
        return ConsentStatus.EXPIRED
    if now < valid_from:
        return ConsentStatus.NOT_YET_VALID
    return ConsentStatus.ACTIVE
