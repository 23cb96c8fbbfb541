"""A page of a list is read as a range of the view rows' primary key, and one subject's rows
through the subject index, on each backend: the query plan shows an index search, never a scan
of the rows nor a sort, so a page or a subject's rows cost the same in a store of 50k events
and of 1M."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import psycopg
import pytest

from infra.views.postgres import PostgresViewStore
from infra.views.runner import ViewRunner
from infra.views.sqlite import PAGE_SQL, SUBJECT_SQL, SQLiteViewStore
from projections.listing import list_view
from services.application import Backcheck
from tests import story as s


def runner_of(app: Backcheck) -> ViewRunner:
    assert isinstance(app.views, ViewRunner)
    return app.views


def sqlite_plan(datastore: Any, query: str, params: tuple[object, ...]) -> str:
    """SQLite's plan of `query`, its steps joined."""
    with datastore.transaction(commit=False) as c:
        c.execute(f"EXPLAIN QUERY PLAN {query}", params)
        return " / ".join(str(row[3]) for row in c.fetchall())


def postgres_plan(
    app: Backcheck, schema: str, view: str, query: str, params: tuple[object, ...]
) -> str:
    """The plan of the view store's `query` once 40,000 more rows (of `view`, an SQL
    expression of n) are in and analysed: the planner has a choice to make."""
    s.register(app)
    store = runner_of(app).store
    assert isinstance(store, PostgresViewStore)
    table = psycopg.sql.Identifier(schema, "backcheck_views")
    with store.datastore.transaction(commit=True) as curs:
        curs.execute(
            psycopg.sql.SQL(
                "INSERT INTO {} SELECT " + view + ", lpad(n::text, 12, '0'), "
                "gen_random_uuid(), '{{}}'::jsonb FROM generate_series(1, 40000) AS n"
            ).format(table)
        )
        curs.execute(psycopg.sql.SQL("ANALYZE {}").format(table))
    with store.datastore.transaction(commit=False) as curs:
        curs.execute(psycopg.sql.SQL("EXPLAIN ") + store.sql[query], params)
        return " / ".join(str(next(iter(row.values()))) for row in curs.fetchall())


def test_a_page_on_sqlite_is_a_search_of_the_primary_key(sqlite_app: Backcheck) -> None:
    s.register(sqlite_app)
    store = runner_of(sqlite_app).store
    assert isinstance(store, SQLiteViewStore)
    plan = sqlite_plan(store.datastore, PAGE_SQL, (list_view("candidate"), "", 51))

    assert "SEARCH view_rows USING PRIMARY KEY (view=? AND key>?)" in plan, plan
    assert "SCAN" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan


@pytest.mark.postgres
def test_a_page_on_postgres_is_a_scan_of_the_primary_key_index(
    pg_app: Backcheck, pg_schema: str
) -> None:
    # rows of many other lists, so that the planner has a choice to make
    plan = postgres_plan(
        pg_app, pg_schema, "'list:candidate:' || (n % 20)", "page", (list_view("candidate"), "", 51)
    )

    assert "Index Scan using backcheck_views_pkey" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan


def test_one_subjects_rows_on_sqlite_are_a_search_of_the_subject_index(
    sqlite_app: Backcheck,
) -> None:
    """What every read decision asks (a candidate's consents, investigations, accesses): a
    search of the subject index, not of the view's primary key, which would walk every row
    of the view (all the store's accesses, for one candidate's)."""
    s.register(sqlite_app)
    store = runner_of(sqlite_app).store
    assert isinstance(store, SQLiteViewStore)
    plan = sqlite_plan(store.datastore, SUBJECT_SQL, (str(uuid4()), "consent"))

    assert "USING INDEX view_rows_by_subject (subject=? AND view=?)" in plan, plan
    assert "SCAN" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan


@pytest.mark.postgres
def test_one_subjects_rows_on_postgres_are_a_search_of_the_subject_index(
    pg_app: Backcheck, pg_schema: str
) -> None:
    # many subjects' rows of the same view, so that the planner has a choice to make
    plan = postgres_plan(pg_app, pg_schema, "'consent'", "subject", (uuid4(), "consent"))

    assert "backcheck_views_by_subject" in plan, plan
    assert "Seq Scan" not in plan, plan
