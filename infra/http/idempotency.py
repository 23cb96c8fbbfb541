"""`Idempotency-Key`: a command sent again with the same key gets the first answer back.

Two guarantees, kept apart. Never a second event: a keyed command is applied as a delivered
command (services/intake.py) whose receipt — source `http:<principal>`, the key as command id —
is stored in the same write as its events, so a second application collides and records
nothing. The same answer: the first response is kept here, in a table beside the store (on
SQLite a file next to it, on PostgreSQL a table in the store's schema), for `ttl` (24 hours by
default); a retry within it is answered from it, marked `Idempotent-Replayed: true`. A key
sent again with another request is refused (422); a retry after the kept answer expired, or
one racing the first, finds the receipt and is answered 409 with when it was applied.

The request is noted before its command is applied (`pending`: its fingerprint, no answer),
so a retry after an answer lost between the commit and its keeping is known to be the same
request, and answered as applied from the receipt (infra/http/applied_before.py, decision
0047). An answer replaces the note; a note never replaces an answer.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson
import psycopg
from psycopg import sql

MAX_KEY = 200
TTL = timedelta(hours=24)
ANSWERS = "http-answers"  # the SQLite file beside the store: `<store file>.http-answers`
PENDING = 0  # the status of a request noted before its command is applied: no answer yet


@dataclass(frozen=True)
class Kept:
    fingerprint: str
    status: int
    body: bytes
    location: str | None
    created_at: datetime
    etag: str | None = None  # the answer's ETag, replayed with it (none kept before 12-05)

    @property
    def pending(self) -> bool:
        """Kept before its command was applied: what the request was, no answer yet."""
        return self.status == PENDING


def pending(fingerprint: str) -> Kept:
    """The note kept of a keyed request before its command is applied: a retry after the
    answer was lost is told whether it is the same request (infra/http/applied_before.py).
    Kept answers replace it; it never replaces one."""
    return Kept(fingerprint, PENDING, b"", None, datetime.now(UTC))


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests the same request: method, path and body."""
    return hashlib.sha256(orjson.dumps([method, path, body.decode("utf-8", "replace")])).hexdigest()


class IdempotencyStore(Protocol):
    def get(self, principal: str, key: str) -> Kept | None: ...

    def put(self, principal: str, key: str, kept: Kept) -> None: ...

    def close(self) -> None: ...


class SQLiteIdempotency:
    """The kept answers in a SQLite file of their own (the store's writer lock stays free)."""

    def __init__(self, path: Path, ttl: timedelta = TTL) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS idempotency (principal TEXT NOT NULL, key TEXT NOT "
            "NULL, fingerprint TEXT NOT NULL, status INTEGER NOT NULL, body BLOB NOT NULL, "
            "location TEXT, created_at TEXT NOT NULL, etag TEXT, PRIMARY KEY (principal, key))"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(idempotency)")}
        if "etag" not in columns:  # a file kept before answers kept their ETag
            self._db.execute("ALTER TABLE idempotency ADD COLUMN etag TEXT")

    def get(self, principal: str, key: str) -> Kept | None:
        with self._lock:
            row = self._db.execute(
                "SELECT fingerprint, status, body, location, created_at, etag FROM "
                "idempotency WHERE principal = ? AND key = ?",
                (principal, key),
            ).fetchone()
        if row is None:
            return None
        created = datetime.fromisoformat(row[4])
        kept = Kept(row[0], row[1], bytes(row[2]), row[3], created, row[5])
        return kept if datetime.now(UTC) - kept.created_at < self.ttl else None

    def put(self, principal: str, key: str, kept: Kept) -> None:
        expired = (datetime.now(UTC) - self.ttl).isoformat()
        with self._lock:
            self._db.execute("DELETE FROM idempotency WHERE created_at < ?", (expired,))
            self._db.execute(
                "INSERT INTO idempotency (principal, key, fingerprint, status, body, location, "
                "created_at, etag) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (principal, key) "
                "DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status, "
                "body = excluded.body, location = excluded.location, created_at = "
                "excluded.created_at, etag = excluded.etag WHERE idempotency.status = 0",
                (
                    principal,
                    key,
                    kept.fingerprint,
                    kept.status,
                    kept.body,
                    kept.location,
                    kept.created_at.isoformat(),
                    kept.etag,
                ),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresIdempotency:
    """The kept answers in a table in the store's schema, on a connection of their own, made
    again if the server dropped it (a restart, a network cut); a lookup or a keeping that met
    the drop is run once more (each may run twice: a keeping inserts unless kept)."""

    def __init__(self, conninfo: str, schema: str, ttl: timedelta = TTL) -> None:
        from infra.store.pg_pool import KeptConnection

        self.ttl = ttl
        self.conninfo = conninfo
        self.table = sql.Identifier(schema, "backcheck_http_idempotency")
        self._db = KeptConnection(conninfo)
        self._db.run(
            lambda db: db.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (principal text NOT NULL, key text NOT NULL, "
                    "fingerprint text NOT NULL, status integer NOT NULL, body bytea NOT NULL, "
                    "location text, created_at timestamptz NOT NULL, etag text, "
                    "PRIMARY KEY (principal, key))"
                ).format(self.table)
            )
        )
        self._db.run(  # a table kept before answers kept their ETag
            lambda db: db.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS etag text").format(self.table)
            )
        )

    def get(self, principal: str, key: str) -> Kept | None:
        row = self._db.run(
            lambda db: db.execute(
                sql.SQL(
                    "SELECT fingerprint, status, body, location, created_at, etag FROM {} "
                    "WHERE principal = %s AND key = %s AND created_at > %s"
                ).format(self.table),
                (principal, key, datetime.now(UTC) - self.ttl),
            ).fetchone()
        )
        return None if row is None else Kept(row[0], row[1], bytes(row[2]), *row[3:6])

    def put(self, principal: str, key: str, kept: Kept) -> None:
        self._db.run(lambda db: self._put(db, principal, key, kept))

    def _put(self, db: psycopg.Connection[Any], principal: str, key: str, kept: Kept) -> None:
        db.execute(
            sql.SQL("DELETE FROM {} WHERE created_at < %s").format(self.table),
            (datetime.now(UTC) - self.ttl,),
        )
        db.execute(
            sql.SQL(
                "INSERT INTO {} (principal, key, fingerprint, status, body, location, "
                "created_at, etag) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT "
                "(principal, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = "
                "excluded.status, body = excluded.body, location = excluded.location, "
                "created_at = excluded.created_at, etag = excluded.etag WHERE {}.status = 0"
            ).format(self.table, self.table),
            (
                principal,
                key,
                kept.fingerprint,
                kept.status,
                kept.body,
                kept.location,
                kept.created_at,
                kept.etag,
            ),
        )

    def close(self) -> None:
        self._db.close()


def kept_answers(
    backend: str, sqlite_store: Path | None, conninfo: str, schema: str
) -> IdempotencyStore:
    """The store of kept answers beside the event store: a file next to a SQLite store, a
    table in a PostgreSQL store's schema."""
    if backend == "sqlite" and sqlite_store is not None:
        return SQLiteIdempotency(sqlite_store.with_name(f"{sqlite_store.name}.{ANSWERS}"))
    return PostgresIdempotency(conninfo, schema)
