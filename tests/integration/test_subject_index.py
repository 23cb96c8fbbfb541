"""The subject index (infra/store/subjects.py): written with the events on each backend, equal
to what a scan of the whole log finds, filled in for a store written before it, append-only, and
read by a search of its primary key, never a scan of the log."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from infra.bootstrap import build_app
from infra.config import Settings
from infra.store.recorder import ChainedSQLiteApplicationRecorder, chained
from infra.store.subjects import subject_of
from services.application import Backcheck
from tests import story as s
from tests.conftest import PG_URL, FakeClock
from tests.integration.test_list_plans import sqlite_plan


def scanned(app: Backcheck, subject: UUID) -> list[int]:
    """The positions of `subject`'s events found the slow way: every event decoded."""
    return [p for p, e in app.replay() if getattr(e, "candidate_id", None) == subject]


def indexed(app: Backcheck, subject: UUID) -> list[int]:
    return [n.id for n in app.subjects.select_subject_notifications(subject, 1, 10_000)]


def two_cases(app: Backcheck) -> tuple[UUID, UUID]:
    """Two candidates whose events interleave in the log, after the demo story and its reads."""
    first = s.investigation_under_way(app, "Li Lei")
    second = s.investigation_under_way(app, "Han Meimei")
    s.confirm_check(app, first)
    s.disclose(app, s.shared_report(app, "Wang Fang"))
    return first.candidate_id, second.candidate_id


def test_the_index_finds_what_a_scan_of_the_log_finds(demo_app: Backcheck) -> None:
    first, second = two_cases(demo_app)
    stranger = uuid4()

    for subject in (first, second):
        found = indexed(demo_app, subject)
        assert found == scanned(demo_app, subject)
        assert len(found) >= 5  # registration, consent, investigation, ...
    assert set(indexed(demo_app, first)).isdisjoint(indexed(demo_app, second))
    assert indexed(demo_app, stranger) == []


def test_one_subjects_history_and_timeline_come_from_the_index(demo_app: Backcheck) -> None:
    first, _ = two_cases(demo_app)

    assert [r.position for r in demo_app.iter_events(first)] == scanned(demo_app, first)
    timeline = [e.position for e in demo_app.timeline(first)]
    assert timeline
    assert set(timeline) <= set(scanned(demo_app, first))


def test_a_subjects_events_are_read_page_by_page_from_a_position(demo_app: Backcheck) -> None:
    first, _ = two_cases(demo_app)
    everything = scanned(demo_app, first)

    page = demo_app.subjects.select_subject_notifications(first, everything[2], 2)

    assert [n.id for n in page] == everything[2:4]
    assert all(n.state and n.topic.startswith("domain.") for n in page)


def test_a_store_written_before_the_index_gets_it_when_opened(
    settings: Settings, clock: FakeClock
) -> None:
    app = build_app(settings, clock=clock)
    first, second = two_cases(app)
    before = {subject: indexed(app, subject) for subject in (first, second)}
    table = chained(app.recorder).subjects_table_name
    app.close()
    drop_table(settings, table)  # as a store of the version before looks

    reopened = build_app(settings, clock=clock)
    try:
        for subject, positions in before.items():
            assert indexed(reopened, subject) == positions == scanned(reopened, subject)
        s.register(reopened, "Zhao Lei")  # and writing goes on, indexed
        newest = reopened.recorder.max_notification_id()
        (registered,) = [p for p, e in reopened.replay(newest) if hasattr(e, "candidate_id")]
        assert registered == newest
    finally:
        reopened.close()


def drop_table(settings: Settings, table: str) -> None:
    if settings.backend == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as db:
            db.execute(f"DROP TABLE {table}")
        return
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {settings.postgres_schema}.{table}")


