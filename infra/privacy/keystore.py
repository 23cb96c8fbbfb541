"""Per-subject data keys, wrapped by the master key, in a table of their own.

Personal values are encrypted with a data key per (subject, tier). The data keys are stored
wrapped (AES key wrap, RFC 3394) by a master key that never touches the database. Unlike the
event and chain tables, this table is deletable on purpose: destroying a subject's rows makes
every copy of their personal values unreadable — in the store, in views, on Kafka — while the
hash chain, which covers ciphertext, still verifies (crypto-shredding).

The store is bound to its master key: a key check value (HMAC-SHA256 of a fixed label under
the key, never the key) is recorded in `backcheck_key_check` when the key store is first opened,
and compared on every open after that, so another key is refused before it wraps anything.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from eventsourcing.sqlite import SQLiteDatastore

from infra.config import ConfigError
from infra.store.ddl import serialise_ddl
from infra.store.filelock import for_database

CACHE_SECONDS = 30.0  # how long another process may still use a key after it was destroyed
KEY_CHECK_TABLE = "backcheck_key_check"
# The check value's scheme, stored beside it: a later scheme is a new row, never a changed one.
KEY_CHECK_SCHEME = "hmac-sha256:backcheck master key check v1"

log = logging.getLogger(__name__)


class WrongMasterKeyError(Exception):
    """The master key is not the one this store's data keys are wrapped with: refused before
    anything is written, since a data key wrapped by it could never be opened with the
    store's own key."""

    def __init__(self, reason: str, key_file: Path | None = None) -> None:
        self.reason = reason
        self.key_file = key_file
        key = f"the key in {key_file}" if key_file else "this key"
        super().__init__(
            f"BACKCHECK_MASTER_KEY_FILE: {key} is not this store's master key ({reason}); "
            "nothing was written: point BACKCHECK_MASTER_KEY_FILE at the key the store was "
            "made with"
        )


def key_check_value(master_key: bytes) -> bytes:
    """What the store keeps to know its master key again: an HMAC of a fixed label, equal for
    the same key, different for another, and no help in finding the key."""
    return hmac.new(master_key, KEY_CHECK_SCHEME.encode(), hashlib.sha256).digest()


