"""No new data key where a recorded erasure or retention run destroyed one. Before, a command
after the erasure (the candidate's feedback on their investigation, found by the fuzz suite) or
after retention (a claim of a shredded tier) made a new key under the same (subject, tier), and
every older value of that tier then failed to open as "altered or moved": every replay of the
subject crashed, `audit check` and `retention run` with it. Now such a command is refused by
name, nothing is stored, and the subject's history still replays."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.candidate import Candidate
from domain.check import SourceRole
from domain.classification import ERASED_VALUE
from domain.errors import PersonalDataShreddedError, PersonalValueUnreadableError
from infra.bootstrap import build_app
from infra.config import Settings
from services.application import Backcheck
from services.dto import (
    ClaimIn,
    EraseSubject,
    GiveFeedback,
    PersonalFieldIn,
    RunRetention,
    SubmitClaims,
    WithdrawConsent,
)
from tests import story as s
from tests.conftest import FakeClock


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def test_feedback_after_the_erasure_is_refused_and_the_history_still_replays(
    app: Backcheck,
) -> None:
    st = s.investigation_under_way(app)
    app.erase_subject(
        EraseSubject(candidate_id=st.candidate_id, reason="candidate-request", actor="dpo")
    )
    before = app.recorder.max_notification_id()

    with pytest.raises(PersonalDataShreddedError, match="confidential"):
        app.give_feedback(
            GiveFeedback(investigation_id=st.investigation, text="still there?", actor=s.CANDIDATE)
        )

    assert app.recorder.max_notification_id() == before
    assert not app.keys.has_keys(st.candidate_id)
    assert list(app.violations()) == []
    assert {f.value for f in app.load(Candidate, st.candidate_id).identity} == {ERASED_VALUE}


def test_a_withdrawal_or_a_finding_after_the_erasure_is_refused_and_nothing_stored(
    app: Backcheck,
) -> None:
    """A withdrawal's reason and a finding's source are personal values (issue 21): after
    the erasure neither can be recorded (a consent that excluded organisations refuses the
    finding earlier still: they can no longer be read, tests/unit/test_investigation_rules.py)."""
    st = s.investigation_under_way(app)
    app.erase_subject(
        EraseSubject(candidate_id=st.candidate_id, reason="candidate-request", actor="dpo")
    )
    before = app.recorder.max_notification_id()

    with pytest.raises(PersonalDataShreddedError, match="confidential"):
        app.withdraw_consent(
            WithdrawConsent(consent_id=st.consent_id, reason="no longer", actor=s.CANDIDATE)
        )
    with pytest.raises(PersonalDataShreddedError, match="general"):
        s.record_finding(app, st, SourceRole.HR)

    assert app.recorder.max_notification_id() == before
    assert not app.keys.has_keys(st.candidate_id)
    assert list(app.violations()) == []


def test_a_referee_finding_under_erased_exclusions_is_refused_fail_closed(app: Backcheck) -> None:
    candidate_id = s.register(app)
    terms = s.terms_in(excluded_organisations=["Nimbus Tech"])
    consent_id = s.request_consent(app, candidate_id, terms)
    s.grant_consent(app, consent_id, terms)
    st = s.plan(app, s.Story(candidate_id, consent_id))
    s.notify(app, st)
    s.start(app, st)
    app.erase_subject(
        EraseSubject(candidate_id=candidate_id, reason="candidate-request", actor="dpo")
    )
    before = app.recorder.max_notification_id()

    with pytest.raises(PersonalValueUnreadableError, match="'excluded_organisations'"):
        s.record_finding(app, st, SourceRole.HR, organisation="Elsewhere Ltd")

    assert app.recorder.max_notification_id() == before
    assert list(app.violations()) == []


def test_a_claim_of_a_shredded_tier_is_refused_and_the_older_values_still_read_erased(
    app: Backcheck, clock: FakeClock
) -> None:
    st = s.completed_investigation(app)
    clock.advance(days=731)
    shredded = {i.tier for i in app.run_retention(RunRetention()).shredded}
    assert "general" in shredded
    before = app.recorder.max_notification_id()
    school = PersonalFieldIn(name="school", category="user.education", value="Fudan")

    with pytest.raises(PersonalDataShreddedError, match="general"):
        app.submit_claims(
            SubmitClaims(
                candidate_id=st.candidate_id,
                claims=[ClaimIn(kind="education", fields=[school])],
                actor=s.RECRUITER,
            )
        )

    assert app.recorder.max_notification_id() == before
    assert {f.value for f in app.load(Candidate, st.candidate_id).identity} == {ERASED_VALUE}
    assert app.run_retention(RunRetention()).shredded == []
