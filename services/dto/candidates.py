"""Candidates: registration, claims, erasure and retention."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

from pydantic import Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from domain.candidate import ClaimKind
from services.dto.base import MAX_CLAIMS, MAX_FIELDS, Actor, CategoryKey, Command, Result, Text


class PersonalFieldIn(Command):
    name: Annotated[str, StringConstraints(max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    category: CategoryKey
    value: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class RegisterCandidate(Command):
    candidate_id: UUID = Field(
        default_factory=uuid4,
        description="a random (version 4) UUID, or none to have one made; ids of other "
        "versions are refused",
    )
    name: Text
    email: (
        Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
        | None
    ) = None
    phone: (
        Annotated[str, StringConstraints(max_length=30, pattern=r"^\+?[0-9 ()-]{5,30}$")] | None
    ) = None
    actor: Actor

    @field_validator("candidate_id")
    @classmethod
    def _random(cls, candidate_id: UUID) -> UUID:
        """An id the caller chooses is a random one (version 4): ids of the other versions
        are derived from names (a principal's is `uuid5` of its name), so one chosen so
        could take the id a principal or a candidate's portal link will need."""
        if candidate_id.version != 4:
            raise PydanticCustomError(
                "uuid_version",
                "a random (version 4) UUID, or none: ids derived from names belong to other "
                "records",
            )
        return candidate_id


class ClaimIn(Command):
    claim_id: UUID = Field(default_factory=uuid4)
    kind: ClaimKind
    fields: list[PersonalFieldIn] = Field(min_length=1, max_length=MAX_FIELDS)


class SubmitClaims(Command):
    candidate_id: UUID
    claims: list[ClaimIn] = Field(min_length=1, max_length=MAX_CLAIMS)
    consent_id: UUID | None = Field(
        default=None, description="the consent relied on for sensitive or consent-required fields"
    )
    actor: Actor


class RequestErasure(Command):
    candidate_id: UUID
    reason: Text
    actor: Actor


class EraseSubject(Command):
    candidate_id: UUID
    reason: Text = Field(
        description="why, as one of the fixed grounds: candidate-request, consent-withdrawn, "
        "retention-ended, unlawful-processing, legal-obligation (never free text: it could "
        "name the candidate and would outlive them)",
        examples=["candidate-request"],
    )
    actor: Actor


class ErasureResult(Result):
    candidate_id: UUID
    keys_destroyed: int
    categories_shredded: list[str] = Field(
        default_factory=list,
        description="the categories whose keys were destroyed (values sealed before keys per "
        "category are listed by their tier's key in tiers_shredded)",
    )
    tiers_shredded: list[str] = Field(
        default_factory=list, description="the tiers whose own keys were destroyed"
    )
    receipt_statement: str
    receipt_key_id: str
    receipt_signature: str
    erased_at: datetime = Field(description="when the erasure was recorded")
    resumed: bool = Field(
        default=False,
        description="the erasure was recorded earlier but stopped before its keys were "
        "destroyed; this run finished it (the receipt is the one recorded then)",
    )
    portal_link_revoked: bool = Field(
        default=False,
        description="the candidate's portal link was revoked with the erasure (false: none was "
        "issued, or it was revoked before)",
    )
    portal_link_withdrawn: str | None = Field(
        default=None,
        description="the link waiting to be sent that was taken back from the outbox (or why "
        "it could not be); null when none was waiting",
    )


class RunRetention(Command):
    dry_run: bool = False
    actor: Actor = "retention-sweeper"


class DueShred(Result):
    candidate_id: UUID
    tier: str
    categories: list[str] = Field(
        default_factory=list,
        description="the categories shredded: for a whole tier, those of it the candidate "
        "had keys of (values sealed before keys per category went with the tier's own key)",
    )
    whole_tier: bool = Field(
        default=True,
        description="every value of the tier (its own key and each category's); false: only "
        "the categories listed, whose own retention periods passed",
    )
    tier_key_kept: bool = Field(
        default=False,
        description="the tier's own key, which sealed values before keys per category (some "
        "may be of the categories listed), is kept until the tier goes whole",
    )
    quiet_since: datetime
    due_at: datetime


class FinishedShred(Result):
    """A key retention recorded as shredded in an earlier run that stopped before it was
    destroyed; destroyed by this run (listed only, in a dry run)."""

    candidate_id: UUID
    tier: str
    keys: list[str] = Field(
        default_factory=list,
        description="the keys destroyed: categories', and the tier's own where it was left",
    )
    recorded_at: datetime | None


class RetentionResult(Result):
    dry_run: bool
    shredded: list[DueShred]
    held: list[DueShred]
    finished: list[FinishedShred] = Field(default_factory=list)


class CandidateResult(Result):
    candidate_id: UUID
    claim_ids: list[UUID]
    categories: list[str]
    erasure_requested: bool
    erased: bool = False
    version: int
