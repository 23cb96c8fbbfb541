"""A store whose events table was dropped outside backcheck while its chain still links
records is refused (`not-a-store`, exit 65), on each backend, rather than given a new, empty
events table: `info` and `events` showed 0 events without a word, and only `audit verify` (and
the next write, `chain-broken`) found out."""

from __future__ import annotations

import json
import sqlite3

import psycopg

from infra.bootstrap import build_app
from infra.config import Settings
from infra.problem import EX_DATAERR
from services.dto import RegisterCandidate
from tests.conftest import FakeClock
from tests.e2e.test_cli import run
from tests.integration.test_views_fault_reads import env_of
from tests.story import RECRUITER


def drop_events_table(settings: Settings, clock: FakeClock) -> tuple[str, int]:
    """A store with one registration whose events table is then dropped by hand: the table's
    name and how many records the chain links."""
    app = build_app(settings, clock=clock)
    try:
        app.register_candidate(RegisterCandidate(name="Zhou Min", actor=RECRUITER))
        table, links = app.recorder.events_table_name, app.recorder.max_notification_id() or 0
    finally:
        app.close()
    if settings.backend == "postgres":
        with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP TABLE "{settings.postgres_schema}".{table} CASCADE')
    else:
        with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as conn:
            conn.execute(f"DROP TABLE {table}")
    return table, links


def events_table_exists(settings: Settings, table: str) -> bool:
    if settings.backend == "postgres":
        with psycopg.connect(settings.postgres_conninfo()) as conn:
            found = conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL", (f"{settings.postgres_schema}.{table}",)
            ).fetchone()
            return bool(found and found[0])
    with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as conn:
        query = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
        return conn.execute(query, (table,)).fetchone() is not None


def test_a_store_whose_events_table_is_gone_under_its_chain_is_refused_and_left_as_it_is(
    settings: Settings, clock: FakeClock
) -> None:
    table, links = drop_events_table(settings, clock)

    for args, stdin in (
        (("info",), None),
        (("do", "register-candidate"), json.dumps({"name": "Qian Li", "actor": RECRUITER})),
    ):
        done = run(env_of(settings), *args, stdin=stdin)

        assert done.returncode == EX_DATAERR, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        line, *rest = done.stderr.strip().splitlines()
        assert not rest, done.stderr
        assert line.startswith("Not a store (not-a-store): "), line
        assert (
            f"its events table {table} is gone while its chain links {links} records "
            "(removed outside backcheck; nothing was made)" in line
        ), line
        assert not events_table_exists(settings, table)  # not made again, empty
