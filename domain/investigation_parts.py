"""An investigation's parts: its status, the notice the candidate is given, a dispute.
Split from domain/investigation.py (the aggregate and its events), which re-exports them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


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
