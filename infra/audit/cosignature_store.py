"""The witnesses' cosignatures kept in the store (cosignatures.py says which are taken):

    backcheck_cosignatures (origin, tree_size, root_hash, witness, line, cosigned_at,
                            received_at, source)

one row a cosignature line, keyed by (origin, tree_size, witness, line): the same line arriving
again (the topic read twice, a file added twice) is held already. Append-only like the event
tables: UPDATE, DELETE (and TRUNCATE on PostgreSQL) are refused by the database. In the SQLite
store file (its writes under the store's writer lock, infra/store/filelock.py) or the
PostgreSQL schema, created on first use.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from infra.audit.cosignatures import Cosignature
from infra.audit.notes import Checkpoint
from infra.config import Settings
from infra.store.ddl import serialise_ddl
from infra.store.filelock import for_database
from infra.store.recorder import APPEND_ONLY

TABLE = "backcheck_cosignatures"
_COLUMNS = (
    "origin TEXT NOT NULL, tree_size BIGINT NOT NULL, root_hash BYTEA NOT NULL, "
    "witness TEXT NOT NULL, line TEXT NOT NULL, cosigned_at BIGINT NOT NULL, "
    "received_at TEXT NOT NULL, source TEXT NOT NULL, "
    "PRIMARY KEY (origin, tree_size, witness, line)"
)


class CosignatureStore:
    """The cosignature table of one store (SQLite file or PostgreSQL schema)."""

    def __init__(self, settings: Settings) -> None:
        self.postgres = settings.backend == "postgres"
        if self.postgres:
            self._open_postgres(settings)
        else:
            path = str(settings.sqlite_path)
            self.lock = for_database(path)
            self.conn: Any = sqlite3.connect(path, timeout=10, isolation_level=None)
            self._p = "?"
            self.table = TABLE
            found = self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
            ).fetchone()
            if found is not None:  # made with its triggers, in one transaction: nothing to write
                return
            with self.lock.held():
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {TABLE} ({_COLUMNS.replace('BYTEA', 'BLOB')})"
                )
                for op in ("UPDATE", "DELETE"):
                    self.conn.execute(
                        f"CREATE TRIGGER IF NOT EXISTS {TABLE}_refuse_{op.lower()} "
                        f"BEFORE {op} ON {TABLE} BEGIN "
                        f"SELECT RAISE(ABORT, '{TABLE} {APPEND_ONLY}: {op} refused'); END"
                    )
                self.conn.execute("COMMIT")

    def _open_postgres(self, settings: Settings) -> None:
        import psycopg
        from psycopg.sql import SQL, Identifier

        from infra.store.server import store_error

        try:
            self.conn = psycopg.connect(settings.postgres_conninfo(), autocommit=True)
        except psycopg.OperationalError as e:
            raise store_error(e, settings.describe()) from None
        self._p = "%s"
        schema = Identifier(settings.postgres_schema)
        table = SQL("{}.{}").format(schema, Identifier(TABLE))
        refuse = SQL("{}.{}").format(schema, Identifier(f"{TABLE}_refuse"))
        self.table = table.as_string(self.conn)
        found = self.conn.execute(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s",
            (settings.postgres_schema, TABLE),
        ).fetchone()
        if found is not None:  # made with its triggers, in one transaction
            return
        with self.conn.transaction():
            serialise_ddl(self.conn.cursor())
            self.conn.execute(SQL("CREATE TABLE IF NOT EXISTS {} (" + _COLUMNS + ")").format(table))
            self.conn.execute(
                SQL(
                    "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN RAISE EXCEPTION '% " + APPEND_ONLY + ": % refused', TG_TABLE_NAME, "
                    "TG_OP USING ERRCODE = 'insufficient_privilege'; END $$"
                ).format(refuse)
            )
            for name, when, each in (
                ("append_only", "UPDATE OR DELETE", "ROW"),
                ("no_truncate", "TRUNCATE", "STATEMENT"),
            ):
                self.conn.execute(
                    SQL(
                        "CREATE OR REPLACE TRIGGER {} BEFORE " + when + " ON {} "
                        "FOR EACH " + each + " EXECUTE FUNCTION {}()"
                    ).format(Identifier(f"{TABLE}_{name}"), table, refuse)
                )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> CosignatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, cosignatures: Sequence[Cosignature], source: str, now: datetime) -> int:
        """Keeps the lines not held yet, in one transaction; how many were new."""
        p, new = self._p, 0
        exists = (
            f"SELECT 1 FROM {self.table} WHERE origin = {p} AND tree_size = {p} "
            f"AND witness = {p} AND line = {p}"
        )
        insert = f"INSERT INTO {self.table} VALUES ({', '.join([p] * 8)})"
        if self.postgres:
            with self.conn.transaction():
                for c in cosignatures:
                    new += self._add_one(exists, insert, c, source, now)
            return new
        with self.lock.held():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for c in cosignatures:
                    new += self._add_one(exists, insert, c, source, now)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        return new

    def _add_one(self, exists: str, insert: str, c: Cosignature, source: str, now: datetime) -> int:
        cp = c.checkpoint
        key = (cp.origin, cp.size, c.witness, c.line)
        if self.conn.execute(exists, key).fetchone() is not None:
            return 0
        row = (*key[:2], cp.root_hash, *key[2:], c.time, now.isoformat(), source[:1000])
        self.conn.execute(insert, row)
        return 1

    def newest(
        self, origin: str, witnesses: Sequence[str], required: int, min_size: int = 0
    ) -> list[Cosignature]:
        """The cosignature lines on the largest checkpoint of `origin` of at least `min_size`
        that at least `required` of `witnesses` (name+keyid) cosigned; [] if there is none."""
        if not witnesses:
            return []
        p = self._p
        among = ", ".join([p] * len(witnesses))
        found = self.conn.execute(
            f"SELECT tree_size, root_hash FROM {self.table} WHERE origin = {p} "
            f"AND tree_size >= {p} AND witness IN ({among}) GROUP BY tree_size, root_hash "
            f"HAVING COUNT(DISTINCT witness) >= {p} ORDER BY tree_size DESC LIMIT 1",
            (origin, min_size, *witnesses, max(required, 1)),
        ).fetchone()
        if found is None:
            return []
        size, root = int(found[0]), bytes(found[1])
        rows = self.conn.execute(
            f"SELECT witness, line, cosigned_at FROM {self.table} WHERE origin = {p} "
            f"AND tree_size = {p} AND root_hash = {p} AND witness IN ({among}) "
            "ORDER BY witness, cosigned_at",
            (origin, size, root, *witnesses),
        ).fetchall()
        checkpoint = Checkpoint(origin, size, root)
        return [Cosignature(checkpoint, str(w), str(line), int(t)) for w, line, t in rows]

    def count(self) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])
