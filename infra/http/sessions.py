"""The candidate portal's sessions, kept by the server (decision 0040).

`POST /portal/session` exchanges a portal link for a session: a random id
(`secrets.token_urlsafe`, 256 bits) that the browser holds as the portal's cookie and that is
kept here only as its SHA-256, with whom it signs in (the link's principal and candidate), the
SHA-256 of the link it was opened with (what the principal's record keeps of it), and when it
ends: at the link's expiry, or `limit` after it opened (8 hours by default,
BACKCHECK_PORTAL_SESSION_LIMIT), whichever comes first; or sooner, `idle` after its last call
(30 minutes by default, BACKCHECK_PORTAL_SESSION_IDLE; a call is written down at most once a
minute, so a session may end up to a minute before that); or when the candidate signs out,
which deletes it. Every call made with it checks the link too (infra/http/auth.py): a link
revoked, replaced or expired since ends the session with it.

A session that ends otherwise than by signing out is found ended later, and its end is then
recorded (decision 0056) by whoever the portal installs as `record_ended`: at the next call
made with its cookie; at the next sign-in of anyone, which first takes every session that has
ended (`MAX_SWEPT` at a time); and when a new session is opened in its browser (`replace`).
Each is taken out of the table as it is found, in one statement (`DELETE ... RETURNING`), so
one finder alone records it, even with several servers on one table. One whose record fails
(the store busy or away) is put back, ended, to be recorded when next found.

The sessions are kept beside the kept `Idempotency-Key` answers (infra/http/idempotency.py): on
SQLite in the table `portal_sessions` of the same file next to the store
(`<store file>.http-answers`), on PostgreSQL in `backcheck_portal_sessions` in the store's
schema, each made when first opened. Nothing kept here signs anyone in: a session is found by
the hash of its id, and the hash of a link establishes no one without the link.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, LiteralString, Protocol

import psycopg
from psycopg import sql

from infra.config import Settings
from infra.http.idempotency import ANSWERS
from services.dto import MAX_SESSION_ENDS

log = logging.getLogger(__name__)

IDLE = timedelta(minutes=30)
LIMIT = timedelta(hours=8)
TOUCH = timedelta(minutes=1)  # a call moves the session's last call on at most this often
MAX_ID = 256  # a cookie longer than this is no session id of ours: looked up not at all
MAX_SWEPT = MAX_SESSION_ENDS  # sessions found ended a sign-in takes and records, at most
MAX_ERROR_SHOWN = 300  # characters of an error's text in the line that says it
TABLE = "backcheck_portal_sessions"  # on PostgreSQL, in the store's schema
_COLUMNS = "principal, candidate_id, link_hash, opened_at, last_seen, ends_at"


@dataclass(frozen=True)
class Session:
    """Whom a session signs in, with what, and for how long."""

    principal: str  # the link's principal, candidate:<id>
    candidate_id: str
    link_hash: str  # the SHA-256 of the link it was opened with, as the principal's record
    opened_at: datetime
    last_seen: datetime  # its last call (to within TOUCH)
    ends_at: datetime  # the link's expiry or opened_at + limit, whichever is first

    def lasts(self, now: datetime, idle: timedelta) -> bool:
        return now < self.ends_at and now < self.last_seen + idle


@dataclass(frozen=True)
class Ended:
    """A session taken out of the table as ended (`key`: the SHA-256 of its id), and when a
    new session replaced it in its browser, if that is what ended it."""

    key: str
    session: Session
    replaced_at: datetime | None = None


class SessionRows(Protocol):
    """One backend's table of sessions, each by the SHA-256 of its id (`key`)."""

    def insert(self, key: str, session: Session) -> None: ...

    def get(self, key: str) -> Session | None: ...

    def touch(self, key: str, at: datetime) -> None: ...

    def delete(self, key: str) -> None: ...

    def take(self, key: str) -> Session | None:
        """Deletes the session, returning it if it was there: of two takers, one gets it."""

    def take_ended(self, now: datetime, idle: timedelta, limit: int) -> list[tuple[str, Session]]:
        """Deletes up to `limit` sessions that have ended, returning each (with its key)."""

    def close(self) -> None: ...


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


