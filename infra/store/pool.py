"""SQLite connections that keep their prepared statements.

The library opens its SQLite connections with `cached_statements=True`, which `sqlite3` takes
as a cache of one statement. A write of ours sends five (BEGIN, the events' INSERT, the
chain head's SELECT, the links' INSERT, COMMIT) and a view read two, so each was prepared
afresh every time: about a third of the CPU a one-event write cost on this machine
(244 → 152 µs in the write's statements). Connections here are opened as the library opens
them, with room for the statements they use.

`PERSISTENCE_MODULE=infra.store.pool:Factory` makes the library's SQLite factory use them
for the event store (infra/config); the views, the relay's state and the workers' views
open a `Datastore` of this module directly. Processes opening a new file together (workers
started at once) each put it in WAL mode, waiting for one another; a transaction that reads
before it writes begins IMMEDIATE (`WriteTransaction`, decision 0053).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from eventsourcing.persistence import InterfaceError
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
    SQLiteTransaction,
)
from eventsourcing.utils import Environment, EnvType

from domain.errors import PickledAsItIs
from infra.config.parsing import ConfigError

STATEMENTS_KEPT = 64  # a connection's prepared statements, least recently used dropped
NO_STORE = "no store there (BACKCHECK_DATABASE_URL, else DATA_DIR/backcheck.sqlite)"


class NotAStoreError(PickledAsItIs, ValueError):
    """A file where the store should be that is not one: not an SQLite database, damaged, or
    without the store's events table (empty, or another program's database)."""

    def __init__(self, path: str | Path, why: str) -> None:
        self.path = str(path)
        super().__init__(
            f"{path} is not a backcheck store: {why}; check BACKCHECK_DATABASE_URL, or "
            "restore the file from a backup"
        )


def existing_store(path: str | Path) -> str:
    """`path`, once a SQLite store is there. What only reads a store (a verification, a
    replay, a recorded read, an export) says where it looked, FileNotFoundError naming the
    path (exit 74), rather than make an empty store there, or pass on SQLite's 'unable to open
    database file' when it opens the file read-only; and NotAStoreError for a file that holds
    no store, rather than add the store's tables to it."""
    if os.path.isdir(path):  # a setting that cannot be used, as for a command that writes
        raise ConfigError(
            f"BACKCHECK_DATABASE_URL (else DATA_DIR/backcheck.sqlite): {path} is a directory; "
            "name the store file"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, NO_STORE, str(path))
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stored_events'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        if damaged(e):
            raise NotAStoreError(path, f"not an SQLite database, or a damaged one ({e})") from None
        # the file is a store that cannot be opened here (read-only, not ours, a full disk):
        # the same error as a command that writes meets, the file and why named
        e.args = (f"{path}: {e}{why_unopened(path)}",)
        raise
    if found is None:
        raise NotAStoreError(path, "it holds no events table (an empty file, or another database)")
    return str(path)


SQLITE_BUSY = 5  # a primary result code: locked by another connection
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26  # primary result codes: a damaged file, not a database


class NotAViewsFileError(NotAStoreError):
    """A file where the store's read views should be that is not an SQLite database, or a
    damaged one. The views are made from the store's events, so nothing is lost with it."""

    def __init__(self, path: str | Path, why: str) -> None:
        self.path = str(path)
        ValueError.__init__(
            self,
            f"{path}, the store's read views, is not an SQLite database, or a damaged one "
            f"({why}); the views are made from the store's events: move the file aside and "
            "run `backcheck views rebuild`",
        )


def damaged(error: BaseException) -> bool:
    """Whether SQLite found the file behind `error` not a database, or damaged (the library
    wraps sqlite3's errors, or not)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, sqlite3.Error):
            code = getattr(seen, "sqlite_errorcode", None)
            if code is not None and code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB):
                return True
        seen = seen.__cause__ or seen.__context__
    return False


def why_unopened(path: str | Path) -> str:
    """What the system says about a store file SQLite could not open, beyond SQLite's own
    words ('unable to open database file', 'disk I/O error'): even to read a store in WAL mode
    SQLite makes its `-shm` file beside it, so a directory that cannot be written, or a full
    disk, stops a read too."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and not os.access(path, os.R_OK):
        return "; it cannot be read by this user"
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"; its directory {folder} cannot be written (read-only, or not this user's), and "
            "SQLite keeps its -wal and -shm files beside the store, also to read it"
        )
    try:
        if os.statvfs(folder).f_bavail == 0:
            return f"; the disk holding {folder} is full"
    except OSError:
        pass
    return ""


SQLITE_ERROR = 1  # a primary result code: SQL refused ("no such table: T", among others)
NO_SUCH_TABLE = "no such table: "


