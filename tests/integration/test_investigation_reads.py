"""Reading an investigation's status: the checks and their conclusions, the candidate's
feedback and disputes and the answers to them. Each role sees what its tiers allow, the
candidate all of it, and every read, of any outcome, leaves exactly one access event first."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from domain.access import justification
from domain.classification import ERASED_VALUE
from domain.errors import AccessRefusedError
from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.application import Backcheck
from services.dto import (
    AnswerFeedback,
    EraseSubject,
    GiveFeedback,
    InvestigationView,
    RaiseDispute,
    ReadInvestigation,
    ResolveDispute,
    WithdrawConsent,
)
from services.errors import AggregateMissingError
from tests import story as s
from tests.conftest import FakeClock
from tests.integration.test_reads import accesses, decrypted_categories

QUESTION = "When will you call my former manager?"
ANSWER = "This week, by phone."
DISPUTE = "The end date of my employment is wrong."
RESPONSE = "The employer's HR records confirm it; not changed."
STATEMENTS = ["user.case_correspondence", "user.statement"]  # both confidential


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    app = build_app(settings, clock=clock)
    yield app
    app.close()


def exchanged(app: Backcheck) -> s.Story:
    """An employment check confirmed; the candidate asked a question (answered) and disputed
    the check (the dispute rejected, which leaves the conclusion standing)."""
    st = s.investigation_under_way(app)
    s.confirm_check(app, st)
    feedback_id, dispute_id = uuid4(), uuid4()
    app.give_feedback(
        GiveFeedback(
            investigation_id=st.investigation,
            feedback_id=feedback_id,
            text=QUESTION,
            actor=s.CANDIDATE,
        )
    )
    app.answer_feedback(
        AnswerFeedback(
            investigation_id=st.investigation,
            feedback_id=feedback_id,
            answer=ANSWER,
            actor=s.RECRUITER,
        )
    )
    app.raise_dispute(
        RaiseDispute(
            investigation_id=st.investigation,
            dispute_id=dispute_id,
            check_id=st.check_id,
            statement=DISPUTE,
            actor=s.CANDIDATE,
        )
    )
    app.resolve_dispute(
        ResolveDispute(
            investigation_id=st.investigation,
            dispute_id=dispute_id,
            upheld=False,
            response=RESPONSE,
            actor=s.INVESTIGATOR,
        )
    )
    return st


def read(app: Backcheck, st: s.Story, principal: str, role: Role) -> InvestigationView:
    return app.read_investigation(
        ReadInvestigation(
            investigation_id=st.investigation, principal=principal, role=role, purpose=s.PURPOSE
        )
    )


@pytest.mark.parametrize(
    ("principal", "role"),
    [("candidate:{id}", Role.CANDIDATE), (s.INVESTIGATOR, Role.INVESTIGATOR)],
    ids=["the-candidate", "the-assigned-investigator"],
)
def test_the_candidate_and_the_investigator_see_the_exchanges_and_the_conclusions(
    app: Backcheck, principal: str, role: Role
) -> None:
    st = exchanged(app)
    principal = principal.format(id=st.candidate_id)

    view = read(app, st, principal, role)

    assert view.outcome == "allowed"
    assert (view.status, view.purpose, view.findings) == ("in progress", s.PURPOSE, 2)
    assert [(c.check_id, c.withheld, c.concluded) for c in view.checks] == [
        (st.check_id, False, "confirmed")
    ]
    assert [(f.words, f.answer, f.withheld) for f in view.feedback] == [(QUESTION, ANSWER, False)]
    assert [(d.check_id, d.words, d.answer, d.upheld) for d in view.disputes] == [
        (st.check_id, DISPUTE, RESPONSE, False)
    ]
    (recorded,) = accesses(app, st.candidate_id)
    assert recorded.originator_id == view.access_id
    assert (recorded.principal, recorded.view) == (principal, f"investigation {st.investigation}")
    assert sorted(recorded.withheld) == []
    assert set(STATEMENTS) <= set(recorded.returned)


def test_the_recruiter_sees_the_conclusion_but_not_what_the_candidate_said(
    app: Backcheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = exchanged(app)
    app.read_model()  # the views current: what follows is the read alone
    decrypted = decrypted_categories(app, monkeypatch)

    view = read(app, st, s.RECRUITER, Role.RECRUITER)

    assert view.outcome == "partial"
    assert [(c.withheld, c.concluded) for c in view.checks] == [(False, "confirmed")]
    assert [(f.words, f.answer, f.withheld) for f in view.feedback] == [(None, None, True)]
    assert [(d.words, d.answer, d.upheld, d.withheld) for d in view.disputes] == [
        (None, None, None, True)
    ]
    assert not set(decrypted) & set(STATEMENTS)  # a withheld value is never decrypted
    (recorded,) = accesses(app, st.candidate_id)
    assert (recorded.outcome, sorted(recorded.withheld)) == ("partial", STATEMENTS)


@pytest.mark.parametrize(
    ("principal", "role", "because"),
    [
        (s.HIRING_MANAGER, Role.HIRING_MANAGER, "no-policy-permits"),
        ("hr:someone.else", Role.RECRUITER, "no-policy-permits"),
        ("compliance:zhou", Role.COMPLIANCE, "no-policy-permits"),
    ],
)
def test_a_role_without_a_need_to_know_is_refused_and_the_refusal_recorded(
    app: Backcheck, principal: str, role: Role, because: str
) -> None:
    st = exchanged(app)

    with pytest.raises(AccessRefusedError, match=because):
        read(app, st, principal, role)

    (recorded,) = accesses(app, st.candidate_id)
    assert (recorded.principal, recorded.outcome, recorded.returned) == (principal, "refused", ())


def test_after_withdrawal_only_the_candidate_still_reads_it(app: Backcheck) -> None:
    st = exchanged(app)
    app.withdraw_consent(
        WithdrawConsent(consent_id=st.consent_id, reason="changed my mind", actor=s.CANDIDATE)
    )

    with pytest.raises(AccessRefusedError, match="no-read-without-active-consent"):
        read(app, st, s.INVESTIGATOR, Role.INVESTIGATOR)
    own = read(app, st, f"candidate:{st.candidate_id}", Role.CANDIDATE)

    assert own.status == "suspended"
    assert [f.answer for f in own.feedback] == [ANSWER]
    assert [a.outcome for a in accesses(app, st.candidate_id)] == ["refused", "allowed"]


def test_an_unknown_investigation_is_not_found_and_nothing_is_recorded(app: Backcheck) -> None:
    stored = app.recorder.max_notification_id()
    st = s.Story(uuid4(), uuid4(), uuid4())

    with pytest.raises(AggregateMissingError):
        read(app, st, s.RECRUITER, Role.RECRUITER)

    assert app.recorder.max_notification_id() == stored


def test_compliance_reads_it_only_with_a_recorded_break_glass(app: Backcheck) -> None:
    st = exchanged(app)
    why = "regulator inquiry 2026-117 into this screening"

    view = app.read_investigation(
        ReadInvestigation(
            investigation_id=st.investigation,
            principal="compliance:zhou",
            role=Role.COMPLIANCE,
            purpose=s.PURPOSE,  # forbids override a break-glass: it is read inside consent
            break_glass=why,
        )
    )

    assert [f.words for f in view.feedback] == [QUESTION]
    (recorded,) = accesses(app, st.candidate_id)
    assert (recorded.break_glass, recorded.outcome) == (justification(why), "allowed")
    assert recorded.policy_ids == ("compliance-reads-values-only-with-recorded-break-glass",)


def test_after_erasure_the_candidate_reads_the_history_without_a_single_value(
    app: Backcheck,
) -> None:
    st = exchanged(app)
    app.erase_subject(
        EraseSubject(candidate_id=st.candidate_id, reason="candidate request", actor="dpo")
    )

    view = read(app, st, f"candidate:{st.candidate_id}", Role.CANDIDATE)

    assert view.status == "in progress"
    assert [c.concluded for c in view.checks] == ["confirmed"]  # the history stays
    said = [(x.words, x.answer) for x in [*view.feedback, *view.disputes]]
    assert said == [(ERASED_VALUE, ERASED_VALUE)] * 2
