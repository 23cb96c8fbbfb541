"""Investigation: a planned set of checks, run under consent, concluded on corroborated findings."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.caller import CALLER_UNKNOWN, Authenticated
from domain.check import (
    CheckSummary,
    Conclusion,
    Finding,
    Outcome,
    PlannedCheck,
)
from domain.classification import (
    CASE_NOTE,
    ORGANISATION,
    REFEREE,
    PersonalField,
    admit,
    upcast_personal,
)
from domain.consent import ConsentScope, upcast_terms
from domain.errors import (
    CandidateNotNotifiedError,
    CheckAlreadyConcludedError,
    ChecksStillOpenError,
    ConsentBelongsToAnotherInvestigationError,
    DisputeAlreadyResolvedError,
    FeedbackAlreadyAnsweredError,
    InvalidPlanError,
    InvestigationNotCompletedError,
    InvestigationStateError,
    InvestigatorNotAssignedError,
    MethodNotInPlanError,
    OpenDisputeError,
    UnknownCheckError,
    UnknownDisputeError,
    UnknownFeedbackError,
)
from domain.investigation_parts import (
    Dispute,
    InvestigationStatus,
    Notice,
    check_plan,
    corroborated,
    summary,
)
from domain.screening import screen
from domain.subject import (
    ActorCalledSinceV3,
    ActorSinceV2,
    CalledSinceV2,
    CreatedCalledSinceV2,
    FreeTextCalledSinceV3,
    FreeTextSinceV2,
    SubjectAggregate,
)

# the status, notice and dispute live in domain/investigation_parts.py; named here too, where
# the rest of the code has always found them
__all__ = ["Dispute", "Investigation", "InvestigationStatus", "Notice"]

STATEMENT = "user.statement"
CORRESPONDENCE = "user.case_correspondence"


class Investigation(SubjectAggregate):
    class FeedbackGiven(FreeTextSinceV2):
        free_text = {"text": ("feedback", STATEMENT)}
        feedback_id: UUID
        text: PersonalField

    class FeedbackAnswered(FreeTextCalledSinceV3):
        free_text = {"answer": ("answer", CORRESPONDENCE)}
        feedback_id: UUID
        answer: PersonalField
        answered_by: str

    class DisputeRaised(FreeTextSinceV2):
        free_text = {"statement": ("statement", STATEMENT)}
        dispute_id: UUID
        check_id: UUID
        statement: PersonalField

    class DisputeResolved(FreeTextCalledSinceV3):
        free_text = {"response": ("response", CORRESPONDENCE)}
        dispute_id: UUID
        upheld: bool
        response: PersonalField
        resolved_by: str

    class FindingRecorded(SubjectAggregate.Event):
        """v1 stored the source's reference and organisation in clear; v2 as personal values;
        v3: who called it, as authenticated (`authenticated`)."""

        class_version = 3
        finding: Finding
        authenticated: Authenticated
        upcast_v2_v3 = CALLER_UNKNOWN

        @classmethod
        def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
            source = state["finding"]["source"]
            source["reference"] = upcast_personal(source["reference"], "source_reference", REFEREE)
            source["organisation"] = upcast_personal(
                source["organisation"], "source_organisation", ORGANISATION
            )

    class Cancelled(FreeTextCalledSinceV3):
        """v2: the reason is a personal value of the subject (staff may quote or name them in
        it), sealed and shredded with their data, or None when the subject's case-note key
        was gone already (erased, or shredded by retention): the cancellation stands, its
        reason is not kept. v1 held it in clear. v3: who called it (`authenticated`)."""

        free_text = {"reason": ("reason", CASE_NOTE)}
        reason: PersonalField | None
        cancelled_by: str

    class CandidateNotified(ActorCalledSinceV3):
        actor_field = "notified_by"
        notice: Notice
        notified_by: str

    class Started(ActorSinceV2):
        """v3: the organisations the scope's terms name are personal values (v2: in clear);
        v4: who called it, as authenticated (`authenticated`)."""

        class_version = 4
        authenticated: Authenticated
        upcast_v3_v4 = CALLER_UNKNOWN
        actor_field = "started_by"
        scope: ConsentScope
        started_by: str

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            upcast_terms(state["scope"]["terms"])

    class Resumed(ActorSinceV2):
        """v3: the organisations the scope's terms name are personal values (v2: in clear);
        v4: who called it, as authenticated (`authenticated`)."""

        class_version = 4
        authenticated: Authenticated
        upcast_v3_v4 = CALLER_UNKNOWN
        actor_field = "resumed_by"
        scope: ConsentScope
        resumed_by: str

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            upcast_terms(state["scope"]["terms"])

    class Planned(CreatedCalledSinceV2):
        consent_id: UUID
        purpose: str
        checks: tuple[PlannedCheck, ...]
        investigators: tuple[str, ...]
        due_by: datetime
        planned_by: str

    class InvestigatorAssigned(CalledSinceV2):
        investigator: str
        assigned_by: str

    class CheckConcluded(CalledSinceV2):
        conclusion: Conclusion

    class Completed(CalledSinceV2):
        completed_by: str

    @classmethod
    def plan(
        cls,
        candidate_id: UUID,
        consent_id: UUID,
        purpose: str,
        checks: tuple[PlannedCheck, ...],
        investigators: tuple[str, ...],
        due_by: datetime,
        planned_by: str,
    ) -> Investigation:
        """A plan comes first: purpose, checks with their methods, schedule and people."""
        check_plan(purpose, checks, investigators)
        return cls(
            candidate_id=candidate_id,
            consent_id=consent_id,
            purpose=purpose,
            checks=checks,
            investigators=investigators,
            due_by=due_by,
            planned_by=planned_by,
        )

    @event(Planned)
    def __init__(
        self,
        candidate_id: UUID,
        consent_id: UUID,
        purpose: str,
        checks: tuple[PlannedCheck, ...],
        investigators: tuple[str, ...],
        due_by: datetime,
        planned_by: str,
    ) -> None:
        self.candidate_id = candidate_id
        self.consent_id = consent_id
        self.purpose = purpose
        self.checks: dict[UUID, PlannedCheck] = {c.check_id: c for c in checks}
        self.investigators = set(investigators)
        self.due_by = due_by
        self.planned_by = planned_by
        self.status = InvestigationStatus.PLANNED
        self.notice: Notice | None = None
        self.scope: ConsentScope | None = None
        self.findings: dict[UUID, Finding] = {}
        self.conclusions: dict[UUID, Conclusion] = {}
        self.disputes: dict[UUID, Dispute] = {}
        self.feedback: dict[UUID, tuple[str, str | None]] = {}
        self.ever_disputed: set[UUID] = set()
        self.retracted: set[UUID] = set()
        self.suspended_from = InvestigationStatus.PLANNED

    # --- before the start ------------------------------------------------------------------

    def notify_candidate(self, notice: Notice, notified_by: str) -> None:
        """The candidate is told purpose, process, content and time needed (seed 001 §04)."""
        self._require(InvestigationStatus.PLANNED, "notify the candidate")
        for name in ("purpose", "process", "content", "time_required", "channel"):
            if not getattr(notice, name).strip():
                raise InvalidPlanError(f"notice.{name}", "must not be empty")
        self._notify(notice, notified_by)

    @event(CandidateNotified)
    def _notify(self, notice: Notice, notified_by: str) -> None:
        self.notice = notice

    def start(self, scope: ConsentScope, started_by: str) -> None:
        """Checks start only after notice, under an active consent covering every check."""
        self._require(InvestigationStatus.PLANNED, "start")
        if self.notice is None:
            raise CandidateNotNotifiedError(self.id)
        self.check_consent(scope)
        self._start(scope, started_by)

    @event(Started)
    def _start(self, scope: ConsentScope, started_by: str) -> None:
        self.scope = scope
        self.status = InvestigationStatus.IN_PROGRESS

    def check_consent(self, scope: ConsentScope) -> None:
        """The consent is the candidate's, active, for this purpose, and covers every check."""
        scope.require_candidate(self.candidate_id)
        scope.require_active()
        scope.require_purpose(self.purpose)
        for check in self.checks.values():
            scope.require_check(check.check_type)

    def assign(self, investigator: str, assigned_by: str) -> None:
        self._require_open("assign an investigator")
        self._assign(investigator, assigned_by)

    @event(InvestigatorAssigned)
    def _assign(self, investigator: str, assigned_by: str) -> None:
        self.investigators.add(investigator)

    # --- gathering ---------------------------------------------------------------------------

    def record_finding(self, finding: Finding, in_force: ConsentScope) -> None:
        """Findings come from assigned investigators, by planned methods, from referees the
        consent in force allows (judged now, not when the checks started: it may have expired
        since); notes are classified personal data."""
        self._require(InvestigationStatus.IN_PROGRESS, "record a finding")
        check = self._check(finding.check_id)
        if finding.check_id in self.conclusions:
            raise CheckAlreadyConcludedError(finding.check_id)
        if finding.recorded_by not in self.investigators:
            raise InvestigatorNotAssignedError(self.id, finding.recorded_by)
        if finding.method not in check.methods:
            raise MethodNotInPlanError(finding.check_id, finding.method.value)
        scope = self._in_force(in_force)
        scope.require_referee(finding.source.role, finding.source.organisation)
        if finding.conversation_recorded:
            scope.require_recording()
        if finding.notes is not None:
            admit("notes", finding.notes.category, scope.categories)
            screen("notes", finding.notes.value, scope.categories)
        self._record_finding(finding)

    @event(FindingRecorded)
    def _record_finding(self, finding: Finding) -> None:
        self.findings[finding.finding_id] = finding

    def conclude_check(self, check_id: UUID, outcome: Outcome, concluded_by: str) -> None:
        """Cross-verification: a conclusion needs two independent sources of different roles
        or one authoritative source; a negative conclusion never rests on one witness."""
        self._require(InvestigationStatus.IN_PROGRESS, "conclude a check")
        self._check(check_id)
        if check_id in self.conclusions:
            raise CheckAlreadyConcludedError(check_id)
        if concluded_by not in self.investigators:
            raise InvestigatorNotAssignedError(self.id, concluded_by)
        basis = corroborated(check_id, outcome, self._standing_findings(check_id))
        self._conclude(
            Conclusion(check_id, outcome, tuple(f.finding_id for f in basis), concluded_by)
        )

    @event(CheckConcluded)
    def _conclude(self, conclusion: Conclusion) -> None:
        self.conclusions[conclusion.check_id] = conclusion

    # --- the candidate's voice ---------------------------------------------------------------

    def give_feedback(self, feedback_id: UUID, text: str) -> None:
        self._require_not(InvestigationStatus.CANCELLED, "take feedback")
        if not text.strip():
            raise InvalidPlanError("text", "feedback must not be empty")
        screen("text", text, self._named_categories())
        self._give_feedback(feedback_id, PersonalField("feedback", STATEMENT, text))

    @event(FeedbackGiven)
    def _give_feedback(self, feedback_id: UUID, text: PersonalField) -> None:
        self.feedback[feedback_id] = (text.value, None)

    def answer_feedback(self, feedback_id: UUID, answer: str, answered_by: str) -> None:
        if feedback_id not in self.feedback:
            raise UnknownFeedbackError(self.id, feedback_id)
        if self.feedback[feedback_id][1] is not None:
            raise FeedbackAlreadyAnsweredError(feedback_id)
        screen("answer", answer, self._named_categories())
        self._answer_feedback(
            feedback_id, PersonalField("answer", CORRESPONDENCE, answer), answered_by
        )

    @event(FeedbackAnswered)
    def _answer_feedback(self, feedback_id: UUID, answer: PersonalField, answered_by: str) -> None:
        self.feedback[feedback_id] = (self.feedback[feedback_id][0], answer.value)

    def raise_dispute(self, dispute_id: UUID, check_id: UUID, statement: str) -> None:
        """The candidate may dispute any check; an open dispute blocks the report."""
        self._require_not(InvestigationStatus.CANCELLED, "take a dispute")
        self._check(check_id)
        if not statement.strip():
            raise InvalidPlanError("statement", "say what is disputed")
        screen("statement", statement, self._named_categories())
        self._raise_dispute(dispute_id, check_id, PersonalField("statement", STATEMENT, statement))

    @event(DisputeRaised)
    def _raise_dispute(self, dispute_id: UUID, check_id: UUID, statement: PersonalField) -> None:
        self.disputes[dispute_id] = Dispute(dispute_id, check_id, statement.value)
        self.ever_disputed.add(check_id)

    def resolve_dispute(
        self, dispute_id: UUID, upheld: bool, response: str, resolved_by: str
    ) -> None:
        """An upheld dispute reopens the check and sets aside the findings it rested on."""
        dispute = self.disputes.get(dispute_id)
        if dispute is None:
            raise UnknownDisputeError(f"investigation {self.id}", dispute_id)
        if not dispute.is_open:
            raise DisputeAlreadyResolvedError(dispute_id)
        if not response.strip():
            raise InvalidPlanError("response", "answer the candidate")
        screen("response", response, self._named_categories())
        self._resolve_dispute(
            dispute_id, upheld, PersonalField("response", CORRESPONDENCE, response), resolved_by
        )

    @event(DisputeResolved)
    def _resolve_dispute(
        self, dispute_id: UUID, upheld: bool, response: PersonalField, resolved_by: str
    ) -> None:
        dispute = self.disputes[dispute_id]
        self.disputes[dispute_id] = Dispute(
            dispute_id, dispute.check_id, dispute.statement, response.value, upheld
        )
        if upheld:
            # The findings the conclusion rested on are set aside; the check is verified again.
            conclusion = self.conclusions.pop(dispute.check_id, None)
            if conclusion is not None:
                self.retracted.update(conclusion.basis)
            if self.status is InvestigationStatus.COMPLETED:
                self.status = InvestigationStatus.IN_PROGRESS

    @property
    def open_disputes(self) -> list[UUID]:
        return [d.dispute_id for d in self.disputes.values() if d.is_open]

    # --- pausing and ending ------------------------------------------------------------------

    def suspend(self, reason: str, consent_id: UUID) -> None:
        if self.status not in (InvestigationStatus.PLANNED, InvestigationStatus.IN_PROGRESS):
            raise InvestigationStateError(self.id, self.status.value, "suspend")
        self._suspend(reason, consent_id)

    @event("Suspended")
    def _suspend(self, reason: str, consent_id: UUID) -> None:
        self.suspended_from = self.status
        self.status = InvestigationStatus.SUSPENDED

    def resume(self, scope: ConsentScope, resumed_by: str) -> None:
        """Work resumes only under a consent that is active and covers every check again."""
        self._require(InvestigationStatus.SUSPENDED, "resume")
        self.check_consent(scope)
        self._resume(scope, resumed_by)

    @event(Resumed)
    def _resume(self, scope: ConsentScope, resumed_by: str) -> None:
        self.consent_id = scope.consent_id
        if self.suspended_from is InvestigationStatus.IN_PROGRESS:
            self.scope = scope
        self.status = self.suspended_from

    def complete(self, completed_by: str) -> None:
        self._require(InvestigationStatus.IN_PROGRESS, "complete")
        still_open = [str(c) for c in self.checks if c not in self.conclusions]
        if still_open:
            raise ChecksStillOpenError(self.id, still_open)
        self._complete(completed_by)

    @event(Completed)
    def _complete(self, completed_by: str) -> None:
        self.status = InvestigationStatus.COMPLETED

    def cancel(self, reason: str, cancelled_by: str, *, reason_kept: bool = True) -> None:
        """The reason is sealed with the subject's data (decision 0041); `reason_kept` is
        False when their case-note key is gone, and then the reason is not kept at all."""
        self._require_open("cancel")
        self._cancel(
            PersonalField("reason", CASE_NOTE, reason) if reason_kept else None, cancelled_by
        )

    @event(Cancelled)
    def _cancel(self, reason: PersonalField | None, cancelled_by: str) -> None:
        self.status = InvestigationStatus.CANCELLED

    # --- for reports -------------------------------------------------------------------------

    def results_for_report(self) -> tuple[CheckSummary, ...]:
        """A report is compiled from a completed investigation with no open dispute."""
        if self.status is not InvestigationStatus.COMPLETED:
            raise InvestigationNotCompletedError(self.id, self.status.value)
        if self.open_disputes:
            raise OpenDisputeError(
                f"investigation {self.id}", [str(d) for d in self.open_disputes], "compile a report"
            )
        return self.summaries()

    def summaries(self) -> tuple[CheckSummary, ...]:
        """Concluded checks with provenance and flags: single source, contested (sources
        disagreed), disputed by the candidate, possibly biased (a source flagged as such)."""
        return tuple(
            summary(
                self.checks[check_id].check_type,
                conclusion,
                [self.findings[f] for f in conclusion.basis],
                self._standing_findings(check_id),
                disputed=check_id in self.ever_disputed,
            )
            for check_id, conclusion in self.conclusions.items()
        )

    # --- guards ------------------------------------------------------------------------------

    def _standing_findings(self, check_id: UUID) -> list[Finding]:
        return [
            f
            for f in self.findings.values()
            if f.check_id == check_id and f.finding_id not in self.retracted
        ]

    def _named_categories(self) -> frozenset[str]:
        return self.scope.categories if self.scope is not None else frozenset()

    def _in_force(self, scope: ConsentScope) -> ConsentScope:
        if scope.consent_id != self.consent_id:
            raise ConsentBelongsToAnotherInvestigationError(scope.consent_id, self.id)
        scope.require_active()
        return scope

    def _check(self, check_id: UUID) -> PlannedCheck:
        try:
            return self.checks[check_id]
        except KeyError:
            raise UnknownCheckError(self.id, check_id) from None

    def _require(self, status: InvestigationStatus, action: str) -> None:
        if self.status is not status:
            raise InvestigationStateError(self.id, self.status.value, action)

    def _require_not(self, status: InvestigationStatus, action: str) -> None:
        if self.status is status:
            raise InvestigationStateError(self.id, self.status.value, action)

    def _require_open(self, action: str) -> None:
        if self.status in (InvestigationStatus.COMPLETED, InvestigationStatus.CANCELLED):
            raise InvestigationStateError(self.id, self.status.value, action)
