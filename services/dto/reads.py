"""Reads of personal data (each recorded), the access log, the consent register, and the
store's history as records."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints

from services.access import Role
from services.dto.base import Actor, Command, Result, Text


class Reader(Command):
    """Who asks for a recorded read, in which role, and why."""

    principal: Actor
    role: Role
    purpose: Text


class ValueRead(Reader):
    """A read of personal values, decided category by category. A compliance officer may
    state a break-glass justification; it is recorded with the read."""

    break_glass: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=2000)]
        | None
    ) = Field(default=None, description="a compliance officer's recorded justification")


class ReadProfile(ValueRead):
    candidate_id: UUID


class ReadProfiles(ValueRead):
    """One request for several candidates' profiles (a caseload page): each is decided and
    recorded on its own, and all the access records are saved together."""

    candidate_ids: Annotated[list[UUID], Field(min_length=1, max_length=200)]


class FieldView(Result):
    name: str
    category: str
    tier: str
    value: str | None
    withheld: bool


class ProfileView(Result):
    candidate_id: UUID
    access_id: UUID
    outcome: str
    erased: bool
    erasure_requested: bool = Field(
        default=False,
        description="the erasure of the candidate's data was asked for (pending while "
        "`erased` is false)",
    )
    fields: list[FieldView]
    refused_because: list[str] = Field(
        default_factory=list, description="why, when the outcome is refused (batch reads)"
    )


class ReadReport(ValueRead):
    report_id: UUID


class ReportItemView(Result):
    check_id: UUID
    check_type: str
    categories: list[str]
    withheld: bool
    outcome: str | None
    flags: list[str]
    source_roles: list[str]
    source_count: int | None
    note: str | None


class ReportView(Result):
    report_id: UUID
    candidate_id: UUID
    access_id: UUID
    outcome: str
    status: str
    edition: int
    items: list[ReportItemView]


class ReadInvestigation(ValueRead):
    investigation_id: UUID


class InvestigationCheckView(Result):
    check_id: UUID
    check_type: str
    categories: list[str]
    withheld: bool = Field(description="a category of the check is withheld from this reader")
    concluded: str | None


class ExchangeView(Result):
    """The candidate's feedback or dispute, and the answer to it."""

    id: UUID
    check_id: UUID | None = Field(default=None, description="the disputed check (disputes only)")
    words: str | None = Field(description="the candidate's own words; None when withheld")
    answer: str | None
    upheld: bool | None = Field(default=None, description="disputes only, once resolved")
    withheld: bool


class InvestigationView(Result):
    investigation_id: UUID
    candidate_id: UUID
    access_id: UUID
    outcome: str
    status: str
    purpose: str
    investigators: list[str]
    findings: int
    checks: list[InvestigationCheckView]
    feedback: list[ExchangeView]
    disputes: list[ExchangeView]


class ProfilesView(Result):
    profiles: list[ProfileView]


class RecordDisclosure(Command):
    candidate_id: UUID
    recipient: Text
    purpose: Text
    channel: Text
    actor: Actor


class AccessEntry(Result):
    access_id: UUID = Field(
        description="the read's or disclosure's own id (a report's disclosure: uuid5 of the "
        "report and its event's version)"
    )
    at: datetime
    position: int = Field(description="the event's place in the log (`audit prove --position`)")
    principal: str
    authentication: str | None = Field(
        description="how the principal was authenticated: token, oidc, portal-link, operator "
        "(the command line on the store's machine: stated, not verified) or asserted (a "
        "service's command); none for a report's disclosure, which is a command, not a read"
    )
    role: str | None = Field(description="the role it was read or disclosed in (or operator)")
    purpose: str
    view: str
    returned: list[str] = Field(description="the data categories returned (or handed over)")
    withheld: list[str]
    outcome: str
    failure: str | None = Field(
        default=None, description="why a failed read returned nothing (a code: seal-broken, ...)"
    )
    break_glass: str | None = Field(
        default=None,
        description="a break-glass read: said as such; its justification is sealed with the "
        "candidate's data (decision 0041), shown by the timeline, never in the log",
    )
    policy_ids: list[str] = Field(default_factory=list, description="the deciding policies")
    consent_ids: list[UUID] = Field(
        default_factory=list,
        description="the consents relied on (none for a refused read; a report's disclosure: "
        "the consent the report was compiled under)",
    )


class WholeViewRead(Reader):
    """A read of one of a subject's views taken whole, decided once (not per category)."""

    candidate_id: UUID


class ReadAccessLog(WholeViewRead):
    """The subject's access log: who read what about them, when, why, and what was handed
    over. The candidate reads their own; a compliance officer anyone's."""


class ReadConsents(WholeViewRead):
    """The subject's consent register: what each consent covers and whether it is in force.
    The candidate, the recruiter handling them, an assigned investigator and compliance."""


class ConsentTermsView(Result):
    purposes: list[str]
    check_types: list[str]
    categories: list[str]
    referee_roles: list[str]
    excluded_organisations: list[str]
    recording_allowed: bool
    third_parties: list[str]


class ConsentEntry(Result):
    consent_id: UUID
    status: str = Field(
        description="requested, active, not yet valid, withdrawn or expired, as of the read"
    )
    requested_by: str
    requested_at: datetime
    terms: ConsentTermsView = Field(description="as granted, once granted; as asked, before")
    valid_from: datetime | None
    valid_until: datetime | None
    withdrawn_at: datetime | None
    relied_on_by: list[UUID] = Field(description="the investigations relying on it")
    document_sha256: str | None = Field(
        default=None, description="SHA-256 of the document the candidate signed; none before"
    )


class ConsentRegisterView(Result):
    candidate_id: UUID
    access_id: UUID = Field(description="this read's own access record")
    outcome: str
    consents: list[ConsentEntry]


class AccessLogView(Result):
    candidate_id: UUID
    access_id: UUID = Field(description="this read's own access record")
    outcome: str
    entries: list[AccessEntry]


class EventRecord(Result):
    position: int
    aggregate: str
    event: str
    originator_id: UUID
    version: int
    timestamp: datetime
    data: dict[str, object]
