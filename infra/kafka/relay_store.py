"""What the relay reads and keeps beside the store: the log's rows, how far it got on each topic
(`RelayState`), and the lock that lets only one relay publish a store's events to a topic."""

from __future__ import annotations

import fcntl
import sqlite3
import zlib
from collections.abc import Callable
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import Application

from infra.config import Settings
from infra.store.ddl import serialise_ddl
from infra.store.pool import Datastore
from infra.store.recorder import datastore_of

RELAY_STATE_TABLE = "backcheck_relay_state"

LogRow = tuple[int, str, int, str, bytes]  # position, originator id, version, topic, state


class RelayLock:
    """Held while a relay runs: an advisory lock on PostgreSQL, a lock file beside SQLite."""

    def __init__(self, release: Callable[[], None]) -> None:
        self.release = release

    @classmethod
    def acquire(cls, settings: Settings, topic: str) -> RelayLock | None:
        """The lock of the store's relay to `topic`; None while another relay holds it."""
        if settings.backend == "postgres":
            return cls._advisory(settings, topic)
        handle = settings.after_store(f"relay-{topic}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return cls(handle.close)

    @classmethod
    def _advisory(cls, settings: Settings, topic: str) -> RelayLock | None:
        import psycopg

        conn = psycopg.connect(settings.postgres_conninfo(), autocommit=True)
        number = 0x62636B << 32 | zlib.crc32(f"relay:{settings.postgres_schema}:{topic}".encode())
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (number,)).fetchone()
        if row is None or not row[0]:
            conn.close()
            return None

        def release() -> None:
            conn.execute("SELECT pg_advisory_unlock(%s)", (number,))
            conn.close()  # (the server drops the lock when the session ends, but not at once)

        return cls(release)


class RelayState:
    """How far the relay got on a topic, and the last position it published to each partition
    (the `ce_prevposition` of the next message there), saved together in one statement:
    `backcheck_relay_state` beside the store on PostgreSQL; on the embedded store `relay_state`
    in a SQLite file of its own (`<store>.relay.sqlite`), since a save there, several a second
    while following, would take the store's write lock from the writers."""

    def __init__(self, app: Application[UUID], settings: Settings, name: str) -> None:
        self.name = name
        self.postgres = settings.backend == "postgres"
        if self.postgres:
            self._create_postgres(datastore_of(app.recorder))
        else:
            self.sqlite = Datastore(str(settings.relay_state_path), lock_timeout=10)
            with self.sqlite.transaction(commit=True) as c:
                c.execute(
                    "CREATE TABLE IF NOT EXISTS relay_state (name TEXT PRIMARY KEY, "
                    "position INTEGER NOT NULL, partitions TEXT NOT NULL)"
                )

    def _create_postgres(self, datastore: Any) -> None:
        from psycopg.sql import SQL, Identifier

        self.datastore = datastore
        table = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(RELAY_STATE_TABLE))
        with datastore.transaction(commit=True) as curs:
            serialise_ddl(curs)
            curs.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, "
                    "position bigint NOT NULL, partitions jsonb NOT NULL)"
                ).format(table)
            )
        self.select = SQL("SELECT position, partitions::text AS p FROM {} WHERE name=%s").format(
            table
        )
        self.upsert = SQL(
            "INSERT INTO {} VALUES (%s, %s, %s::jsonb) ON CONFLICT (name) "
            "DO UPDATE SET position=excluded.position, partitions=excluded.partitions"
        ).format(table)

    def load(self) -> tuple[int, dict[int, int]]:
        """(the position acknowledged, the last position sent to each partition)."""
        found: tuple[Any, Any] | None
        if self.postgres:
            with self.datastore.transaction(commit=False) as curs:
                curs.execute(self.select, (self.name,))
                row = curs.fetchone()
                found = (row["position"], row["p"]) if row else None
        else:
            with self.sqlite.transaction(commit=False) as c:
                c.execute("SELECT position, partitions FROM relay_state WHERE name=?", (self.name,))
                one = c.fetchone()
                found = (one[0], one[1]) if one else None
        if found is None:
            return 0, {}
        return _decoded(found)

    def save(self, position: int, last: dict[int, int]) -> None:
        data = orjson.dumps({str(k): v for k, v in sorted(last.items())}).decode()
        if self.postgres:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(self.upsert, (self.name, position, data))
        else:
            with self.sqlite.transaction(commit=True) as c:
                c.execute(
                    "INSERT INTO relay_state VALUES (?, ?, ?) ON CONFLICT (name) "
                    "DO UPDATE SET position=excluded.position, partitions=excluded.partitions",
                    (self.name, position, data),
                )

    def close(self) -> None:
        if not self.postgres:
            self.sqlite.close()  # on PostgreSQL the pool is the store's


