"""Reports: compiled, reviewed, disclosed, shared, disputed, amended, held and destroyed."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID, uuid4

from pydantic import Field, StringConstraints

from domain.check import Outcome
from services.dto.base import MAX_CHECKS, Actor, Command, Prose, Result, Text
from services.text import LINES


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
