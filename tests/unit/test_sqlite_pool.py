"""SQLite connections that keep their prepared statements: the library's connections prepare
a statement again whenever another one ran in between (a cache of one); ours keep them, and
are otherwise the library's (WAL mode, autocommit, rows by name). The event store, the views,
the relay's state and the workers' views all use them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from eventsourcing.sqlite import SQLiteDatastore

from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.relay import RelayState
from infra.kafka.worker import worker_views
from infra.store.pool import CachingPool, Datastore
from infra.store.recorder import datastore_of
from infra.views.runner import ViewRunner
from infra.views.sqlite import SQLiteViewStore


def prepared(datastore: SQLiteDatastore) -> int:
    """How often SQLite prepared two statements run alternately ten times each: its
    authorizer is asked once for each statement it prepares."""
    asked = 0

    def authorizer(*_: object) -> int:
        nonlocal asked
        asked += 1
        return sqlite3.SQLITE_OK

    with datastore.get_connection(commit=False) as conn:
        raw: sqlite3.Connection = conn._sqlite_conn
        raw.set_authorizer(authorizer)
        try:
            for _ in range(10):
                raw.execute("SELECT 1").fetchall()
                raw.execute("SELECT 2").fetchall()
        finally:
            raw.set_authorizer(None)
    return asked


def test_the_librarys_connections_prepare_each_statement_again_and_ours_keep_them(
    tmp_path: Path,
) -> None:
    library = SQLiteDatastore(str(tmp_path / "library.sqlite"))
    ours = Datastore(str(tmp_path / "ours.sqlite"))
    try:
        assert prepared(library) == 20  # if the library keeps statements one day, drop ours
        assert prepared(ours) == 2
    finally:
        library.close()
        ours.close()


def test_our_connections_are_otherwise_the_librarys(tmp_path: Path) -> None:
    store = Datastore(str(tmp_path / "s.sqlite"), lock_timeout=3)
    try:
        with store.get_connection(commit=True) as conn:
            raw: sqlite3.Connection = conn._sqlite_conn
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert raw.isolation_level is None  # autocommit: the library BEGINs itself
            assert raw.row_factory is sqlite3.Row
        with store.transaction(commit=True) as c:
            c.execute("CREATE TABLE t (x INTEGER)")
            c.execute("INSERT INTO t VALUES (1)")
        with store.transaction(commit=False) as c:
            c.execute("SELECT x FROM t")
            assert c.fetchone()["x"] == 1
        assert store.pool.lock_timeout == 3
    finally:
        store.close()


def test_every_sqlite_file_of_an_embedded_deployment_is_opened_with_them(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=tmp_path)
    app = build_app(settings)
    try:
        assert isinstance(datastore_of(app.recorder).pool, CachingPool)
        assert isinstance(app.views, ViewRunner)
        assert isinstance(app.views.store, SQLiteViewStore)
        assert isinstance(app.views.store.datastore.pool, CachingPool)
        relay = RelayState(app, settings, "events")
        assert isinstance(relay.sqlite.pool, CachingPool)
        relay.sqlite.close()
        workers = worker_views(app, settings)
        assert isinstance(workers, SQLiteViewStore)
        assert isinstance(workers.datastore.pool, CachingPool)
        workers.datastore.close()
    finally:
        app.close()
