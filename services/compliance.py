"""Compliance check: replay the whole stream and report every broken rule, by position.

The aggregates refuse these commands, so a clean store has no violations. The check is the
second line of defence: it judges the stored history itself — events written around the
domain, by old code, or imported — with the same rule code the aggregates use, applied to
each aggregate as it stood at that point of the replay.

It holds only what a later event can still need: the consents, investigations and reports
the rules look up, and every other aggregate that has more events to come (so a later event
out of sequence is found). Access and disclosure records, and commands' receipts, are one
event each and no rule looks them up again: each is judged and let go. A store in use is
mostly such records, so the check's memory grows with the cases in it, not with its reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, AggregateCreated

from domain.access import Access, DataDisclosure
from domain.check import Outcome, corroborates
from domain.classification import readable
from domain.consent import Consent, ConsentStatus
from domain.errors import DomainError, PersonalValueUnreadableError
from domain.intake import CommandReceipt
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
    except PersonalValueUnreadableError:
        return None  # erased with the candidate: what it named can no longer be judged
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
    if not all(readable(f.source.reference) for f in basis):
        return None  # erased with the candidate: who the witnesses were can no longer be told
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
    except PersonalValueUnreadableError:
        return None  # erased with the candidate: what it named can no longer be judged
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


# Aggregates whose life is their first event: once it is judged, nothing follows it and no
# rule looks it up (tests/unit/test_compliance_memory.py holds them to that).
ONE_EVENT: tuple[type[Aggregate], ...] = (Access, DataDisclosure, CommandReceipt)


class StreamCheck:
    """The check part way through a stream: `held`, the aggregates as they stand after the
    events judged so far, those of `ONE_EVENT` left out."""

    def __init__(self) -> None:
        self.held: dict[UUID, Aggregate] = {}

    def judge(self, position: int, event: Any) -> list[Violation]:
        """The rules `event` breaks, judged against the aggregates as they stood just before
        it; then the aggregate it belongs to is brought up to it."""
        found = []
        current = self.held.get(event.originator_id)
        rule = RULES.get(type(event))
        if rule is not None:
            title, judge = rule
            detail = judge(event, current, self.held)
            if detail is not None:
                found.append(self._violation(position, title, event, detail))
        try:
            mutated = _mutate(event, current)
        except Exception as e:
            found.append(
                self._violation(position, "stream inconsistent", event, f"{type(e).__name__}: {e}")
            )
            return found
        if mutated is not None and not isinstance(mutated, ONE_EVENT):
            self.held[event.originator_id] = mutated
        return found

    @staticmethod
    def _violation(position: int, rule: str, event: Any, detail: str) -> Violation:
        subject = getattr(event, "candidate_id", None)
        return Violation(position, rule, event.originator_id, subject, detail)


def check_stream(
    events: Iterator[tuple[int, Any]], check: StreamCheck | None = None
) -> Iterator[Violation]:
    """Judge each event against the aggregates as they stood just before it (`check`: to
    look at what it holds afterwards)."""
    check = StreamCheck() if check is None else check
    for position, event in events:
        yield from check.judge(position, event)


class FirstEventOutOfPlaceError(ValueError):
    """An aggregate's first event stored as a later version of it."""


def _mutate(event: Any, current: Aggregate | None) -> Aggregate | None:
    """The aggregate after `event`. A first event not at version 1 continues some aggregate:
    one the check let go of (an access record, say), or one whose start is not in the log;
    either way it is out of sequence, as it is when the aggregate is held."""
    if current is None and isinstance(event, AggregateCreated) and event.originator_version != 1:
        raise FirstEventOutOfPlaceError(
            f"{type(event).__qualname__} is a first event, stored as version "
            f"{event.originator_version} of {event.originator_id}"
        )
    mutated: Aggregate | None = event.mutate(current)
    return mutated
