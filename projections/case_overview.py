"""Case overview: one row per candidate — consents, investigations and reports with status.

A read model built from events alone (never by loading aggregates), idempotent by position,
so it can be rebuilt from the start of the log — or only up to a moment, for `audit as-of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass
class ConsentRow:
    status: str
    valid_until: datetime | None = None


@dataclass
class InvestigationRow:
    status: str
    checks: int
    concluded: int = 0
    open_disputes: int = 0


@dataclass
class ReportRow:
    status: str
    edition: int = 1
    disclosures: int = 0


@dataclass
class CaseRow:
    candidate_id: UUID
    registered_at: datetime | None = None
    erasure_requested: bool = False
    consents: dict[UUID, ConsentRow] = field(default_factory=dict)
    investigations: dict[UUID, InvestigationRow] = field(default_factory=dict)
    reports: dict[UUID, ReportRow] = field(default_factory=dict)
    last_position: int = 0
    last_activity: datetime | None = None  # reads and disclosures do not count
    erased: bool = False
    shredded_tiers: set[str] = field(default_factory=set)

    @property
    def case_open(self) -> bool:
        """Work in hand. A suspended investigation is not: a withdrawn consent must not keep
        the candidate's data forever."""
        return any(i.status in ("planned", "in progress") for i in self.investigations.values())

    def as_dict(self, at: datetime | None = None) -> dict[str, Any]:
        def consent_status(row: ConsentRow) -> str:
            if at and row.status == "granted" and row.valid_until and at >= row.valid_until:
                return "expired"
            return row.status

        return {
            "candidate_id": str(self.candidate_id),
            "registered_at": self.registered_at.isoformat() if self.registered_at else None,
            "erasure_requested": self.erasure_requested,
            "consents": {str(k): consent_status(v) for k, v in self.consents.items()},
            "investigations": {
                str(k): f"{v.status} ({v.concluded}/{v.checks} checks concluded"
                + (f", {v.open_disputes} open dispute(s))" if v.open_disputes else ")")
                for k, v in self.investigations.items()
            },
            "reports": {
                str(k): f"{v.status}, edition {v.edition}, {v.disclosures} disclosure(s)"
                for k, v in self.reports.items()
            },
            "last_position": self.last_position,
        }


_INVESTIGATION_STATUS = {
    "Started": "in progress",
    "Suspended": "suspended",
    "Resumed": "in progress",
    "Completed": "completed",
    "Cancelled": "cancelled",
}
_REPORT_STATUS = {
    "Approved": "approved",
    "ChangesRequested": "changes requested",
    "Destroyed": "destroyed",
}


class CaseOverview:
    """The view and its position; `process` is idempotent (a replayed position is ignored)."""

    def __init__(self) -> None:
        self.rows: dict[UUID, CaseRow] = {}
        self.position = 0

    def process(self, position: int, event: Any) -> None:
        if position <= self.position:
            return
        self.position = position
        candidate_id = getattr(event, "candidate_id", None)
        if candidate_id is None:
            return
        row = self.rows.setdefault(candidate_id, CaseRow(candidate_id))
        row.last_position = position
        aggregate, _, name = type(event).__qualname__.partition(".")
        if aggregate not in ("Access", "DataDisclosure") and name != "TierShredded":
            row.last_activity = event.timestamp
        handler = getattr(self, f"_{aggregate.lower()}", None)
        if handler is not None:
            handler(row, name, event)

    def _candidate(self, row: CaseRow, name: str, event: Any) -> None:
        if name == "Registered":
            row.registered_at = event.timestamp
        elif name == "ErasureRequested":
            row.erasure_requested = True
        elif name == "Erased":
            row.erased = True
        elif name == "TierShredded":
            row.shredded_tiers.add(event.tier)

    def _consent(self, row: CaseRow, name: str, event: Any) -> None:
        consent_id = event.originator_id
        if name == "Requested":
            row.consents[consent_id] = ConsentRow("requested")
        elif name == "Granted":
            row.consents[consent_id] = ConsentRow("granted", event.valid_until)
        elif name in ("Withdrawn", "Expired"):
            row.consents[consent_id].status = name.lower()

    def _investigation(self, row: CaseRow, name: str, event: Any) -> None:
        investigation_id = event.originator_id
        if name == "Planned":
            row.investigations[investigation_id] = InvestigationRow("planned", len(event.checks))
            return
        inv = row.investigations[investigation_id]
        if name in _INVESTIGATION_STATUS:
            inv.status = _INVESTIGATION_STATUS[name]
        elif name == "CheckConcluded":
            inv.concluded += 1
        elif name == "DisputeRaised":
            inv.open_disputes += 1
        elif name == "DisputeResolved":
            inv.open_disputes -= 1
            if event.upheld:
                inv.concluded -= 1
                if inv.status == "completed":
                    inv.status = "in progress"

    def _report(self, row: CaseRow, name: str, event: Any) -> None:
        report_id = event.originator_id
        if name == "Compiled":
            row.reports[report_id] = ReportRow("draft")
            return
        report = row.reports[report_id]
        if name in _REPORT_STATUS:
            report.status = _REPORT_STATUS[name]
        elif name == "Amended":
            report.status = "draft"
            report.edition += 1
        elif name == "Disclosed":
            report.disclosures += 1
