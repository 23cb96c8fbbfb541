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

from services import audit_reads, dto, subject_export
from services.access import Role
from services.application import Backcheck
from services.errors import AggregateMissingError, UseCaseNotPermittedError


@dataclass(frozen=True)
class UseCase:
    name: str
    command: type[dto.Command]
    method: str

    def run(self, app: Backcheck, payload: dict[str, Any]) -> BaseModel:
        return self.call(app, self.command.model_validate(payload))

    def call(self, app: Backcheck, command: dto.Command) -> BaseModel:
        """The use case on a validated command. A record it names that is not there is told
        by the command's field that held its id (the unit of work knows only the id)."""
        handler: Callable[[dto.Command], BaseModel] = getattr(app, self.method)
        try:
            return handler(command)
        except AggregateMissingError as e:
            named = e.held_by(command)
            if named is e:
                raise
            raise named from None

    @property
    def roles(self) -> frozenset[Role]:
        """The roles whose authenticated principals may run it (reads: every role, the access
        policies deciding what each gets)."""
        return _ROLES.get(self.name, frozenset(Role))

    def permit(self, role: Role) -> None:
        """Refuses a principal whose role may not run this use case (nothing is recorded)."""
        if role not in self.roles:
            raise UseCaseNotPermittedError(
                self.name, role.value, sorted(r.value for r in self.roles)
            )

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
    ("read-timeline", audit_reads.ReadTimeline, "read_timeline"),
    ("read-as-of", audit_reads.ReadAsOf, "read_as_of"),
    ("add-principal", dto.AddPrincipal, "add_principal"),
    ("rotate-principal", dto.RotatePrincipal, "rotate_principal"),
    ("revoke-principal", dto.RevokePrincipal, "revoke_principal"),
    ("issue-portal-link", dto.IssuePortalLink, "issue_portal_link"),
    ("export-subject-data", subject_export.ExportSubjectData, "export_subject_data"),
)

USE_CASES: dict[str, UseCase] = {name: UseCase(name, cmd, m) for name, cmd, m in _TABLE}


_R = Role
_RECRUITING = frozenset({_R.RECRUITER, _R.SERVICE})
_INVESTIGATING = frozenset({_R.INVESTIGATOR})
_CANDIDATE = frozenset({_R.CANDIDATE})
_COMPLIANCE = frozenset({_R.COMPLIANCE})
# Who may run each command, by the role of the authenticated principal (over HTTP; the CLI's
# operators and the command topic's services are trusted as before). Reads are not listed.
_ROLES: dict[str, frozenset[Role]] = {
    "register-candidate": _RECRUITING,
    "submit-claims": _RECRUITING | _CANDIDATE,
    "request-erasure": _RECRUITING | _CANDIDATE | _COMPLIANCE,
    "erase-subject": _COMPLIANCE,
    "request-consent": _RECRUITING,
    "grant-consent": _CANDIDATE | {_R.SERVICE},
    "withdraw-consent": _CANDIDATE | _COMPLIANCE | {_R.SERVICE},
    "expire-consent": _RECRUITING | _COMPLIANCE,
    "plan-investigation": _RECRUITING,
    "notify-candidate": _RECRUITING,
    "start-investigation": _RECRUITING | _INVESTIGATING,
    "resume-investigation": _RECRUITING,
    "assign-investigator": _RECRUITING,
    "record-finding": _INVESTIGATING,
    "conclude-check": _INVESTIGATING,
    "raise-dispute": _CANDIDATE,
    "resolve-dispute": _INVESTIGATING | _COMPLIANCE,
    "give-feedback": _CANDIDATE,
    "answer-feedback": _INVESTIGATING | _RECRUITING,
    "complete-investigation": _INVESTIGATING,
    "cancel-investigation": _RECRUITING | _COMPLIANCE,
    "compile-report": _INVESTIGATING | _RECRUITING,
    "review-report": frozenset({_R.REVIEWER}),
    "share-report": _RECRUITING,
    "dispute-report": _CANDIDATE,
    "reject-report-dispute": frozenset({_R.REVIEWER}) | _INVESTIGATING,
    "amend-report": frozenset({_R.REVIEWER}) | _INVESTIGATING,
    "reissue-report": _RECRUITING,
    "disclose-report": _RECRUITING,
    "place-legal-hold": _COMPLIANCE,
    "release-legal-hold": _COMPLIANCE,
    "destroy-report": _COMPLIANCE,
    "export-subject-data": _CANDIDATE | _COMPLIANCE,
}
