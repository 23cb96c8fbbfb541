"""Use cases of a report: compile, review, disclose, share, dispute, amend, destroy."""

from __future__ import annotations

from uuid import UUID

from domain.candidate import Candidate
from domain.consent import Consent
from domain.investigation import Investigation
from domain.report import Amendment, Report
from services.dto import (
    AmendReport,
    CompileReport,
    DestroyReport,
    DiscloseReport,
    DisputeReport,
    LegalHold,
    RejectReportDispute,
    ReleaseLegalHold,
    ReportItemResult,
    ReportResult,
    ReviewReport,
    ShareReport,
)
from services.identity import role_now
from services.unit import UnitOfWork, caller_now, receiving_now, use_case


def report_result(report: Report) -> ReportResult:
    return ReportResult(
        report_id=report.id,
        candidate_id=report.candidate_id,
        investigation_id=report.investigation_id,
        status=report.status.value,
        edition=report.edition,
        items=[
            ReportItemResult(
                check_id=i.check_id,
                check_type=i.check_type,
                outcome=i.outcome.value,
                source_roles=list(i.source_roles),
                flags=[f.value for f in i.flags],
                has_note=bool(i.note),
            )
            for i in report.items.values()
        ],
        open_disputes=report.open_disputes,
        disclosures=len(report.disclosures),
        legal_hold=report.legal_hold is not None,
    )


class ReportUseCases(UnitOfWork):
    @use_case
    def compile_report(self, cmd: CompileReport) -> ReportResult:
        """Compiled from a completed, undisputed investigation, inside the consent in force."""
        inv = self.load(Investigation, cmd.investigation_id)
        consent = self.load(Consent, inv.consent_id)
        report = Report.compile(
            inv.id, inv.results_for_report(), consent.scope_at(self.now()), cmd.actor
        )
        self.commit(report)
        return report_result(report)

    @use_case
    def review_report(self, cmd: ReviewReport) -> ReportResult:
        """Reviewed by someone other than its authors."""
        report = self.load(Report, cmd.report_id)
        report.review(cmd.actor, cmd.approve, cmd.comments)
        self.commit(report)
        return report_result(report)

    @use_case
    def disclose_report(self, cmd: DiscloseReport) -> ReportResult:
        """Disclosed to a named recipient, for a purpose the consent in force allows; outside
        the employer, only to a third party the consent names."""
        report = self.load(Report, cmd.report_id)
        scope = self.load(Consent, report.consent_id).scope_at(self.now())
        report.disclose(
            scope,
            cmd.recipient,
            cmd.recipient_role,
            cmd.purpose,
            cmd.actor,
            organisation=cmd.recipient_organisation,
            authenticated=caller_now(),
            role=role_now(receiving_now()),
        )
        self.commit(report)
        return report_result(report)

    @use_case
    def share_report(self, cmd: ShareReport) -> ReportResult:
        """The candidate receives a copy of the approved report."""
        report = self.load(Report, cmd.report_id)
        report.share_with_candidate(cmd.actor)
        self.commit(report)
        return report_result(report)

    @use_case
    def dispute_report(self, cmd: DisputeReport) -> ReportResult:
        """The candidate disputes an item of the copy they received; it blocks disclosure."""
        report = self.load(Report, cmd.report_id)
        report.dispute(cmd.dispute_id, cmd.check_id, cmd.statement)
        self.commit(report)
        return report_result(report)

    @use_case
    def reject_report_dispute(self, cmd: RejectReportDispute) -> ReportResult:
        """A dispute that does not change the report is answered, never ignored."""
        report = self.load(Report, cmd.report_id)
        report.reject_dispute(cmd.dispute_id, cmd.response, cmd.actor)
        self.commit(report)
        return report_result(report)

    @use_case
    def amend_report(self, cmd: AmendReport) -> ReportResult:
        """An amendment opens a new edition that must be reviewed again."""
        report = self.load(Report, cmd.report_id)
        report.amend(
            tuple(Amendment(a.check_id, a.outcome, a.note) for a in cmd.amendments),
            cmd.reason,
            tuple(cmd.resolves),
            cmd.actor,
        )
        self.commit(report)
        return report_result(report)

    @use_case
    def reissue_report(self, cmd: ShareReport) -> ReportResult:
        """A reviewed amendment goes back to the candidate as a new edition."""
        report = self.load(Report, cmd.report_id)
        report.reissue(cmd.actor)
        self.commit(report)
        return report_result(report)

    @use_case
    def place_legal_hold(self, cmd: LegalHold) -> ReportResult:
        """A legal hold, with its reason, blocks destruction and the subject's erasure. The
        reason is sealed with the candidate's data, or not kept once that is erased."""
        report = self.load(Report, cmd.report_id)
        kept = self.load(Candidate, report.candidate_id).case_notes_kept
        report.place_legal_hold(cmd.reason, cmd.actor, reason_kept=kept)
        self.commit(report)
        return report_result(report)

    @use_case
    def release_legal_hold(self, cmd: ReleaseLegalHold) -> ReportResult:
        """Releasing a hold lets retention and erasure take their course again."""
        report = self.load(Report, cmd.report_id)
        report.release_legal_hold(cmd.actor)
        self.commit(report)
        return report_result(report)

    @use_case
    def destroy_report(self, cmd: DestroyReport) -> ReportResult:
        """Destroyed at retention end unless on legal hold."""
        report = self.load(Report, cmd.report_id)
        report.destroy(cmd.reason, cmd.actor)
        self.commit(report)
        return report_result(report)

    def get_report(self, report_id: UUID) -> ReportResult:
        return report_result(self.load(Report, report_id))
