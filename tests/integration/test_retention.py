"""The retention sweeper shreds each tier when its period has passed, most sensitive first,
records each shredding, keeps everything under legal hold, and leaves open cases alone."""

from __future__ import annotations

from domain.candidate import Candidate
from domain.check import SourceRole
from domain.classification import ERASED_VALUE
from domain.investigation import Investigation
from infra.audit.verification import open_source, verify
from infra.config import Settings
from services.application import Backcheck
from services.dto import LegalHold, RunRetention, WithdrawConsent
from tests import story as s
from tests.conftest import FakeClock


def notes_of(app: Backcheck, investigation_id: object) -> list[str]:
    inv = app.load(Investigation, investigation_id)  # type: ignore[arg-type]
    return [f.notes.value for f in inv.findings.values() if f.notes is not None]


def test_tiers_are_shredded_as_their_periods_pass(sqlite_app: Backcheck, clock: FakeClock) -> None:
    app = sqlite_app
    st = s.completed_investigation(app)
    clock.advance(days=366)

    first = app.run_retention(RunRetention())

    assert [(i.candidate_id, i.tier) for i in first.shredded] == [(st.candidate_id, "confidential")]
    assert set(notes_of(app, st.investigation)) == {ERASED_VALUE}  # notes are confidential
    assert {f.value for f in app.load(Candidate, st.candidate_id).identity} != {ERASED_VALUE}
    assert app.run_retention(RunRetention()).shredded == []  # nothing twice
    clock.advance(days=365)
    assert [i.tier for i in app.run_retention(RunRetention()).shredded] == ["general"]
    assert {f.value for f in app.load(Candidate, st.candidate_id).identity} == {ERASED_VALUE}
    shredded = [e for e in app.timeline(st.candidate_id) if e.event == "Candidate.TierShredded"]
    assert len(shredded) == 2
    path = app.env.get("SQLITE_DBNAME")
    with open_source(Settings(database_url=f"sqlite:///{path}")) as source:
        assert verify(source).intact


def test_an_open_case_keeps_its_data(sqlite_app: Backcheck, clock: FakeClock) -> None:
    st = s.investigation_under_way(sqlite_app)
    s.record_finding(sqlite_app, st, SourceRole.HR)
    clock.advance(days=1000)

    assert sqlite_app.run_retention(RunRetention()).shredded == []
    assert notes_of(sqlite_app, st.investigation) == ["reliable, left on good terms"]


def test_a_withdrawn_consent_starts_the_clock(sqlite_app: Backcheck, clock: FakeClock) -> None:
    st = s.investigation_under_way(sqlite_app)
    sqlite_app.withdraw_consent(
        WithdrawConsent(consent_id=st.consent_id, reason="no longer applying", actor=s.CANDIDATE)
    )
    clock.advance(days=731)

    shredded = sqlite_app.run_retention(RunRetention()).shredded

    # all this candidate had: general data, and the reason they gave for withdrawing (their
    # own words: a confidential statement, sealed since issue 21)
    assert {i.tier for i in shredded} == {"general", "confidential"}


def test_a_legal_hold_keeps_everything_and_a_dry_run_changes_nothing(
    sqlite_app: Backcheck, clock: FakeClock
) -> None:
    app = sqlite_app
    held = s.compiled_report(app, "Han Mei")
    app.place_legal_hold(LegalHold(report_id=held.report, reason="litigation", actor="legal"))
    free = s.completed_investigation(app, "Li Lei")
    clock.advance(days=800)
    before = app.recorder.max_notification_id()

    dry = app.run_retention(RunRetention(dry_run=True))

    assert app.recorder.max_notification_id() == before
    assert {i.candidate_id for i in dry.shredded} == {free.candidate_id}
    assert {i.candidate_id for i in dry.held} == {held.candidate_id}
    real = app.run_retention(RunRetention())
    assert {i.candidate_id for i in real.held} == {held.candidate_id}
    assert app.keys is not None
    assert app.keys.has_keys(held.candidate_id)
    assert not app.keys.has_keys(free.candidate_id)
