"""Use cases of the candidate: registration, claims, erasure requests."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from pydantic import Field

from domain.candidate import Candidate, Claim, ErasureGround, ErasureReceipt
from domain.classification import CATEGORIES, PersonalField
from domain.consent import Consent
from domain.errors import AlreadyErasedError, CandidateAlreadyRegisteredError
from domain.report import Report
from services.dto import (
    CandidateResult,
    EraseSubject,
    ErasureResult,
    RegisterCandidate,
    RequestErasure,
    Result,
    SubmitClaims,
)
from services.errors import CandidateIdTakenError, ConcurrentChangeError
from services.principals import ERASED_REASON, open_portal, withdraw_link
from services.unit import UnitOfWork, use_case

_REGISTERED = get_topic(Candidate.Registered)
_REQUESTED = get_topic(Candidate.ErasureRequested)
_ERASED = get_topic(Candidate.Erased)


class ErasureStep(Result):
    at: datetime = Field(description="when it was recorded")
    position: int = Field(description="its position in the log")


class ErasureSteps(Result):
    requested: ErasureStep | None = Field(description="the erasure request; null: none")
    erased: ErasureStep | None = Field(description="the erasure itself; null: not erased")


class CandidateState(CandidateResult):
    """A candidate as `show` tells it: with when (and where in the log) erasure was asked for
    and done."""

    erasure: ErasureSteps


def candidate_result(candidate: Candidate) -> CandidateResult:
    categories = {f.category for f in candidate.identity}
    categories.update(f.category for c in candidate.claims.values() for f in c.fields)
    return CandidateResult(
        candidate_id=candidate.id,
        claim_ids=list(candidate.claims),
        categories=sorted(categories),
        erasure_requested=candidate.erasure_requested,
        erased=candidate.erased,
        version=candidate.version,
    )


class CandidateUseCases(UnitOfWork):
    @use_case
    def register_candidate(self, cmd: RegisterCandidate) -> CandidateResult:
        """A candidate is registered with minimal identity: name, and optionally email, phone,
        under an id no record holds (a candidate's: already registered; another's: taken)."""
        identity = [PersonalField("name", "user.name", cmd.name)]
        if cmd.email:
            identity.append(PersonalField("email", "user.contact.email", cmd.email))
        if cmd.phone:
            identity.append(PersonalField("phone", "user.contact.phone", cmd.phone))
        # An id the caller chose is looked up first; one made for this command (a new random
        # one) is not: a record holding it would refuse the write, and is then named alike.
        chosen = "candidate_id" in cmd.model_fields_set
        if chosen:
            self._refuse_held(cmd.candidate_id)
        candidate = Candidate.register(cmd.candidate_id, tuple(identity), cmd.actor)
        try:
            self.commit(candidate)
        except ConcurrentChangeError:
            if not chosen:
                self._refuse_held(cmd.candidate_id)
            raise
        return candidate_result(candidate)

    def _refuse_held(self, candidate_id: UUID) -> None:
        held = self.recorder.select_events(candidate_id, limit=1)
        if held:  # by what its first event is, nothing of it opened
            if held[0].topic == _REGISTERED:
                raise CandidateAlreadyRegisteredError(candidate_id)
            raise CandidateIdTakenError(candidate_id)

    @use_case
    def submit_claims(self, cmd: SubmitClaims) -> CandidateResult:
        """Claims are collected field by field within what the named consent allows."""
        candidate = self.load(Candidate, cmd.candidate_id)
        consented: frozenset[str] = frozenset()
        if cmd.consent_id is not None:
            scope = self.load(Consent, cmd.consent_id).scope_at(self.now())
            scope.require_candidate(candidate.id)
            scope.require_active()
            consented = scope.categories
        claims = tuple(
            Claim(
                claim_id=c.claim_id,
                kind=c.kind,
                fields=tuple(PersonalField(f.name, f.category, f.value) for f in c.fields),
            )
            for c in cmd.claims
        )
        candidate.submit_claims(claims, cmd.consent_id, consented, cmd.actor)
        self.commit(candidate)
        return candidate_result(candidate)

    @use_case
    def request_erasure(self, cmd: RequestErasure) -> CandidateResult:
        """The candidate may ask for erasure at any time; collection stops at once."""
        candidate = self.load(Candidate, cmd.candidate_id)
        candidate.request_erasure(cmd.reason, cmd.actor)
        self.commit(candidate)
        return candidate_result(candidate)

    @use_case
    def erase_subject(self, cmd: EraseSubject) -> ErasureResult:
        """Crypto-shredding: record the erasure with a signed receipt, then destroy every data
        key of the subject, so no copy of their personal values can be read again. Why is one
        of the fixed grounds (`ErasureGround`), never free text. The
        history stays (who did what, when); the hash chain still verifies. A legal hold on any
        of their reports blocks it.

        Erasing an erased candidate again finishes an erasure that stopped after it was
        recorded but before every key was destroyed (a crash); a finished one is refused."""
        ground = ErasureGround.given(cmd.reason)
        candidate = self.load(Candidate, cmd.candidate_id)
        if candidate.erased:
            return self._finish_erasure(candidate, cmd.actor)
        on_hold = [r.id for r in self.of_subject(Report, candidate.id) if r.legal_hold is not None]
        statement = json.dumps(
            {
                # v2: the ground, never free text (v1 carried the reason as typed)
                "type": "backcheck.erasure-receipt.v2",
                "candidate_id": str(candidate.id),
                "erased_at": self.now().isoformat(),
                "erased_by": cmd.actor,
                "ground": ground.value,
                "log_position_before": self.recorder.max_notification_id() or 0,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        key_id, signature = self.signer.sign(statement.encode())
        receipt = ErasureReceipt(statement, key_id, signature)
        candidate.erase(ground, cmd.actor, on_hold, receipt)
        # the candidate's portal closed in the same write: an erased candidate signs in nowhere
        portal = open_portal(self, candidate.id)
        if portal is not None:
            portal.revoke(ERASED_REASON, cmd.actor)
            self.commit(candidate, portal, internal=(portal,))
        else:
            self.commit(candidate)
        # A crash from here until the keys are gone leaves the erasure recorded but not
        # finished: `audit check` lists it, and erasing the candidate again finishes it.
        scopes = self.keys.tiers(candidate.id)
        destroyed = self.keys.destroy(candidate.id)
        return ErasureResult(
            portal_link_revoked=portal is not None,
            portal_link_withdrawn=withdraw_link(self, candidate.id),
            candidate_id=candidate.id,
            keys_destroyed=destroyed,
            categories_shredded=sorted(s for s in scopes if s in CATEGORIES),
            tiers_shredded=sorted(s for s in scopes if s not in CATEGORIES),
            receipt_statement=statement,
            receipt_key_id=key_id,
            receipt_signature=signature,
            erased_at=self.now(),
        )

    def _finish_erasure(self, candidate: Candidate, actor: str) -> ErasureResult:
        """An erasure recorded earlier: if it stopped before all the subject's keys were
        destroyed (a crash between recording it and destroying them), or was recorded before
        erasure closed the candidate's portal (their link still signs in), what is left is
        done now and the receipt recorded then is returned; if it was finished,
        AlreadyErased."""
        receipt = candidate.erasure_receipt
        portal = open_portal(self, candidate.id)
        if receipt is None or (portal is None and not self.keys.has_keys(candidate.id)):
            raise AlreadyErasedError(candidate.id)
        if portal is not None:
            portal.revoke(ERASED_REASON, actor)
            self.commit(portal, internal=(portal,))
        scopes = self.keys.tiers(candidate.id)
        return ErasureResult(
            portal_link_revoked=portal is not None,
            portal_link_withdrawn=withdraw_link(self, candidate.id),
            candidate_id=candidate.id,
            keys_destroyed=self.keys.destroy(candidate.id),
            categories_shredded=sorted(s for s in scopes if s in CATEGORIES),
            tiers_shredded=sorted(s for s in scopes if s not in CATEGORIES),
            receipt_statement=receipt.statement,
            receipt_key_id=receipt.key_id,
            receipt_signature=receipt.signature,
            erased_at=json.loads(receipt.statement)["erased_at"],
            resumed=True,
        )

    def get_candidate(self, candidate_id: UUID) -> CandidateState:
        """The candidate's state, with the steps of their erasure: found by the subject index
        among their events by topic, and only those two opened."""
        candidate = self.load(Candidate, candidate_id)
        steps: dict[str, ErasureStep] = {}
        start = 1
        while candidate.erasure_requested or candidate.erased:
            page = self.subjects.select_subject_notifications(candidate_id, start, 500)
            if not page:
                break
            for n in page:
                if n.topic in (_REQUESTED, _ERASED) and n.originator_id == candidate_id:
                    event: Any = self.mapper.to_domain_event(n)
                    steps[n.topic] = ErasureStep(at=event.timestamp, position=n.id)
            start = page[-1].id + 1
        return CandidateState(
            **candidate_result(candidate).model_dump(),
            erasure=ErasureSteps(requested=steps.get(_REQUESTED), erased=steps.get(_ERASED)),
        )
