"""Principals: staff and services with their tokens, and a candidate's portal link and sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from domain.principal import MAX_ASSIGNMENTS, MAX_NAME, NAME_RULE
from services.access import Role
from services.dto.base import Actor, Command, Result, Text
from services.dto.consents import PortalLinkSent

PrincipalName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_NAME, pattern=NAME_RULE),
    Field(description="e.g. 'hr:li.na', 'svc:ats'; lower case, given once"),
]
ValidDays = Annotated[
    int | None,
    Field(
        ge=1,
        le=3650,
        description="days the token is valid; none: until rotated or revoked (a portal link: 30)",
    ),
]


class AddPrincipal(Command):
    name: PrincipalName
    role: Role
    kind: Literal["staff", "service"] = "staff"
    assignments: list[UUID] = Field(
        default_factory=list,
        max_length=MAX_ASSIGNMENTS,
        description="the candidates this principal may read about; none: not confined",
    )
    valid_days: ValidDays = None
    actor: Actor


class RotatePrincipal(Command):
    name: PrincipalName
    valid_days: ValidDays = None
    actor: Actor


class RevokePrincipal(Command):
    name: PrincipalName
    reason: Text
    actor: Actor


class IssuePortalLink(Command):
    candidate_id: UUID
    valid_days: int = Field(default=30, ge=1, le=365, description="days the link is valid")
    actor: Actor


class RecordPortalSignIn(Command):
    """The candidate signed in to the portal with their link: a session opened, lasting until
    `ends_at` at the latest (the portal's own route records it; no transport sends it)."""

    candidate_id: UUID
    ends_at: datetime
    actor: Actor


class RecordPortalSignOut(Command):
    """The candidate signed out of the portal: the session they opened at `opened_at` ended
    (the portal's own route records it; no transport sends it)."""

    candidate_id: UUID
    opened_at: datetime
    actor: Actor


MAX_SESSION_ENDS = 50  # portal sessions found ended, recorded in one write


class PortalSessionEnd(Command):
    """A portal session the portal's sessions found ended, as they kept it: whose, the
    SHA-256 of the link it was opened with (what its principal's record keeps of the link:
    to tell whether the link ended first), when it opened, its last call, when it was to end
    at the latest, and when a new session replaced it in its browser (if one did)."""

    candidate_id: UUID
    link_sha256: Annotated[str, StringConstraints(max_length=64, pattern=r"^[0-9a-f]{64}$")]
    opened_at: datetime
    last_call: datetime
    ends_at: datetime
    replaced_at: datetime | None = None


class RecordPortalSessionEnds(Command):
    """Portal sessions found ended otherwise than by signing out, under the idle bound in
    force (the portal's sessions record them; no transport sends it)."""

    sessions: list[PortalSessionEnd] = Field(min_length=1, max_length=MAX_SESSION_ENDS)
    idle_seconds: int = Field(ge=1)


class PrincipalResult(Result):
    """A principal as listed: never its token, nor the token's hash."""

    name: str
    principal_id: UUID
    kind: str = Field(description="staff, service or portal (a candidate's link)")
    role: str
    assignments: list[UUID] = Field(description="the candidates it may read about; none: any")
    expires_at: datetime | None
    revoked: bool
    revoked_reason: str | None
    added_by: str
    added_at: datetime
    version: int


class PrincipalIssued(PrincipalResult):
    token: str = Field(
        description="the principal's token, shown this once: only its SHA-256 is stored; "
        "send it as `Authorization: Bearer <token>`"
    )


class PortalLinkIssued(PrincipalIssued):
    """A candidate's portal link issued by hand: its token shown this once to whoever issued
    it, and the link handed to the link delivery too (what waits there is the one that
    works)."""

    sent: PortalLinkSent
