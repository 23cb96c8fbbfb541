"""Everything that happened to one candidate, in order, in words a compliance officer reads:
who did what, when, under which consent. Built from the event store alone; personal values
never appear (fields are named by their data category)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.access import Access, relied_on
from domain.classification import PersonalField
from domain.consent import Consent
from domain.principal import SESSION_EXPIRED, SESSION_IDLE, SESSION_REPLACED, SIGNED_OUT
from projections import events as ev
from projections.events import EventClass
from services.dto import Result

_WHO_FIELDS = (
    "principal",  # who read (Access.Recorded)
    "disclosed_by",  # who handed data over outside the read path (DataDisclosed)
    "erased_by",
    "registered_by",
    "submitted_by",
    "requested_by",
    "recorded_by",
    "withdrawn_by",
    "planned_by",
    "notified_by",
    "started_by",
    "resumed_by",
    "assigned_by",
    "answered_by",
    "resolved_by",
    "completed_by",
    "cancelled_by",
    "redriven_by",
    "author",
    "reviewer",
    "shared_by",
    "amended_by",
    "placed_by",
    "released_by",
    "destroyed_by",
    "added_by",  # a principal's events (never a subject's timeline; described all the same)
    "rotated_by",
    "revoked_by",
    "opened_by",
    "closed_by",
)
_BY_THE_CANDIDATE: frozenset[EventClass] = frozenset(
    {ev.FeedbackGiven, ev.DisputeRaised, ev.ReportDisputed}
)
_BY_POLICY: frozenset[EventClass] = frozenset(
    {
        ev.InvestigationSuspended,
        ev.ConsentExpired,
        ev.ConsentReliedUpon,
        ev.TierShredded,
        ev.CategoriesShredded,
    }
)


class TimelineEntry(Result):
    position: int
    time: datetime
    who: str
    what: str
    event: str
    aggregate_id: UUID
    consent_id: UUID | None


def _who(event: Any) -> str:
    kind = type(event)
    if kind in _BY_THE_CANDIDATE:
        return "candidate"
    if kind in _BY_POLICY:
        return "system (policy)"
    if kind is ev.CommandApplied:
        return f"service {event.source}"
    for field in _WHO_FIELDS:
        value = getattr(event, field, None)
        if isinstance(value, str):
            return value
    for nested, field in (
        ("finding", "recorded_by"),
        ("conclusion", "concluded_by"),
        ("disclosure", "disclosed_by"),
    ):
        value = getattr(getattr(event, nested, None), field, None)
        if isinstance(value, str):
            return value
    return "unrecorded"


def _categories(fields: tuple[PersonalField, ...]) -> str:
    return ", ".join(sorted({f.category for f in fields}))


def _reason(reason: PersonalField | None) -> str:
    """A reason sealed with the candidate's data, named by its category (the timeline is
    the audit's: it shows no personal value), or that none was kept."""
    return f" (reason: {reason.category})" if reason is not None else " (reason not kept)"


def _terms(t: Any) -> str:
    return (
        f"purposes {', '.join(t.purposes)}; checks {', '.join(c.value for c in t.check_types)}"
        + (f"; named categories {', '.join(t.categories)}" if t.categories else "")
    )


_SESSION_ENDED = {
    SESSION_IDLE: "unused for too long",
    SESSION_EXPIRED: "at its end",
    SESSION_REPLACED: "replaced by a new session in its browser",
}


def _session_closed(e: Any) -> str:
    opened = f"{e.opened_at:%Y-%m-%d %H:%M}"
    if e.reason == SIGNED_OUT:
        return f"signed out of the portal (the session opened {opened})"
    how = _SESSION_ENDED.get(e.reason, e.reason)
    return f"found the portal session opened {opened} ended: {how}, at {e.ended_at:%Y-%m-%d %H:%M}"


