"""A whole background check in which every value the subject gives carries a marker.

Issue 21's done-when: after `subject erase`, none of these markers may be found anywhere —
the store's bytes, the views, the Kafka topic, the workers' views. Each marker is distinctive
text (with a `-`, which no base64 ciphertext holds), so a raw scan finds it wherever it was
left in clear. `tell(app)` runs the story through the use cases, as a deployment would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from domain.candidate import ClaimKind
from domain.check import CheckType, Method, Outcome, SourceRole
from domain.errors import RefereeNotPermittedError
from infra.config import Settings
from services.application import Backcheck
from services.dto import (
    AmendmentIn,
    AmendReport,
    AnswerFeedback,
    ClaimIn,
    CompileReport,
    CompleteInvestigation,
    ConcludeCheck,
    DiscloseReport,
    DisputeReport,
    GiveFeedback,
    PersonalFieldIn,
    PlanInvestigation,
    PlannedCheckIn,
    RaiseDispute,
    RecordFinding,
    RegisterCandidate,
    RejectReportDispute,
    ResolveDispute,
    ReviewReport,
    ShareReport,
    SourceIn,
    SubmitClaims,
    WithdrawConsent,
)
from tests import story as s
from tests.conftest import PG_URL

NAME = "ZQX-NAME-01"
EMAIL_MARK = "zqx-mail-02"  # the email's local part: its address is EMAIL
EMAIL = f"{EMAIL_MARK}@example.com"
PHONE_MARK = "3141 5926"
PHONE = f"+86 99 {PHONE_MARK}"
SCHOOL = "ZQX-SCHOOL-03"
EMPLOYER = "ZQX-ORG-04"  # where the candidate worked, and the referees speak from
TITLE = "ZQX-TITLE-05"
EXCLUDED = "ZQX-EXCL-06"  # the current employer, excluded from contact
THIRD_PARTY = "ZQX-THIRD-07"  # the screening agency a report may go to
SUPERVISOR_REF = "ZQX-REF-08"
SUPERVISOR_NOTES = "ZQX-NOTE-09 reliable"
HR_REF = "ZQX-REF-10"
HR_NOTES = "ZQX-NOTE-11 dates confirmed"
FEEDBACK = "ZQX-FEEDBACK-14 when will you call"
ANSWER = "ZQX-ANSWER-15 this week"
DISPUTE = "ZQX-DISPUTE-16 my title was senior"
RESPONSE = "ZQX-RESPONSE-17 HR confirms the title"
REPORT_DISPUTE = "ZQX-RDISPUTE-18 dates are wrong"
REPORT_ANSWER = "ZQX-RANSWER-19 registry dates stand"
WITHDRAWAL = "ZQX-WITHDRAW-21 found another job"
# what staff write about the case, and may quote the candidate in
CHANGES = "ZQX-COMMENT-22 say which title"
AMENDMENT_NOTE = "ZQX-AMEND-23 title: senior engineer"
AMENDMENT_REASON = "ZQX-REASON-24 as the candidate said"
APPROVAL = "ZQX-COMMENT-25 fine now"

MARKERS = (
    NAME,
    EMAIL_MARK,
    PHONE_MARK,
    SCHOOL,
    EMPLOYER,
    TITLE,
    EXCLUDED,
    THIRD_PARTY,
    SUPERVISOR_REF,
    SUPERVISOR_NOTES,
    HR_REF,
    HR_NOTES,
    FEEDBACK,
    ANSWER,
    DISPUTE,
    RESPONSE,
    REPORT_DISPUTE,
    REPORT_ANSWER,
    WITHDRAWAL,
    CHANGES,
    AMENDMENT_NOTE,
    AMENDMENT_REASON,
    APPROVAL,
)
AGENT = "agent:aegis.case-officer"  # the third party's principal: a principal's id, in clear


@dataclass(frozen=True)
class Marked:
    candidate_id: UUID
    consent_id: UUID
    investigation_id: UUID
    report_id: UUID


def found_in(data: bytes | str) -> list[str]:
    """The markers `data` holds (case-insensitive: a store may fold case)."""
    text = (data.decode("utf-8", "replace") if isinstance(data, bytes) else data).casefold()
    return [m for m in MARKERS if m.casefold() in text]


def raw_bytes(settings: Settings) -> bytes:
    """Every byte the backend holds, as an attacker would read it. SQLite: the store, the
    views and every other file in the data directory (the kept views, the workers' views,
    the idempotency table, keys), write-ahead logs checkpointed into them and read as well.
    PostgreSQL: every cell of every table in the store's schema (the store, the in-process
    and the workers' views, the relay's state), and the data directory's files."""
    if settings.backend == "postgres":
        return _raw_postgres(settings.postgres_schema) + _read(settings.data_dir.rglob("*"))
    path, views = settings.sqlite_path, settings.views_path
    assert views.exists()
    for db in {path, views, *settings.data_dir.glob("*.sqlite")}:
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return _read(
        [
            *settings.data_dir.rglob("*"),
            *(f for db in (path, views) for f in (db, *db.parent.glob(db.name + "-*"))),
        ]
    )


