"""Consents: requested, granted, withdrawn, expired, and the portal link sent with a request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from domain.check import CheckType, SourceRole
from domain.consent import SignatureMethod
from services.dto.base import MAX_TERMS, Actor, CategoryKey, Command, Moment, Result, Text


class ConsentTermsIn(Command):
    purposes: list[Text] = Field(min_length=1, max_length=MAX_TERMS)
    check_types: list[CheckType] = Field(min_length=1, max_length=MAX_TERMS)
    categories: list[CategoryKey] = Field(default_factory=list, max_length=MAX_TERMS)
    referee_roles: list[SourceRole] = Field(default_factory=list, max_length=MAX_TERMS)
    excluded_organisations: list[Text] = Field(default_factory=list, max_length=MAX_TERMS)
    recording_allowed: bool = False
    third_parties: list[Text] = Field(default_factory=list, max_length=MAX_TERMS)


class RequestConsent(Command):
    candidate_id: UUID
    terms: ConsentTermsIn
    actor: Actor


class GrantConsent(Command):
    consent_id: UUID
    terms: ConsentTermsIn
    document_sha256: Annotated[str, StringConstraints(max_length=64, pattern=r"^[0-9a-f]{64}$")]
    signature_method: SignatureMethod
    valid_from: Moment
    valid_until: Moment
    actor: Actor


class WithdrawConsent(Command):
    consent_id: UUID
    reason: Text
    actor: Actor


class ExpireConsent(Command):
    consent_id: UUID
    actor: Actor


class PortalLinkSent(Result):
    """What became of the candidate's portal link when their consent was asked for: never
    the token, which goes to the candidate alone."""

    status: Literal["delivered", "undelivered", "revoked"] = Field(
        description="delivered: issued (or replaced) and handed on; undelivered: issued but "
        "it could not be handed on (issue it again with `backcheck principals portal-link`); "
        "revoked: the candidate's link was revoked, so none was issued"
    )
    detail: str = Field(description="where the link went, or why it did not")
    expires_at: datetime | None = Field(description="when the issued link stops working")


class ConsentResult(Result):
    consent_id: UUID
    candidate_id: UUID
    status: str
    purposes: list[str]
    check_types: list[str]
    categories: list[str]
    valid_until: datetime | None
    suspended_investigations: list[UUID] = Field(default_factory=list)
    portal_link: PortalLinkSent | None = Field(
        default=None,
        description="when consent is requested: what became of the candidate's portal link",
    )
