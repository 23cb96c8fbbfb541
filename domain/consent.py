"""Consent: the candidate's written authorisation, before anything else happens.

Shaped like an ISO/IEC TS 27560 consent record: what was asked, what was signed (the document's
hash and the signing method), for which purposes, checks and data categories, which referees may
be contacted, whether conversations may be recorded, for how long, and with whom it may be shared.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.access import Authenticated, upcast_authenticated
from domain.caller import CALLER_UNKNOWN
from domain.classification import PersonalField, refuse_prohibited, upcast_personal
from domain.consent_terms import (
    EXCLUDED,
    THIRD_PARTY,
    ConsentScope,
    ConsentStatus,
    ConsentTerms,
    consent_status,
    folded,
    organisations,
    upcast_terms,
)
from domain.errors import (
    ConsentGrantExceedsRequestError,
    ConsentNotActiveError,
    ConsentNotExpiredError,
    ConsentNotPendingError,
    InvalidInputError,
    InvalidValidityWindowError,
    ValidityWindowOverError,
)
from domain.subject import ActorSinceV2, SubjectAggregate

# the scope, terms and status live in domain/consent_terms.py; named here too, where the
# rest of the code has always found them
__all__ = [
    "EXCLUDED",
    "STATEMENT",
    "THIRD_PARTY",
    "Consent",
    "ConsentScope",
    "ConsentStatus",
    "ConsentTerms",
    "SignatureMethod",
    "consent_status",
    "organisations",
    "upcast_terms",
]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class SignatureMethod(StrEnum):
    E_SIGNATURE = "e_signature"
    WET_INK = "wet_ink"
    CLICKWRAP = "clickwrap"


STATEMENT = "user.statement"  # the candidate's own words (a withdrawal's reason)


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
        """v1 stored the organisations its terms name in clear; v2 as personal values; v3:
        who called it, as authenticated (`authenticated`)."""

        class_version = 3
        terms: ConsentTerms
        requested_by: str
        authenticated: Authenticated
        upcast_v2_v3 = CALLER_UNKNOWN

        @classmethod
        def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
            upcast_terms(state["terms"])

    # Declared explicitly because reactions (services/reaction.py) match them by type.
    class Granted(ActorSinceV2):
        """v3: the organisations its terms name are personal values (v2: in clear); v4: who
        recorded the grant was authenticated how (`authenticated`: a candidate's portal
        link, an operator typing it, a service's signed message), beside the actor it names."""

        class_version = 4
        actor_field = "recorded_by"
        terms: ConsentTerms
        document_sha256: str
        signature_method: SignatureMethod
        valid_from: datetime
        valid_until: datetime
        recorded_by: str
        authenticated: Authenticated

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            if isinstance(state.get("terms"), dict):
                upcast_terms(state["terms"])

        @classmethod
        def upcast_v3_v4(cls, state: dict[str, Any]) -> None:
            upcast_authenticated(state)

    class Withdrawn(ActorSinceV2):
        """v3: the reason (the candidate's words, as a rule) is a personal value (v2: in
        clear); v4: who withdrew it was authenticated how (`authenticated`)."""

        class_version = 4
        actor_field = "withdrawn_by"
        reason: PersonalField
        withdrawn_at: datetime
        withdrawn_by: str
        authenticated: Authenticated

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            state["reason"] = upcast_personal(state.get("reason"), "reason", STATEMENT)

        @classmethod
        def upcast_v3_v4(cls, state: dict[str, Any]) -> None:
            upcast_authenticated(state)

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
        authenticated: Authenticated,
    ) -> None:
        """The signed grant may narrow the request, never widen it; its window must not be
        over at `now`, when it is recorded (a grant born expired would use up the request).
        `authenticated` is who recorded it, as authentication established, whoever
        `recorded_by` names."""
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
        named = folded(self.id, "third_parties", asked.third_parties)
        extra_parties = folded(self.id, "third_parties", terms.third_parties) - named
        if extra_parties:
            raise ConsentGrantExceedsRequestError(
                self.id, "third parties", [f"{len(extra_parties)} organisation(s) not asked for"]
            )
        if terms.recording_allowed and not asked.recording_allowed:
            raise ConsentGrantExceedsRequestError(self.id, "permissions", ["recording"])
        # Dropping an exclusion the request made would let referees there be contacted.
        kept = folded(self.id, "excluded_organisations", terms.excluded_organisations)
        dropped = folded(self.id, "excluded_organisations", asked.excluded_organisations) - kept
        if dropped:
            raise ConsentGrantExceedsRequestError(
                self.id, "referee organisations", [f"{len(dropped)} exclusion(s) dropped"]
            )
        self._grant(
            terms,
            document_sha256,
            signature_method,
            valid_from,
            valid_until,
            recorded_by,
            authenticated,
        )

    @event(Granted)
    def _grant(
        self,
        terms: ConsentTerms,
        document_sha256: str,
        signature_method: SignatureMethod,
        valid_from: datetime,
        valid_until: datetime,
        recorded_by: str,
        authenticated: Authenticated,
    ) -> None:
        self.granted = terms
        self.document_sha256 = document_sha256
        self.signature_method = signature_method
        self.valid_from = valid_from
        self.valid_until = valid_until

    def withdraw(
        self,
        reason: str,
        withdrawn_at: datetime,
        withdrawn_by: str,
        authenticated: Authenticated,
    ) -> None:
        """Withdrawal is possible at any time while the consent is not already ended."""
        status = self.status_at(withdrawn_at)
        if status in (ConsentStatus.WITHDRAWN, ConsentStatus.EXPIRED):
            raise ConsentNotActiveError(self.id, status.value, withdrawing=True)
        held = PersonalField("reason", STATEMENT, reason)
        self._withdraw(held, withdrawn_at, withdrawn_by, authenticated)

    @event(Withdrawn)
    def _withdraw(
        self,
        reason: PersonalField,
        withdrawn_at: datetime,
        withdrawn_by: str,
        authenticated: Authenticated,
    ) -> None:
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
