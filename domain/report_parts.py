"""A report's parts: its status and flags, its items, a disclosure, a dispute, an amendment.
Split from domain/report.py (the aggregate and its events), which re-exports them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from domain.check import CheckSummary, Outcome
from domain.classification import ORGANISATION, PersonalField
from domain.consent_terms import ConsentScope
from domain.errors import DisputeAlreadyResolvedError, ReportStateError, UnknownDisputeError


class ReportStatus(StrEnum):
    DRAFT = "draft"
    CHANGES_REQUESTED = "changes requested"
    APPROVED = "approved"
    DESTROYED = "destroyed"


class Flag(StrEnum):
    SINGLE_SOURCE = "single_source"
    CONTESTED = "contested"
    DISPUTED = "disputed"
    POSSIBLY_BIASED = "possibly_biased"
    AMENDED = "amended"


@dataclass(frozen=True)
class ReportItem:
    check_id: UUID
    check_type: str
    outcome: Outcome
    source_roles: tuple[str, ...]
    source_count: int
    flags: tuple[Flag, ...]
    note: str = ""


RECIPIENT_ORGANISATION = "recipient_organisation"


def recipient_organisation(organisation: str | None) -> PersonalField | None:
    """The organisation a report goes to outside the employer, as the personal value of the
    candidate's it is (the third party their consent names); None: inside the employer."""
    if organisation is None:
        return None
    return PersonalField(RECIPIENT_ORGANISATION, ORGANISATION, organisation)


@dataclass(frozen=True)
class Disclosure:
    """A report edition handed over. The recipient is a principal (in clear, as every
    principal's id is); their organisation, when outside the employer, is one of the third
    parties the candidate named: a personal value (sealed at rest, shredded on erasure)."""

    recipient: str
    recipient_role: str
    purpose: str
    edition: int
    disclosed_by: str
    organisation: PersonalField | None = None  # None: inside the employer


@dataclass(frozen=True)
class ReportDispute:
    dispute_id: UUID
    check_id: UUID
    statement: str
    resolved: bool = False


def item_from(summary: CheckSummary) -> ReportItem:
    flags = [
        flag
        for flag, on in (
            (Flag.SINGLE_SOURCE, summary.single_source),
            (Flag.CONTESTED, summary.contested),
            (Flag.DISPUTED, summary.disputed),
            (Flag.POSSIBLY_BIASED, summary.possibly_biased),
        )
        if on
    ]
    return ReportItem(
        check_id=summary.check_id,
        check_type=summary.check_type.value,
        outcome=summary.outcome,
        source_roles=tuple(r.value for r in summary.source_roles),
        source_count=summary.source_count,
        flags=tuple(flags),
    )


def items_within(
    summaries: tuple[CheckSummary, ...], scope: ConsentScope
) -> tuple[tuple[ReportItem, ...], tuple[UUID, ...]]:
    """The items of the concluded checks whose type the consent still covers, and the ids of
    those it no longer does (left out of the report)."""
    items: list[ReportItem] = []
    excluded: list[UUID] = []
    for summary in summaries:
        if summary.check_type in scope.terms.check_types:
            items.append(item_from(summary))
        else:
            excluded.append(summary.check_id)
    return tuple(items), tuple(excluded)


@dataclass(frozen=True)
class Amendment:
    """A change asked for: the note is free text, classified when the change is recorded."""

    check_id: UUID
    outcome: Outcome
    note: str


@dataclass(frozen=True)
class AmendedItem:
    """A change as recorded: the note is a personal value (sealed at rest)."""

    check_id: UUID
    outcome: Outcome
    note: PersonalField


class ReportGuards:
    """A report's checks of its own state before it changes, mixed into the aggregate
    (domain/report.py): the open disputes, a dispute still open, the status required."""

    id: UUID
    status: ReportStatus
    disputes: dict[UUID, ReportDispute]

    @property
    def open_disputes(self) -> list[str]:
        return [str(d.dispute_id) for d in self.disputes.values() if not d.resolved]

    def _open_dispute(self, dispute_id: UUID) -> ReportDispute:
        dispute = self.disputes.get(dispute_id)
        if dispute is None:
            raise UnknownDisputeError(f"report {self.id}", dispute_id)
        if dispute.resolved:
            raise DisputeAlreadyResolvedError(dispute_id)
        return dispute

    def _require_status(self, status: ReportStatus, action: str) -> None:
        if self.status is not status:
            raise ReportStateError(self.id, self.status.value, action)

    def _require_not_destroyed(self, action: str) -> None:
        if self.status is ReportStatus.DESTROYED:
            raise ReportStateError(self.id, self.status.value, action)
