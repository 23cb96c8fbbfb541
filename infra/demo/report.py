"""Chapter 6: the report is compiled, reviewed by someone else, shared, disputed, amended and
disclosed."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain import errors
from domain.check import Outcome
from infra.demo.narrator import Narrator
from infra.demo.plan import PlanIds
from infra.demo.script import CANDIDATE, HIRING_MANAGER, HR, PURPOSE, REVIEWER
from services import dto
from services.application import Backcheck


@dataclass(frozen=True)
class ReportIds:
    """The report (disclosed in its second edition) and her dispute that amended it."""

    report_id: UUID
    report_dispute_id: UUID


def report_and_disclose(app: Backcheck, n: Narrator, planned: PlanIds) -> ReportIds:
    """Needs the investigation complete with no open dispute (chapter 5)."""
    n.chapter("6. Report: compiled, reviewed by someone else, shared, disputed, amended")
    report = n.do(
        "HR compiles the report (items flagged: single source, disputed, possible bias)",
        lambda: app.compile_report(
            dto.CompileReport(investigation_id=planned.investigation_id, actor=HR)
        ),
    )
    rid = report.report_id
    n.refused(
        "HR approves their own report",
        errors.SelfReviewError,
        lambda: app.review_report(dto.ReviewReport(report_id=rid, approve=True, actor=HR)),
    )
    n.do(
        "reviewer Chen Jie approves it",
        lambda: app.review_report(
            dto.ReviewReport(
                report_id=rid, approve=True, comments="sources adequate", actor=REVIEWER
            )
        ),
    )
    n.refused(
        "disclose the report for marketing",
        errors.PurposeNotConsentedError,
        lambda: app.disclose_report(
            dto.DiscloseReport(
                report_id=rid,
                recipient="growth-team",
                recipient_role="marketing",
                purpose="marketing",
                actor=HR,
            )
        ),
    )
    n.do(
        "the candidate receives a copy",
        lambda: app.share_report(dto.ShareReport(report_id=rid, actor=HR)),
    )
    dispute = _amend_on_her_dispute(app, n, rid, planned.employment_check_id)
    n.do(
        "disclosed to hiring manager Sun Mei for pre-employment screening",
        lambda: app.disclose_report(_to_the_hiring_manager(rid)),
    )
    return ReportIds(report_id=rid, report_dispute_id=dispute)


def _amend_on_her_dispute(app: Backcheck, n: Narrator, rid: UUID, check_id: UUID) -> UUID:
    """She disputes the employment item; nothing is disclosed until edition 2 answers it."""
    dispute = dto.DisputeReport(
        report_id=rid,
        check_id=check_id,
        statement="Garden leave is employment; please say so.",
        actor=CANDIDATE,
    )
    n.do(
        "the candidate disputes the employment item of the report",
        lambda: app.dispute_report(dispute),
    )
    n.refused(
        "disclose to the hiring manager while that dispute is open",
        errors.OpenDisputeError,
        lambda: app.disclose_report(_to_the_hiring_manager(rid)),
    )
    n.do(
        "HR amends the item with the candidate's statement (edition 2)",
        lambda: app.amend_report(
            dto.AmendReport(
                report_id=rid,
                amendments=[
                    dto.AmendmentIn(
                        check_id=check_id,
                        outcome=Outcome.DISCREPANCY,
                        note="Sources give 2020-12; candidate states paid garden leave to 2021-06.",
                    )
                ],
                reason="candidate dispute",
                resolves=[dispute.dispute_id],
                actor=HR,
            )
        ),
    )
    n.do(
        "reviewer approves edition 2",
        lambda: app.review_report(dto.ReviewReport(report_id=rid, approve=True, actor=REVIEWER)),
    )
    n.do(
        "edition 2 is reissued to the candidate",
        lambda: app.reissue_report(dto.ShareReport(report_id=rid, actor=HR)),
    )
    return dispute.dispute_id


def _to_the_hiring_manager(rid: UUID) -> dto.DiscloseReport:
    return dto.DiscloseReport(
        report_id=rid,
        recipient=HIRING_MANAGER,
        recipient_role="hiring manager",
        purpose=PURPOSE,
        actor=HR,
    )
