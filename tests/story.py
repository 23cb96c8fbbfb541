"""Story builders shared by the tests: the usual way a background check unfolds.

Two layers, kept apart:

- domain builders (the first section) make aggregates and scopes directly, with no store; unit
  tests use them to reach the state a rule applies in, and ``refuses`` to check a refusal;
- application builders take a ``Backcheck`` and issue the use-case commands (services.dto),
  returning ids, so integration tests read as a sequence of steps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate

from domain.access import Authenticated
from domain.candidate import Candidate, Claim, ClaimKind
from domain.check import CheckType, Finding, Method, Outcome, PlannedCheck, Source, SourceRole
from domain.classification import PersonalField
from domain.consent import (
    EXCLUDED,
    THIRD_PARTY,
    Consent,
    ConsentScope,
    ConsentStatus,
    ConsentTerms,
    SignatureMethod,
    organisations,
)
from domain.errors import DomainError
from domain.investigation import Investigation, Notice
from services.application import Backcheck
from services.consents import portal_document
from services.dto import (
    CompileReport,
    CompleteInvestigation,
    ConcludeCheck,
    ConsentTermsIn,
    DiscloseReport,
    GrantConsent,
    NotifyCandidate,
    PlanInvestigation,
    PlannedCheckIn,
    RecordFinding,
    RegisterCandidate,
    RequestConsent,
    ReviewReport,
    ShareReport,
    SourceIn,
    StartInvestigation,
)

# The FakeClock in tests/conftest.py starts here.
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
VALID_FOR = timedelta(days=90)
DOCUMENT_SHA256 = hashlib.sha256(b"signed consent form").hexdigest()

PURPOSE = "pre-employment screening"
RECRUITER = "hr:li.na"
INVESTIGATOR = "investigator:wang.fang"
REVIEWER = "reviewer:zhao.lei"
CANDIDATE = "candidate"
HIRING_MANAGER = "manager:chen.jie"

EMPLOYER = "Acme Ltd"
# who the domain builders' commands were called by: the operator on the store's machine
CALLER = Authenticated("operator", "operator")
DISCLOSER = {"authenticated": CALLER, "role": "recruiter"}  # and the role they disclosed in


# --- then: a refusal ---------------------------------------------------------------------------


@contextmanager
def refuses(
    aggregate: Aggregate | None, error: type[DomainError], *mentions: object
) -> Iterator[pytest.ExceptionInfo[DomainError]]:
    """The command in the block is refused with exactly `error` (not a sibling or subclass),
    its message names each of `mentions`, and the aggregate (if any) triggered no event."""
    version = None
    if aggregate is not None:
        aggregate.collect_events()
        version = aggregate.version
    with pytest.raises(error) as info:
        yield info
    assert type(info.value) is error, f"refused with {type(info.value).__name__}: {info.value}"
    for mention in mentions:
        assert str(mention) in info.value.message, f"{mention!r} not named in: {info.value}"
    if aggregate is not None:
        assert aggregate.pending_events == []
        assert aggregate.version == version


# --- domain builders ---------------------------------------------------------------------------


def terms(**overrides: object) -> ConsentTerms:
    """What a recruiter usually asks for: an employment and a reference check."""
    values: dict[str, object] = {
        "purposes": (PURPOSE,),
        "check_types": (CheckType.EMPLOYMENT, CheckType.REFERENCE),
        "categories": (),
        "referee_roles": (SourceRole.DIRECT_SUPERVISOR, SourceRole.HR, SourceRole.PEER),
        "excluded_organisations": (),
        "recording_allowed": False,
        "third_parties": (),
    }
    values.update(overrides)
    # organisations given as names, held as the personal values the terms keep
    for key, name in (("excluded_organisations", EXCLUDED), ("third_parties", THIRD_PARTY)):
        given = values[key]
        assert isinstance(given, tuple)
        values[key] = organisations(name, given)
    return ConsentTerms(**values)  # type: ignore[arg-type]


def new_candidate(name: str = "Li Lei") -> Candidate:
    return Candidate.register(uuid4(), (PersonalField("name", "user.name", name),), RECRUITER)


def claim(category: str, value: str = "a value", name: str = "detail") -> Claim:
    kind = ClaimKind.EMPLOYMENT if category.startswith("user.employment") else ClaimKind.PERSONAL
    return Claim(uuid4(), kind, (PersonalField(name, category, value),))


def new_consent(requested: ConsentTerms | None = None, candidate_id: UUID | None = None) -> Consent:
    return Consent.request(candidate_id or uuid4(), requested or terms(), RECRUITER)


def granted_consent(
    requested: ConsentTerms | None = None,
    granted: ConsentTerms | None = None,
    candidate_id: UUID | None = None,
) -> Consent:
    consent = new_consent(requested, candidate_id)
    consent.grant(
        granted or consent.requested,
        DOCUMENT_SHA256,
        SignatureMethod.E_SIGNATURE,
        NOW,
        NOW + VALID_FOR,
        "esign-service",
        now=NOW,
        authenticated=CALLER,
    )
    return consent


def active_scope(candidate_id: UUID, **overrides: object) -> ConsentScope:
    return ConsentScope(uuid4(), candidate_id, ConsentStatus.ACTIVE, terms(**overrides))


def scope_for(inv: Investigation, **overrides: object) -> ConsentScope:
    """An active consent scope for the consent the investigation acts under."""
    given = active_scope(inv.candidate_id, **overrides)
    return ConsentScope(inv.consent_id, inv.candidate_id, given.status, given.terms)


def notice() -> Notice:
    return Notice(
        purpose=PURPOSE,
        process="calls to two former colleagues",
        content="employment dates, title, performance",
        time_required="five working days",
        channel="email",
    )


def planned_investigation(
    *check_types: CheckType,
    methods: tuple[Method, ...] = (Method.PHONE, Method.EMAIL),
    candidate_id: UUID | None = None,
    consent_id: UUID | None = None,
) -> Investigation:
    checks = tuple(
        PlannedCheck(uuid4(), t, methods) for t in (check_types or (CheckType.EMPLOYMENT,))
    )
    return Investigation.plan(
        candidate_id or uuid4(),
        consent_id or uuid4(),
        PURPOSE,
        checks,
        (INVESTIGATOR,),
        NOW + timedelta(days=14),
        RECRUITER,
    )


def started_investigation(*check_types: CheckType, **scope: object) -> Investigation:
    """An investigation under way, with one or more planned checks (employment by default)."""
    inv = planned_investigation(*check_types)
    inv.notify_candidate(notice(), "hr:test")
    inv.start(scope_for(inv, **scope), "hr:test")
    return inv


def only_check(inv: Investigation) -> UUID:
    (check_id,) = inv.checks
    return check_id


def finding(
    check_id: UUID,
    role: SourceRole,
    outcome: Outcome = Outcome.CONFIRMED,
    *,
    reference: str | None = None,
    organisation: str = EMPLOYER,
    method: Method = Method.PHONE,
    recorded_by: str = INVESTIGATOR,
    notes: PersonalField | None = None,
    conversation_recorded: bool = False,
    possible_bias: bool = False,
) -> Finding:
    return Finding(
        finding_id=uuid4(),
        check_id=check_id,
        source=Source.of(role, reference or f"ref-{uuid4().hex[:6]}", organisation),
        method=method,
        outcome=outcome,
        recorded_by=recorded_by,
        notes=notes,
        conversation_recorded=conversation_recorded,
        possible_bias=possible_bias,
    )


def concluded_investigation() -> Investigation:
    """Started, one employment check confirmed by a supervisor and HR, completed."""
    inv = started_investigation()
    check_id = only_check(inv)
    inv.record_finding(finding(check_id, SourceRole.DIRECT_SUPERVISOR), inv.scope)
    inv.record_finding(finding(check_id, SourceRole.HR), inv.scope)
    inv.conclude_check(check_id, Outcome.CONFIRMED, INVESTIGATOR)
    inv.complete(INVESTIGATOR)
    return inv


# --- application builders ----------------------------------------------------------------------


@dataclass
class Story:
    """The ids one background check has produced so far."""

    candidate_id: UUID
    consent_id: UUID
    investigation_id: UUID | None = None
    check_ids: list[UUID] = field(default_factory=list)
    report_id: UUID | None = None

    @property
    def check_id(self) -> UUID:
        (check_id,) = self.check_ids
        return check_id

    @property
    def investigation(self) -> UUID:
        assert self.investigation_id is not None, "the story has no investigation yet"
        return self.investigation_id

    @property
    def report(self) -> UUID:
        assert self.report_id is not None, "the story has no report yet"
        return self.report_id


def terms_in(**overrides: object) -> ConsentTermsIn:
    values: dict[str, object] = {
        "purposes": [PURPOSE],
        "check_types": [CheckType.EMPLOYMENT, CheckType.REFERENCE],
        "categories": [],
        "referee_roles": [SourceRole.DIRECT_SUPERVISOR, SourceRole.HR, SourceRole.PEER],
    }
    values.update(overrides)
    return ConsentTermsIn.model_validate(values)


def portal_sha256(consent_id: object, terms: ConsentTermsIn) -> str:
    """The SHA-256 of the document the portal page shows for these terms, which a grant made
    with the candidate's portal link signs (services/consents.py `portal_document`)."""
    document = portal_document(UUID(str(consent_id)), terms)
    return hashlib.sha256(document.encode()).hexdigest()