# What each event says happened, in a compliance officer's words (tests hold it to the domain).
DESCRIPTIONS: dict[EventClass, Callable[[Any], str]] = {
    ev.CandidateRegistered: lambda e: f"registered the candidate ({_categories(e.identity)})",
    ev.ClaimsSubmitted: lambda e: (
        f"submitted {len(e.claims)} claim(s): "
        + "; ".join(f"{c.kind.value} ({_categories(c.fields)})" for c in e.claims)
    ),
    ev.ErasureRequested: lambda e: (
        "requested erasure" + (f" (reason: {e.reason.category})" if e.reason is not None else "")
    ),
    ev.TierShredded: lambda e: (
        f"shredded the {e.tier} personal data: {e.retention_days} days passed since the case "
        f"went quiet on {e.quiet_since:%Y-%m-%d}"
    ),
    ev.CategoriesShredded: lambda e: (
        "shredded the personal data of "
        + ", ".join(f"{c} ({e.retention_days.get(c, '?')} days)" for c in e.categories)
        + f" passed since the case went quiet on {e.quiet_since:%Y-%m-%d}; the rest of the "
        "tier stays"
    ),
    ev.CandidateErased: lambda e: (
        f"erased the candidate's personal data (keys destroyed): {e.ground}; receipt signed "
        f"by key {e.receipt.key_id}"
    ),
    ev.AccessRecorded: lambda e: (
        f"read the {e.view} as {e.role} for {e.purpose!r}: {e.outcome}"
        + (f" ({e.failure})" if e.failure else "")
        + (f"; withheld {', '.join(e.withheld)}" if e.withheld else "")
    ),
    ev.DataDisclosed: lambda e: (
        f"handed {', '.join(e.categories)} to {e.recipient} by {e.channel} for {e.purpose!r}"
    ),
    ev.CommandApplied: lambda e: (
        f"delivered command {e.command_id!r} ({e.command_type}) on behalf of {e.actor} via "
        f"{e.channel}; applied in the same write"
    ),
    ev.ConsentRequested: lambda e: f"asked for consent: {_terms(e.terms)}",
    ev.ConsentGranted: lambda e: (
        f"consent signed ({e.signature_method.value}, document sha256 "
        f"{e.document_sha256[:12]}…), valid {e.valid_from:%Y-%m-%d} to "
        f"{e.valid_until:%Y-%m-%d}: {_terms(e.terms)}"
    ),
    ev.ConsentWithdrawn: lambda e: f"consent withdrawn (reason: {e.reason.category})",
    ev.ConsentExpired: lambda e: "consent expired",
    ev.ConsentReliedUpon: lambda e: f"investigation {e.investigation_id} acts under this consent",
    ev.InvestigationPlanned: lambda e: (
        f"planned an investigation for {e.purpose!r}: "
        + ", ".join(
            f"{c.check_type.value} by {'/'.join(m.value for m in c.methods)}" for c in e.checks
        )
        + f"; investigators {', '.join(e.investigators)}"
    ),
    ev.CandidateNotified: lambda e: (
        f"told the candidate purpose, process, content and time needed ({e.notice.channel})"
    ),
    ev.InvestigationStarted: lambda e: "started the checks",
    ev.FindingRecorded: lambda e: (
        f"recorded a finding: {e.finding.outcome.value} from a {e.finding.source.role.value} "
        f"(who and where: {e.finding.source.organisation.category}) by "
        f"{e.finding.method.value}"
        + (f"; notes of category {e.finding.notes.category}" if e.finding.notes else "")
    ),
    ev.CheckConcluded: lambda e: (
        f"concluded a check {e.conclusion.outcome.value!r} on {len(e.conclusion.basis)} finding(s)"
    ),
    ev.FeedbackGiven: lambda e: "gave feedback",
    ev.FeedbackAnswered: lambda e: "answered the candidate's feedback",
    ev.DisputeRaised: lambda e: "disputed a check",
    ev.DisputeResolved: lambda e: (
        f"{'upheld' if e.upheld else 'answered, not upheld,'} the candidate's dispute"
    ),
    ev.InvestigationSuspended: lambda e: f"suspended the investigation: {e.reason}",
    ev.InvestigationResumed: lambda e: "resumed the investigation",
    ev.InvestigationCompleted: lambda e: "completed the investigation",
    ev.InvestigationCancelled: lambda e: "cancelled the investigation" + _reason(e.reason),
    ev.ReportCompiled: lambda e: f"compiled a report of {len(e.items)} item(s)",
    ev.ReportApproved: lambda e: "approved the report",
    ev.ChangesRequested: lambda e: "asked for changes to the report",
    ev.ReportDisclosed: lambda e: (
        f"disclosed edition {e.disclosure.edition} to {e.disclosure.recipient} "
        f"({e.disclosure.recipient_role}"
        + (", a third party the consent names" if e.disclosure.organisation else "")
        + f") for {e.disclosure.purpose!r}"
    ),
    ev.SharedWithCandidate: lambda e: f"gave the candidate edition {e.edition}",
    ev.ReportDisputed: lambda e: "disputed an item of the report",
    ev.ReportDisputeRejected: lambda e: "answered the report dispute without changes",
    ev.ReportAmended: lambda e: f"amended the report (reason: {e.reason.category})",
    ev.LegalHoldPlaced: lambda e: "placed a legal hold" + _reason(e.reason),
    ev.LegalHoldReleased: lambda e: "released the legal hold",
    ev.ReportDestroyed: lambda e: f"destroyed the report: {e.reason}",
    ev.PrincipalAdded: lambda e: (
        f"added the {e.kind} principal {e.name!r} as {e.role}"
        + (f", assigned to {len(e.assignments)} candidate(s)" if e.assignments else "")
        + (f", token valid until {e.expires_at:%Y-%m-%d %H:%M}" if e.expires_at else "")
    ),
    ev.PrincipalTokenRotated: lambda e: (
        "gave the principal a new token (the old one is refused)"
        + (f", valid until {e.expires_at:%Y-%m-%d %H:%M}" if e.expires_at else "")
    ),
    ev.PrincipalRevoked: lambda e: f"revoked the principal: {e.reason}",
    ev.SenderKeyIssued: lambda e: (
        f"gave the service sender key {e.key_id}: may send {', '.join(e.use_cases)}"
    ),
    ev.SenderKeyRotated: lambda e: (
        f"gave the service sender key {e.key_id} in place of {e.replaced}: may send "
        f"{', '.join(e.use_cases)}"
    ),
    ev.SenderKeyRevoked: lambda e: f"revoked the service's sender key: {e.reason}",
    ev.PortalSessionOpened: lambda e: (
        f"signed in to the portal with the link (a session until {e.ends_at:%Y-%m-%d %H:%M})"
    ),
    ev.PortalSessionClosed: _session_closed,
    ev.SenderRefused: lambda e: f"refused a command from {e.source!r} ({e.reason}): {e.error}",
    ev.DutyClaimed: lambda e: f"{e.runner} claimed the {e.duty} run of {e.slot:%Y-%m-%d %H:%M}",
    ev.DutyTakenOver: lambda e: (
        f"{e.runner} took over the run from {e.previous_runner} (attempt {e.attempt})"
    ),
    ev.DutyFinished: lambda e: f"{e.runner} finished the run: {e.outcome}",
    ev.LetterRedriven: lambda e: (
        f"sent the dead letter {e.letter} (command {e.command_id!r}, {e.command_type}) back "
        f"to {e.to_topic}"
    ),
    ev.LetterRedrivenAgain: lambda e: f"sent the dead letter back to {e.to_topic} again",
    ev.RotationStarted: lambda e: (
        f"began rewrapping {e.pending} data keys from master key {e.from_key} to {e.to_key}"
    ),
    ev.RotationStartedAgain: lambda e: (
        f"began rewrapping {e.pending} data keys from master key {e.from_key} again"
    ),
    ev.RotationFinished: lambda e: (
        f"bound the store to the new master key: {e.rewrapped} data keys rewrapped"
        + (f", {e.unreadable} left unreadable as they were" if e.unreadable else "")
    ),
    ev.RotationAbandoned: lambda e: (
        f"gave up the rotation to its new master key (lost): {e.cleared} data keys' wrapping "
        "by it cleared, the store left on its key"
    ),
    ev.StoreMigrated: lambda e: (
        f"copied {e.source_events} events of {e.source} (verified up to position "
        f"{e.source_head_position}) into this store"
    ),
}


