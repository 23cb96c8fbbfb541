"""Chapter 2: a plan first; nothing starts before consent and notice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain import errors
from domain.consent import SignatureMethod
from infra.demo.consent import ConsentIds
from infra.demo.narrator import Narrator
from infra.demo.script import (
    ESIGN,
    HR,
    grant,
    granted_terms,
    notice,
    plan,
    planned_checks,
    start,
)
from services import dto
from services.application import Backcheck


@dataclass(frozen=True)
class PlanIds:
    """The plan HR had to cancel, and the investigation that started under the consent."""

    cancelled_investigation_id: UUID
    investigation_id: UUID
    education_check_id: UUID
    employment_check_id: UUID
    reference_check_id: UUID


def plan_within_consent(app: Backcheck, n: Narrator, asked: ConsentIds) -> PlanIds:
    n.chapter("2. A plan first; nothing starts before consent and notice")
    checks = planned_checks()
    first = _plan_beyond_what_she_signs(app, n, asked, checks)
    n.do(
        "HR cancels that plan",
        lambda: app.cancel_investigation(
            dto.CancelInvestigation(
                investigation_id=first,
                reason="criminal record check not consented",
                actor=HR,
            )
        ),
    )
    within = checks[:3]  # the same checks, without the criminal record
    inv = n.do(
        "HR plans again within the consent: education, employment, references",
        lambda: app.plan_investigation(
            plan(asked.candidate_id, asked.consent_id, within, app.clock())
        ),
    )
    investigation_id = inv.investigation_id
    n.refused(
        "start before the candidate was told about this plan",
        errors.CandidateNotNotifiedError,
        lambda: app.start_investigation(start(investigation_id)),
    )
    n.do(
        "the candidate is notified of the new plan",
        lambda: app.notify_candidate(notice(investigation_id)),
    )
    n.do(
        "the investigation starts under the consent",
        lambda: app.start_investigation(start(investigation_id)),
    )
    education, employment, reference = (c.check_id for c in inv.checks)
    return PlanIds(
        cancelled_investigation_id=first,
        investigation_id=investigation_id,
        education_check_id=education,
        employment_check_id=employment,
        reference_check_id=reference,
    )


def _plan_beyond_what_she_signs(
    app: Backcheck, n: Narrator, asked: ConsentIds, checks: list[dto.PlannedCheckIn]
) -> UUID:
    """Four checks planned and noticed before consent; she signs for three. Returns the plan,
    which can no longer start."""
    now = app.clock()
    first = n.do(
        "HR plans four checks for investigator Zhao Lei",
        lambda: app.plan_investigation(plan(asked.candidate_id, asked.consent_id, checks, now)),
    )
    first_id = first.investigation_id
    n.do(
        "the candidate is told purpose, process, content and time needed",
        lambda: app.notify_candidate(notice(first_id)),
    )
    n.refused(
        "start the investigation while consent is only requested",
        errors.ConsentNotActiveError,
        lambda: app.start_investigation(start(first_id)),
    )
    signed = granted_terms()
    widened = signed.model_copy(update={"third_parties": ["Aegis Screening"]})
    n.refused(
        "the e-signature service reports a grant wider than the request (a third party added)",
        errors.ConsentGrantExceedsRequestError,
        lambda: app.grant_consent(_signature(asked.consent_id, widened, now)),
    )
    n.do(
        "Wang Fang signs: no criminal record check, no recordings, 90 days",
        lambda: app.grant_consent(_signature(asked.consent_id, signed, now)),
    )
    n.refused(
        "start the plan that still includes the criminal record check",
        errors.ConsentDoesNotCoverCheckError,
        lambda: app.start_investigation(start(first_id)),
    )
    return first_id


def _signature(consent_id: UUID, terms: dto.ConsentTermsIn, now: datetime) -> dto.GrantConsent:
    return grant(
        consent_id, terms, method=SignatureMethod.E_SIGNATURE, valid_from=now, days=90, actor=ESIGN
    )
