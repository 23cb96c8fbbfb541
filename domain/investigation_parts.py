"""An investigation's parts: its status, the notice the candidate is given, a dispute.
Split from domain/investigation.py (the aggregate and its events), which re-exports them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from domain.check import (
    CheckSummary,
    CheckType,
    Conclusion,
    Finding,
    Outcome,
    PlannedCheck,
    corroborates,
)
from domain.errors import (
    ConclusionNeedsCorroborationError,
    EmptyPlanError,
    InvalidPlanError,
    NegativeConclusionNeedsSecondSourceError,
    NoAttemptRecordedError,
)


class InvestigationStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in progress"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Notice:
    """What the candidate is told before the checks start (seed 001 §04)."""

    purpose: str
    process: str
    content: str
    time_required: str
    channel: str


@dataclass(frozen=True)
class Dispute:
    dispute_id: UUID
    check_id: UUID
    statement: str
    resolution: str | None = None
    upheld: bool | None = None

    @property
    def is_open(self) -> bool:
        return self.resolution is None


_ACTIVE = (InvestigationStatus.IN_PROGRESS,)


def check_plan(
    purpose: str, checks: tuple[PlannedCheck, ...], investigators: tuple[str, ...]
) -> None:
    """A plan names its purpose, people, and each check once with at least one method."""
    if not checks or not investigators:
        raise EmptyPlanError()
    if not purpose.strip():
        raise InvalidPlanError("purpose", "state why the check is being done")
    if len({c.check_id for c in checks}) != len(checks):
        raise InvalidPlanError("checks", "check ids must be unique")
    for c in checks:
        if not c.methods:
            raise InvalidPlanError(
                f"checks[{c.check_id}].methods", "each check needs at least one method"
            )


def summary(
    check_type: CheckType,
    conclusion: Conclusion,
    basis: list[Finding],
    on_check: list[Finding],
    *,
    disputed: bool,
) -> CheckSummary:
    """A concluded check with provenance and flags: single source, contested (the findings
    standing on it disagree), disputed by the candidate, possibly biased (a source of its
    basis flagged as such)."""
    sources = len({f.source.reference.value for f in basis})  # one person is one source
    return CheckSummary(
        check_id=conclusion.check_id,
        check_type=check_type,
        outcome=conclusion.outcome,
        source_roles=tuple(sorted({f.source.role for f in basis})),
        source_count=sources,
        single_source=sources == 1,
        contested=len({f.outcome for f in on_check}) > 1,
        disputed=disputed,
        possibly_biased=any(f.possible_bias for f in basis),
    )


def corroborated(check_id: UUID, outcome: Outcome, on_check: list[Finding]) -> list[Finding]:
    """The findings a conclusion of `outcome` rests on, of those standing on the check:
    cross-verified (two independent sources of different roles, or one authoritative); a
    negative one never on one witness; `unverifiable` on every attempt made."""
    if outcome is Outcome.UNVERIFIABLE:
        if not on_check:
            raise NoAttemptRecordedError(check_id)
        basis = on_check
    else:
        basis = [f for f in on_check if f.outcome is outcome]
        if not corroborates(basis):
            have = f"{len(basis)} agreeing source(s)" + (
                f" ({', '.join(sorted({f.source.role.value for f in basis}))})" if basis else ""
            )
            error = (
                NegativeConclusionNeedsSecondSourceError
                if outcome is Outcome.DISCREPANCY
                else ConclusionNeedsCorroborationError
            )
            raise error(check_id, outcome.value, have)
    return basis