def _decoded(found: tuple[Any, Any]) -> tuple[int, dict[int, int]]:
    return int(found[0]), {int(k): int(v) for k, v in orjson.loads(found[1]).items()}


def relayed(
    app: Application[UUID], settings: Settings, topic: str
) -> tuple[int, dict[int, int]] | None:
    """What the relay to `topic` recorded (as `RelayState.load`), read without making its
    table or file (for a command that only reads); None if no relay to it has run."""
    name = f"relay:{topic}"
    found: tuple[Any, Any] | None
    if settings.backend == "postgres":
        from psycopg.sql import SQL, Identifier

        datastore: Any = datastore_of(app.recorder)  # PostgreSQL's
        schema, table = Identifier(datastore.schema), Identifier(RELAY_STATE_TABLE)
        with datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT to_regclass(%s) AS t", (f"{datastore.schema}.{RELAY_STATE_TABLE}",)
            )
            there = curs.fetchone()
            if there is None or there["t"] is None:
                return None
            select = SQL("SELECT position, partitions::text AS p FROM {}.{} WHERE name = %s")
            curs.execute(select.format(schema, table), (name,))
            row = curs.fetchone()
            found = (row["position"], row["p"]) if row else None
    else:
        if not settings.relay_state_path.is_file():
            return None
        conn = sqlite3.connect(f"file:{settings.relay_state_path}?mode=ro", uri=True)
        try:
            found = conn.execute(
                "SELECT position, partitions FROM relay_state WHERE name = ?", (name,)
            ).fetchone()
        except sqlite3.OperationalError:  # no table: made by no relay yet
            return None
        finally:
            conn.close()
    return None if found is None else _decoded(found)


def _dashed(originator: str) -> str:
    """A UUID as SQLite stores it (32 hex digits) in its usual form, as ce_id carries it."""
    h = originator
    if len(h) != 32:
        return h
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def log_rows(app: Application[UUID], postgres: bool, start: int, limit: int) -> list[LogRow]:
    """(position, originator id, version, topic, state) of the next stored events: the
    columns as they are, without the library's Notification objects (UUIDs parsed, frozen
    dataclasses built), which took 11 µs an event, a third of the relay's time."""
    recorder: Any = app.recorder
    table = recorder.events_table_name
    if postgres:
        from psycopg.rows import tuple_row
        from psycopg.sql import SQL, Identifier

        query = SQL(
            "SELECT notification_id, originator_id::text, originator_version, topic, state "
            "FROM {}.{} WHERE notification_id >= %s "
            "ORDER BY notification_id LIMIT %s"
        ).format(Identifier(recorder.datastore.schema), Identifier(table))
        with recorder.datastore.transaction(commit=False) as curs:
            curs.row_factory = tuple_row  # plain rows: no dict per event
            curs.execute(query, (start, limit))
            return curs.fetchall()  # type: ignore[no-any-return]
    with recorder.datastore.transaction(commit=False) as c:
        cursor = c.sqlite_cursor
        cursor.row_factory = None  # plain tuples: no sqlite3.Row per event
        cursor.execute(
            "SELECT rowid, originator_id, originator_version, topic, state "
            f"FROM {table} WHERE rowid >= ? ORDER BY rowid LIMIT ?",
            (start, limit),
        )
        return [(p, _dashed(o), v, t, s) for p, o, v, t, s in cursor.fetchall()]
