"""Typed inputs (commands) and outputs (results) of the use cases.

Validation of shape happens here, at the boundary, and names the field; business rules are
enforced by the aggregates and raise domain errors.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError

from domain.candidate import ClaimKind
from domain.check import CheckType, Method, Outcome, SourceRole
from domain.classification import CATEGORIES
from domain.consent import SignatureMethod
from domain.principal import MAX_ASSIGNMENTS, MAX_NAME, NAME_RULE
from services.access import Role
from services.text import LINES, ordinary_text

# Every string and list has a bound (tests/unit/test_input_bounds.py walks every command's
# schema); `backcheck use-cases --schema NAME` shows them as maxLength and maxItems. A command
# within them can still make an event over the store's size limit: that is refused whole.
MAX_TERMS = 50  # purposes, check types, categories, roles, organisations, methods, people
MAX_CHECKS = 50  # checks planned in one investigation; amendments of one report edition
MAX_CLAIMS = 50  # claims in one submission
MAX_FIELDS = 50  # personal fields in one claim

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Prose = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), LINES
]
Actor = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    Field(description="who is acting, e.g. 'hr:li.na' or 'candidate'"),
]
CategoryKey = Annotated[
    str,
    StringConstraints(max_length=100, pattern=r"^user(\.[a-z_]+)+$"),
    # A service sees only the published schemas: the categories are named there, not only by
    # `backcheck categories` on the operator's machine.
    Field(
        description="a data category, one of (tier): "
        + ", ".join(f"{c.key} ({c.tier.value})" for c in CATEGORIES.values())
        + "; prohibited ones are refused at collection"
    ),
]

_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_moment(value: object) -> object:
    """A moment is given as ISO 8601 text (or as a datetime, in process): not a number,
    which pydantic would take as Unix time, nor a date alone."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_MOMENT.match(value)):
        return value
    raise PydanticCustomError(
        "iso_moment",
        "an ISO 8601 date and time with its offset is expected, e.g. 2026-11-22T10:00:00+00:00",
    )


# A moment a caller gives: with its offset, or it is refused (pydantic's `timezone_aware`),
# never stored as a naive time that no aware one can be compared with.
Moment = Annotated[AwareDatetime, BeforeValidator(_iso_moment)]


