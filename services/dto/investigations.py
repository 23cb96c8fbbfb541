"""Investigations: planned, notified, assigned, checked, disputed and concluded."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID, uuid4

from pydantic import Field, StringConstraints

from domain.check import CheckType, Method, Outcome, SourceRole
from services.dto.base import (
    MAX_CHECKS,
    MAX_TERMS,
    Actor,
    CategoryKey,
    Command,
    Moment,
    Prose,
    Result,
    Text,
)
from services.text import LINES


class PlannedCheckIn(Command):
    check_id: UUID = Field(default_factory=uuid4)
    check_type: CheckType
    methods: list[Method] = Field(min_length=1, max_length=MAX_TERMS)
    claim_id: UUID | None = None


class PlanInvestigation(Command):
    candidate_id: UUID
    consent_id: UUID
    purpose: Text
    checks: list[PlannedCheckIn] = Field(min_length=1, max_length=MAX_CHECKS)
    investigators: list[Actor] = Field(min_length=1, max_length=MAX_TERMS)
    due_by: Moment
    actor: Actor


class NotifyCandidate(Command):
    investigation_id: UUID
    purpose: Text
    process: Text
    content: Prose
    time_required: Text
    channel: Text
    actor: Actor


class StartInvestigation(Command):
    investigation_id: UUID
    actor: Actor


class AssignInvestigator(Command):
    investigation_id: UUID
    investigator: Actor
    actor: Actor


class SourceIn(Command):
    role: SourceRole
    reference: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    organisation: Text


class RecordFinding(Command):
    investigation_id: UUID
    finding_id: UUID = Field(default_factory=uuid4)
    check_id: UUID
    source: SourceIn
    method: Method
    outcome: Outcome
    notes: Annotated[str, StringConstraints(max_length=4000), LINES] | None = None
    notes_category: CategoryKey = "user.employment.evaluation"
    conversation_recorded: bool = False
    possible_bias: bool = False
    actor: Actor


class ConcludeCheck(Command):
    investigation_id: UUID
    check_id: UUID
    outcome: Outcome
    actor: Actor


class RaiseDispute(Command):
    investigation_id: UUID
    dispute_id: UUID = Field(default_factory=uuid4)
    check_id: UUID
    statement: Prose
    actor: Actor


class ResolveDispute(Command):
    investigation_id: UUID
    dispute_id: UUID
    upheld: bool
    response: Prose
    actor: Actor


class GiveFeedback(Command):
    investigation_id: UUID
    feedback_id: UUID = Field(default_factory=uuid4)
    text: Prose
    actor: Actor


class AnswerFeedback(Command):
    investigation_id: UUID
    feedback_id: UUID
    answer: Prose
    actor: Actor


class CompleteInvestigation(Command):
    investigation_id: UUID
    actor: Actor


class CancelInvestigation(Command):
    investigation_id: UUID
    reason: Text
    actor: Actor


class ResumeInvestigation(Command):
    investigation_id: UUID
    consent_id: UUID
    actor: Actor


class CheckResult(Result):
    check_id: UUID
    check_type: str
    methods: list[str]
    findings: int
    conclusion: str | None


class InvestigationResult(Result):
    investigation_id: UUID
    candidate_id: UUID
    consent_id: UUID
    status: str
    notified: bool
    checks: list[CheckResult]
    open_disputes: list[UUID]
    investigators: list[str]
