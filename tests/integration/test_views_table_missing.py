"""A table of the kept views dropped by hand is named, with the remedy: `backcheck views rebuild`.

On SQLite the views' "no such table: view_rows" was told as the event store's: `not-a-store`,
"the store file cannot be used: it holds no backcheck store …; check BACKCHECK_DATABASE_URL,
or restore the file from a backup", sending the operator to a store that is intact. On
PostgreSQL the problem table knew the missing relation only inside a catch-up
(`views-failed`, "the views catch up … once the fault is gone", which they never do); a read
of views already current met it bare, a bug to the table: 500 `internal` and a traceback in
the server's log. Now either is `views-failed` naming the views file (or the table and its
schema), saying the event store is intact and that `backcheck views rebuild` makes the table
again with its rows (decision 0062).

What cures it: `backcheck views rebuild`, or opening the store again. The rows' table is
made again empty on opening and, since its tracking would still say the views hold every
event, the tracking is dropped with it (before, the views stayed empty and wrong: a profile
read was "Not found", the dashboard counted one candidate of two); the tracking table made
again empty, the views apply the log again from its start. A rebuild's table aside: the
rebuild stopped, the views in use are whole; run it again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import OperationalError

from infra.bootstrap import build_app
from infra.config import Settings
from infra.problem import EX_DATAERR, EX_IOERR, problem_for
from infra.store.pool import Datastore
from infra.views.kept import DASHBOARD, READ, Kept
from services.access import Role
from services.application import Backcheck
from services.dto import RegisterCandidate
from services.lists import ListCandidates
from tests.conftest import PG_URL, FakeClock
from tests.e2e.test_cli import run
from tests.http import COMPLIANCE, Served, problem
from tests.integration.test_views_fault_reads import env_of
from tests.story import RECRUITER

INTACT = "The event store is intact, and the views are made from its events: "
REMEDY = (
    " (removed outside backcheck): the kept views cannot be read or brought up to date "
    f"without it. {INTACT}`backcheck views rebuild` makes the table again with every row "
    "(so does opening the store again, restarting this process: the views then apply the log "
    "again from its start)"
)
TRACKING_REMEDY = (
    " (removed outside backcheck): the kept views cannot tell how far they stand without it. "
    f"{INTACT}`backcheck views rebuild` makes it again with the views afresh (so does opening "
    "the store again, restarting this process: the views then apply the log again from its "
    "start)"
)


def drop_rows_table(settings: Settings, kept: Kept) -> str:
    """Drops the table of `kept`'s rows, as an operator would by hand; what a problem says of
    where it was."""
    if settings.backend == "sqlite":
        path = kept.path(settings)
        with sqlite3.connect(path, isolation_level=None) as conn:
            conn.execute("DROP TABLE view_rows")
        return f"the views file {path} lacks its table view_rows"
    schema = settings.postgres_schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {schema}.{kept.table}")
    return f"the views table {kept.table} of the schema {schema} is missing"


@pytest.mark.parametrize(
    ("kept", "reader", "path"),
    [
        # the read views are current when dropped: the read meets the missing table itself
        (READ, RECRUITER, "/v1/candidates"),
        # the dashboard has an event to catch up first: the catch-up meets it
        (DASHBOARD, COMPLIANCE, "/v1/dashboard/summary"),
    ],
    ids=["read-views", "dashboard"],
)
@pytest.mark.parametrize("remedy", ["rebuild", "reopen"])
def test_a_views_table_dropped_by_hand_is_named_with_the_rebuild_that_makes_it_again(
    api: Served,
    settings: Settings,
    clock: FakeClock,
    kept: Kept,
    reader: str,
    path: str,
    remedy: str,
) -> None:
    app = api.app
    created = api.post(RECRUITER, "/v1/candidates", {"name": "Li Lei"})
    assert created.status_code == 201, created.text
    assert api.get(reader, path).status_code == 200  # current

    where = drop_rows_table(settings, kept)
    if kept is DASHBOARD:
        app.register_candidate(RegisterCandidate(name="Zhou Min", actor=RECRUITER))
    answered = api.get(reader, path)

    body = problem(answered, 500, "views-failed")
    assert body["detail"] == where + REMEDY
    assert "Retry-After" not in answered.headers  # waiting cures nothing

    if remedy == "reopen":  # a process opening the store: the table made, the log applied
        reopened = build_app(settings, clock=clock)
        try:
            if kept is READ:
                page = reopened.list_candidates(ListCandidates(limit=10), Role.COMPLIANCE)
                assert [c.candidate_id for c in page.items] == [
                    UUID(created.json()["candidate_id"])
                ]
            else:
                summary = reopened.dashboard_summary()
                assert summary.pipeline.candidates == {"registered": 2}
        finally:
            reopened.close()
        return
    # the remedy it names, run by the operator while the server runs
    rebuilt = run(env_of(settings), "views", "rebuild", kept.name)
    assert rebuilt.returncode == 0, rebuilt.stderr
    answered = api.get(reader, path)
    assert answered.status_code == 200, answered.text
    if kept is READ:
        listed = [c["candidate_id"] for c in answered.json()["items"]]
        assert listed == [created.json()["candidate_id"]]
    else:
        assert answered.json()["pipeline"]["candidates"] == {"registered": 2}


@pytest.mark.parametrize("remedy", ["rebuild", "reopen"])
def test_a_views_tracking_table_dropped_by_hand_is_named_with_what_makes_it_again(
    api: Served, settings: Settings, clock: FakeClock, remedy: str
) -> None:
    """The views' record of how far they stand is theirs too (`tracking` in the views file,
    `<table>_tracking` on PostgreSQL): the runner asks it before catching up. Made again
    empty, the views apply the log again from its start, so here opening the store again
    cures it too."""
    app = api.app
    assert api.get(COMPLIANCE, "/v1/dashboard/summary").status_code == 200
    if settings.backend == "sqlite":
        path = DASHBOARD.path(settings)
        with sqlite3.connect(path, isolation_level=None) as conn:
            conn.execute("DROP TABLE tracking")
        where = f"the views file {path} lacks its table tracking"
    else:
        schema = settings.postgres_schema
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {schema}.{DASHBOARD.table}_tracking")
        where = f"the views table {DASHBOARD.table}_tracking of the schema {schema} is missing"
    app.register_candidate(RegisterCandidate(name="Zhou Min", actor=RECRUITER))

    answered = api.get(COMPLIANCE, "/v1/dashboard/summary")

    assert problem(answered, 500, "views-failed")["detail"] == where + TRACKING_REMEDY
    if remedy == "rebuild":
        rebuilt = run(env_of(settings), "views", "rebuild", DASHBOARD.name)
        assert rebuilt.returncode == 0, rebuilt.stderr
        summary = app.dashboard_summary()
    else:
        reopened = build_app(settings, clock=clock)
        try:
            summary = reopened.dashboard_summary()
        finally:
            reopened.close()
    assert summary.pipeline.candidates == {"registered": 1}  # each event applied once


def test_a_rebuilds_table_aside_missing_is_named_and_the_views_in_use_are_not_blamed(
    tmp_path: Path,
) -> None:
    """A rebuild's table aside removed while it writes (decision 0061): the rebuild stops,
    the views in use are whole. Met here as a views file's datastore meets it."""
    views = Datastore(str(tmp_path / "store.views.sqlite"))
    try:
        with pytest.raises(OperationalError) as stopped, views.transaction(commit=True) as c:
            c.execute("INSERT INTO view_rows_aside VALUES ('dashboard', 'k')")
    finally:
        views.close()

    told = problem_for(stopped.value)

    assert told is not None
    assert (told.type, told.status, told.exit_code) == ("views-failed", 500, EX_IOERR)
    assert told.detail == (
        f"the views file {tmp_path / 'store.views.sqlite'} lacks its table view_rows_aside "
        "(removed outside backcheck): the rebuild writing into it stopped, and the views in "
        f"use are as they were. {INTACT}run `backcheck views rebuild` again"
    )


def test_the_event_stores_own_table_missing_is_still_not_a_store_and_names_its_file(
    sqlite_app: Backcheck, tmp_path: Path
) -> None:
    store = tmp_path / "store.sqlite"
    with sqlite3.connect(store, isolation_level=None) as conn:
        conn.execute("DROP TABLE stored_events")

    with pytest.raises(OperationalError) as refused:
        sqlite_app.register_candidate(RegisterCandidate(name="Zhou Min", actor=RECRUITER))

    told = problem_for(refused.value)
    assert told is not None
    assert (told.type, told.status, told.exit_code) == ("not-a-store", 500, EX_DATAERR)
    assert told.detail == (
        f"the store file cannot be used: it holds no backcheck store ({store}: no such table: "
        "stored_events); check BACKCHECK_DATABASE_URL, or restore the file from a backup"
    )
