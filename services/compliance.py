"""Compliance check: replay the whole stream and report every broken rule, by position.

The aggregates refuse these commands, so a clean store has no violations. The check is the
second line of defence: it judges the stored history itself — events written around the
domain, by old code, or imported — with the same rule code the aggregates use, applied to
each aggregate as it stood at that point of the replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.check import Outcome, corroborates
from domain.consent import Consent, ConsentStatus
from domain.errors import DomainError
from domain.investigation import Investigation, InvestigationStatus
from domain.report import Report, ReportStatus
from projections import events as ev
from projections.events import EventClass
from services.access import Role


@dataclass(frozen=True)
class Violation:
    position: int
    rule: str
    aggregate_id: UUID
    candidate_id: UUID | None
    detail: str


Check = Callable[[Any, Any, dict[UUID, Aggregate]], str | None]


def _consent_at(aggregates: dict[UUID, Aggregate], consent_id: UUID) -> Consent | None:
    found = aggregates.get(consent_id)
    return found if isinstance(found, Consent) else None


def _started(event: Any, inv: Investigation, aggregates: dict[UUID, Aggregate]) -> str | None:
    if inv.notice is None:
        return "started before the candidate was notified"
    consent = _consent_at(aggregates, event.scope.consent_id)
    if consent is None:
        return f"started under consent {event.scope.consent_id}, which does not exist"
    try:
        inv.check_consent(consent.scope_at(event.timestamp))
    except DomainError as e:
        return f"started without active consent covering it: {e}"
    return None


def _finding(event: Any, inv: Investigation, aggregates: dict[UUID, Aggregate]) -> str | None:
    if inv.status is not InvestigationStatus.IN_PROGRESS:
        return f"finding recorded while the investigation was {inv.status.value}"
    consent = _consent_at(aggregates, inv.consent_id)
    if consent is None:
        return "finding recorded without a consent on record"
    scope = consent.scope_at(event.timestamp)
    try:
        scope.require_active()
        scope.require_referee(event.finding.source.role, event.finding.source.organisation)
    except DomainError as e:
        return f"finding recorded outside consent: {e}"
    return None


def _concluded(event: Any, inv: Investigation, aggregates: dict[UUID, Aggregate]) -> str | None:
    conclusion = event.conclusion
    basis = [inv.findings[f] for f in conclusion.basis if f in inv.findings]
    if len(basis) != len(conclusion.basis):
        return "concluded on findings that were never recorded"
    if conclusion.outcome is Outcome.UNVERIFIABLE:
        return None if basis else "concluded 'unverifiable' without any attempt recorded"
    if any(f.outcome is not conclusion.outcome for f in basis):
        return f"concluded {conclusion.outcome.value!r} on findings that say otherwise"
    if not corroborates(basis):
        roles = sorted({f.source.role.value for f in basis}) or ["no source"]
        return (
            f"concluded {conclusion.outcome.value!r} without the required sources "
            f"(had {', '.join(roles)})"
        )
    return None


def _compiled(event: Any, _: None, aggregates: dict[UUID, Aggregate]) -> str | None:
    inv = aggregates.get(event.investigation_id)
    if not isinstance(inv, Investigation):
        return f"compiled from investigation {event.investigation_id}, which does not exist"
    if inv.status is not InvestigationStatus.COMPLETED:
        return f"compiled from an investigation that was {inv.status.value}"
    if inv.open_disputes:
        return "compiled while the candidate's dispute was open"
    return None


def _approved(event: Any, report: Report, aggregates: dict[UUID, Aggregate]) -> str | None:
    if event.reviewer in report.authors:
        return f"reviewed and approved by its own author {event.reviewer!r}"
    return None


def _disclosed(event: Any, report: Report, aggregates: dict[UUID, Aggregate]) -> str | None:
    if report.status is not ReportStatus.APPROVED:
        return f"disclosed while {report.status.value}"
    if report.open_disputes:
        return "disclosed with an open dispute"
    consent = _consent_at(aggregates, report.consent_id)
    if consent is None:
        return "disclosed without a consent on record"
    scope = consent.scope_at(event.timestamp)
    try:
        scope.require_active()
        scope.require_purpose(event.disclosure.purpose)
        scope.require_recipient(event.disclosure.organisation)
    except DomainError as e:
        return f"disclosed outside consent: {e}"
    return None


def _accessed(event: Any, _: None, aggregates: dict[UUID, Aggregate]) -> str | None:
    if not event.returned or event.role == Role.CANDIDATE:
        return None
    for consent_id in event.consent_ids:
        consent = _consent_at(aggregates, consent_id)
        if consent is None or consent.candidate_id != event.candidate_id:
            continue
        scope = consent.scope_at(event.timestamp)
        if scope.status is ConsentStatus.ACTIVE and event.purpose in scope.terms.purposes:
            return None
    return (
        f"{event.principal} ({event.role}) was given {', '.join(event.returned)} for "
        f"{event.purpose!r} without an active consent naming that purpose"
    )


RULES: dict[EventClass, tuple[str, Check]] = {
    ev.AccessRecorded: ("access outside consent", _accessed),
    ev.InvestigationStarted: ("check started without active consent covering it", _started),
    ev.InvestigationResumed: ("check resumed without active consent covering it", _started),
    ev.FindingRecorded: ("finding outside consent or scope", _finding),
    ev.CheckConcluded: ("conclusion without the required sources", _concluded),
    ev.ReportCompiled: ("report compiled from an unfinished or disputed investigation", _compiled),
    ev.ReportApproved: ("review by the report's own author", _approved),
    ev.ReportDisclosed: ("report disclosed with an open dispute or outside consent", _disclosed),
}


def check_stream(events: Iterator[tuple[int, Any]]) -> Iterator[Violation]:
    """Judge each event against the aggregates as they stood just before it."""
    aggregates: dict[UUID, Aggregate] = {}
    for position, event in events:
        current = aggregates.get(event.originator_id)
        rule = RULES.get(type(event))
        if rule is not None:
            title, judge = rule
            detail = judge(event, current, aggregates)
            if detail is not None:
                yield Violation(
                    position,
                    title,
                    event.originator_id,
                    getattr(event, "candidate_id", None),
                    detail,
                )
        try:
            mutated = event.mutate(current)
        except Exception as e:
            yield Violation(
                position,
                "stream inconsistent",
                event.originator_id,
                getattr(event, "candidate_id", None),
                f"{type(e).__name__}: {e}",
            )
            continue
        if mutated is not None:
            aggregates[event.originator_id] = mutated
