"""A story for the list tests: fifteen candidates, each left at another place in the
pipeline, driven through the use cases (tests/integration/test_lists.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID, uuid4

from projections.listing import CandidateStage
from services.application import Backcheck
from services.dto import (
    CancelInvestigation,
    CompleteInvestigation,
    EraseSubject,
    RaiseDispute,
    RegisterCandidate,
    RequestErasure,
    ResolveDispute,
    ResumeInvestigation,
    ReviewReport,
    WithdrawConsent,
)
from tests import story as s
from tests.conftest import FakeClock

Stage = CandidateStage
WITHDRAWAL = "I no longer wish to be considered, zq-withdraw"
ERASURE = "Please erase my data, zq-erasure"
DISPUTE = "The dates at the previous employer are wrong, zq-dispute"
CHANGES = "Add the second referee, zq-changes"


@dataclass
class Told:
    """What the story did: each candidate's expected stage, and every personal value it
    gave the store."""

    stages: dict[UUID, Stage] = field(default_factory=dict)
    personal: set[str] = field(default_factory=lambda: {WITHDRAWAL, ERASURE, DISPUTE, CHANGES})
    investigations: dict[str, UUID] = field(default_factory=dict)


def register(app: Backcheck, told: Told, n: int) -> UUID:
    name, email = f"Zq Candidate{n:02d}", f"zq.candidate{n:02d}@example.org"
    told.personal |= {name, email}
    return app.register_candidate(
        RegisterCandidate(name=name, email=email, actor=s.RECRUITER)
    ).candidate_id


def withdraw(app: Backcheck, consent_id: UUID) -> None:
    app.withdraw_consent(
        WithdrawConsent(consent_id=consent_id, reason=WITHDRAWAL, actor=s.CANDIDATE)
    )


def story_of(app: Backcheck, clock: FakeClock) -> Told:
    """Fifteen candidates, each left at one place in the pipeline; the clock moves a minute
    between steps, so the lists' time order is tested, not only their id order."""
    told = Told()
    counter = iter(range(100))

    def fresh() -> UUID:
        clock.advance(minutes=1)
        return register(app, told, next(counter))

    def consented() -> s.Story:
        candidate_id = fresh()
        clock.advance(minutes=1)
        consent_id = s.request_consent(app, candidate_id)
        clock.advance(minutes=1)
        s.grant_consent(app, consent_id)
        return s.Story(candidate_id, consent_id)

    def under_way() -> s.Story:
        story = s.plan(app, consented())
        clock.advance(minutes=1)
        s.notify(app, story)
        s.start(app, story)
        return story

    told.stages[fresh()] = Stage.REGISTERED

    asked = fresh()
    s.request_consent(app, asked)
    told.stages[asked] = Stage.CONSENT_REQUESTED

    told.stages[consented().candidate_id] = Stage.CONSENTED

    planned = s.plan(app, consented())
    told.stages[planned.candidate_id] = Stage.CONSENTED
    told.investigations["planned"] = planned.investigation

    # suspended while planned (consent withdrawn), then resumed under a new consent: planned
    back = s.plan(app, consented())
    clock.advance(minutes=1)
    withdraw(app, back.consent_id)
    clock.advance(minutes=1)
    renewed = s.request_consent(app, back.candidate_id)
    s.grant_consent(app, renewed)
    clock.advance(minutes=1)
    app.resume_investigation(
        ResumeInvestigation(
            investigation_id=back.investigation, consent_id=renewed, actor=s.RECRUITER
        )
    )
    told.stages[back.candidate_id] = Stage.CONSENTED
    told.investigations["resumed to planned"] = back.investigation

    told.stages[under_way().candidate_id] = Stage.INVESTIGATING

    withdrawn = under_way()
    clock.advance(minutes=1)
    withdraw(app, withdrawn.consent_id)
    told.stages[withdrawn.candidate_id] = Stage.CONSENT_WITHDRAWN
    told.investigations["suspended"] = withdrawn.investigation

    cancelled = under_way()
    clock.advance(minutes=1)
    app.cancel_investigation(
        CancelInvestigation(
            investigation_id=cancelled.investigation, reason="role filled", actor=s.RECRUITER
        )
    )
    told.stages[cancelled.candidate_id] = Stage.INVESTIGATING

    completed = under_way()
    s.confirm_check(app, completed)
    clock.advance(minutes=1)
    app.complete_investigation(
        CompleteInvestigation(investigation_id=completed.investigation, actor=s.INVESTIGATOR)
    )
    told.stages[completed.candidate_id] = Stage.INVESTIGATING

    # completed, then a dispute upheld: in progress again
    reopened = under_way()
    s.confirm_check(app, reopened)
    app.complete_investigation(
        CompleteInvestigation(investigation_id=reopened.investigation, actor=s.INVESTIGATOR)
    )
    clock.advance(minutes=1)
    dispute_id = uuid4()
    app.raise_dispute(
        RaiseDispute(
            investigation_id=reopened.investigation,
            dispute_id=dispute_id,
            check_id=reopened.check_id,
            statement=DISPUTE,
            actor=s.CANDIDATE,
        )
    )
    clock.advance(minutes=1)
    app.resolve_dispute(
        ResolveDispute(
            investigation_id=reopened.investigation,
            dispute_id=dispute_id,
            upheld=True,
            response="we will check again",
            actor=s.INVESTIGATOR,
        )
    )
    told.stages[reopened.candidate_id] = Stage.INVESTIGATING
    told.investigations["reopened"] = reopened.investigation

    # the story's builders register "<name>, li.lei@example.com"
    told.personal |= {"Zq Drafted1", "Zq Drafted2", "Zq Sentback", "Zq Approved"}
    told.personal.add("li.lei@example.com")
    for name in ("Zq Drafted1", "Zq Drafted2"):  # two reports awaiting review
        clock.advance(minutes=1)
        told.stages[s.compiled_report(app, name).candidate_id] = Stage.REPORTED
    sent_back = s.compiled_report(app, "Zq Sentback")
    clock.advance(minutes=1)
    app.review_report(
        ReviewReport(report_id=sent_back.report, approve=False, comments=CHANGES, actor=s.REVIEWER)
    )
    told.stages[sent_back.candidate_id] = Stage.REPORTED
    clock.advance(minutes=1)
    told.stages[s.approved_report(app, "Zq Approved").candidate_id] = Stage.REPORTED

    asks = fresh()
    clock.advance(minutes=1)
    app.request_erasure(RequestErasure(candidate_id=asks, reason=ERASURE, actor=s.CANDIDATE))
    told.stages[asks] = Stage.ERASURE_REQUESTED

    gone = consented().candidate_id
    clock.advance(minutes=1)
    app.request_erasure(RequestErasure(candidate_id=gone, reason=ERASURE, actor=s.CANDIDATE))
    clock.advance(minutes=1)
    app.erase_subject(
        EraseSubject(candidate_id=gone, reason="candidate-request", actor="compliance:wu")
    )
    told.stages[gone] = Stage.ERASED
    return told
