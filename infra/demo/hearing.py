"""Chapter 5: the candidate is heard: her question answered, her dispute answered on file."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain import errors
from infra.demo.narrator import Narrator
from infra.demo.plan import PlanIds
from infra.demo.script import CANDIDATE, HR, INVESTIGATOR
from services import dto
from services.application import Backcheck


@dataclass(frozen=True)
class HearingIds:
    """Her question (answered) and her dispute of the employment check (answered, not upheld)."""

    feedback_id: UUID
    dispute_id: UUID


def hear_the_candidate(app: Backcheck, n: Narrator, planned: PlanIds) -> HearingIds:
    """Needs every check concluded (chapter 4); completes the investigation."""
    n.chapter("5. The candidate is heard")
    iid = planned.investigation_id
    question = dto.GiveFeedback(
        investigation_id=iid, text="When will the check be done?", actor=CANDIDATE
    )
    n.do("the candidate asks when the check will be finished", lambda: app.give_feedback(question))
    n.do(
        "HR answers the question",
        lambda: app.answer_feedback(
            dto.AnswerFeedback(
                investigation_id=iid,
                feedback_id=question.feedback_id,
                answer="Within two working days.",
                actor=HR,
            )
        ),
    )
    dispute = dto.RaiseDispute(
        investigation_id=iid,
        check_id=planned.employment_check_id,
        statement="I was on paid garden leave until June 2021.",
        actor=CANDIDATE,
    )
    n.do(
        "the candidate disputes the employment end date (garden leave until 2021-06)",
        lambda: app.raise_dispute(dispute),
    )
    n.do(
        "the investigation is complete: every check concluded",
        lambda: app.complete_investigation(
            dto.CompleteInvestigation(investigation_id=iid, actor=INVESTIGATOR)
        ),
    )
    n.refused(
        "compile the report while the dispute is open",
        errors.OpenDisputeError,
        lambda: app.compile_report(dto.CompileReport(investigation_id=iid, actor=HR)),
    )
    n.do(
        "HR answers the dispute: the conclusion stands, the statement goes on file",
        lambda: app.resolve_dispute(
            dto.ResolveDispute(
                investigation_id=iid,
                dispute_id=dispute.dispute_id,
                upheld=False,
                response="Both sources give 2020-12 as the last working day; your statement "
                "will be shown with the report.",
                actor=HR,
            )
        ),
    )
    return HearingIds(feedback_id=question.feedback_id, dispute_id=dispute.dispute_id)
