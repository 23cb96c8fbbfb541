"""`audit as-of`: the read view rebuilt as it stood at a moment, from the events alone."""

from __future__ import annotations

from datetime import timedelta

from domain.check import SourceRole
from projections.case_overview import CaseOverview
from services.application import Backcheck
from services.dto import WithdrawConsent
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