def portal_grant(consent_id: object, valid_from: str, valid_until: str) -> dict[str, object]:
    """The body of a grant the candidate makes with their portal link: the portal's clickwrap
    of the terms as asked (`terms_in()`)."""
    terms = terms_in()
    return {
        "terms": terms.model_dump(mode="json"),
        "document_sha256": portal_sha256(consent_id, terms),
        "signature_method": "clickwrap",
        "valid_from": valid_from,
        "valid_until": valid_until,
    }


def register(app: Backcheck, name: str = "Li Lei") -> UUID:
    return app.register_candidate(
        RegisterCandidate(name=name, email="li.lei@example.com", actor=RECRUITER)
    ).candidate_id


def request_consent(
    app: Backcheck, candidate_id: UUID, asked: ConsentTermsIn | None = None
) -> UUID:
    return app.request_consent(
        RequestConsent(candidate_id=candidate_id, terms=asked or terms_in(), actor=RECRUITER)
    ).consent_id


def grant_consent(
    app: Backcheck,
    consent_id: UUID,
    given: ConsentTermsIn | None = None,
    valid_from: datetime | None = None,
    valid_for: timedelta = VALID_FOR,
) -> None:
    start = valid_from or app.clock()
    app.grant_consent(
        GrantConsent(
            consent_id=consent_id,
            terms=given or terms_in(),
            document_sha256=DOCUMENT_SHA256,
            signature_method=SignatureMethod.E_SIGNATURE,
            valid_from=start,
            valid_until=start + valid_for,
            actor=CANDIDATE,
        )
    )


