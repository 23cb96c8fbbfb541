"""The demo's script: who takes part, what is asked and signed, the plan and the notice.

Functions, not constants: each call builds fresh commands, so no chapter shares a mutable
model with another.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from uuid import UUID

from domain.check import CheckType, Method, SourceRole
from domain.consent import SignatureMethod
from services import dto

HR = "hr:li.na"
INVESTIGATOR = "investigator:zhao.lei"
REVIEWER = "reviewer:chen.jie"
CANDIDATE = "candidate"
COMPLIANCE = "compliance:zhou.yu"
GROWTH = "growth:wu.hao"
HIRING_MANAGER = "hiring-manager:sun.mei"
ESIGN = "esign-service"
PURPOSE = "pre-employment screening"

DOCUMENT_SHA256 = hashlib.sha256(b"Wang Fang - background check authorisation, signed").hexdigest()


def requested_terms() -> dto.ConsentTermsIn:
    """What HR asks of Wang Fang: four checks, her criminal history, three kinds of referee."""
    return dto.ConsentTermsIn(
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


def granted_terms() -> dto.ConsentTermsIn:
    """What she signs: narrower than asked (no criminal record check, no recordings)."""
    return requested_terms().model_copy(
        update={
            "check_types": [CheckType.EDUCATION, CheckType.EMPLOYMENT, CheckType.REFERENCE],
            "categories": [],
            "recording_allowed": False,
        }
    )


def grant(
    consent_id: UUID,
    terms: dto.ConsentTermsIn,
    *,
    method: SignatureMethod,
    valid_from: datetime,
    days: int,
    actor: str,
) -> dto.GrantConsent:
    return dto.GrantConsent(
        consent_id=consent_id,
        terms=terms,
        document_sha256=DOCUMENT_SHA256,
        signature_method=method,
        valid_from=valid_from,
        valid_until=valid_from + timedelta(days=days),
        actor=actor,
    )


def planned_checks() -> list[dto.PlannedCheckIn]:
    """Education, employment, references and criminal record, in that order."""
    return [
        dto.PlannedCheckIn(check_type=CheckType.EDUCATION, methods=[Method.REGISTRY]),
        dto.PlannedCheckIn(check_type=CheckType.EMPLOYMENT, methods=[Method.PHONE, Method.EMAIL]),
        dto.PlannedCheckIn(
            check_type=CheckType.REFERENCE, methods=[Method.PHONE, Method.INTERVIEW]
        ),
        dto.PlannedCheckIn(check_type=CheckType.CRIMINAL_RECORD, methods=[Method.REGISTRY]),
    ]


def plan(
    candidate_id: UUID, consent_id: UUID, checks: list[dto.PlannedCheckIn], now: datetime
) -> dto.PlanInvestigation:
    return dto.PlanInvestigation(
        candidate_id=candidate_id,
        consent_id=consent_id,
        purpose=PURPOSE,
        checks=checks,
        investigators=[INVESTIGATOR],
        due_by=now + timedelta(days=10),
        actor=HR,
    )


def notice(investigation_id: UUID) -> dto.NotifyCandidate:
    """What the candidate is told before any check starts."""
    return dto.NotifyCandidate(
        investigation_id=investigation_id,
        purpose=PURPOSE,
        process="registry lookups, calls to former employer and referees",
        content="education, employment history, references, criminal record",
        time_required="about 5 working days",
        channel="email",
        actor=HR,
    )


def start(investigation_id: UUID) -> dto.StartInvestigation:
    return dto.StartInvestigation(investigation_id=investigation_id, actor=HR)
