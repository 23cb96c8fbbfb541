"""Candidate: the data subject, registered with minimal identity, who submits claims."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.caller import CALLER_UNKNOWN, Authenticated
from domain.classification import (
    CASE_NOTE,
    CATEGORIES,
    PersonalField,
    Tier,
    admit,
    refuse_prohibited,
    tier_of,
    upcast_personal,
)
from domain.errors import (
    AlreadyErasedError,
    CandidateErasedError,
    DuplicateClaimError,
    EmptyClaimError,
    ErasureAlreadyRequestedError,
    ErasureBlockedByLegalHoldError,
    InvalidInputError,
    ProhibitedCategoryError,
)
from domain.subject import ActorSinceV2, SubjectAggregate

IDENTITY_CATEGORIES = frozenset(
    {"user.name", "user.contact.email", "user.contact.phone", "user.contact.address"}
)


class ClaimKind(StrEnum):
    IDENTITY = "identity"
    EDUCATION = "education"
    EMPLOYMENT = "employment"
    CREDENTIAL = "credential"
    PERSONAL = "personal"


class ErasureGround(StrEnum):
    """Why a candidate is erased, as the audit keeps it: one of a fixed set of grounds (GDPR
    Art. 17(1), PIPL Art. 47), never free text, which could name the candidate and would
    outlive them in clear (decision "free text about a subject sealed")."""

    CANDIDATE_REQUEST = "candidate-request"  # the data subject asked
    CONSENT_WITHDRAWN = "consent-withdrawn"  # the consent it rested on was withdrawn
    RETENTION_ENDED = "retention-ended"  # no longer needed for the purpose
    UNLAWFUL_PROCESSING = "unlawful-processing"  # it should never have been processed
    LEGAL_OBLIGATION = "legal-obligation"  # a law or an order requires it
    # what an erasure recorded before grounds reads as: its free text is never shown
    UNRECORDED = "not recorded (stated as free text before v2)"

    @classmethod
    def given(cls, text: str) -> ErasureGround:
        """The ground a command names (case, spaces and underscores as typed: `Candidate
        request` is candidate-request); anything else is refused naming the field."""
        wanted = "-".join(text.strip().casefold().replace("_", " ").split())
        for ground in cls.chosen():
            if ground.value == wanted:
                return ground
        raise cls.refusal()

    @classmethod
    def chosen(cls) -> list[ErasureGround]:
        """The grounds an erasure may be recorded for."""
        return [g for g in cls if g is not cls.UNRECORDED]

    @classmethod
    def refusal(cls) -> InvalidInputError:
        return InvalidInputError(
            f"field 'reason': an erasure's reason is one of {', '.join(cls.chosen())} (kept "
            "as such for the audit; free text could name the candidate and outlive them)",
            field="reason",
        )


@dataclass(frozen=True)
class ErasureReceipt:
    """What an erasure did, signed, so the candidate can be given proof of it. No values."""

    statement: str
    key_id: str
    signature: str


@dataclass(frozen=True)
class Claim:
    """Something the candidate states about themselves (a resume line), to be verified."""

    claim_id: UUID
    kind: ClaimKind
    fields: tuple[PersonalField, ...]


class Candidate(SubjectAggregate):
    class ErasureRequested(SubjectAggregate.Event):
        """v2: the reason is a personal value of the subject (it may name them), sealed and
        shredded with their data, or None when its category was shredded already (retention);
        v1 held it in clear. v3: who called it, as authenticated (`authenticated`)."""

        class_version = 3
        reason: PersonalField | None
        requested_by: str
        authenticated: Authenticated
        upcast_v2_v3 = CALLER_UNKNOWN

        @classmethod
        def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
            state["reason"] = upcast_personal(state.get("reason"), "reason", CASE_NOTE)

    class Erased(SubjectAggregate.Event):
        """v2: why, as a fixed ground (`ErasureGround`); v1's free-text reason is dropped when
        it is read (it may name the candidate; `store migrate` drops it from the bytes). v3:
        who called it, as authenticated (`authenticated`)."""

        class_version = 3
        ground: str
        erased_by: str
        receipt: ErasureReceipt
        authenticated: Authenticated
        upcast_v2_v3 = CALLER_UNKNOWN

        @classmethod
        def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
            state.pop("reason", None)
            state["ground"] = ErasureGround.UNRECORDED.value

    class ClaimsSubmitted(ActorSinceV2):
        """v3: who called it, as authenticated (`authenticated`)."""

        class_version = 3
        actor_field = "submitted_by"
        claims: tuple[Claim, ...]
        consent_id: UUID | None
        submitted_by: str
        authenticated: Authenticated
        upcast_v2_v3 = CALLER_UNKNOWN

    class Registered(SubjectAggregate.Created):
        """v2: who called it, as authenticated (`authenticated`)."""

        class_version = 2
        identity: tuple[PersonalField, ...]
        registered_by: str
        authenticated: Authenticated
        upcast_v1_v2 = CALLER_UNKNOWN

    @staticmethod
    def create_id(candidate_id: UUID) -> UUID:
        return candidate_id

    @classmethod
    def register(
        cls, candidate_id: UUID, identity: tuple[PersonalField, ...], registered_by: str
    ) -> Candidate:
        """Registration takes minimal identity only; everything else arrives as claims."""
        for f in identity:
            # A prohibited value is refused as such, not redirected to be submitted as a claim.
            refuse_prohibited((f.category,), field=f.name)
            if f.category not in IDENTITY_CATEGORIES:
                raise InvalidInputError(
                    f"field {f.name!r}: registration takes minimal identity only "
                    f"({', '.join(sorted(IDENTITY_CATEGORIES))}); submit {f.category!r} as a claim",
                    field=f.name,
                    category=f.category,
                )
            admit(f.name, f.category, frozenset())
        if not any(f.category == "user.name" for f in identity):
            raise InvalidInputError("field 'name': a candidate is registered with a name")
        return cls(candidate_id=candidate_id, identity=identity, registered_by=registered_by)

    @event(Registered)
    def __init__(
        self, candidate_id: UUID, identity: tuple[PersonalField, ...], registered_by: str
    ) -> None:
        self.candidate_id = candidate_id
        self.identity = identity
        self.registered_by = registered_by
        self.claims: dict[UUID, Claim] = {}
        self.erasure_requested = False
        self.erased = False
        self.erasure_receipt: ErasureReceipt | None = None
        self.shredded_tiers: set[str] = set()
        self.shredded_categories: set[str] = set()

    def submit_claims(
        self,
        claims: tuple[Claim, ...],
        consent_id: UUID | None,
        consented_categories: frozenset[str],
        submitted_by: str,
    ) -> None:
        """Claims are admitted field by field: prohibited categories are refused, and
        consent-required or sensitive ones need the named consent."""
        self.require_collectable()
        seen: set[UUID] = set()
        for claim in claims:
            if claim.claim_id in self.claims or claim.claim_id in seen:
                raise DuplicateClaimError(claim.claim_id)
            seen.add(claim.claim_id)
            if not claim.fields:
                raise EmptyClaimError(claim.claim_id)
            for f in claim.fields:
                admit(f.name, f.category, consented_categories)
        self._submit_claims(claims, consent_id, submitted_by)

    @event(ClaimsSubmitted)
    def _submit_claims(
        self, claims: tuple[Claim, ...], consent_id: UUID | None, submitted_by: str
    ) -> None:
        for claim in claims:
            self.claims[claim.claim_id] = claim

    def require_collectable(self) -> None:
        """After an erasure request nothing more is collected, asked for or investigated."""
        if self.erasure_requested or self.erased:
            raise CandidateErasedError(self.id)

    def shred_tier(
        self, tier: str, retention_days: int, quiet_since: datetime, reports_on_hold: list[UUID]
    ) -> None:
        """Retention: the keys of one tier are destroyed once its period has passed."""
        if self.erased or tier in self.shredded_tiers:
            raise AlreadyErasedError(self.id)
        if reports_on_hold:
            raise ErasureBlockedByLegalHoldError(self.id, [str(r) for r in reports_on_hold])
        self._shred_tier(tier, retention_days, quiet_since)

    @event("TierShredded")
    def _shred_tier(self, tier: str, retention_days: int, quiet_since: datetime) -> None:
        self.shredded_tiers.add(tier)

    def shred_categories(
        self,
        retention_days: dict[str, int],
        quiet_since: datetime,
        reports_on_hold: list[UUID],
    ) -> None:
        """Retention by category: the keys of these categories (each with the days it was
        kept) are destroyed once their periods have passed; the rest of their tier stays."""
        if not retention_days:
            raise InvalidInputError("field 'categories': name at least one category to shred")
        for key in retention_days:
            if tier_of(key) is Tier.PROHIBITED:
                raise ProhibitedCategoryError("categories", key)
        if (
            self.erased
            or self.shredded_categories & retention_days.keys()
            or self.shredded_tiers & {tier_of(k).value for k in retention_days}
        ):
            raise AlreadyErasedError(self.id)
        if reports_on_hold:
            raise ErasureBlockedByLegalHoldError(self.id, [str(r) for r in reports_on_hold])
        days = dict(sorted(retention_days.items()))
        self._shred_categories(tuple(days), days, quiet_since)

    @event("CategoriesShredded")
    def _shred_categories(
        self, categories: tuple[str, ...], retention_days: dict[str, int], quiet_since: datetime
    ) -> None:
        self.shredded_categories.update(categories)

    @property
    def categories_shredded(self) -> set[str]:
        """The categories no value of which can be read or recorded any more: those shredded
        on their own, and those of a tier shredded whole."""
        whole = {k for k, c in CATEGORIES.items() if c.tier.value in self.shredded_tiers}
        return self.shredded_categories | whole

    @property
    def case_notes_kept(self) -> bool:
        """Whether free text about the candidate's case (`CASE_NOTE`) can still be recorded:
        not once they are erased or that category is shredded (no new key is made for it)."""
        return CASE_NOTE not in self.categories_shredded and not self.erased

    def erase(
        self,
        ground: ErasureGround,
        erased_by: str,
        reports_on_hold: list[UUID],
        receipt: ErasureReceipt,
    ) -> None:
        """Erasure destroys the keys to every personal value; a legal hold blocks it. Why is
        kept as a fixed ground, never free text (`ErasureGround.given` reads a command's)."""
        if self.erased:
            raise AlreadyErasedError(self.id)
        if reports_on_hold:
            raise ErasureBlockedByLegalHoldError(self.id, [str(r) for r in reports_on_hold])
        if ground is ErasureGround.UNRECORDED:
            raise ErasureGround.refusal()
        self._erase(ground.value, erased_by, receipt)

    @event(Erased)
    def _erase(self, ground: str, erased_by: str, receipt: ErasureReceipt) -> None:
        self.erased = True
        self.erasure_receipt = receipt

    def request_erasure(self, reason: str, requested_by: str) -> None:
        """The reason is sealed with the subject's data (it may name them); when its
        category's key was shredded already by retention, it is not kept at all (no new
        value of a shredded category can be), and the request stands all the same."""
        if self.erasure_requested:
            raise ErasureAlreadyRequestedError(self.id)
        self._request_erasure(
            PersonalField("reason", CASE_NOTE, reason) if self.case_notes_kept else None,
            requested_by,
        )

    @event(ErasureRequested)
    def _request_erasure(self, reason: PersonalField | None, requested_by: str) -> None:
        self.erasure_requested = True