def test_the_index_is_append_only(settings: Settings, clock: FakeClock) -> None:
    app = build_app(settings, clock=clock)
    subject = s.register(app)
    table = chained(app.recorder).subjects_table_name
    app.close()
    if settings.backend == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as db:
            for change in (f"DELETE FROM {table}", f"UPDATE {table} SET position = 0"):
                with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                    db.execute(change)
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, 1)", (subject.bytes,))
        return
    qualified = f"{settings.postgres_schema}.{table}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for change in (
            f"DELETE FROM {qualified}",
            f"UPDATE {qualified} SET position = 0",
            f"TRUNCATE {qualified}",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(change)


def test_a_record_naming_no_subject_is_stored_and_chained_but_not_indexed(
    tmp_path: Path, clock: FakeClock
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    try:
        recorder = app.recorder
        assert isinstance(recorder, ChainedSQLiteApplicationRecorder)
        subject = uuid4()
        states = [
            b"not json",
            b'["candidate_id"]',
            b'{"candidate_id": "not a uuid"}',
            b'{"candidate_id": 7}',
            b'{"note": {"candidate_id": "' + str(subject).encode() + b'"}}',
            b'{"candidate_id": "' + str(subject).encode() + b'"}',
        ]
        ids = recorder.insert_events(
            [StoredEvent(uuid4(), 1, "domain.test:Raw.Event", state) for state in states]
        )
        assert ids is not None
        assert len(ids) == len(states)
        assert indexed(app, subject) == [ids[-1]]  # only the top-level field names one
    finally:
        app.close()


ONE = UUID("00000000-0000-4000-8000-000000000001")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (b'{"candidate_id": "00000000-0000-4000-8000-000000000001"}', ONE),
        (b'{"candidate_id": null}', None),
        (b'{"other": "00000000-0000-4000-8000-000000000001"}', None),
        (b"\xff\xfe", None),
        (b"", None),
    ],
)
def test_which_states_name_a_subject(state: bytes, expected: UUID | None) -> None:
    assert subject_of(state) == expected


def test_one_subjects_events_on_sqlite_are_a_search_of_the_index(sqlite_app: Backcheck) -> None:
    recorder = sqlite_app.recorder
    assert isinstance(recorder, ChainedSQLiteApplicationRecorder)
    s.register(sqlite_app)
    plan = sqlite_plan(recorder.datastore, recorder._subject_statement, (uuid4().bytes, 1, 500))

    assert "SEARCH s USING PRIMARY KEY (subject=? AND position>?)" in plan, plan
    assert "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    assert "SCAN" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan


@pytest.mark.postgres
def test_one_subjects_events_on_postgres_are_a_search_of_the_index(
    pg_app: Backcheck, pg_schema: str
) -> None:
    recorder = chained(pg_app.recorder)
    for _ in range(3):
        s.register(pg_app)
    subjects, events = recorder.subjects_table_name, recorder.events_table_name
    with psycopg.connect(PG_URL) as conn:  # rolled back: the application never sees them
        # many events and many subjects' rows, analysed, so that the planner has a choice
        conn.execute(
            f"INSERT INTO {pg_schema}.{events} (originator_id, originator_version, topic, state) "
            "SELECT gen_random_uuid(), 1, 'domain.test:Raw.Event', '{{}}'::bytea "
            "FROM generate_series(1, 40000)"
        )
        conn.execute(
            f"INSERT INTO {pg_schema}.{subjects} "
            "SELECT gen_random_uuid(), n FROM generate_series(100, 40000) AS n"
        )
        conn.execute(f"ANALYZE {pg_schema}.{subjects}")
        conn.execute(f"ANALYZE {pg_schema}.{events}")
        explained = conn.execute(
            psycopg.sql.SQL("EXPLAIN ") + recorder.select_subject_statement, (uuid4(), 1, 500)
        )
        plan = " / ".join(str(row[0]) for row in explained)
        conn.rollback()

    assert f"Index Only Scan using {subjects}_pkey" in plan, plan
    assert f"Index Scan using {events}_notification_id_idx" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan
