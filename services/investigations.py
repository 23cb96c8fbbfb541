"""Use cases of an investigation: plan, notify, start, gather, conclude, hear the candidate."""

from __future__ import annotations

from uuid import UUID

from domain.candidate import Candidate
from domain.check import Finding, PlannedCheck, Source
from domain.classification import PersonalField
from domain.consent import Consent
from domain.investigation import Investigation, Notice
from services.dto import (
    AnswerFeedback,
    AssignInvestigator,
    CancelInvestigation,
    CheckResult,
    CompleteInvestigation,
    ConcludeCheck,
    GiveFeedback,
    InvestigationResult,
    NotifyCandidate,
    PlanInvestigation,
    RaiseDispute,
    RecordFinding,
    ResolveDispute,
    ResumeInvestigation,
    StartInvestigation,
)
from services.unit import UnitOfWork, use_case


def investigation_result(inv: Investigation) -> InvestigationResult:
    return InvestigationResult(
        investigation_id=inv.id,
        candidate_id=inv.candidate_id,
        consent_id=inv.consent_id,
        status=inv.status.value,
        notified=inv.notice is not None,
        checks=[
            CheckResult(
                check_id=c.check_id,
                check_type=c.check_type.value,
                methods=[m.value for m in c.methods],
                findings=sum(1 for f in inv.findings.values() if f.check_id == c.check_id),
                conclusion=(
                    inv.conclusions[c.check_id].outcome.value
                    if c.check_id in inv.conclusions
                    else None
                ),
            )
            for c in inv.checks.values()
        ],
        open_disputes=inv.open_disputes,
        investigators=sorted(inv.investigators),
    )


class InvestigationUseCases(UnitOfWork):
    @use_case
    def plan_investigation(self, cmd: PlanInvestigation) -> InvestigationResult:
        """A plan names purpose, checks and methods, schedule and investigators first."""
        candidate = self.load(Candidate, cmd.candidate_id)
        candidate.require_collectable()
        consent = self.load(Consent, cmd.consent_id)
        consent.scope_at(self.now()).require_candidate(candidate.id)
        checks = tuple(
            PlannedCheck(c.check_id, c.check_type, tuple(c.methods), c.claim_id) for c in cmd.checks
        )
        investigation = Investigation.plan(
            candidate.id,
            consent.id,
            cmd.purpose,
            checks,
            tuple(cmd.investigators),
            cmd.due_by,
            cmd.actor,
        )
        # Recorded from the plan on, so a withdrawal reaches it even before it starts.
        consent.record_reliance(investigation.id)
        self.commit(investigation, consent)
        return investigation_result(investigation)

    @use_case
    def notify_candidate(self, cmd: NotifyCandidate) -> InvestigationResult:
        """The candidate is told purpose, process, content and time needed before the start."""
        inv = self.load(Investigation, cmd.investigation_id)
        inv.notify_candidate(
            Notice(cmd.purpose, cmd.process, cmd.content, cmd.time_required, cmd.channel),
            cmd.actor,
        )
        self.commit(inv)
        return investigation_result(inv)

    @use_case
    def start_investigation(self, cmd: StartInvestigation) -> InvestigationResult:
        """Checks start only under an active consent that covers each of them."""
        inv = self.load(Investigation, cmd.investigation_id)
        consent = self.load(Consent, inv.consent_id)
        inv.start(consent.scope_at(self.now()), cmd.actor)
        self.commit(inv)
        return investigation_result(inv)

    @use_case
    def resume_investigation(self, cmd: ResumeInvestigation) -> InvestigationResult:
        """A suspended investigation resumes only under an active consent covering it."""
        inv = self.load(Investigation, cmd.investigation_id)
        consent = self.load(Consent, cmd.consent_id)
        inv.resume(consent.scope_at(self.now()), cmd.actor)
        if inv.id in consent.relied_on_by:
            self.commit(inv)
        else:
            consent.record_reliance(inv.id)
            self.commit(inv, consent)
        return investigation_result(inv)

    @use_case
    def assign_investigator(self, cmd: AssignInvestigator) -> InvestigationResult:
        """Investigators are added to an open investigation; only they may record findings."""
        inv = self.load(Investigation, cmd.investigation_id)
        inv.assign(cmd.investigator, cmd.actor)
        self.commit(inv)
        return investigation_result(inv)

    @use_case
    def record_finding(self, cmd: RecordFinding) -> InvestigationResult:
        """A finding names its source, method and outcome; only referees the consent allows."""
        inv = self.load(Investigation, cmd.investigation_id)
        in_force = self.load(Consent, inv.consent_id).scope_at(self.now())
        notes = PersonalField("notes", cmd.notes_category, cmd.notes) if cmd.notes else None
        inv.record_finding(
            Finding(
                finding_id=cmd.finding_id,
                check_id=cmd.check_id,
                source=Source.of(cmd.source.role, cmd.source.reference, cmd.source.organisation),
                method=cmd.method,
                outcome=cmd.outcome,
                recorded_by=cmd.actor,
                notes=notes,
                conversation_recorded=cmd.conversation_recorded,
                possible_bias=cmd.possible_bias,
            ),
            in_force,
        )
        self.commit(inv)
        return investigation_result(inv)

    @use_case
    def conclude_check(self, cmd: ConcludeCheck) -> InvestigationResult:
        """A conclusion rests on corroborated findings (cross-verification)."""
        inv = self.load(Investigation, cmd.investigation_id)
        inv.conclude_check(cmd.check_id, cmd.outcome, cmd.actor)
        self.commit(inv)
        return investigation_result(inv)

    @use_case
    def raise_dispute(self, cmd: RaiseDispute) -> InvestigationResult:
        """The candidate disputes a check; it must be answered before any report."""
        inv = self.load(Investigation, cmd.investigation_id)
        inv.raise_dispute(cmd.dispute_id, cmd.check_id, cmd.statement)
        self.commit(inv)
        return investigation_result(inv)

    @use_case
    def resolve_dispute(self, cmd: ResolveDispute) -> InvestigationResult:
        """A dispute is answered; an upheld one reopens the check and sets aside its findings."""
        inv = self.load(Investigation, cmd.investigation_id)
        inv.resolve_dispute(cmd.dispute_id, cmd.upheld, cmd.response, cmd.actor)
        self.commit(inv)
        return investigation_result(inv)

    @use_case
    def give_feedback(self, cmd: GiveFeedback) -> InvestigationResult:
        """The candidate asks a question or comments; the text is screened and sealed."""
        inv = self.load(Investigation, cmd.investigation_id)
        inv.give_feedback(cmd.feedback_id, cmd.text)
        self.commit(inv)
        return investigation_result(inv)

    @use_case
    def answer_feedback(self, cmd: AnswerFeedback) -> InvestigationResult:
        """The candidate's questions are answered in time (seed 001 §07)."""
        inv = self.load(Investigation, cmd.investigation_id)
        inv.answer_feedback(cmd.feedback_id, cmd.answer, cmd.actor)
        self.commit(inv)
        return investigation_result(inv)

    @use_case
    def complete_investigation(self, cmd: CompleteInvestigation) -> InvestigationResult:
        """An investigation completes when every planned check is concluded."""
        inv = self.load(Investigation, cmd.investigation_id)
        inv.complete(cmd.actor)
        self.commit(inv)
        return investigation_result(inv)

    @use_case
    def cancel_investigation(self, cmd: CancelInvestigation) -> InvestigationResult:
        """An open investigation may be cancelled, with the reason; nothing more is gathered.
        The reason is sealed with the candidate's data, or not kept once that is erased."""
        inv = self.load(Investigation, cmd.investigation_id)
        kept = self.load(Candidate, inv.candidate_id).case_notes_kept
        inv.cancel(cmd.reason, cmd.actor, reason_kept=kept)
        self.commit(inv)
        return investigation_result(inv)

    def get_investigation(self, investigation_id: UUID) -> InvestigationResult:
        return investigation_result(self.load(Investigation, investigation_id))
