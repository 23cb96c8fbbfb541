"""`backcheck demo`: a complete, realistic screening story on the configured store.

Each step is a real use-case call. Where the story meets a rule, it first tries the wrong
thing, shows the refusal (and that nothing was stored), then does it right.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from rich.console import Console
from rich.table import Table

from domain import errors
from domain.candidate import Candidate
from domain.check import CheckType, Method, Outcome, SourceRole
from domain.classification import ERASED_VALUE
from services import dto
from services.access import Role
from services.application import Backcheck

T = TypeVar("T")

HR = "hr:li.na"
INVESTIGATOR = "investigator:zhao.lei"
REVIEWER = "reviewer:chen.jie"
CANDIDATE = "candidate"
PURPOSE = "pre-employment screening"


class DemoFailedError(RuntimeError):
    """The story did not go as the rules say it must: a bug, not a refusal."""


class Story:
    def __init__(self, app: Backcheck, console: Console) -> None:
        self.app = app
        self.out = console
        self.refusals: list[str] = []
        self.steps = 0

    def chapter(self, title: str) -> None:
        self.out.rule(f"[bold]{title}")

    def do(self, what: str, call: Callable[[], T]) -> T:
        result = call()
        self.steps += 1
        self.out.print(f"  [green]✓[/] {what}")
        return result

    def refused(
        self,
        what: str,
        expected: type[errors.DomainError],
        call: Callable[[], Any],
        *,
        stores: int = 0,
    ) -> None:
        """Try the wrong thing: it must be refused, and store exactly `stores` events (none for
        a command; one, its access record, for a refused read)."""
        before = self.app.recorder.max_notification_id() or 0
        try:
            call()
        except expected as e:
            after = self.app.recorder.max_notification_id() or 0
            if after != before + stores:
                raise DemoFailedError(
                    f"{what}: refused, but {after - before} event(s) stored, not {stores}"
                ) from e
            rule = type(e).__name__.removesuffix("Error")
            self.refusals.append(rule)
            self.out.print(f"  [red]✗ refused[/] {what}\n      [dim]{rule}:[/] {e}")
            return
        raise DemoFailedError(f"{what}: expected {expected.__name__}, but it was accepted")


def run_demo(app: Backcheck, console: Console) -> dict[str, Any]:
    s = Story(app, console)
    now = app.clock()

    s.chapter("1. The candidate is registered and asked for written consent")
    cand = s.do(
        "HR registers Wang Fang with minimal identity (name, email, phone)",
        lambda: app.register_candidate(
            dto.RegisterCandidate(
                name="Wang Fang", email="wang.fang@example.cn", phone="+86 138 0000 1234", actor=HR
            )
        ),
    )
    cid = cand.candidate_id
    s.refused(
        "HR asks consent to look into the candidate's religious belief",
        errors.ProhibitedCategoryError,
        lambda: app.request_consent(
            dto.RequestConsent(
                candidate_id=cid,
                terms=dto.ConsentTermsIn(
                    purposes=[PURPOSE],
                    check_types=[CheckType.REFERENCE],
                    categories=["user.demographic.religious_belief"],
                ),
                actor=HR,
            )
        ),
    )
    requested = dto.ConsentTermsIn(
        purposes=[PURPOSE],
        check_types=[
            CheckType.EDUCATION,
            CheckType.EMPLOYMENT,
            CheckType.REFERENCE,
            CheckType.CRIMINAL_RECORD,
        ],
        categories=["user.criminal_history"],
        referee_roles=[SourceRole.DIRECT_SUPERVISOR, SourceRole.HR, SourceRole.PEER],
        excluded_organisations=["Nimbus Tech"],
        recording_allowed=True,
    )
    consent = s.do(
        "HR requests consent: education, employment, references, criminal record",
        lambda: app.request_consent(
            dto.RequestConsent(candidate_id=cid, terms=requested, actor=HR)
        ),
    )

    s.chapter("2. A plan first; nothing starts before consent and notice")
    edu, emp, ref, crim = (
        CheckType.EDUCATION,
        CheckType.EMPLOYMENT,
        CheckType.REFERENCE,
        CheckType.CRIMINAL_RECORD,
    )
    checks = [
        dto.PlannedCheckIn(check_type=edu, methods=[Method.REGISTRY]),
        dto.PlannedCheckIn(check_type=emp, methods=[Method.PHONE, Method.EMAIL]),
        dto.PlannedCheckIn(check_type=ref, methods=[Method.PHONE, Method.INTERVIEW]),
        dto.PlannedCheckIn(check_type=crim, methods=[Method.REGISTRY]),
    ]
    plan = dto.PlanInvestigation(
        candidate_id=cid,
        consent_id=consent.consent_id,
        purpose=PURPOSE,
        checks=checks,
        investigators=[INVESTIGATOR],
        due_by=now + timedelta(days=10),
        actor=HR,
    )
    first = s.do(
        "HR plans four checks for investigator Zhao Lei", lambda: app.plan_investigation(plan)
    )
    notice = dict(
        purpose=PURPOSE,
        process="registry lookups, calls to former employer and referees",
        content="education, employment history, references, criminal record",
        time_required="about 5 working days",
        channel="email",
        actor=HR,
    )
    s.do(
        "the candidate is told purpose, process, content and time needed",
        lambda: app.notify_candidate(
            dto.NotifyCandidate(investigation_id=first.investigation_id, **notice)
        ),
    )
    s.refused(
        "start the investigation while consent is only requested",
        errors.ConsentNotActiveError,
        lambda: app.start_investigation(
            dto.StartInvestigation(investigation_id=first.investigation_id, actor=HR)
        ),
    )
    document = hashlib.sha256(b"Wang Fang - background check authorisation, signed").hexdigest()
    granted = requested.model_copy(
        update={
            "check_types": [edu, emp, ref],
            "categories": [],
            "recording_allowed": False,
        }
    )
    s.refused(
        "the e-signature service reports a grant wider than the request (a third party added)",
        errors.ConsentGrantExceedsRequestError,
        lambda: app.grant_consent(
            dto.GrantConsent(
                consent_id=consent.consent_id,
                terms=granted.model_copy(update={"third_parties": ["Aegis Screening"]}),
                document_sha256=document,
                signature_method="e_signature",
                valid_from=now,
                valid_until=now + timedelta(days=90),
                actor="esign-service",
            )
        ),
    )
    s.do(
        "Wang Fang signs: no criminal record check, no recordings, 90 days",
        lambda: app.grant_consent(
            dto.GrantConsent(
                consent_id=consent.consent_id,
                terms=granted,
                document_sha256=document,
                signature_method="e_signature",
                valid_from=now,
                valid_until=now + timedelta(days=90),
                actor="esign-service",
            )
        ),
    )
    s.refused(
        "start the plan that still includes the criminal record check",
        errors.ConsentDoesNotCoverCheckError,
        lambda: app.start_investigation(
            dto.StartInvestigation(investigation_id=first.investigation_id, actor=HR)
        ),
    )
    s.do(
        "HR cancels that plan",
        lambda: app.cancel_investigation(
            dto.CancelInvestigation(
                investigation_id=first.investigation_id,
                reason="criminal record check not consented",
                actor=HR,
            )
        ),
    )
    inv = s.do(
        "HR plans again within the consent: education, employment, references",
        lambda: app.plan_investigation(plan.model_copy(update={"checks": checks[:3]})),
    )
    iid = inv.investigation_id
    c_edu, c_emp, c_ref = (c.check_id for c in inv.checks)
    s.refused(
        "start before the candidate was told about this plan",
        errors.CandidateNotNotifiedError,
        lambda: app.start_investigation(dto.StartInvestigation(investigation_id=iid, actor=HR)),
    )
    s.do(
        "the candidate is notified of the new plan",
        lambda: app.notify_candidate(dto.NotifyCandidate(investigation_id=iid, **notice)),
    )
    s.do(
        "the investigation starts under the consent",
        lambda: app.start_investigation(dto.StartInvestigation(investigation_id=iid, actor=HR)),
    )

    s.chapter("3. Claims are collected within consent")
    s.refused(
        "the candidate adds marital status to the resume without consent for it",
        errors.ConsentRequiredForCategoryError,
        lambda: app.submit_claims(
            dto.SubmitClaims(
                candidate_id=cid,
                consent_id=consent.consent_id,
                claims=[
                    dto.ClaimIn(
                        kind="personal",
                        fields=[
                            dto.PersonalFieldIn(
                                name="marital_status",
                                category="user.demographic.marital_status",
                                value="married",
                            )
                        ],
                    )
                ],
                actor=CANDIDATE,
            )
        ),
    )

    def field(name: str, category: str, value: str) -> dto.PersonalFieldIn:
        return dto.PersonalFieldIn(name=name, category=category, value=value)

    s.do(
        "the candidate submits education and employment claims",
        lambda: app.submit_claims(
            dto.SubmitClaims(
                candidate_id=cid,
                consent_id=consent.consent_id,
                claims=[
                    dto.ClaimIn(
                        kind="education",
                        fields=[
                            field("school", "user.education", "Fudan University"),
                            field("degree", "user.education", "BSc Computer Science, 2016"),
                        ],
                    ),
                    dto.ClaimIn(
                        kind="employment",
                        fields=[
                            field("employer", "user.employment.employer", "Acme Logistics"),
                            field("title", "user.employment.title", "Senior Engineer"),
                            field("dates", "user.employment.dates", "2016-07 to 2021-06"),
                        ],
                    ),
                ],
                actor=CANDIDATE,
            )
        ),
    )

    s.chapter("4. Findings from several sources, cross-verified")

    def finding(
        check: UUID,
        role: SourceRole,
        ref_: str,
        org: str,
        method: Method,
        outcome: Outcome,
        notes: str | None = None,
        **kw: Any,
    ) -> dto.RecordFinding:
        return dto.RecordFinding(
            investigation_id=iid,
            check_id=check,
            source=dto.SourceIn(role=role, reference=ref_, organisation=org),
            method=method,
            outcome=outcome,
            notes=notes,
            actor=kw.pop("actor", INVESTIGATOR),
            **kw,
        )

    s.do(
        "the Fudan registrar confirms the degree",
        lambda: app.record_finding(
            finding(
                c_edu,
                SourceRole.REGISTRAR,
                "fudan-registry",
                "Fudan University",
                Method.REGISTRY,
                Outcome.CONFIRMED,
            )
        ),
    )
    s.do(
        "education concluded: confirmed on one authoritative source",
        lambda: app.conclude_check(
            dto.ConcludeCheck(
                investigation_id=iid, check_id=c_edu, outcome=Outcome.CONFIRMED, actor=INVESTIGATOR
            )
        ),
    )
    s.refused(
        "call a referee at Nimbus Tech, the current employer the candidate excluded",
        errors.RefereeNotPermittedError,
        lambda: app.record_finding(
            finding(
                c_ref,
                SourceRole.DIRECT_SUPERVISOR,
                "ref-9",
                "Nimbus Tech",
                Method.PHONE,
                Outcome.CONFIRMED,
            )
        ),
    )
    s.refused(
        "record the phone call with the Acme HR officer (recording not consented)",
        errors.RecordingNotConsentedError,
        lambda: app.record_finding(
            finding(
                c_emp,
                SourceRole.HR,
                "ref-1",
                "Acme Logistics",
                Method.PHONE,
                Outcome.DISCREPANCY,
                conversation_recorded=True,
            )
        ),
    )
    s.do(
        "Acme HR says employment ended 2020-12, not 2021-06",
        lambda: app.record_finding(
            finding(
                c_emp,
                SourceRole.HR,
                "ref-1",
                "Acme Logistics",
                Method.PHONE,
                Outcome.DISCREPANCY,
                notes="HR records show last working day 2020-12-31",
            )
        ),
    )
    s.refused(
        "conclude a discrepancy on that one witness",
        errors.NegativeConclusionNeedsSecondSourceError,
        lambda: app.conclude_check(
            dto.ConcludeCheck(
                investigation_id=iid,
                check_id=c_emp,
                outcome=Outcome.DISCREPANCY,
                actor=INVESTIGATOR,
            )
        ),
    )
    s.do(
        "the former direct supervisor, by email, gives the same end date",
        lambda: app.record_finding(
            finding(
                c_emp,
                SourceRole.DIRECT_SUPERVISOR,
                "ref-2",
                "Acme Logistics",
                Method.EMAIL,
                Outcome.DISCREPANCY,
                notes="left the team at the end of 2020",
            )
        ),
    )
    s.do(
        "employment concluded: discrepancy, on two sources of different roles",
        lambda: app.conclude_check(
            dto.ConcludeCheck(
                investigation_id=iid,
                check_id=c_emp,
                outcome=Outcome.DISCREPANCY,
                actor=INVESTIGATOR,
            )
        ),
    )
    s.do(
        "a peer praises the candidate's work (flagged: close friend, possible bias)",
        lambda: app.record_finding(
            finding(
                c_ref,
                SourceRole.PEER,
                "ref-3",
                "Acme Logistics",
                Method.INTERVIEW,
                Outcome.CONFIRMED,
                notes="reliable, led the routing rewrite",
                possible_bias=True,
            )
        ),
    )
    s.do(
        "the direct supervisor confirms the assessment by phone",
        lambda: app.record_finding(
            finding(
                c_ref,
                SourceRole.DIRECT_SUPERVISOR,
                "ref-2",
                "Acme Logistics",
                Method.PHONE,
                Outcome.CONFIRMED,
                notes="strong engineer, would rehire",
            )
        ),
    )
    s.do(
        "references concluded: confirmed",
        lambda: app.conclude_check(
            dto.ConcludeCheck(
                investigation_id=iid, check_id=c_ref, outcome=Outcome.CONFIRMED, actor=INVESTIGATOR
            )
        ),
    )

    s.chapter("5. The candidate is heard")
    question = dto.GiveFeedback(
        investigation_id=iid, text="When will the check be done?", actor=CANDIDATE
    )
    s.do("the candidate asks when the check will be finished", lambda: app.give_feedback(question))
    feedback_id = question.feedback_id
    s.do(
        "HR answers the question",
        lambda: app.answer_feedback(
            dto.AnswerFeedback(
                investigation_id=iid,
                feedback_id=feedback_id,
                answer="Within two working days.",
                actor=HR,
            )
        ),
    )
    disputed = s.do(
        "the candidate disputes the employment end date (garden leave until 2021-06)",
        lambda: app.raise_dispute(
            dto.RaiseDispute(
                investigation_id=iid,
                check_id=c_emp,
                statement="I was on paid garden leave until June 2021.",
                actor=CANDIDATE,
            )
        ),
    )
    s.do(
        "the investigation is complete: every check concluded",
        lambda: app.complete_investigation(
            dto.CompleteInvestigation(investigation_id=iid, actor=INVESTIGATOR)
        ),
    )
    s.refused(
        "compile the report while the dispute is open",
        errors.OpenDisputeError,
        lambda: app.compile_report(dto.CompileReport(investigation_id=iid, actor=HR)),
    )
    s.do(
        "HR answers the dispute: the conclusion stands, the statement goes on file",
        lambda: app.resolve_dispute(
            dto.ResolveDispute(
                investigation_id=iid,
                dispute_id=disputed.open_disputes[0],
                upheld=False,
                response="Both sources give 2020-12 as the last working day; your statement "
                "will be shown with the report.",
                actor=HR,
            )
        ),
    )

    s.chapter("6. Report: compiled, reviewed by someone else, shared, disputed, amended")
    report = s.do(
        "HR compiles the report (items flagged: single source, disputed, possible bias)",
        lambda: app.compile_report(dto.CompileReport(investigation_id=iid, actor=HR)),
    )
    rid = report.report_id
    s.refused(
        "HR approves their own report",
        errors.SelfReviewError,
        lambda: app.review_report(dto.ReviewReport(report_id=rid, approve=True, actor=HR)),
    )
    s.do(
        "reviewer Chen Jie approves it",
        lambda: app.review_report(
            dto.ReviewReport(
                report_id=rid, approve=True, comments="sources adequate", actor=REVIEWER
            )
        ),
    )
    s.refused(
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
    s.do(
        "the candidate receives a copy",
        lambda: app.share_report(dto.ShareReport(report_id=rid, actor=HR)),
    )
    rdisp = s.do(
        "the candidate disputes the employment item of the report",
        lambda: app.dispute_report(
            dto.DisputeReport(
                report_id=rid,
                check_id=c_emp,
                statement="Garden leave is employment; please say so.",
                actor=CANDIDATE,
            )
        ),
    )
    s.refused(
        "disclose to the hiring manager while that dispute is open",
        errors.OpenDisputeError,
        lambda: app.disclose_report(
            dto.DiscloseReport(
                report_id=rid,
                recipient="hiring-manager:sun.mei",
                recipient_role="hiring manager",
                purpose=PURPOSE,
                actor=HR,
            )
        ),
    )
    s.do(
        "HR amends the item with the candidate's statement (edition 2)",
        lambda: app.amend_report(
            dto.AmendReport(
                report_id=rid,
                amendments=[
                    dto.AmendmentIn(
                        check_id=c_emp,
                        outcome=Outcome.DISCREPANCY,
                        note="Sources give 2020-12; candidate states paid garden leave to 2021-06.",
                    )
                ],
                reason="candidate dispute",
                resolves=[UUID(rdisp.open_disputes[0])],
                actor=HR,
            )
        ),
    )
    s.do(
        "reviewer approves edition 2",
        lambda: app.review_report(dto.ReviewReport(report_id=rid, approve=True, actor=REVIEWER)),
    )
    s.do(
        "edition 2 is reissued to the candidate",
        lambda: app.reissue_report(dto.ShareReport(report_id=rid, actor=HR)),
    )
    final = s.do(
        "disclosed to hiring manager Sun Mei for pre-employment screening",
        lambda: app.disclose_report(
            dto.DiscloseReport(
                report_id=rid,
                recipient="hiring-manager:sun.mei",
                recipient_role="hiring manager",
                purpose=PURPOSE,
                actor=HR,
            )
        ),
    )

    s.chapter("7. Another candidate withdraws consent mid-investigation")
    other = app.register_candidate(dto.RegisterCandidate(name="Liu Yang", actor=HR))
    oc = app.request_consent(
        dto.RequestConsent(candidate_id=other.candidate_id, terms=granted, actor=HR)
    )
    app.grant_consent(
        dto.GrantConsent(
            consent_id=oc.consent_id,
            terms=granted,
            document_sha256=document,
            signature_method="wet_ink",
            valid_from=now,
            valid_until=now + timedelta(days=30),
            actor=HR,
        )
    )
    oi = app.plan_investigation(
        plan.model_copy(
            update={
                "candidate_id": other.candidate_id,
                "consent_id": oc.consent_id,
                "checks": checks[:1],
            }
        )
    )
    app.notify_candidate(dto.NotifyCandidate(investigation_id=oi.investigation_id, **notice))
    app.start_investigation(dto.StartInvestigation(investigation_id=oi.investigation_id, actor=HR))
    s.steps += 6
    s.out.print("  [green]✓[/] Liu Yang registered, consented, notified; investigation started")
    withdrawn = s.do(
        "Liu Yang withdraws consent: the running investigation is suspended with it",
        lambda: app.withdraw_consent(
            dto.WithdrawConsent(
                consent_id=oc.consent_id, reason="accepted another offer", actor=CANDIDATE
            )
        ),
    )
    if withdrawn.suspended_investigations != [oi.investigation_id]:
        raise DemoFailedError("withdrawal did not suspend the investigation")
    register = s.do(
        "HR checks Liu Yang's consent register before going on (a recorded read)",
        lambda: app.read_consents(
            dto.ReadConsents(
                candidate_id=other.candidate_id,
                principal=HR,
                role=Role.RECRUITER,
                purpose="what applies",
            )
        ),
    )
    for consent in register.consents:
        s.out.print(
            f"      consent {str(consent.consent_id)[:8]}: {consent.status}; relied on by "
            f"{len(consent.relied_on_by)} investigation(s)"
        )

    s.chapter("8. Reads of personal data are decided, redacted and recorded")
    read = dto.ReadProfile(candidate_id=cid, principal=HR, role=Role.RECRUITER, purpose=PURPOSE)
    view = s.do(
        "HR reads Wang Fang's profile for screening (recorded before it is shown)",
        lambda: app.read_profile(read),
    )
    shown = [f.name for f in view.fields if not f.withheld]
    s.out.print(f"      {len(shown)} general fields shown; nothing more is HR's to see")
    s.refused(
        "the growth team reads the profile for marketing",
        errors.AccessRefusedError,
        lambda: app.read_profile(
            read.model_copy(update={"principal": "growth:wu.hao", "purpose": "marketing"})
        ),
        stores=1,
    )
    own_log = dto.ReadAccessLog(
        candidate_id=cid,
        principal=f"candidate:{cid}",
        role=Role.CANDIDATE,
        purpose="see who accessed my data",
    )
    log = s.do(
        "Wang Fang looks at who accessed her data (that read is recorded too)",
        lambda: app.read_access_log(own_log),
    )
    for entry in log.entries:
        s.out.print(
            f"      {entry.principal} ({entry.role}) for {entry.purpose!r}: {entry.outcome}"
        )
    case = s.do(
        "Wang Fang reads her investigation: where each check stands, her questions answered",
        lambda: app.read_investigation(
            dto.ReadInvestigation(
                investigation_id=iid,
                principal=f"candidate:{cid}",
                role=Role.CANDIDATE,
                purpose="follow my background check",
            )
        ),
    )
    for said in case.feedback:
        s.out.print(f"      she asked {said.words!r}; the answer: {said.answer!r}")
    hr_case = app.read_investigation(
        dto.ReadInvestigation(
            investigation_id=iid, principal=HR, role=Role.RECRUITER, purpose=PURPOSE
        )
    )
    shown = sum(not c.withheld for c in hr_case.checks)
    said = [*hr_case.feedback, *hr_case.disputes]
    s.out.print(
        f"      HR reads the same investigation ({hr_case.outcome}): {shown} of "
        f"{len(hr_case.checks)} checks' conclusions; {sum(x.withheld for x in said)} of her "
        f"{len(said)} questions and disputes withheld"
    )
    s.refused(
        "HR looks at who else read Wang Fang's data",
        errors.AccessRefusedError,
        lambda: app.read_access_log(
            own_log.model_copy(update={"principal": HR, "role": Role.RECRUITER})
        ),
        stores=1,
    )

    s.chapter("9. Liu Yang asks to be erased")
    erased = s.do(
        "compliance erases Liu Yang: her keys are destroyed, a signed receipt is recorded",
        lambda: app.erase_subject(
            dto.EraseSubject(
                candidate_id=other.candidate_id,
                reason="candidate request",
                actor="compliance:zhou.yu",
            )
        ),
    )
    gone = {f.value for f in app.load(Candidate, other.candidate_id).identity}
    if gone != {ERASED_VALUE}:
        raise DemoFailedError("erasure left a readable personal value")
    s.out.print(
        f"      {erased.keys_destroyed} key(s) destroyed; her name now reads {ERASED_VALUE}; "
        f"her history (who did what, when) remains"
    )

    _summary(s, final, cid)
    return {
        "candidate_id": cid,
        "report_id": rid,
        "investigation_id": iid,
        "steps": s.steps,
        "refusals": s.refusals,
    }


def _summary(s: Story, report: dto.ReportResult, candidate_id: UUID) -> None:
    s.chapter("What the report says")
    table = Table("check", "outcome", "sources", "flags", "amendment note")
    for item in report.items:
        table.add_row(
            item.check_type,
            item.outcome,
            ", ".join(item.source_roles),
            ", ".join(item.flags),
            "on file (personal data)" if item.has_note else "",
        )
    s.out.print(table)
    events = list(s.app.iter_events(candidate_id))
    s.out.print(
        f"\n{s.steps} steps, {len(s.refusals)} refusals "
        f"({', '.join(dict.fromkeys(s.refusals))}); "
        f"{len(events)} events recorded about Wang Fang (candidate {candidate_id})."
    )
    s.out.print(f"See them with: [bold]backcheck events --subject {candidate_id}[/]")
