"""`audit as-of`: the read view rebuilt as it stood at a moment, from the events alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from domain.candidate import Candidate
from domain.check import SourceRole
from infra.bootstrap import build_app
from infra.config import Settings
from projections.case_overview import CaseOverview
from services.access import Role
from services.application import Backcheck
from services.audit_reads import ReadAsOf
from services.dto import EraseSubject, RequestErasure, WithdrawConsent
from tests import story as s
from tests.conftest import FakeClock


def test_the_overview_is_rebuilt_as_it_stood_at_each_moment(
    sqlite_app: Backcheck, clock: FakeClock
) -> None:
    app = sqlite_app
    st = s.consented_candidate(app)
    consented = clock.now
    clock.advance(days=1)
    s.plan(app, st)
    s.notify(app, st)
    s.start(app, st)
    s.record_finding(app, st, SourceRole.HR)
    started = clock.now
    clock.advance(days=2)
    app.withdraw_consent(
        WithdrawConsent(consent_id=st.consent_id, reason="took another offer", actor=s.CANDIDATE)
    )

    (before_the_plan,) = app.as_of(consented, st.candidate_id)
    (while_running,) = app.as_of(started, st.candidate_id)
    (after_withdrawal,) = app.as_of(clock.now, st.candidate_id)

    consent = str(st.consent_id)
    investigation = str(st.investigation)
    assert before_the_plan["consents"] == {consent: "granted"}
    assert before_the_plan["investigations"] == {}
    assert while_running["investigations"][investigation].startswith("in progress (0/1")
    assert after_withdrawal["consents"] == {consent: "withdrawn"}
    assert after_withdrawal["investigations"][investigation].startswith("suspended")


def test_a_granted_consent_reads_expired_once_its_window_has_passed(
    sqlite_app: Backcheck, clock: FakeClock
) -> None:
    st = s.consented_candidate(sqlite_app)

    (later,) = sqlite_app.as_of(clock.now + s.VALID_FOR + timedelta(seconds=1), st.candidate_id)

    assert later["consents"] == {str(st.consent_id): "expired"}


def test_rebuilding_twice_or_replaying_a_position_changes_nothing(sqlite_app: Backcheck) -> None:
    s.shared_report(sqlite_app)
    first, second = CaseOverview(), CaseOverview()
    events = list(sqlite_app.replay())

    for position, event in events:
        first.process(position, event)
    for position, event in events + events[:5]:  # a redelivered prefix is absorbed
        second.process(position, event)

    assert [r.as_dict() for r in first.rows.values()] == [r.as_dict() for r in second.rows.values()]
    assert first.position == second.position == events[-1][0]


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def test_the_case_and_the_candidates_state_show_the_erasure_asked_for_and_done(
    app: Backcheck, clock: FakeClock
) -> None:
    # given: asked for on one day, done on the next
    st = s.consented_candidate(app)
    consented = clock.now
    clock.advance(days=1)
    app.request_erasure(RequestErasure(candidate_id=st.candidate_id, reason="x", actor="dpo"))
    asked, asked_at = app.recorder.max_notification_id(), clock.now
    clock.advance(days=1)
    app.erase_subject(
        EraseSubject(candidate_id=st.candidate_id, reason="candidate-request", actor="dpo")
    )
    erased_at = clock.now
    erased = next(p for p, e in app.replay(subject=st.candidate_id) if type(e) is Candidate.Erased)

    # when
    (before,) = app.as_of(consented, st.candidate_id)
    (between,) = app.as_of(asked_at, st.candidate_id)
    (after,) = app.as_of(erased_at, st.candidate_id)
    state = app.get_candidate(st.candidate_id)

    # then
    requested = {"at": asked_at.isoformat(), "position": asked}
    done = {"at": erased_at.isoformat(), "position": erased}
    assert (before["erasure_requested"], before["erased"]) == (False, False)
    assert before["erasure"] == {"requested": None, "erased": None}
    assert (between["erasure_requested"], between["erased"]) == (True, False)
    assert between["erasure"] == {"requested": requested, "erased": None}
    assert (after["erasure_requested"], after["erased"]) == (True, True)
    assert after["erasure"] == {"requested": requested, "erased": done}
    assert state.erasure_requested
    assert state.erased
    assert state.erasure.model_dump(mode="json") == {
        "requested": {"at": asked_at.isoformat().replace("+00:00", "Z"), "position": asked},
        "erased": {"at": erased_at.isoformat().replace("+00:00", "Z"), "position": erased},
    }
    recorded = app.read_as_of(
        ReadAsOf(
            candidate_id=st.candidate_id,
            at=erased_at,
            principal="compliance:wu.min",
            role=Role.COMPLIANCE,
            purpose="audit",
        )
    )
    assert recorded.case is not None
    assert recorded.case["erasure"] == after["erasure"]


def test_an_erasure_without_a_request_is_shown_as_done(app: Backcheck, clock: FakeClock) -> None:
    candidate = s.register(app)
    app.erase_subject(EraseSubject(candidate_id=candidate, reason="retention-ended", actor="dpo"))

    (case,) = app.as_of(clock.now, candidate)
    state = app.get_candidate(candidate)

    assert (case["erasure_requested"], case["erased"]) == (False, True)
    assert case["erasure"]["requested"] is None
    assert case["erasure"]["erased"]["at"] == clock.now.isoformat()
    assert state.erased
    assert state.erasure.requested is None
    assert state.erasure.erased is not None
    assert state.erasure.erased.at == clock.now
