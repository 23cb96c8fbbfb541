"""The use cases by name, with the command each one takes.

One table for every transport: the CLI's `backcheck do`, and later HTTP and the Kafka command
topic, turn a name and a JSON document into exactly one use-case call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from services import dto
from services.application import Backcheck


@dataclass(frozen=True)
class UseCase:
    name: str
    command: type[dto.Command]
    method: str

    def run(self, app: Backcheck, payload: dict[str, Any]) -> BaseModel:
        command = self.command.model_validate(payload)
        handler: Callable[[dto.Command], BaseModel] = getattr(app, self.method)
        return handler(command)

    @property
    def summary(self) -> str:
        """The rule the use case enforces: its docstring's first paragraph, on one line."""
        doc = inspect.getdoc(getattr(Backcheck, self.method)) or ""
        return " ".join(doc.split("\n\n")[0].split())


_TABLE: tuple[tuple[str, type[dto.Command], str], ...] = (
    ("register-candidate", dto.RegisterCandidate, "register_candidate"),
    ("submit-claims", dto.SubmitClaims, "submit_claims"),
    ("request-erasure", dto.RequestErasure, "request_erasure"),
    ("erase-subject", dto.EraseSubject, "erase_subject"),
    ("request-consent", dto.RequestConsent, "request_consent"),
    ("grant-consent", dto.GrantConsent, "grant_consent"),
    ("withdraw-consent", dto.WithdrawConsent, "withdraw_consent"),
    ("expire-consent", dto.ExpireConsent, "expire_consent"),
    ("plan-investigation", dto.PlanInvestigation, "plan_investigation"),
    ("notify-candidate", dto.NotifyCandidate, "notify_candidate"),
    ("start-investigation", dto.StartInvestigation, "start_investigation"),
    ("resume-investigation", dto.ResumeInvestigation, "resume_investigation"),
    ("assign-investigator", dto.AssignInvestigator, "assign_investigator"),
    ("record-finding", dto.RecordFinding, "record_finding"),
    ("conclude-check", dto.ConcludeCheck, "conclude_check"),
    ("raise-dispute", dto.RaiseDispute, "raise_dispute"),
    ("resolve-dispute", dto.ResolveDispute, "resolve_dispute"),
    ("give-feedback", dto.GiveFeedback, "give_feedback"),
    ("answer-feedback", dto.AnswerFeedback, "answer_feedback"),
    ("complete-investigation", dto.CompleteInvestigation, "complete_investigation"),
    ("cancel-investigation", dto.CancelInvestigation, "cancel_investigation"),
    ("compile-report", dto.CompileReport, "compile_report"),
    ("review-report", dto.ReviewReport, "review_report"),
    ("share-report", dto.ShareReport, "share_report"),
    ("dispute-report", dto.DisputeReport, "dispute_report"),
    ("reject-report-dispute", dto.RejectReportDispute, "reject_report_dispute"),
    ("amend-report", dto.AmendReport, "amend_report"),
    ("reissue-report", dto.ShareReport, "reissue_report"),
    ("disclose-report", dto.DiscloseReport, "disclose_report"),
    ("place-legal-hold", dto.LegalHold, "place_legal_hold"),
    ("release-legal-hold", dto.ReleaseLegalHold, "release_legal_hold"),
    ("destroy-report", dto.DestroyReport, "destroy_report"),
    ("read-profile", dto.ReadProfile, "read_profile"),
    ("read-profiles", dto.ReadProfiles, "read_profiles"),
    ("read-report", dto.ReadReport, "read_report"),
    ("read-investigation", dto.ReadInvestigation, "read_investigation"),
    ("read-access-log", dto.ReadAccessLog, "read_access_log"),
    ("read-consents", dto.ReadConsents, "read_consents"),
    ("add-principal", dto.AddPrincipal, "add_principal"),
    ("rotate-principal", dto.RotatePrincipal, "rotate_principal"),
    ("revoke-principal", dto.RevokePrincipal, "revoke_principal"),
    ("issue-portal-link", dto.IssuePortalLink, "issue_portal_link"),
)

USE_CASES: dict[str, UseCase] = {name: UseCase(name, cmd, m) for name, cmd, m in _TABLE}
