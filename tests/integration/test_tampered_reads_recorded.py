"""A read refused because the data it was to use was altered outside backcheck leaves an
access event too, on both backends: outcome `failed`, with why (`views-altered`,
`seal-broken`), nothing returned, and the one-line error says the attempt was recorded. Where
the store cannot take the record, the line says that instead.

The walkthrough that found it: a view row edited by hand, and a subject's data key replaced
with another subject's; both reads stopped (exit 65) and the access log held nothing of them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from domain.access import Access
from domain.subject import recorded_at
from infra.bootstrap import build_app
from infra.config import Settings
from infra.privacy.sealing import SealBrokenError
from infra.problem import problem_for
from infra.views.integrity import ViewRowAlteredError
from services.access import Role
from services.application import Backcheck
from services.audit_reads import ReadEvents, ReadTimeline
from services.dto import ReadAccessLog, ReadInvestigation, ReadProfile
from services.state_reads import ShowState
from services.subject_export import ExportSubjectData
from tests import story as s
from tests.conftest import FakeClock
from tests.integration.test_upcasting import stored_as, unsealed
from tests.integration.test_view_row_macs import alter
from tests.keys import swap_key

OFFICER = {"principal": "compliance:wu.min", "role": Role.COMPLIANCE, "purpose": s.PURPOSE}


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def recruiters_read(candidate_id: UUID) -> ReadProfile:
    return ReadProfile(
        candidate_id=candidate_id, principal=s.RECRUITER, role=Role.RECRUITER, purpose=s.PURPOSE
    )


def reads_of(app: Backcheck, candidate_id: UUID) -> list[Access.Recorded]:
    return [e for _, e in app.replay(subject=candidate_id) if isinstance(e, Access.Recorded)]


def test_a_read_of_an_altered_view_row_is_recorded_as_failed(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    # given: the candidate's profile row edited in the views, around backcheck
    st = s.consented_candidate(app)
    app.close()
    alter(settings, "profile", str(st.candidate_id), lambda d: {**d, "erased": True})
    app = build_app(settings, clock=clock)
    try:
        # when
        with pytest.raises(ViewRowAlteredError) as failed:
            app.read_profile(recruiters_read(st.candidate_id))

        # then: recorded, as failed, for why; and the line says so
        (recorded,) = reads_of(app, st.candidate_id)
        assert (recorded.principal, recorded.role, recorded.purpose, recorded.view) == (
            s.RECRUITER,
            "recruiter",
            s.PURPOSE,
            "profile",
        )
        assert (recorded.outcome, recorded.failure) == ("failed", "views-altered")
        assert (recorded.returned, recorded.withheld, recorded.policy_ids) == ((), (), ())
        problem = problem_for(failed.value)
        assert problem is not None
        assert (problem.exit_code, problem.type) == (65, "views-altered")
        assert problem.line().endswith("nothing was returned, and the attempt was recorded")
        # once the views are rebuilt, the access log lists it with why
        app.views.rebuild()
        log = app.read_access_log(ReadAccessLog(candidate_id=st.candidate_id, **OFFICER))
        assert [(e.outcome, e.failure, e.principal) for e in log.entries] == [
            ("failed", "views-altered", s.RECRUITER)
        ]
    finally:
        app.close()


def test_a_read_of_an_altered_investigation_row_is_recorded_against_its_candidate(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    # given: the investigation's row says it is another candidate's
    st = s.plan(app, s.consented_candidate(app))
    other = s.register(app, "Wang Fang")
    app.close()
    alter(settings, "investigation", str(st.investigation), lambda d: {**d, "status": "done"})
    app = build_app(settings, clock=clock)
    try:
        with pytest.raises(ViewRowAlteredError):
            app.read_investigation(ReadInvestigation(investigation_id=st.investigation, **OFFICER))

        (recorded,) = reads_of(app, st.candidate_id)  # whose it is, from the event store
        assert (recorded.view, recorded.outcome, recorded.failure) == (
            f"investigation {st.investigation}",
            "failed",
            "views-altered",
        )
        assert reads_of(app, other) == []
    finally:
        app.close()


def test_a_read_of_a_value_sealed_under_another_subjects_key_is_recorded_as_failed(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    # given: the candidate's name key replaced with another candidate's
    st = s.consented_candidate(app, "Li Lei")
    other = s.consented_candidate(app, "Wang Fang")
    app.close()
    swap_key(settings, st.candidate_id, other.candidate_id, "user.name")
    app = build_app(settings, clock=clock)
    try:
        with pytest.raises(SealBrokenError) as failed:
            app.read_profile(recruiters_read(st.candidate_id))

        # (the subject's events no longer replay either: the log is read from the views)
        log = app.read_access_log(ReadAccessLog(candidate_id=st.candidate_id, **OFFICER))
        (recorded,) = log.entries
        assert (recorded.principal, recorded.outcome, recorded.failure, recorded.returned) == (
            s.RECRUITER,
            "failed",
            "seal-broken",
            [],
        )
        assert "user.name" in recorded.withheld  # decided, then nothing could be returned
        problem = problem_for(failed.value)
        assert problem is not None
        assert (problem.exit_code, problem.type) == (65, "seal-broken")
        assert problem.line().endswith("nothing was returned, and the attempt was recorded")
    finally:
        app.close()


def test_where_the_store_cannot_take_the_record_the_line_says_so(
    sqlite_app: Backcheck, tmp_path: Path, clock: FakeClock
) -> None:
    # given: a profile row altered, and a store that refuses every new event
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    st = s.consented_candidate(sqlite_app)
    sqlite_app.close()
    alter(settings, "profile", str(st.candidate_id), lambda d: {**d, "erased": True})
    with sqlite3.connect(settings.sqlite_path) as conn:
        conn.execute(
            "CREATE TRIGGER refuse_all BEFORE INSERT ON stored_events "
            "BEGIN SELECT RAISE(ABORT, 'the disk says no'); END"
        )
    head = _head(settings)
    app = build_app(settings, clock=clock)
    try:
        # when
        with pytest.raises(ViewRowAlteredError) as failed:
            app.read_profile(recruiters_read(st.candidate_id))
    finally:
        app.close()

    # then: one line, the tampering's code, saying the attempt is not recorded, and why
    problem = problem_for(failed.value)
    assert problem is not None
    assert (problem.exit_code, problem.type) == (65, "views-altered")
    line = problem.line()
    assert "\n" not in line
    assert "the attempt was recorded" not in line
    assert "; the attempt could not be recorded either (" in line
    assert _head(settings) == head


def _head(settings: Settings) -> int:
    with sqlite3.connect(settings.sqlite_path) as conn:
        return int(conn.execute("SELECT count(*) FROM stored_events").fetchone()[0])


def test_records_from_before_failures_were_named_replay_without_one(
    sqlite_app: Backcheck,
) -> None:
    # given: a failed and an allowed read as v3 code stored them (no `failure`)
    app = sqlite_app
    candidate_id = s.register(app)
    records = []
    for outcome in ("failed", "allowed"):
        with recorded_at(app.clock()):
            read = Access.record(
                candidate_id,
                s.RECRUITER,
                "recruiter",
                s.PURPOSE,
                "profile",
                (),
                ("user.name",),
                outcome,
                (),
                "hash",
                (),
                authentication="operator",
                failure="data-key-missing" if outcome == "failed" else None,
            )
        stored, state = unsealed(app, read.collect_events()[0])
        del state["failure"]
        records.append(stored_as(stored, state, 3))
    app.recorder.insert_events(records)

    # when
    replayed = reads_of(app, candidate_id)

    # then
    assert [(r.outcome, r.failure) for r in replayed] == [
        ("failed", "not recorded (before v4)"),
        ("allowed", None),
    ]


def test_a_timeline_that_meets_a_value_sealed_under_another_key_is_recorded_as_failed(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    # given: the candidate's name key replaced with another candidate's
    st = s.consented_candidate(app, "Li Lei")
    other = s.consented_candidate(app, "Wang Fang")
    app.close()
    swap_key(settings, st.candidate_id, other.candidate_id, "user.name")
    app = build_app(settings, clock=clock)
    try:
        with pytest.raises(SealBrokenError) as failed:
            app.read_timeline(ReadTimeline(candidate_id=st.candidate_id, **OFFICER))

        # then: one record of the read, failed, for why (none saying it was allowed)
        log = app.read_access_log(ReadAccessLog(candidate_id=st.candidate_id, **OFFICER))
        assert [(e.view, e.outcome, e.failure) for e in log.entries] == [
            ("timeline", "failed", "seal-broken")
        ]
        assert str(failed.value).endswith("nothing was returned, and the attempt was recorded")
    finally:
        app.close()


def test_a_page_of_events_that_meets_a_value_sealed_under_another_key_is_recorded_as_failed(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    st = s.consented_candidate(app, "Li Lei")
    other = s.consented_candidate(app, "Wang Fang")
    app.close()
    swap_key(settings, st.candidate_id, other.candidate_id, "user.name")
    app = build_app(settings, clock=clock)
    try:
        for subject in (st.candidate_id, None):  # the candidate's events, and everyone's
            with pytest.raises(SealBrokenError):
                app.read_events(ReadEvents(candidate_id=subject, **OFFICER))

        log = app.read_access_log(ReadAccessLog(candidate_id=st.candidate_id, **OFFICER))
        assert [(e.view, e.outcome, e.failure) for e in log.entries] == [
            ("events", "failed", "seal-broken"),
            ("events", "failed", "seal-broken"),
        ]
    finally:
        app.close()


def test_a_state_or_an_access_package_that_meets_an_altered_value_is_recorded_as_failed(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    st = s.consented_candidate(app, "Li Lei")
    other = s.consented_candidate(app, "Wang Fang")
    app.close()
    swap_key(settings, st.candidate_id, other.candidate_id, "user.name")
    app = build_app(settings, clock=clock)
    try:
        with pytest.raises(SealBrokenError) as shown:
            app.show_state(ShowState(aggregate_id=st.candidate_id, **OFFICER))
        with pytest.raises(SealBrokenError) as exported:
            app.export_subject_data(
                ExportSubjectData(candidate_id=st.candidate_id, actor="compliance:wu.min")
            )

        log = app.read_access_log(ReadAccessLog(candidate_id=st.candidate_id, **OFFICER))
        assert [(e.principal, e.view, e.outcome, e.failure) for e in log.entries] == [
            ("compliance:wu.min", "state", "failed", "seal-broken"),
            (f"candidate:{st.candidate_id}", "access package", "failed", "seal-broken"),
        ]
        for error in (shown.value, exported.value):
            assert str(error).endswith("nothing was returned, and the attempt was recorded")
    finally:
        app.close()