def consented_candidate(app: Backcheck, name: str = "Li Lei") -> Story:
    """Registered, asked for consent, and the candidate signed it as asked."""
    candidate_id = register(app, name)
    consent_id = request_consent(app, candidate_id)
    grant_consent(app, consent_id)
    return Story(candidate_id, consent_id)


def plan(app: Backcheck, story: Story, *check_types: CheckType) -> Story:
    checks = [
        PlannedCheckIn(check_type=t, methods=[Method.PHONE, Method.EMAIL])
        for t in (check_types or (CheckType.EMPLOYMENT,))
    ]
    result = app.plan_investigation(
        PlanInvestigation(
            candidate_id=story.candidate_id,
            consent_id=story.consent_id,
            purpose=PURPOSE,
            checks=checks,
            investigators=[INVESTIGATOR],
            due_by=app.clock() + timedelta(days=14),
            actor=RECRUITER,
        )
    )
    story.investigation_id = result.investigation_id
    story.check_ids = [c.check_id for c in checks]
    return story


def notify(app: Backcheck, story: Story) -> None:
    app.notify_candidate(
        NotifyCandidate(
            investigation_id=story.investigation,
            purpose=PURPOSE,
            process="calls to two former colleagues",
            content="employment dates, title, performance",
            time_required="five working days",
            channel="email",
            actor=RECRUITER,
        )
    )