@dataclass(eq=False)
class PortalSessions:
    """The sessions' rules, on one backend's rows: opened, found while they last, ended."""

    rows: SessionRows
    idle: timedelta = IDLE
    limit: timedelta = LIMIT
    # records the sessions found ended (the portal installs it: infra/http/portal.py); none:
    # they are deleted unrecorded
    record_ended: Callable[[list[Ended]], None] | None = None

    def open(
        self,
        principal: str,
        candidate_id: str,
        link_hash: str,
        link_expires: datetime | None,
        now: datetime,
    ) -> tuple[str, Session]:
        """A new session for the link's principal and candidate: its id (given out once, to
        be the cookie) and what is kept of it. Sessions that have ended (anyone's, up to
        MAX_SWEPT) are taken out first, and their ends recorded."""
        ends = now + self.limit
        if link_expires is not None:
            ends = min(ends, link_expires)
        session_id = secrets.token_urlsafe(32)
        session = Session(principal, candidate_id, link_hash, now, now, ends)
        swept = self.rows.take_ended(now, self.idle, MAX_SWEPT)
        self._recorded([Ended(key, ended) for key, ended in swept], now)
        self.rows.insert(_key(session_id), session)
        return session_id, session

    def find(self, session_id: str, now: datetime) -> Session | None:
        """The session `session_id` names while it lasts, its last call moved on to `now`;
        None for one that has ended (deleted here), was ended, or never was."""
        if not session_id or len(session_id) > MAX_ID:
            return None
        key = _key(session_id)
        session = self.rows.get(key)
        if session is None:
            return None
        if not session.lasts(now, self.idle):
            taken = self.rows.take(key)  # None: another request took it meanwhile
            if taken is not None:
                self._recorded([Ended(key, taken)], now)
            return None
        if now - session.last_seen >= TOUCH:
            self.rows.touch(key, now)
        return session

    def end(self, session_id: str) -> None:
        """Signs the session out, or ends it with its link: its id signs no one in from now
        on (the sign-out, the link's revocation or replacement, is recorded by its own
        event)."""
        if session_id and len(session_id) <= MAX_ID:
            self.rows.delete(_key(session_id))

    def replace(self, session_id: str, now: datetime) -> None:
        """Ends the session `session_id` names, a new one being opened in its browser (one
        browser, one session): its id signs no one in from now on, and its end is recorded
        (replaced now, or as it had ended before)."""
        if session_id and len(session_id) <= MAX_ID:
            key = _key(session_id)
            taken = self.rows.take(key)
            if taken is not None:
                self._recorded([Ended(key, taken, now)], now)

    def _recorded(self, taken: list[Ended], now: datetime) -> None:
        """`taken`'s ends recorded (`record_ended`). A record that fails (the store busy or
        away) fails nothing else: it is said in one line, and each session that had ended by
        its own rules is put back, to be recorded when next found (it signs no one in); one
        replaced while it lasted is not (it would sign its cookie in again), and its end goes
        unrecorded, bounded by its sign-in's `until`."""
        if not taken or self.record_ended is None:
            return
        try:
            self.record_ended(taken)
        except Exception as error:
            kept = [e for e in taken if not e.session.lasts(now, self.idle)]
            log.error(
                "the ends of %d portal session(s) found ended were not recorded (%s); %d put "
                "back to be recorded when next found",
                len(taken),
                _one_line(error),
                len(kept),
            )
            try:
                for ended in kept:
                    self.rows.insert(ended.key, ended.session)
            except Exception as lost:
                log.error("portal sessions found ended not put back (%s)", _one_line(lost))

    def close(self) -> None:
        self.rows.close()


