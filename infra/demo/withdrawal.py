"""Chapter 7: another candidate withdraws consent mid-investigation."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.consent import SignatureMethod
from infra.demo import script
from infra.demo.narrator import DemoFailedError, Narrator
from infra.demo.script import CANDIDATE, HR
from services import dto
from services.access import Role
from services.application import Backcheck


@dataclass(frozen=True)
class WithdrawalIds:
    """Liu Yang, her consent (withdrawn), her investigation (suspended with it), and HR's
    recorded read of her consent register."""

    other_candidate_id: UUID
    other_consent_id: UUID
    other_investigation_id: UUID
    consent_register_access_id: UUID


def withdraw_another_candidate(app: Backcheck, n: Narrator) -> WithdrawalIds:
    """Needs nothing before it: Liu Yang's story is her own."""
    n.chapter("7. Another candidate withdraws consent mid-investigation")
    candidate_id, consent_id, investigation_id = _under_way(app)
    n.did("Liu Yang registered, consented, notified; investigation started", steps=6)
    withdrawn = n.do(
        "Liu Yang withdraws consent: the running investigation is suspended with it",
        lambda: app.withdraw_consent(
            dto.WithdrawConsent(
                consent_id=consent_id, reason="accepted another offer", actor=CANDIDATE
            )
        ),
    )
    if withdrawn.suspended_investigations != [investigation_id]:
        raise DemoFailedError("withdrawal did not suspend the investigation")
    register = n.do(
        "HR checks Liu Yang's consent register before going on (a recorded read)",
        lambda: app.read_consents(
            dto.ReadConsents(
                candidate_id=candidate_id,
                principal=HR,
                role=Role.RECRUITER,
                purpose="what applies",
            )
        ),
    )
    for entry in register.consents:
        n.detail(
            f"consent {str(entry.consent_id)[:8]}: {entry.status}; relied on by "
            f"{len(entry.relied_on_by)} investigation(s)"
        )
    return WithdrawalIds(
        other_candidate_id=candidate_id,
        other_consent_id=consent_id,
        other_investigation_id=investigation_id,
        consent_register_access_id=register.access_id,
    )


def _under_way(app: Backcheck) -> tuple[UUID, UUID, UUID]:
    """Liu Yang registered, asked, signed (30 days, wet ink), one check planned, notified and
    started: six steps told as one."""
    now = app.clock()
    terms = script.granted_terms()
    candidate = app.register_candidate(dto.RegisterCandidate(name="Liu Yang", actor=HR))
    consent = app.request_consent(
        dto.RequestConsent(candidate_id=candidate.candidate_id, terms=terms, actor=HR)
    )
    app.grant_consent(
        script.grant(
            consent.consent_id,
            terms,
            method=SignatureMethod.WET_INK,
            valid_from=now,
            days=30,
            actor=HR,
        )
    )
    education = script.planned_checks()[:1]
    inv = app.plan_investigation(
        script.plan(candidate.candidate_id, consent.consent_id, education, now)
    )
    app.notify_candidate(script.notice(inv.investigation_id))
    app.start_investigation(script.start(inv.investigation_id))
    return candidate.candidate_id, consent.consent_id, inv.investigation_id