def _read(files: Iterable[Path]) -> bytes:
    """The bytes of every file among `files` (each once)."""
    return b"".join(f.read_bytes() for f in sorted(set(files)) if f.is_file())


def _raw_postgres(schema: str) -> bytes:
    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        ).fetchall()
        cells = [
            cell
            for (table,) in rows
            for row in conn.execute(f'SELECT * FROM {schema}."{table}"').fetchall()
            for cell in row
        ]
    return b"\n".join(
        bytes(c) if isinstance(c, bytes | memoryview) else str(c).encode() for c in cells
    )


def tell(app: Backcheck) -> Marked:
    """Register, consent with an exclusion and a third party, claims, findings from two
    referees (and one refused at the excluded organisation), feedback and its answer, a
    dispute and its answer, a report sent back with comments, amended, approved with
    comments, disputed and answered, disclosed to the third party, and the consent withdrawn
    with the candidate's reason."""
    candidate_id = app.register_candidate(
        RegisterCandidate(name=NAME, email=EMAIL, phone=PHONE, actor=s.RECRUITER)
    ).candidate_id
    terms = s.terms_in(
        check_types=[CheckType.EMPLOYMENT],
        excluded_organisations=[EXCLUDED],
        third_parties=[THIRD_PARTY],
    )
    consent_id = s.request_consent(app, candidate_id, terms)
    s.grant_consent(app, consent_id, terms)
    app.submit_claims(
        SubmitClaims(
            candidate_id=candidate_id,
            consent_id=consent_id,
            claims=[
                ClaimIn(
                    kind=ClaimKind.EDUCATION,
                    fields=[
                        PersonalFieldIn(name="school", category="user.education", value=SCHOOL)
                    ],
                ),
                ClaimIn(
                    kind=ClaimKind.EMPLOYMENT,
                    fields=[
                        PersonalFieldIn(
                            name="employer", category="user.employment.employer", value=EMPLOYER
                        ),
                        PersonalFieldIn(
                            name="title", category="user.employment.title", value=TITLE
                        ),
                    ],
                ),
            ],
            actor=s.CANDIDATE,
        )
    )
    check = PlannedCheckIn(check_type=CheckType.EMPLOYMENT, methods=[Method.PHONE])
    investigation_id = app.plan_investigation(
        PlanInvestigation(
            candidate_id=candidate_id,
            consent_id=consent_id,
            purpose=s.PURPOSE,
            checks=[check],
            investigators=[s.INVESTIGATOR],
            due_by=app.clock() + timedelta(days=14),
            actor=s.RECRUITER,
        )
    ).investigation_id
    story = s.Story(candidate_id, consent_id, investigation_id, [check.check_id])
    s.notify(app, story)
    s.start(app, story)

    def finding(role: SourceRole, reference: str, organisation: str, notes: str) -> RecordFinding:
        return RecordFinding(
            investigation_id=investigation_id,
            check_id=check.check_id,
            source=SourceIn(role=role, reference=reference, organisation=organisation),
            method=Method.PHONE,
            outcome=Outcome.CONFIRMED,
            notes=notes,
            actor=s.INVESTIGATOR,
        )

    with pytest.raises(RefereeNotPermittedError) as refused:  # the excluded employer
        app.record_finding(finding(SourceRole.PEER, "ZQX-REF-99", EXCLUDED, "never stored"))
    assert found_in(str(refused.value)) == []  # a refusal names no organisation
    app.record_finding(
        finding(SourceRole.DIRECT_SUPERVISOR, SUPERVISOR_REF, EMPLOYER, SUPERVISOR_NOTES)
    )
    app.record_finding(finding(SourceRole.HR, HR_REF, EMPLOYER, HR_NOTES))
    feedback = GiveFeedback(investigation_id=investigation_id, text=FEEDBACK, actor=s.CANDIDATE)
    app.give_feedback(feedback)
    app.answer_feedback(
        AnswerFeedback(
            investigation_id=investigation_id,
            feedback_id=feedback.feedback_id,
            answer=ANSWER,
            actor=s.INVESTIGATOR,
        )
    )
    raised = RaiseDispute(
        investigation_id=investigation_id,
        check_id=check.check_id,
        statement=DISPUTE,
        actor=s.CANDIDATE,
    )
    app.raise_dispute(raised)
    app.resolve_dispute(
        ResolveDispute(
            investigation_id=investigation_id,
            dispute_id=raised.dispute_id,
            upheld=False,
            response=RESPONSE,
            actor=s.INVESTIGATOR,
        )
    )
    app.conclude_check(
        ConcludeCheck(
            investigation_id=investigation_id,
            check_id=check.check_id,
            outcome=Outcome.CONFIRMED,
            actor=s.INVESTIGATOR,
        )
    )
    app.complete_investigation(
        CompleteInvestigation(investigation_id=investigation_id, actor=s.INVESTIGATOR)
    )
    report_id = app.compile_report(
        CompileReport(investigation_id=investigation_id, actor=s.INVESTIGATOR)
    ).report_id
    app.review_report(
        ReviewReport(report_id=report_id, approve=False, comments=CHANGES, actor=s.REVIEWER)
    )
    app.amend_report(
        AmendReport(
            report_id=report_id,
            amendments=[
                AmendmentIn(check_id=check.check_id, outcome=Outcome.CONFIRMED, note=AMENDMENT_NOTE)
            ],
            reason=AMENDMENT_REASON,
            actor=s.INVESTIGATOR,
        )
    )
    app.review_report(
        ReviewReport(report_id=report_id, approve=True, comments=APPROVAL, actor=s.REVIEWER)
    )
    app.share_report(ShareReport(report_id=report_id, actor=s.RECRUITER))
    disputed = DisputeReport(
        report_id=report_id,
        check_id=check.check_id,
        statement=REPORT_DISPUTE,
        actor=s.CANDIDATE,
    )
    app.dispute_report(disputed)
    app.reject_report_dispute(
        RejectReportDispute(
            report_id=report_id,
            dispute_id=disputed.dispute_id,
            response=REPORT_ANSWER,
            actor=s.REVIEWER,
        )
    )
    app.disclose_report(
        DiscloseReport(
            report_id=report_id,
            recipient=AGENT,
            recipient_role="screening agency",
            purpose=s.PURPOSE,
            recipient_organisation=THIRD_PARTY,
            actor=s.RECRUITER,
        )
    )
    app.withdraw_consent(
        WithdrawConsent(consent_id=consent_id, reason=WITHDRAWAL, actor=s.CANDIDATE)
    )
    return Marked(candidate_id, consent_id, investigation_id, report_id)