def _one_line(error: Exception) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= MAX_ERROR_SHOWN else f"{text[:MAX_ERROR_SHOWN]}..."


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class SQLiteSessionRows:
    """The sessions in a table of the kept answers' SQLite file."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(  # moments as seconds since the epoch, compared as numbers
            "CREATE TABLE IF NOT EXISTS portal_sessions (key TEXT PRIMARY KEY, principal TEXT "
            "NOT NULL, candidate_id TEXT NOT NULL, link_hash TEXT NOT NULL, opened_at REAL NOT "
            "NULL, last_seen REAL NOT NULL, ends_at REAL NOT NULL)"
        )

    def insert(self, key: str, session: Session) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO portal_sessions (key, " + _COLUMNS + ") VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    session.principal,
                    session.candidate_id,
                    session.link_hash,
                    session.opened_at.timestamp(),
                    session.last_seen.timestamp(),
                    session.ends_at.timestamp(),
                ),
            )

    def get(self, key: str) -> Session | None:
        with self._lock:
            row = self._db.execute(
                "SELECT " + _COLUMNS + " FROM portal_sessions WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else _session(row)

    def take(self, key: str) -> Session | None:
        with self._lock:
            row = self._db.execute(
                "DELETE FROM portal_sessions WHERE key = ? RETURNING " + _COLUMNS, (key,)
            ).fetchone()
        return None if row is None else _session(row)

    def take_ended(self, now: datetime, idle: timedelta, limit: int) -> list[tuple[str, Session]]:
        with self._lock:
            rows = self._db.execute(
                "DELETE FROM portal_sessions WHERE key IN (SELECT key FROM portal_sessions "
                "WHERE ends_at <= ? OR last_seen <= ? LIMIT ?) RETURNING key, " + _COLUMNS,
                (now.timestamp(), (now - idle).timestamp(), limit),
            ).fetchall()
        return [(row[0], _session(row[1:])) for row in rows]

    def touch(self, key: str, at: datetime) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE portal_sessions SET last_seen = ? WHERE key = ?", (at.timestamp(), key)
            )

    def delete(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM portal_sessions WHERE key = ?", (key,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _session(row: Any) -> Session:
    """A session from its SQLite row (`_COLUMNS`, moments as seconds since the epoch)."""
    return Session(row[0], row[1], row[2], _moment(row[3]), _moment(row[4]), _moment(row[5]))


class PostgresSessionRows:
    """The sessions in a table in the store's schema."""

    def __init__(self, conninfo: str, schema: str) -> None:
        from infra.store.pg_pool import KeptConnection

        self.conninfo = conninfo
        self.table = sql.Identifier(schema, TABLE)
        self._db = KeptConnection(conninfo)
        self._run(
            "CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, principal text NOT NULL, "
            "candidate_id text NOT NULL, link_hash text NOT NULL, opened_at timestamptz NOT "
            "NULL, last_seen timestamptz NOT NULL, ends_at timestamptz NOT NULL)"
        )

    def _run(
        self,
        statement: LiteralString,
        params: tuple[Any, ...] = (),
        one: bool = False,
        every: bool = False,
    ) -> Any:
        """`statement` (its table as `{}`, or `{0}` where it names it twice), on the connection
        made again first if the server dropped it (a restart, a network cut), and run once
        more if it met the drop (each may run twice: a new session's key is random, inserted
        unless there; a take whose answer was lost takes nothing the second time, and that
        session's end goes unrecorded); with `one`, the row it answered, if any; with
        `every`, all of them."""

        def run(db: psycopg.Connection[Any]) -> Any:
            done = db.execute(sql.SQL(statement).format(self.table), params)
            if every:
                return done.fetchall()
            return done.fetchone() if one else None

        return self._db.run(run)

    def insert(self, key: str, session: Session) -> None:
        self._run(
            "INSERT INTO {} (key, " + _COLUMNS + ") VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (key) DO NOTHING",
            (
                key,
                session.principal,
                session.candidate_id,
                session.link_hash,
                session.opened_at,
                session.last_seen,
                session.ends_at,
            ),
        )

    def get(self, key: str) -> Session | None:
        row = self._run("SELECT " + _COLUMNS + " FROM {} WHERE key = %s", (key,), one=True)
        return None if row is None else Session(*row)

    def touch(self, key: str, at: datetime) -> None:
        self._run("UPDATE {} SET last_seen = %s WHERE key = %s", (at, key))

    def delete(self, key: str) -> None:
        self._run("DELETE FROM {} WHERE key = %s", (key,))

    def take(self, key: str) -> Session | None:
        row = self._run("DELETE FROM {} WHERE key = %s RETURNING " + _COLUMNS, (key,), one=True)
        return None if row is None else Session(*row)

    def take_ended(self, now: datetime, idle: timedelta, limit: int) -> list[tuple[str, Session]]:
        # rows another server is taking meanwhile are skipped, not waited for: each is taken,
        # and recorded, by one of them
        rows = self._run(
            "DELETE FROM {0} WHERE key IN (SELECT key FROM {0} WHERE ends_at <= %s OR "
            "last_seen <= %s LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING key, " + _COLUMNS,
            (now, now - idle, limit),
            every=True,
        )
        return [(row[0], Session(*row[1:])) for row in rows]

    def close(self) -> None:
        self._db.close()


def portal_sessions(settings: Settings) -> PortalSessions:
    """The portal's sessions beside the kept answers of `settings`' store (in their file next
    to a SQLite store, in a PostgreSQL store's schema), bounded as configured."""
    rows: SessionRows
    if settings.backend == "sqlite":
        rows = SQLiteSessionRows(settings.after_store(ANSWERS))
    else:
        rows = PostgresSessionRows(settings.postgres_conninfo(), settings.postgres_schema)
    idle = timedelta(seconds=settings.portal_session_idle)
    return PortalSessions(rows, idle, timedelta(seconds=settings.portal_session_limit))