def named_missing_table(error: BaseException | None, path: str | None) -> None:
    """`error`, if it is SQLite's saying a table is missing (`no such table: T`), says which
    file lacks it too (and keeps the file as `database`): SQLite's words name the table only,
    and the store and the views beside it are files of their own (infra/problem.py tells a
    views file's missing table from the store's by it)."""
    if (
        path is not None
        and isinstance(error, sqlite3.Error)
        and _result_code(error) == SQLITE_ERROR
        and str(error).startswith(NO_SUCH_TABLE)
    ):
        error.args = (f"{path}: {error}",)
        setattr(error, "database", path)  # noqa: B010  (sqlite3's errors declare no such field)


def _named(error: BaseException, path: str) -> None:
    """`error`, an SQLite error about the file at `path`, says which file (its type and
    result code stay as they were: they decide its problem, and whether waiting may cure it)."""
    if not str(error).startswith(path):
        error.args = (f"{path}: {error}{why_unopened(path)}",)


class NamedTransaction(SQLiteTransaction):
    """The library's transaction (its errors mapped the same way), a missing table's error
    naming the file (`named_missing_table`): only when it fails, so it costs nothing else."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_val is not None:
            named_missing_table(exc_val, getattr(self.connection, "db_name", None))
        super().__exit__(exc_type, exc_val, exc_tb)


class Connection(SQLiteConnection):
    """The library's connection, knowing its file: its transactions are `NamedTransaction`s."""

    def __init__(self, sqlite_conn: sqlite3.Connection, max_age: float | None, db_name: str):
        super().__init__(sqlite_conn=sqlite_conn, max_age=max_age)
        self.db_name = db_name

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[SQLiteCursor]:
        with NamedTransaction(self, commit=commit) as curs, curs:
            yield curs


class CachingPool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        """The library's connection (autocommit, WAL mode, rows by name), keeping
        `STATEMENTS_KEPT` prepared statements instead of one."""
        try:
            c = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                cached_statements=STATEMENTS_KEPT,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as e:
            if isinstance(e, sqlite3.Error) and not self.is_sqlite_memory_mode:
                _named(e, self.db_name)
            raise InterfaceError(e) from e
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            try:  # the first statement: where a file that cannot be used is found
                if not _in_wal_mode(c):
                    self._switch_to_wal(c)
            except sqlite3.Error as e:
                c.close()
                _named(e, self.db_name)
                raise
            self.is_journal_mode_wal = True
        c.row_factory = sqlite3.Row
        return Connection(c, self.max_age, self.db_name)

    def _switch_to_wal(self, c: sqlite3.Connection) -> None:
        """A file in rollback mode (a new one) put in WAL mode, waiting for others doing the
        same. Processes opening a new file at once (workers started together on a new store)
        each find it in rollback mode and switch it; a switch that meets another's is refused
        at once ("database is locked": SQLite lets no connection that reads and wants to
        write wait for another that may wait for it in turn). Tried again, for as long as
        the lock timeout, until this or another's switch is done."""
        deadline = time.monotonic() + (self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT)
        while True:
            try:
                c.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as e:
                if _result_code(e) != SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
                if _in_wal_mode(c):
                    return  # another process switched it
            else:
                self.journal_mode_was_changed_to_wal = True
                return


def _in_wal_mode(c: sqlite3.Connection) -> bool:
    return str(c.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"


def _result_code(error: sqlite3.Error) -> int | None:
    """SQLite's primary result code of `error` (None if sqlite3 gave none)."""
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


class WriteTransaction(NamedTransaction):
    """The library's transaction (its errors mapped the same way), begun IMMEDIATE: it takes
    the file's write lock at once, waiting for it as long as the lock timeout allows. Begun
    DEFERRED, a transaction that reads before it writes (a batch of view rows, the store's
    set-up looking for its tables) is refused at once with "database is locked" if another
    connection committed in between: SQLite cannot upgrade a stale snapshot to a write, so it
    does not wait."""

    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        return cursor


@contextmanager
def write_transaction(datastore: SQLiteDatastore) -> Iterator[SQLiteCursor]:
    """A `WriteTransaction` on the datastore's writer connection, committed at the end."""
    with (
        datastore.get_connection(commit=True) as conn,
        WriteTransaction(conn, commit=True) as cursor,
        cursor,
    ):
        yield cursor


class Datastore(SQLiteDatastore):
    """The library's SQLite datastore, on a `CachingPool`."""

    def __init__(self, db_name: str, **kwargs: Any) -> None:
        super().__init__(db_name, **kwargs)  # its pool opens nothing until asked
        pooled = {k: kwargs[k] for k in _POOL_ARGS if k in kwargs}
        self.pool = CachingPool(db_name=db_name, **pooled)


_POOL_ARGS = ("lock_timeout", "pool_size", "max_overflow", "pool_timeout", "max_age", "pre_ping")


class Factory(SQLiteFactory):
    """The library's SQLite persistence, on a `Datastore` of this module."""

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        made = self.datastore
        self.datastore = Datastore(
            made.pool.db_name,
            lock_timeout=made.pool.lock_timeout,
            single_row_tracking=made.single_row_tracking,
            originator_id_type=made.originator_id_type,
        )