class Command(BaseModel):
    """A use case's input. No text in it holds a control character (the value is never
    repeated in the error): tab and line feed only in free-text fields (`Prose`, marked
    `LINES`), nothing of the kind anywhere else."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="wrap")
    @classmethod
    def _ordinary_text(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        return ordinary_text(cls, value, handler, info)


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- candidates -----------------------------------------------------------------------------


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


# --- consents -------------------------------------------------------------------------------


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


# --- investigations -------------------------------------------------------------------------


class PlannedCheckIn(Command):
    check_id: UUID = Field(default_factory=uuid4)
    check_type: CheckType
    methods: list[Method] = Field(min_length=1, max_length=MAX_TERMS)
    claim_id: UUID | None = None


class PlanInvestigation(Command):
    candidate_id: UUID
    consent_id: UUID
    purpose: Text
    checks: list[PlannedCheckIn] = Field(min_length=1, max_length=MAX_CHECKS)
    investigators: list[Actor] = Field(min_length=1, max_length=MAX_TERMS)
    due_by: Moment
    actor: Actor


class NotifyCandidate(Command):
    investigation_id: UUID
    purpose: Text
    process: Text
    content: Prose
    time_required: Text
    channel: Text
    actor: Actor


class StartInvestigation(Command):
    investigation_id: UUID
    actor: Actor


class AssignInvestigator(Command):
    investigation_id: UUID
    investigator: Actor
    actor: Actor


class SourceIn(Command):
    role: SourceRole
    reference: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    organisation: Text


class RecordFinding(Command):
    investigation_id: UUID
    finding_id: UUID = Field(default_factory=uuid4)
    check_id: UUID
    source: SourceIn
    method: Method
    outcome: Outcome
    notes: Annotated[str, StringConstraints(max_length=4000), LINES] | None = None
    notes_category: CategoryKey = "user.employment.evaluation"
    conversation_recorded: bool = False
    possible_bias: bool = False
    actor: Actor


class ConcludeCheck(Command):
    investigation_id: UUID
    check_id: UUID
    outcome: Outcome
    actor: Actor


class RaiseDispute(Command):
    investigation_id: UUID
    dispute_id: UUID = Field(default_factory=uuid4)
    check_id: UUID
    statement: Prose
    actor: Actor


class ResolveDispute(Command):
    investigation_id: UUID
    dispute_id: UUID
    upheld: bool
    response: Prose
    actor: Actor


class GiveFeedback(Command):
    investigation_id: UUID
    feedback_id: UUID = Field(default_factory=uuid4)
    text: Prose
    actor: Actor


class AnswerFeedback(Command):
    investigation_id: UUID
    feedback_id: UUID
    answer: Prose
    actor: Actor


class CompleteInvestigation(Command):
    investigation_id: UUID
    actor: Actor


class CancelInvestigation(Command):
    investigation_id: UUID
    reason: Text
    actor: Actor


class ResumeInvestigation(Command):
    investigation_id: UUID
    consent_id: UUID
    actor: Actor


class CheckResult(Result):
    check_id: UUID
    check_type: str
    methods: list[str]
    findings: int
    conclusion: str | None


class InvestigationResult(Result):
    investigation_id: UUID
    candidate_id: UUID
    consent_id: UUID
    status: str
    notified: bool
    checks: list[CheckResult]
    open_disputes: list[UUID]
    investigators: list[str]


# --- reports --------------------------------------------------------------------------------


class CompileReport(Command):
    investigation_id: UUID
    actor: Actor


class ReviewReport(Command):
    report_id: UUID
    approve: bool
    comments: Annotated[str, StringConstraints(max_length=2000), LINES] = ""
    actor: Actor


class DiscloseReport(Command):
    report_id: UUID
    recipient: Text
    recipient_role: Text
    purpose: Text
    actor: Actor
    recipient_organisation: Text | None = Field(
        default=None,
        description="the recipient's organisation when outside the employer; it must be a "
        "third party the consent names",
    )


class ShareReport(Command):
    report_id: UUID
    actor: Actor


class DisputeReport(Command):
    report_id: UUID
    dispute_id: UUID = Field(default_factory=uuid4)
    check_id: UUID
    statement: Prose
    actor: Actor


class RejectReportDispute(Command):
    report_id: UUID
    dispute_id: UUID
    response: Prose
    actor: Actor


class AmendmentIn(Command):
    check_id: UUID
    outcome: Outcome
    note: Prose


class AmendReport(Command):
    report_id: UUID
    amendments: list[AmendmentIn] = Field(min_length=1, max_length=MAX_CHECKS)
    reason: Text
    resolves: list[UUID] = Field(default_factory=list, max_length=MAX_CHECKS)
    actor: Actor


class LegalHold(Command):
    report_id: UUID
    reason: Text
    actor: Actor


class ReleaseLegalHold(Command):
    report_id: UUID
    actor: Actor


class DestroyReport(Command):
    report_id: UUID
    reason: Text
    actor: Actor


class ReportItemResult(Result):
    check_id: UUID
    check_type: str
    outcome: str
    source_roles: list[str]
    flags: list[str]
    has_note: bool = Field(
        description="an amendment note is on file; its text is personal data and is read "
        "through the access-controlled query service, not returned here"
    )


class ReportResult(Result):
    report_id: UUID
    candidate_id: UUID
    investigation_id: UUID
    status: str
    edition: int
    items: list[ReportItemResult]
    open_disputes: list[str]
    disclosures: int
    legal_hold: bool


# --- reads ------------------------------------------------------------------------------------


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


# --- history --------------------------------------------------------------------------------


class EventRecord(Result):
    position: int
    aggregate: str
    event: str
    originator_id: UUID
    version: int
    timestamp: datetime
    data: dict[str, object]


# --- principals -----------------------------------------------------------------------------

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