def load_master_key(path: Path, *, create: bool) -> bytes:
    """32 raw bytes from a file of 64 hex digits; created (mode 600) on first use if allowed.
    A file that others than its owner may read or write is refused, as ssh refuses such a
    private key: whoever can read it can read every personal value in the store."""
    try:
        with path.open("rb") as f:
            refuse_shared(path, os.fstat(f.fileno()).st_mode)
            text = f.read(4096).decode("ascii", "replace").strip()  # a key is 65 bytes
    except FileNotFoundError:
        if not create:
            raise ConfigError(
                f"BACKCHECK_MASTER_KEY_FILE: no master key at {path}; without it no personal "
                "value in this store can be read"
            ) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        # written aside, then linked into place: the link fails if another process (a relay
        # and workers starting together) created the key first, and then its key is the one
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a draft left by a crash keeps its mode through O_TRUNC
        with os.fdopen(fd, "w") as f:
            f.write(key.hex() + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            return load_master_key(path, create=False)
        finally:
            draft.unlink()
        return key
    except OSError as e:  # a directory, no permission to read it
        raise ConfigError(
            f"BACKCHECK_MASTER_KEY_FILE: {path} cannot be read: {e.strerror}"
        ) from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{path}: a master key is 64 hex digits (32 bytes)")
    return key


def refuse_shared(path: Path, mode: int) -> None:
    shared = stat.S_IMODE(mode) & 0o077
    if shared:
        who = " and ".join(
            w for w, bits in (("its group", 0o070), ("everyone", 0o007)) if shared & bits
        )
        raise ConfigError(
            f"BACKCHECK_MASTER_KEY_FILE: {path} may be read or written by {who} "
            f"(mode {stat.S_IMODE(mode):04o}); a master key must be its owner's alone: "
            f"chmod 600 {path}"
        )


class SQLKeyStore:
    """The key table, on the same database as the events (SQLite file or PostgreSQL).

    `connect()` gives a connection for changes that must be durable when they return (a key
    destroyed), `read()` one for lookups, `create()` one for making a key. A new key need not
    be flushed on its own: it is made just before the first events sealed with it are written,
    to the same database, and the commit of those events flushes the log (SQLite's WAL,
    PostgreSQL's WAL) up to and including the key. If they never commit, nothing uses the key.
    That saves a flush per new subject and tier."""

    def __init__(
        self,
        connect: Callable[[], Any],
        placeholder: str,
        master_key: bytes,
        close: Callable[[], None] | None = None,
        read: Callable[[], Any] | None = None,
        create: Callable[[], Any] | None = None,
    ):
        self._connect = connect
        self._read = read or connect
        self._create = create or connect
        self._close = close
        self._p = placeholder
        self._master = master_key
        self._cache: dict[tuple[UUID, str], tuple[float, bytes]] = {}
        self._lock = threading.Lock()
        tables = (
            "CREATE TABLE IF NOT EXISTS backcheck_keys ("
            "subject TEXT NOT NULL, tier TEXT NOT NULL, wrapped BYTEA NOT NULL, "
            "PRIMARY KEY (subject, tier))",
            f"CREATE TABLE IF NOT EXISTS {KEY_CHECK_TABLE} ("
            "scheme TEXT PRIMARY KEY, kcv BYTEA NOT NULL)",
        )
        # one transaction, one process at a time (the store's writer lock on SQLite, the DDL
        # lock on PostgreSQL): processes opening a new store with different keys cannot both
        # bind it, and a refused key leaves nothing behind
        with self._connect() as conn:
            if placeholder == "?":
                for table in tables:
                    conn.execute(table.replace("BYTEA", "BLOB"))
                self._bind_master_key(conn)
            else:
                with conn.transaction():
                    serialise_ddl(conn)
                    for table in tables:
                        conn.execute(table)
                    self._bind_master_key(conn)

    def _bind_master_key(self, conn: Any) -> None:
        """The store is bound to the first master key it is opened with; another is refused.
        A store made before the check (data keys, no check value) is bound by a key that
        unwraps most of its data keys: where a wrong key was accepted before, the few keys it
        wrapped are not the store's."""
        select = self._sql(f"SELECT kcv FROM {KEY_CHECK_TABLE} WHERE scheme = ?")
        row = conn.execute(select, (KEY_CHECK_SCHEME,)).fetchone()
        if row is None:
            self._prove_on_data_keys(conn)
            conn.execute(
                self._sql(
                    f"INSERT INTO {KEY_CHECK_TABLE} (scheme, kcv) VALUES (?, ?) "
                    "ON CONFLICT (scheme) DO NOTHING"
                ),
                (KEY_CHECK_SCHEME, key_check_value(self._master)),
            )
            row = conn.execute(select, (KEY_CHECK_SCHEME,)).fetchone()
        if not hmac.compare_digest(bytes(row[0]), key_check_value(self._master)):
            raise WrongMasterKeyError("the store recorded another key's check value")

    def _prove_on_data_keys(self, conn: Any) -> None:
        total = unwrapped = 0
        for (wrapped,) in conn.execute("SELECT wrapped FROM backcheck_keys").fetchall():
            total += 1
            try:
                aes_key_unwrap(self._master, bytes(wrapped))
            except InvalidUnwrap:
                continue
            unwrapped += 1
        if total and unwrapped * 2 <= total:
            raise WrongMasterKeyError(f"it unwraps {unwrapped} of the store's {total} data keys")
        if unwrapped < total:
            log.warning(
                "%d of this store's %d data keys were wrapped by another master key before "
                "the store was bound to its key; values sealed with them cannot be read",
                total - unwrapped,
                total,
            )

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def _sql(self, text: str) -> str:
        return text.replace("?", self._p)

    def data_key(self, subject: UUID, tier: str, *, create: bool) -> bytes | None:
        """The subject's key for this tier; made on first use when `create`; None if destroyed
        (or never made)."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get((subject, tier))
            if cached and now - cached[0] < CACHE_SECONDS:
                return cached[1]
        select = self._sql("SELECT wrapped FROM backcheck_keys WHERE subject = ? AND tier = ?")
        if not create:
            with self._read() as conn:
                row = conn.execute(select, (str(subject), tier)).fetchone()
            if row is None:
                return None
        else:  # made unless it exists; if another process made it first, theirs is the key
            with self._create() as conn:
                conn.execute(
                    self._sql(
                        "INSERT INTO backcheck_keys (subject, tier, wrapped) VALUES (?, ?, ?) "
                        "ON CONFLICT (subject, tier) DO NOTHING"
                    ),
                    (str(subject), tier, aes_key_wrap(self._master, os.urandom(32))),
                )
                row = conn.execute(select, (str(subject), tier)).fetchone()
        key = aes_key_unwrap(self._master, bytes(row[0]))
        with self._lock:
            self._cache[(subject, tier)] = (now, key)
        return key

    def data_keys(
        self, subject: UUID, scopes: Collection[str], *, create: bool
    ) -> dict[str, bytes]:
        """Several keys of one subject (keys per category: an event's values may need a few),
        looked up in one statement and, when `create`, the missing ones made in one
        transaction rather than one each; those destroyed (or never made) are left out."""
        now = time.monotonic()
        found: dict[str, bytes] = {}
        wanted: list[str] = []
        with self._lock:
            for scope in scopes:
                cached = self._cache.get((subject, scope))
                if cached and now - cached[0] < CACHE_SECONDS:
                    found[scope] = cached[1]
                else:
                    wanted.append(scope)
        if not wanted:
            return found
        marks = ", ".join("?" * len(wanted))
        select = self._sql(
            f"SELECT tier, wrapped FROM backcheck_keys WHERE subject = ? AND tier IN ({marks})"
        )
        if not create:
            with self._read() as conn:
                rows = conn.execute(select, (str(subject), *wanted)).fetchall()
        else:
            insert = self._sql(
                "INSERT INTO backcheck_keys (subject, tier, wrapped) VALUES (?, ?, ?) "
                "ON CONFLICT (subject, tier) DO NOTHING"
            )
            made = [(str(subject), s, aes_key_wrap(self._master, os.urandom(32))) for s in wanted]
            with self._create() as conn:  # one transaction (statements: either backend's API)
                for row in made:
                    conn.execute(insert, row)
                rows = conn.execute(select, (str(subject), *wanted)).fetchall()
        for scope, wrapped in rows:
            key = aes_key_unwrap(self._master, bytes(wrapped))
            found[str(scope)] = key
            with self._lock:
                self._cache[(subject, str(scope))] = (now, key)
        return found

    def destroy(self, subject: UUID, tier: str | tuple[str, ...] | None = None) -> int:
        """Destroys the subject's keys: all, one (a tier's or a category's: the `tier` column
        holds either), or several in one statement (a shredding's keys go together)."""
        scopes = (tier,) if isinstance(tier, str) else tier
        if scopes == ():
            return 0
        with self._lock:
            for k in [k for k in self._cache if k[0] == subject]:
                if scopes is None or k[1] in scopes:
                    del self._cache[k]
        with self._connect() as conn:
            if scopes is None:
                cur = conn.execute(
                    self._sql("DELETE FROM backcheck_keys WHERE subject = ?"), (str(subject),)
                )
            else:
                marks = ", ".join("?" * len(scopes))
                cur = conn.execute(
                    self._sql(
                        f"DELETE FROM backcheck_keys WHERE subject = ? AND tier IN ({marks})"
                    ),
                    (str(subject), *scopes),
                )
            return int(cur.rowcount or 0)

    def count(self) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT COUNT(*) FROM backcheck_keys").fetchone()
        return int(row[0])

    def tiers(self, subject: UUID) -> set[str]:
        with self._read() as conn:
            rows = conn.execute(
                self._sql("SELECT tier FROM backcheck_keys WHERE subject = ?"), (str(subject),)
            ).fetchall()
        return {str(r[0]) for r in rows}

    def has_keys(self, subject: UUID) -> bool:
        with self._read() as conn:
            row = conn.execute(
                self._sql("SELECT 1 FROM backcheck_keys WHERE subject = ? LIMIT 1"),
                (str(subject),),
            ).fetchone()
        return row is not None

    def held(self) -> set[tuple[UUID, str]]:
        """(subject, tier) of every data key in the table (none is unwrapped)."""
        with self._read() as conn:
            rows = conn.execute("SELECT subject, tier FROM backcheck_keys").fetchall()
        return {(UUID(str(r[0])), str(r[1])) for r in rows}


def sqlite_keystore(datastore: SQLiteDatastore, master_key: bytes) -> SQLKeyStore:
    """On the event store's own connection pool: a key write waits for the store's writer in
    this process instead of sleeping in SQLite's busy handler (concurrent registrations had
    been slower than one at a time), and no connection is opened per lookup. Writers of
    other processes are kept apart by the store's writer lock (infra/store/filelock.py)."""
    lock = for_database(datastore.pool.db_name)

    @contextmanager
    def transaction(commit: bool) -> Iterator[sqlite3.Cursor]:
        with lock.held() if commit else nullcontext(), datastore.transaction(commit=commit) as c:
            yield c.sqlite_cursor

    @contextmanager
    def unflushed() -> Iterator[sqlite3.Cursor]:
        # the safety level can only change outside a transaction, on the pool's writer
        with lock.held(), datastore.get_connection(commit=True) as conn:
            conn.cursor().execute("PRAGMA synchronous=NORMAL")  # WAL written, not flushed
            try:
                with conn.transaction(commit=True) as curs:
                    yield curs.sqlite_cursor
            finally:
                conn.cursor().execute("PRAGMA synchronous=FULL")  # the library's default

    return SQLKeyStore(
        lambda: transaction(True),
        "?",
        master_key,
        read=lambda: transaction(False),
        create=unflushed,
    )


def postgres_keystore(conninfo: str, schema: str, master_key: bytes) -> SQLKeyStore:
    """On a small pool of its own: a new connection per key lookup cost ~10 ms a write."""
    from psycopg_pool import ConnectionPool

    pool: ConnectionPool[Any] = ConnectionPool(
        conninfo,
        min_size=1,
        max_size=4,
        kwargs={"autocommit": True, "options": f"-c search_path={schema}"},
        open=True,
        name="backcheck-keys",
    )

    @contextmanager
    def unflushed() -> Iterator[Any]:
        with pool.connection() as conn, conn.transaction():
            conn.execute("SET LOCAL synchronous_commit TO off")
            yield conn

    try:
        return SQLKeyStore(pool.connection, "%s", master_key, close=pool.close, create=unflushed)
    except Exception:
        pool.close()
        raise
