"""Reactions that span aggregates, kept out of the aggregates themselves (what DDD calls
policies; here "policy" means only the Cedar access policies).

A reaction sees one new event and returns the aggregates it changed in reaction. The unit of work
saves those changes in the same write as the event that caused them, so the store never shows a
withdrawn consent next to an investigation still running under it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.consent import Consent
from domain.investigation import Investigation, InvestigationStatus

A = TypeVar("A", bound=Aggregate)


class Loader(Protocol):
    """Loads an aggregate inside the current unit of work (changes are saved together)."""

    def __call__(self, cls: type[A], aggregate_id: UUID, /) -> A: ...


class Reaction(Protocol):
    def react(self, event: Any, load: Loader) -> Iterable[Aggregate]: ...


class SuspendInvestigationsWhenConsentEnds:
    """Consent withdrawn or expired: every investigation acting under it is suspended."""

    def react(self, event: Any, load: Loader) -> Iterable[Aggregate]:
        if not isinstance(event, Consent.Withdrawn | Consent.Expired):
            return []
        consent = load(Consent, event.originator_id)
        reason = "consent withdrawn" if isinstance(event, Consent.Withdrawn) else "consent expired"
        suspended = []
        for investigation_id in consent.relied_on_by:
            investigation = load(Investigation, investigation_id)
            if investigation.consent_id != consent.id:
                continue  # it has moved on to a newer consent
            if investigation.status in (
                InvestigationStatus.PLANNED,
                InvestigationStatus.IN_PROGRESS,
            ):
                investigation.suspend(reason, consent.id)
                suspended.append(investigation)
        return suspended


def default_reactions() -> tuple[Reaction, ...]:
    return (SuspendInvestigationsWhenConsentEnds(),)