def timeline(events: Iterator[tuple[int, Any]], candidate_id: UUID) -> Iterator[TimelineEntry]:
    consent_of: dict[UUID, UUID] = {}
    for position, event in events:
        if getattr(event, "candidate_id", None) != candidate_id:
            continue
        kind, name = type(event), type(event).__qualname__
        if isinstance(event, Consent.Event):
            consent_of[event.originator_id] = event.originator_id
        elif kind in (ev.InvestigationPlanned, ev.ReportCompiled):
            consent_of[event.originator_id] = event.consent_id
        elif kind is ev.InvestigationResumed:
            consent_of[event.originator_id] = event.scope.consent_id
        describe = DESCRIPTIONS.get(kind)
        what = describe(event) if describe else name.rpartition(".")[2]
        caller = getattr(event, "authenticated", None)  # who `who` was known to be, and how
        if caller is not None:
            what += f" [authenticated: {caller.principal}, by {caller.method}]"
        yield TimelineEntry(
            position=position,
            time=event.timestamp,
            who=_who(event),
            what=what,
            event=name,
            aggregate_id=event.originator_id,
            consent_id=getattr(event, "consent_id", None)
            or next(iter(_relied_on(event)), None)  # a read: the consent relied on
            or consent_of.get(event.originator_id),
        )


def _relied_on(event: Any) -> tuple[UUID, ...]:
    """The consents a read relied on: none for a refusal, whatever a record made before the
    rule named (domain/access.py `relied_on`)."""
    if not isinstance(event, Access.Recorded):
        return ()
    return relied_on(event.outcome, event.consent_ids)