def start(app: Backcheck, story: Story) -> None:
    app.start_investigation(
        StartInvestigation(investigation_id=story.investigation, actor=RECRUITER)
    )


def investigation_under_way(app: Backcheck, name: str = "Li Lei") -> Story:
    """Consented, planned (one employment check), candidate notified, started."""
    story = plan(app, consented_candidate(app, name))
    notify(app, story)
    start(app, story)
    return story


def record_finding(
    app: Backcheck,
    story: Story,
    role: SourceRole,
    outcome: Outcome = Outcome.CONFIRMED,
    *,
    check_id: UUID | None = None,
    reference: str | None = None,
    organisation: str = EMPLOYER,
    method: Method = Method.PHONE,
    actor: str = INVESTIGATOR,
) -> UUID:
    finding_id = uuid4()
    app.record_finding(
        RecordFinding(
            investigation_id=story.investigation,
            finding_id=finding_id,
            check_id=check_id or story.check_id,
            source=SourceIn(
                role=role, reference=reference or f"ref-{role.value}", organisation=organisation
            ),
            method=method,
            outcome=outcome,
            notes="reliable, left on good terms",
            actor=actor,
        )
    )
    return finding_id


def confirm_check(app: Backcheck, story: Story, check_id: UUID | None = None) -> None:
    """A supervisor and HR both confirm; the check is concluded 'confirmed'."""
    record_finding(app, story, SourceRole.DIRECT_SUPERVISOR, check_id=check_id)
    record_finding(app, story, SourceRole.HR, check_id=check_id)
    app.conclude_check(
        ConcludeCheck(
            investigation_id=story.investigation,
            check_id=check_id or story.check_id,
            outcome=Outcome.CONFIRMED,
            actor=INVESTIGATOR,
        )
    )


def completed_investigation(app: Backcheck, name: str = "Li Lei") -> Story:
    story = investigation_under_way(app, name)
    confirm_check(app, story)
    app.complete_investigation(
        CompleteInvestigation(investigation_id=story.investigation, actor=INVESTIGATOR)
    )
    return story


def compiled_report(app: Backcheck, name: str = "Li Lei") -> Story:
    story = completed_investigation(app, name)
    story.report_id = app.compile_report(
        CompileReport(investigation_id=story.investigation, actor=INVESTIGATOR)
    ).report_id
    return story


def approved_report(app: Backcheck, name: str = "Li Lei") -> Story:
    story = compiled_report(app, name)
    app.review_report(ReviewReport(report_id=story.report, approve=True, actor=REVIEWER))
    return story


def shared_report(app: Backcheck, name: str = "Li Lei") -> Story:
    story = approved_report(app, name)
    app.share_report(ShareReport(report_id=story.report, actor=RECRUITER))
    return story


def disclose(app: Backcheck, story: Story, purpose: str = PURPOSE) -> None:
    app.disclose_report(
        DiscloseReport(
            report_id=story.report,
            recipient=HIRING_MANAGER,
            recipient_role="hiring manager",
            purpose=purpose,
            actor=RECRUITER,
        )
    )
