"""Views on SQLite: a file of their own next to the event store (infra/config names it)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteTrackingRecorder

from infra.config.parsing import ConfigError
from infra.privacy.sealing import Sealer
from infra.store.filelock import for_database, running_alone
from infra.store.pool import (
    Datastore,
    NotAViewsFileError,
    WriteTransaction,
    damaged,
    write_transaction,
)
from infra.store.statements import chunks, values
from infra.views.codec import Codec, Parsed
from infra.views.kept import Kept
from infra.views.runner import Decode, Log, ViewRunner
from infra.views.store import BatchRows, Dumped, Key, Projection, Run, Stored, refused_because

# A page of one view: a range of the primary key (view, key), read in its order, so a page
# costs what its rows do, however many the view holds (tests/integration/test_lists.py).
PAGE_SQL = (
    "SELECT key, subject, doc, mac FROM view_rows WHERE view=? AND key>? ORDER BY key LIMIT ?"
)
# One subject's rows of a view, by the subject index, named: without statistics SQLite takes
# the primary key's `view=?` instead and walks every row of the view (at a million events,
# 60 ms for a candidate's one consent, on every read decided). In a WITHOUT ROWID table the
# index holds the primary key after its own columns, so the rows come in key order, unsorted.
SUBJECT_SQL = (
    "SELECT key, doc, mac FROM view_rows INDEXED BY view_rows_by_subject "
    "WHERE subject=? AND view=? ORDER BY key"
)


# A rebuild writes into a table aside (`start_aside`), without the subject index, which it
# makes once, in the swap that puts the table in the live one's place (`swap_aside`).
ASIDE = "view_rows_aside"
RETIRED = "view_rows_retired"  # the rows a swap put out of use, let go a batch at a time
ROWS_COLUMNS = (
    "(view TEXT NOT NULL, key TEXT NOT NULL, subject TEXT NOT NULL, doc BLOB NOT NULL, "
    "mac BLOB, PRIMARY KEY (view, key)) WITHOUT ROWID"
)
SUBJECT_INDEX = "CREATE INDEX IF NOT EXISTS view_rows_by_subject ON view_rows (subject, view)"
# The same in the table aside, which has no subject index while a rebuild fills it: the
# view's range of the primary key, filtered (erasures alone ask, of the case views).
ASIDE_SUBJECT_SQL = f"SELECT key, doc, mac FROM {ASIDE} WHERE view=? AND subject=? ORDER BY key"


class SQLiteViewStore(SQLiteTrackingRecorder):
    """Views in their own SQLite file next to the event store: rebuildable, so writes are not
    synced to disk one by one (a crash loses at most the tail, which the runner replays)."""

    def __init__(self, datastore: SQLiteDatastore, codec: Codec) -> None:
        super().__init__(datastore)
        self.codec = codec
        # several processes may apply to one views file (runners, workers): infra/store/filelock.py
        self.writer_lock = for_database(datastore.pool.db_name)

    def create_table(self) -> None:
        """Under the writer lock: the library looks for its tracking table before it opens
        the transaction that creates it, so two processes starting together (two workers)
        could both create it and both record its migration, and the second would fail."""
        with self.writer_lock.held():
            self._restore_migration_marker()
            lost = self._rows_table_lost()
            super().create_table()
            if lost:  # made again empty: the views apply the log again from its start
                with write_transaction(self.datastore) as c:
                    c.execute(
                        "DELETE FROM tracking WHERE application_name != ?",
                        (self.table_migration_identifier,),
                    )
            self._add_macs()

    def _rows_table_lost(self) -> bool:
        """Whether the rows' table is gone (dropped by hand) while the tracking table still
        says how far the views stand: made again empty, the views would be tracked as holding
        every event and hold none."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name IN ('view_rows', 'tracking')"
            )
            return {r[0] for r in c.fetchall()} == {"tracking"}

    def _add_macs(self) -> None:
        """A views file written before rows carried a MAC (`integrity.py`): its rows are
        dropped, with their tracking, and the column added; the runner writes them again from
        the event store, each with its MAC (views are rebuildable; none is trusted unsealed)."""
        with self.datastore.transaction(commit=True) as c:
            c.execute("SELECT name FROM pragma_table_info('view_rows')")
            if "mac" in {r[0] for r in c.fetchall()}:
                return
            c.execute("DELETE FROM view_rows")
            c.execute(
                "DELETE FROM tracking WHERE application_name != ?",
                (self.table_migration_identifier,),
            )
            c.execute("ALTER TABLE view_rows ADD COLUMN mac BLOB")

    def _restore_migration_marker(self) -> None:
        """A views file whose tracking table lost the library's migration marker (cleared by a
        rebuild before the clear kept it) after the library had migrated it once: the table is
        single-row already, and the library would migrate it again, renaming it onto the
        `old1_tracking` it left the first time, and fail. Put the marker back instead."""
        marker = self.table_migration_identifier
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name IN ('tracking', 'old1_tracking')"
            )
            both = len(c.fetchall()) == 2
            if (
                self.datastore.single_row_tracking
                and both
                and self._max_tracking_id(marker, c) is None
            ):
                c.execute("INSERT INTO tracking VALUES (?, 1)", (marker,))

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS view_rows {ROWS_COLUMNS}",
            SUBJECT_INDEX,
        ]

    def apply(
        self,
        events: Sequence[tuple[int, Any]],
        tracking: Tracking,
        projection: Projection,
        stored: Stored | None = None,
    ) -> set[Key]:
        return self.apply_tracked([(events, tracking)], projection, stored)

    def apply_tracked(
        self, runs: Sequence[Run], projection: Projection, stored: Stored | None = None
    ) -> set[Key]:
        with self.writer_lock.held():
            return self._apply_tracked(runs, projection, stored)

    def _apply_tracked(
        self, runs: Sequence[Run], projection: Projection, stored: Stored | None
    ) -> set[Key]:
        with self.datastore.get_connection(commit=True) as conn:
            conn.cursor().execute("PRAGMA synchronous=NORMAL")  # per connection, outside a txn
            with WriteTransaction(conn, commit=True) as c, c:
                self._refuse_applied(c, runs)
                rows = BatchRows(_SQLiteReads(c), self.codec, stored)
                rows.project(runs, projection)
                self._write(c, rows)
                for _, tracking in runs:
                    self._insert_tracking(c, tracking)
        return rows.touched()

    def _refuse_applied(self, c: SQLiteCursor, runs: Sequence[Run]) -> None:
        """A run another process applied (any of it) while this one waited for the lock is
        refused before it is projected (`Advance`)."""
        for _, tracking in runs:
            why = refused_because(tracking, self._max_tracking_id(tracking.application_name, c))
            if why is not None:
                raise IntegrityError(why)

    def _write(self, c: Any, rows: BatchRows, table: str = "view_rows") -> None:
        upserts: list[tuple[str, str, str, bytes, bytes | None]] = []
        for view, key, subject, data, mac in rows.dirty():
            if data is None or subject is None:
                c.execute(f"DELETE FROM {table} WHERE view=? AND key=?", (view, key))
            else:
                upserts.append((view, key, subject, data, mac))
        for chunk in chunks(upserts, 5):  # each key once: dirty() yields a row's last state
            c.execute(
                f"INSERT INTO {table} {values(5, len(chunk))} ON CONFLICT (view, key) "
                "DO UPDATE SET subject=excluded.subject, doc=excluded.doc, mac=excluded.mac",
                [value for row in chunk for value in row],
            )

    # --- a rebuild, aside ------------------------------------------------------------------

    def rebuilding(self) -> AbstractContextManager[None]:
        """A lock file beside the views file, held for the rebuild (the kernel lets it go if
        the process dies): a second rebuild would drop the first's table aside, make it again
        and write into it too."""
        path = Path(f"{self.datastore.pool.db_name}.rebuild-lock")
        return running_alone(
            path, f"rebuild of the views in {path.name.removesuffix('.rebuild-lock')}"
        )

    def start_aside(self) -> None:
        """An empty table aside for a rebuild (one left by a rebuild cut off is dropped)."""
        self._drop_retired()
        with self.writer_lock.held(), write_transaction(self.datastore) as c:
            c.execute(f"DROP TABLE IF EXISTS {ASIDE}")
            c.execute(f"CREATE TABLE {ASIDE} {ROWS_COLUMNS}")

    def apply_aside(
        self, events: Sequence[tuple[int, Any]], projection: Projection, stored: Stored
    ) -> None:
        """The events projected into the table aside, in one transaction; no tracking (the
        swap records the position)."""
        with self.writer_lock.held(), self.datastore.get_connection(commit=True) as conn:
            conn.cursor().execute("PRAGMA synchronous=NORMAL")  # per connection, outside a txn
            with WriteTransaction(conn, commit=True) as c, c:
                rows = BatchRows(_SQLiteReads(c, ASIDE), self.codec, stored)
                rows.project([(events, Tracking("", 0))], projection)
                self._write(c, rows, ASIDE)

    def swap_aside(self, name: str, position: int) -> bool:
        """The table aside, holding every event through `position`, made the views, tracked
        by `name` at `position`, in one transaction under the writer lock: readers see the old
        rows until it commits, the new ones after. Not while another runner has applied past
        `position` to the live rows (False: the rebuild catches up and asks again)."""
        with self.writer_lock.held(), write_transaction(self.datastore) as c:
            if (self._max_tracking_id(name, c) or 0) > position:
                return False
            # the old rows retired, not dropped here: dropping a table frees every page of it
            # (seconds a million rows), the writer lock held throughout; `_drop_retired` lets
            # them go a batch at a time after. Its index goes now: the new one takes its name.
            c.execute("DROP INDEX IF EXISTS view_rows_by_subject")
            c.execute(f"ALTER TABLE view_rows RENAME TO {RETIRED}")
            c.execute(f"ALTER TABLE {ASIDE} RENAME TO view_rows")
            c.execute(SUBJECT_INDEX)
            c.execute(
                "DELETE FROM tracking WHERE application_name != ?",
                (self.table_migration_identifier,),
            )
            if position:
                self._insert_tracking(c, Tracking(name, position))
        self._drop_retired()
        return True

    def _drop_retired(self, batch: int = 20_000) -> None:
        """The rows a swap retired (or a rebuild cut off while letting them go) deleted
        `batch` at a time, each in a transaction of its own (at most about 0.2 s of the
        writer lock on the 50k-event bench store), then their empty table dropped."""
        while True:
            with self.writer_lock.held(), write_transaction(self.datastore) as c:
                c.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (RETIRED,))
                if not c.fetchall():
                    return
                c.execute(
                    f"DELETE FROM {RETIRED} WHERE (view, key) IN "
                    f"(SELECT view, key FROM {RETIRED} LIMIT ?)",
                    (batch,),
                )
                if c.sqlite_cursor.rowcount == 0:
                    c.execute(f"DROP TABLE {RETIRED}")
                    return

    def drop_aside(self) -> None:
        with self.writer_lock.held(), write_transaction(self.datastore) as c:
            c.execute(f"DROP TABLE IF EXISTS {ASIDE}")

    def get_parsed(self, view: str, key: str) -> Parsed | None:
        with self.datastore.transaction(commit=False) as c:
            found = _SQLiteReads(c).select_one(view, key)
        return self._parsed(view, key, *found) if found else None

    def of_subject_parsed(self, view: str, subject: str) -> list[Parsed]:
        with self.datastore.transaction(commit=False) as c:
            found = _SQLiteReads(c).select_subject(view, subject)
        return [self._parsed(view, key, subject, data, mac) for key, data, mac in found]

    def page_parsed(self, view: str, after: str | None, limit: int) -> list[Parsed]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(PAGE_SQL, (view, after or "", limit))
            found = [(r[0], r[1], r[2], r[3]) for r in c.fetchall()]
        return [self._parsed(view, key, subject, data, mac) for key, subject, data, mac in found]

    def _parsed(self, view: str, key: str, subject: str, data: bytes, mac: bytes | None) -> Parsed:
        return Parsed.of(key, subject, self.codec.verified(view, key, subject, data, mac))

    def dump(self) -> list[Dumped]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT view, key, subject, doc, mac FROM view_rows ORDER BY view, key")
            found = [tuple(r) for r in c.fetchall()]
        codec = self.codec
        return [
            (v, k, s, codec.decode(v, k, s, codec.verified(v, k, s, d, m)))
            for v, k, s, d, m in found
        ]

    def counts(self) -> dict[str, int]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT view, COUNT(*) FROM view_rows GROUP BY view ORDER BY view")
            return {r[0]: r[1] for r in c.fetchall()}

    def progress(self) -> dict[str, int]:
        """Each tracked name (a runner, or a worker's partition) and the position it reached."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT application_name, MAX(notification_id) FROM tracking "
                "WHERE application_name != '__migration__' "
                "GROUP BY application_name ORDER BY application_name"
            )
            return {r[0]: r[1] for r in c.fetchall()}

    def clear(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("DELETE FROM view_rows")
            # the library's migration marker stays: without it the next open migrates again
            c.execute(
                "DELETE FROM tracking WHERE application_name != ?",
                (self.table_migration_identifier,),
            )


class _SQLiteReads:
    exact = True  # a document comes back as the bytes written

    def __init__(self, cursor: Any, table: str = "view_rows") -> None:
        self.c = cursor
        self.table = table

    def select_one(self, view: str, key: str) -> tuple[str, bytes, bytes | None] | None:
        self.c.execute(
            f"SELECT subject, doc, mac FROM {self.table} WHERE view=? AND key=?", (view, key)
        )
        row = self.c.fetchone()
        return (row[0], row[1], row[2]) if row else None

    def select_subject(self, view: str, subject: str) -> list[tuple[str, bytes, bytes | None]]:
        if self.table == ASIDE:  # no subject index yet: the view's range of the primary key
            self.c.execute(ASIDE_SUBJECT_SQL, (view, subject))
        else:
            self.c.execute(SUBJECT_SQL, (subject, view))
        return [(r[0], r[1], r[2]) for r in self.c.fetchall()]


class SQLiteHead:
    """The log's last position, asked on connections of its own (one per thread). Every read
    asks, so it must not queue behind writers for a pooled connection, nor behind other
    readers: in WAL mode a reader sees the last commit without waiting for the one in
    progress. With several processes on the store, a read also asks which kinds of records
    the others wrote (`topics`), on the same connections."""

    def __init__(self, db_name: str, table: str) -> None:
        self.db_name = db_name
        self.sql = f"SELECT MAX(rowid) FROM {table}"
        self.topics_sql = f"SELECT topic FROM {table} WHERE rowid > ? AND rowid <= ?"
        self.local = threading.local()
        self.opened: list[sqlite3.Connection] = []
        self.lock = threading.Lock()

    def __call__(self) -> int | None:
        row = self._conn().execute(self.sql).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def topics(self, after: int, through: int) -> list[str]:
        return [r[0] for r in self._conn().execute(self.topics_sql, (after, through))]

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_name, uri=True, check_same_thread=False)
            self.local.conn = conn
            with self.lock:
                self.opened.append(conn)
        return conn

    def close(self) -> None:
        with self.lock:
            for conn in self.opened:
                conn.close()
            self.opened.clear()


def sqlite_runner(
    kept: Kept,
    log: Log,
    decode: Decode,
    name: str,
    path: str,
    sealer: Sealer | None,
    events: tuple[str, str],
) -> ViewRunner:
    """The in-process runner of `kept` on a views file at `path`, for the log of the SQLite
    event store `events` (its file name, its table). A views file that cannot be one (a
    directory, a file that is not an SQLite database) is named, with what to do: the views
    are made again from the events, where the store's own file would have to be restored."""
    if os.path.isdir(path):
        raise ConfigError(
            f"BACKCHECK_DATABASE_URL (else DATA_DIR/backcheck.sqlite): {path} (the store's "
            "read views, kept beside it) is a directory: move it away (the views are made "
            "again from the store's events)"
        )
    datastore = Datastore(path, lock_timeout=10)
    store = SQLiteViewStore(datastore, kept.codec(sealer))
    try:
        store.create_table()
    except Exception as e:
        datastore.close()
        if damaged(e):
            why = str(e.__cause__ or e).removeprefix(f"{path}: ")
            raise NotAViewsFileError(path, why) from None
        raise
    head = SQLiteHead(*events)

    def close() -> None:
        head.close()
        datastore.close()

    return ViewRunner(name, log, decode, store, kept, on_close=close, head=head, topics=head.topics)
