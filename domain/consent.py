"""Consent: the candidate's written authorisation, before anything else happens.

Shaped like an ISO/IEC TS 27560 consent record: what was asked, what was signed (the document's
hash and the signing method), for which purposes, checks and data categories, which referees may
be contacted, whether conversations may be recorded, for how long, and with whom it may be shared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.check import CheckType, SourceRole
from domain.classification import (
    CATEGORIES,
    ORGANISATION,
    PersonalField,
    readable,
    refuse_prohibited,
    upcast_personal,
)
from domain.errors import (
    ConsentBelongsToAnotherCandidateError,
    ConsentDoesNotCoverCheckError,
    ConsentGrantExceedsRequestError,
    ConsentNotActiveError,
    ConsentNotExpiredError,
    ConsentNotPendingError,
    InvalidInputError,
    InvalidValidityWindowError,
    PersonalValueUnreadableError,
    PurposeNotConsentedError,
    RecordingNotConsentedError,
    RefereeNotPermittedError,
    ThirdPartyNotConsentedError,
    ValidityWindowOverError,
)
from domain.subject import ActorSinceV2, SubjectAggregate

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ConsentStatus(StrEnum):
    REQUESTED = "requested"
    ACTIVE = "active"
    NOT_YET_VALID = "not yet valid"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class SignatureMethod(StrEnum):
    E_SIGNATURE = "e_signature"
    WET_INK = "wet_ink"
    CLICKWRAP = "clickwrap"


EXCLUDED = "excluded_organisation"
STATEMENT = "user.statement"  # the candidate's own words (a withdrawal's reason)
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


def _folded(consent_id: UUID, field: str, values: tuple[PersonalField, ...]) -> set[str]:
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
        named = _folded(self.consent_id, "third_parties", self.terms.third_parties)
        (given,) = _folded(self.consent_id, "recipient_organisation", (organisation,))
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
        excluded = _folded(
            self.consent_id, "excluded_organisations", self.terms.excluded_organisations
        )
        (given,) = _folded(self.consent_id, "source.organisation", (organisation,))
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


def _check_terms(terms: ConsentTerms) -> None:
    if not terms.purposes:
        raise InvalidInputError("field 'purposes': name at least one purpose", field="purposes")
    if not terms.check_types:
        raise InvalidInputError(
            "field 'check_types': name at least one check type", field="check_types"
        )
    refuse_prohibited(terms.categories, field="categories")


def _extra(granted: tuple[object, ...], requested: tuple[object, ...]) -> list[str]:
    return sorted(str(x) for x in set(granted) - set(requested))


class Consent(SubjectAggregate):
    class Requested(SubjectAggregate.Created):
        """v1 stored the organisations its terms name in clear; v2 as personal values."""

        class_version = 2
        terms: ConsentTerms
        requested_by: str

        @classmethod
        def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
            upcast_terms(state["terms"])

    # Declared explicitly because reactions (services/reaction.py) match them by type.
    class Granted(ActorSinceV2):
        """v3: the organisations its terms name are personal values (v2: in clear)."""

        class_version = 3
        actor_field = "recorded_by"
        terms: ConsentTerms
        document_sha256: str
        signature_method: SignatureMethod
        valid_from: datetime
        valid_until: datetime
        recorded_by: str

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            if isinstance(state.get("terms"), dict):
                upcast_terms(state["terms"])

    class Withdrawn(ActorSinceV2):
        """v3: the reason (the candidate's words, as a rule) is a personal value (v2: in
        clear)."""

        class_version = 3
        actor_field = "withdrawn_by"
        reason: PersonalField
        withdrawn_at: datetime
        withdrawn_by: str

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            state["reason"] = upcast_personal(state.get("reason"), "reason", STATEMENT)

    class Expired(SubjectAggregate.Event):
        expired_at: datetime

    @classmethod
    def request(cls, candidate_id: UUID, terms: ConsentTerms, requested_by: str) -> Consent:
        """A consent request names its scope; prohibited categories cannot even be asked for."""
        _check_terms(terms)
        return cls(candidate_id=candidate_id, terms=terms, requested_by=requested_by)

    @event(Requested)
    def __init__(self, candidate_id: UUID, terms: ConsentTerms, requested_by: str) -> None:
        self.candidate_id = candidate_id
        self.requested = terms
        self.requested_by = requested_by
        self.granted: ConsentTerms | None = None
        self.document_sha256: str | None = None
        self.signature_method: SignatureMethod | None = None
        self.valid_from: datetime | None = None
        self.valid_until: datetime | None = None
        self.withdrawn_at: datetime | None = None
        self.expired = False
        self.relied_on_by: list[UUID] = []

    def grant(
        self,
        terms: ConsentTerms,
        document_sha256: str,
        signature_method: SignatureMethod,
        valid_from: datetime,
        valid_until: datetime,
        recorded_by: str,
        *,
        now: datetime,
    ) -> None:
        """The signed grant may narrow the request, never widen it; its window must not be
        over at `now`, when it is recorded (a grant born expired would use up the request)."""
        if self.granted is not None or self.withdrawn_at is not None:
            raise ConsentNotPendingError(self.id, self.status_at(valid_from).value)
        if not _SHA256_HEX.fullmatch(document_sha256):
            raise InvalidInputError(
                "field 'document_sha256': must be the 64-character lowercase hex SHA-256 of the "
                "signed document",
                field="document_sha256",
            )
        if valid_until <= valid_from:
            raise InvalidValidityWindowError(self.id)
        if valid_until <= now:
            raise ValidityWindowOverError(self.id, valid_until, now)
        _check_terms(terms)
        asked = self.requested
        for scope, granted, requested in (
            ("purposes", terms.purposes, asked.purposes),
            ("check types", terms.check_types, asked.check_types),
            ("categories", terms.categories, asked.categories),
            ("referee roles", terms.referee_roles, asked.referee_roles),
        ):
            extra = _extra(granted, requested)
            if extra:
                raise ConsentGrantExceedsRequestError(self.id, scope, extra)
        # Organisations are compared by name, and never named in the refusal (it may be kept
        # where the candidate's erasure does not reach: a command's outcome, a log).
        named = _folded(self.id, "third_parties", asked.third_parties)
        extra_parties = _folded(self.id, "third_parties", terms.third_parties) - named
        if extra_parties:
            raise ConsentGrantExceedsRequestError(
                self.id, "third parties", [f"{len(extra_parties)} organisation(s) not asked for"]
            )
        if terms.recording_allowed and not asked.recording_allowed:
            raise ConsentGrantExceedsRequestError(self.id, "permissions", ["recording"])
        # Dropping an exclusion the request made would let referees there be contacted.
        kept = _folded(self.id, "excluded_organisations", terms.excluded_organisations)
        dropped = _folded(self.id, "excluded_organisations", asked.excluded_organisations) - kept
        if dropped:
            raise ConsentGrantExceedsRequestError(
                self.id, "referee organisations", [f"{len(dropped)} exclusion(s) dropped"]
            )
        self._grant(terms, document_sha256, signature_method, valid_from, valid_until, recorded_by)

    @event(Granted)
    def _grant(
        self,
        terms: ConsentTerms,
        document_sha256: str,
        signature_method: SignatureMethod,
        valid_from: datetime,
        valid_until: datetime,
        recorded_by: str,
    ) -> None:
        self.granted = terms
        self.document_sha256 = document_sha256
        self.signature_method = signature_method
        self.valid_from = valid_from
        self.valid_until = valid_until

    def withdraw(self, reason: str, withdrawn_at: datetime, withdrawn_by: str) -> None:
        """Withdrawal is possible at any time while the consent is not already ended."""
        status = self.status_at(withdrawn_at)
        if status in (ConsentStatus.WITHDRAWN, ConsentStatus.EXPIRED):
            raise ConsentNotActiveError(self.id, status.value)
        self._withdraw(PersonalField("reason", STATEMENT, reason), withdrawn_at, withdrawn_by)

    @event(Withdrawn)
    def _withdraw(self, reason: PersonalField, withdrawn_at: datetime, withdrawn_by: str) -> None:
        self.withdrawn_at = withdrawn_at

    def expire(self, now: datetime) -> None:
        """Expiry is recorded once the validity window has passed."""
        if self.withdrawn_at is not None or self.expired:
            raise ConsentNotActiveError(self.id, self.status_at(now).value)
        if self.valid_until is None:
            raise ConsentNotActiveError(self.id, self.status_at(now).value)
        if now < self.valid_until:
            raise ConsentNotExpiredError(self.id, self.valid_until)
        self._expire(self.valid_until)

    @event(Expired)
    def _expire(self, expired_at: datetime) -> None:
        self.expired = True

    def record_reliance(self, investigation_id: UUID) -> None:
        """Remember which investigations act under this consent, so withdrawal reaches them."""
        self._record_reliance(investigation_id)

    @event("ReliedUpon")
    def _record_reliance(self, investigation_id: UUID) -> None:
        self.relied_on_by.append(investigation_id)

    def status_at(self, now: datetime) -> ConsentStatus:
        window = (self.valid_from, self.valid_until) if self.granted is not None else None
        return consent_status(now, window, self.withdrawn_at is not None, self.expired)

    def scope_at(self, now: datetime) -> ConsentScope:
        return ConsentScope(
            consent_id=self.id,
            candidate_id=self.candidate_id,
            status=self.status_at(now),
            terms=self.granted if self.granted is not None else self.requested,
        )
