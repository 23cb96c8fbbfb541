"""Durable read views: rows on SQLite or PostgreSQL, written with their tracking position in one
transaction, and the in-process runner that keeps them up to date from the notification log.

The stores are the library's tracking recorders (so `max_tracking_id`, `wait` and the tracking
table are the library's) plus a `view_rows` table. Personal values inside a row are sealed with
the subject's data key for their tier, bound to view, row and path, exactly as in the event
store: destroying the subject's keys makes the views unreadable too, and the projection also
overwrites them on erasure. A value already erased is kept as a marker, never re-sealed (that
would mint a new key for an erased subject).

Within one batch, rows are cached and written once at the end, so a rebuild touches each row
once per batch rather than once per event.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import (
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteTrackingRecorder,
    SQLiteTransaction,
)
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from domain.classification import ERASED_VALUE, WITHHELD_VALUE, PersonalField
from infra.privacy.sealing import Sealer
from infra.store.ddl import SerialisedTrackingDDL
from infra.store.filelock import for_database
from infra.store.pool import Datastore
from infra.store.statements import chunks, values
from projections.read_views import LOG_ONLY_EVENTS, LOG_VIEW, PLAIN_VIEWS, ReadViews
from projections.rows import Doc

Key = tuple[str, str]
Run = tuple[Sequence[tuple[int, Any]], Tracking]  # events (position, event), then their tracking
Progress = Callable[[int, int], None]


class Codec:
    """Documents to stored bytes and back; personal fields sealed per subject, view and row."""

    def __init__(self, sealer: Sealer | None) -> None:
        self.sealer = sealer

    def encode(self, view: str, key: str, subject: str, doc: Doc) -> bytes:
        if view in PLAIN_VIEWS:
            # nothing to seal, so no walk through the row looking for it; a personal value
            # found here after all is refused, never written in plaintext
            return orjson.dumps(doc, option=orjson.OPT_PASSTHROUGH_DATACLASS, default=_unsealed)
        return orjson.dumps(self._seal(doc, "doc", (subject, f"view:{view}:{key}", 0)))

    def decode(self, view: str, key: str, subject: str, data: bytes | str) -> Doc:
        return self.open(view, key, subject, orjson.loads(data))

    def open(self, view: str, key: str, subject: str, parsed: Doc) -> Doc:
        """A parsed row with its personal values opened. Parts without personal values are
        shared with `parsed`, not copied: treat the result as read-only."""
        value: Doc = self.open_value(parsed, "doc", (subject, f"view:{view}:{key}", 0))
        return value

    @staticmethod
    def holds_personal(data: bytes | str) -> bool:
        raw = data.encode() if isinstance(data, str) else data
        # Conservative (a profile's own "erased" flag also matches); PostgreSQL's jsonb
        # text puts a space after the colon, so look for the keys alone.
        return b'"sealed"' in raw or b'"erased"' in raw

    def _seal(self, value: Any, path: str, ctx: tuple[str, str, int]) -> Any:
        if isinstance(value, PersonalField):
            if value.value == ERASED_VALUE:
                return {"name": value.name, "category": value.category, "erased": True}
            if self.sealer is None:
                raise RuntimeError("a view holding personal data needs a sealer")
            return self.sealer.seal_field(value, path, ctx)
        if isinstance(value, dict):
            return {k: self._seal(v, f"{path}.{k}", ctx) for k, v in value.items()}
        if isinstance(value, list):
            return [self._seal(v, f"{path}.{i}", ctx) for i, v in enumerate(value)]
        return value

    def open_value(self, value: Any, path: str, ctx: tuple[str, str, int]) -> Any:
        if isinstance(value, dict):
            if "sealed" in value and self.sealer is not None:
                text = self.sealer.open_field(value, path, ctx)
                return PersonalField(value["name"], value["category"], text)
            if value.get("erased") is True and "category" in value:
                return PersonalField(value["name"], value["category"], ERASED_VALUE)
            return {k: self.open_value(v, f"{path}.{k}", ctx) for k, v in value.items()}
        if isinstance(value, list):
            return [self.open_value(v, f"{path}.{i}", ctx) for i, v in enumerate(value)]
        return value


def _unsealed(value: Any) -> Any:
    kind = "a personal value" if isinstance(value, PersonalField) else type(value).__name__
    raise TypeError(f"{kind} in a view declared to hold none (PLAIN_VIEWS): not written")


Step = str | int


def _envelopes(value: Any, path: tuple[Step, ...] = ()) -> list[tuple[Step, ...]]:
    """Where in a parsed row its personal values (sealed or erased) sit."""
    if isinstance(value, dict):
        if "sealed" in value or (value.get("erased") is True and "category" in value):
            return [path]
        return [p for k, v in value.items() for p in _envelopes(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _envelopes(v, (*path, i))]
    return []


@dataclass(slots=True, eq=False)
class Parsed:
    """A row as stored, parsed but with its personal values still sealed, and where they are."""

    key: str
    subject: str
    doc: Doc
    envelopes: tuple[tuple[Step, ...], ...]
    # The row with every value withheld, made once: it holds names and categories, never a
    # value, and every read is decided on it before anything is opened.
    withheld: Doc | None = field(default=None, repr=False)

    def open(self, view: str, codec: Codec, opening: frozenset[str] | None = None) -> Doc:
        """The row with its personal values opened (only those of the `opening` categories,
        if given; the rest left sealed, as WITHHELD_VALUE): only the containers on the way
        to one are copied, the rest is shared with the cache (read-only)."""
        if not self.envelopes:
            return self.doc
        if opening is not None and not opening:
            if self.withheld is None:
                self.withheld = self._open(view, codec, opening)
            return self.withheld
        return self._open(view, codec, opening)

    def _open(self, view: str, codec: Codec, opening: frozenset[str] | None) -> Doc:
        ctx = (self.subject, f"view:{view}:{self.key}", 0)
        root: Doc = dict(self.doc)
        copied: set[int] = {id(root)}
        for path in self.envelopes:
            parent: Any = root
            for step in path[:-1]:
                child = parent[step]
                if id(child) not in copied:
                    child = dict(child) if isinstance(child, dict) else list(child)
                    copied.add(id(child))
                    parent[step] = child
                parent = child
            envelope = parent[path[-1]]
            if opening is not None and "sealed" in envelope and envelope["category"] not in opening:
                parent[path[-1]] = PersonalField(
                    envelope["name"], envelope["category"], WITHHELD_VALUE
                )
                continue
            where = "doc" + "".join(f".{step}" for step in path)
            parent[path[-1]] = codec.open_value(envelope, where, ctx)
        return root


def _parse(key: str, subject: str, data: bytes | str) -> Parsed:
    doc = orjson.loads(data)
    return Parsed(key, subject, doc, tuple(_envelopes(doc)) if Codec.holds_personal(data) else ())


class _Statements(Protocol):
    def select_one(self, view: str, key: str) -> tuple[str, bytes] | None: ...

    def select_subject(self, view: str, subject: str) -> list[tuple[str, bytes]]: ...


class BatchRows:
    """The `Rows` a projection writes through during one batch: reads fall through to the
    database, writes stay in memory until `dirty()` is flushed with the tracking position."""

    def __init__(self, db: _Statements, codec: Codec) -> None:
        self.db = db
        self.codec = codec
        self.cache: dict[Key, tuple[str, Doc] | None] = {}
        self.changed: set[Key] = set()
        self.deleted_from: set[Key] = set()  # (view, subject) that lost a row

    def touched(self) -> set[Key]:
        """(view, subject) whose rows this batch changed."""
        return {
            (view, row[0])
            for view, key in self.changed
            if (row := self.cache[(view, key)]) is not None
        } | self.deleted_from

    def get(self, view: str, key: str) -> Doc | None:
        if (view, key) not in self.cache:
            found = self.db.select_one(view, key)
            self.cache[(view, key)] = (
                (found[0], self.codec.decode(view, key, found[0], found[1])) if found else None
            )
        row = self.cache[(view, key)]
        return row[1] if row else None

    def put(self, view: str, key: str, subject: UUID, doc: Doc) -> None:
        self.cache[(view, key)] = (str(subject), doc)
        self.changed.add((view, key))

    def delete(self, view: str, key: str) -> None:
        self.get(view, key)  # remember whose row it was, for the runner's cache
        row = self.cache[(view, key)]
        if row is not None:
            self.deleted_from.add((view, row[0]))
        self.cache[(view, key)] = None
        self.changed.add((view, key))

    def of_subject(self, view: str, subject: UUID) -> list[Doc]:
        s = str(subject)
        for key, data in self.db.select_subject(view, s):
            if (view, key) not in self.cache:
                self.cache[(view, key)] = (s, self.codec.decode(view, key, s, data))
        return [
            row[1]
            for (v, _), row in sorted(self.cache.items())
            if v == view and row is not None and row[0] == s
        ]

    def dirty(self) -> Iterator[tuple[str, str, str | None, bytes | None]]:
        for view, key in sorted(self.changed):
            row = self.cache[(view, key)]
            if row is None:
                yield view, key, None, None
            else:
                yield view, key, row[0], self.codec.encode(view, key, row[0], row[1])


class ViewStore(Protocol):
    """What the runner and the query service need from a durable view store."""

    codec: Codec

    def apply(
        self, events: Sequence[tuple[int, Any]], tracking: Tracking, projection: ReadViews
    ) -> set[Key]: ...

    def apply_tracked(self, runs: Sequence[Run], projection: ReadViews) -> set[Key]:
        """Several runs of events, each with its own tracking record (a worker's partitions),
        in one transaction: all applied, or none."""
        ...

    def max_tracking_id(self, application_name: str) -> int | None: ...

    def dump(self) -> list[tuple[str, str, str, Doc]]: ...

    def counts(self) -> dict[str, int]: ...

    def progress(self) -> dict[str, int]: ...

    def clear(self) -> None: ...


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
            super().create_table()

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS view_rows (view TEXT NOT NULL, key TEXT NOT NULL, "
            "subject TEXT NOT NULL, doc BLOB NOT NULL, PRIMARY KEY (view, key)) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS view_rows_by_subject ON view_rows (subject, view)",
        ]

    def apply(
        self, events: Sequence[tuple[int, Any]], tracking: Tracking, projection: ReadViews
    ) -> set[Key]:
        return self.apply_tracked([(events, tracking)], projection)

    def apply_tracked(self, runs: Sequence[Run], projection: ReadViews) -> set[Key]:
        with self.writer_lock.held():
            return self._apply_tracked(runs, projection)

    def _apply_tracked(self, runs: Sequence[Run], projection: ReadViews) -> set[Key]:
        with self.datastore.get_connection(commit=True) as conn:
            conn.cursor().execute("PRAGMA synchronous=NORMAL")  # per connection, outside a txn
            with _WriteTransaction(conn, commit=True) as c, c:
                self._refuse_applied(c, runs)
                rows = BatchRows(_SQLiteReads(c), self.codec)
                for events, _ in runs:
                    for position, event in events:
                        projection.process(event, rows, position)
                self._write(c, rows)
                for _, tracking in runs:
                    self._insert_tracking(c, tracking)
        return rows.touched()

    def _refuse_applied(self, c: SQLiteCursor, runs: Sequence[Run]) -> None:
        """A run another process applied while this one waited for the lock is refused
        before it is projected, as inserting its tracking record would refuse it after."""
        if not self.datastore.single_row_tracking:
            return  # there, only the very same position is refused: leave it to the insert
        for _, tracking in runs:
            done = self._max_tracking_id(tracking.application_name, c)
            if done is not None and done >= tracking.notification_id:
                raise IntegrityError(
                    f"{tracking.application_name} is at {done} already, past "
                    f"{tracking.notification_id}: applied by another runner"
                )

    def _write(self, c: Any, rows: BatchRows) -> None:
        upserts: list[tuple[str, str, str, bytes]] = []
        for view, key, subject, data in rows.dirty():
            if data is None or subject is None:
                c.execute("DELETE FROM view_rows WHERE view=? AND key=?", (view, key))
            else:
                upserts.append((view, key, subject, data))
        for chunk in chunks(upserts, 4):  # each key once: dirty() yields a row's last state
            c.execute(
                f"INSERT INTO view_rows {values(4, len(chunk))} ON CONFLICT (view, key) "
                "DO UPDATE SET subject=excluded.subject, doc=excluded.doc",
                [value for row in chunk for value in row],
            )

    def get_parsed(self, view: str, key: str) -> Parsed | None:
        with self.datastore.transaction(commit=False) as c:
            found = _SQLiteReads(c).select_one(view, key)
        return _parse(key, *found) if found else None

    def of_subject_parsed(self, view: str, subject: str) -> list[Parsed]:
        with self.datastore.transaction(commit=False) as c:
            found = _SQLiteReads(c).select_subject(view, subject)
        return [_parse(key, subject, data) for key, data in found]

    def dump(self) -> list[tuple[str, str, str, Doc]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT view, key, subject, doc FROM view_rows ORDER BY view, key")
            found = [tuple(r) for r in c.fetchall()]
        return [(v, k, s, self.codec.decode(v, k, s, d)) for v, k, s, d in found]

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
            c.execute("DELETE FROM tracking")


class _WriteTransaction(SQLiteTransaction):
    """The library's transaction (its errors mapped the same way), begun IMMEDIATE: it takes
    the file's write lock at once, waiting for it as long as the lock timeout allows. Begun
    DEFERRED, a batch reads rows first and then writes, and if another process (a second
    worker on the same file) committed in between, SQLite refuses the write at once with
    "database is locked" rather than waiting: it cannot upgrade a stale snapshot."""

    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        return cursor


class _SQLiteReads:
    def __init__(self, cursor: Any) -> None:
        self.c = cursor

    def select_one(self, view: str, key: str) -> tuple[str, bytes] | None:
        self.c.execute("SELECT subject, doc FROM view_rows WHERE view=? AND key=?", (view, key))
        row = self.c.fetchone()
        return (row[0], row[1]) if row else None

    def select_subject(self, view: str, subject: str) -> list[tuple[str, bytes]]:
        self.c.execute(
            "SELECT key, doc FROM view_rows WHERE subject=? AND view=? ORDER BY key",
            (subject, view),
        )
        return [(r[0], r[1]) for r in self.c.fetchall()]


class PostgresViewStore(SerialisedTrackingDDL, PostgresTrackingRecorder):
    """Views in the store's PostgreSQL schema, documents as jsonb."""

    def __init__(
        self, datastore: PostgresDatastore, codec: Codec, table: str = "backcheck_views"
    ) -> None:
        super().__init__(datastore, tracking_table_name=f"{table}_tracking")
        self.codec = codec
        self.check_identifier_length(table)
        schema, rows = Identifier(datastore.schema), Identifier(table)
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{rows} (view text NOT NULL, "
                "key text NOT NULL, subject uuid NOT NULL, doc jsonb NOT NULL, "
                "PRIMARY KEY (view, key))"
            ).format(schema=schema, rows=rows),
            SQL("CREATE INDEX IF NOT EXISTS {index} ON {schema}.{rows} (subject, view)").format(
                index=Identifier(f"{table}_by_subject"), schema=schema, rows=rows
            ),
        ]
        self.sql = {
            "one": SQL("SELECT subject::text, doc::text FROM {}.{} WHERE view=%s AND key=%s"),
            "subject": SQL(
                "SELECT key, doc::text FROM {}.{} WHERE subject=%s AND view=%s ORDER BY key"
            ),
            "upsert": SQL(
                "INSERT INTO {}.{} VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (view, key) "
                "DO UPDATE SET subject=excluded.subject, doc=excluded.doc"
            ),
            "delete": SQL("DELETE FROM {}.{} WHERE view=%s AND key=%s"),
            "dump": SQL("SELECT view, key, subject::text, doc::text FROM {}.{} ORDER BY view, key"),
            "clear": SQL("DELETE FROM {}.{}"),
            "counts": SQL("SELECT view, COUNT(*) AS n FROM {}.{} GROUP BY view ORDER BY view"),
        }
        self.sql = {k: q.format(schema, rows) for k, q in self.sql.items()}
        self.sql["clear_tracking"] = SQL("DELETE FROM {}.{}").format(
            schema, Identifier(self.tracking_table_name)
        )
        self.sql["progress"] = SQL(
            "SELECT application_name AS name, MAX(notification_id) AS position FROM {}.{} "
            "WHERE application_name != '__migration__' "
            "GROUP BY application_name ORDER BY application_name"
        ).format(schema, Identifier(self.tracking_table_name))

    def apply(
        self, events: Sequence[tuple[int, Any]], tracking: Tracking, projection: ReadViews
    ) -> set[Key]:
        return self.apply_tracked([(events, tracking)], projection)

    def apply_tracked(self, runs: Sequence[Run], projection: ReadViews) -> set[Key]:
        with self.datastore.transaction(commit=True) as curs:
            rows = BatchRows(_PostgresReads(curs, self.sql), self.codec)
            for events, _ in runs:
                for position, event in events:
                    projection.process(event, rows, position)
            for view, key, subject, data in rows.dirty():
                if data is None:
                    curs.execute(self.sql["delete"], (view, key))
                else:
                    curs.execute(self.sql["upsert"], (view, key, subject, data.decode()))
            for _, tracking in runs:
                self._insert_tracking(curs, tracking)
        return rows.touched()

    def get_parsed(self, view: str, key: str) -> Parsed | None:
        with self.datastore.transaction(commit=False) as curs:
            found = _PostgresReads(curs, self.sql).select_one(view, key)
        return _parse(key, *found) if found else None

    def of_subject_parsed(self, view: str, subject: str) -> list[Parsed]:
        with self.datastore.transaction(commit=False) as curs:
            found = _PostgresReads(curs, self.sql).select_subject(view, subject)
        return [_parse(key, subject, data) for key, data in found]

    def dump(self) -> list[tuple[str, str, str, Doc]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.sql["dump"])
            found = [(r["view"], r["key"], r["subject"], r["doc"]) for r in curs.fetchall()]
        return [(v, k, s, self.codec.decode(v, k, s, d)) for v, k, s, d in found]

    def counts(self) -> dict[str, int]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.sql["counts"])
            return {r["view"]: r["n"] for r in curs.fetchall()}

    def progress(self) -> dict[str, int]:
        """Each tracked name (a runner, or a worker's partition) and the position it reached."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.sql["progress"])
            return {r["name"]: r["position"] for r in curs.fetchall()}

    def clear(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.sql["clear"])
            curs.execute(self.sql["clear_tracking"])


class _PostgresReads:
    def __init__(self, curs: Any, sql: dict[str, Any]) -> None:
        self.curs = curs
        self.sql = sql

    def select_one(self, view: str, key: str) -> tuple[str, bytes] | None:
        self.curs.execute(self.sql["one"], (view, key))
        row = self.curs.fetchone()
        return (row["subject"], row["doc"]) if row else None

    def select_subject(self, view: str, subject: str) -> list[tuple[str, bytes]]:
        self.curs.execute(self.sql["subject"], (subject, view))
        return [(r["key"], r["doc"]) for r in self.curs.fetchall()]


class ViewRunner:
    """Keeps the views up to date from the application's notification log, in process, and
    answers from them through a cache of parsed rows.

    `catch_up()` is cheap when there is nothing new (one MAX query), and when many threads ask
    at once one of them applies everything pending in one transaction while the others wait
    for it: reads stay consistent with every write committed before they started.

    The cache holds rows as stored, personal values still sealed: each answer opens them
    afresh, so destroying a subject's keys takes effect at once, even before the erasure event
    reaches the views. Rows a batch changed are dropped from the cache when it commits; the
    runner is the views' only writer in its process."""

    max_cached = 50_000
    max_pending = 256

    def __init__(
        self,
        app: Application[UUID],
        store: ViewStore,
        projection: ReadViews | None = None,
        on_close: Callable[[], None] | None = None,
        head: Callable[[], int | None] | None = None,
        topics: Callable[[int, int], list[str]] | None = None,
    ) -> None:
        self.app = app
        self.head = head or app.recorder.max_notification_id
        self.topics = topics or self._topics_in_log
        self.store = store
        self.on_close = on_close
        self.projection = projection or ReadViews()
        # Tracked under the projection's version: rows of another version are rebuilt.
        self.name = f"{app.name}.views.v{self.projection.version}"
        if store.max_tracking_id(self.name) is None and store.counts():
            store.clear()
        self._lock = threading.Lock()
        self._position = store.max_tracking_id(self.name) or 0
        self._pending_lock = threading.Lock()
        self._pending: dict[int, Any] = {}  # committed here, not yet applied: position → event
        self._log_only_through = 0
        self._log_only_topics = {get_topic(cls) for cls in LOG_ONLY_EVENTS}
        self._rows: dict[Key, Parsed] = {}
        self._lists: dict[Key, list[Parsed]] = {}

    @property
    def position(self) -> int:
        return self._position

    def observe(self, committed: list[tuple[int, Any]]) -> None:
        with self._pending_lock:
            for position, event in committed:
                if position > self._position:
                    self._pending[position] = event
            backlog = len(self._pending)
        if backlog >= self.max_pending:
            self.catch_up()

    def catch_up_for_decisions(self) -> int:
        head = self.head() or 0
        if head <= self._position:
            return self._position
        written: dict[int, str] = getattr(self.app.recorder, "written", {})
        with self._pending_lock:
            # How far the log holds nothing but this process's own access records. The
            # recorder notes the topic of each write before its writer wakes up, so this does
            # not depend on the writers having reported back yet.
            through = max(self._log_only_through, self._position)
            while written.get(through + 1) in self._log_only_topics:
                through += 1
            self._log_only_through = through
        if head <= through:
            return self._position
        if self._log_only(through, head):  # another process's access records: ask the log
            with self._pending_lock:
                self._log_only_through = max(self._log_only_through, head)
            return self._position
        return self.catch_up()

    def _log_only(self, after: int, through: int) -> bool:
        """Whether the log holds nothing but access records (of any process) after `after` up
        to `through`. Several processes on one store each write their own readers' access
        records; none of them should make the others catch up or drop their caches. A long
        stretch is not looked through: it is simply caught up."""
        if through - after > self.max_pending:
            return False
        return all(topic in self._log_only_topics for topic in self.topics(after, through))

    def _topics_in_log(self, after: int, through: int) -> list[str]:
        """The topics of the log's records after `after` up to `through`."""
        notes = self.app.recorder.select_notifications(
            start=after + 1, limit=through - after, stop=through
        )
        return [n.topic for n in notes]

    def catch_up(self, batch: int = 500, progress: Progress | None = None) -> int:
        head = self.head() or 0
        if head <= self._position:
            return self._position
        with self._lock:
            while True:
                # another process may have applied some of it (meanwhile): not again
                self._adopt(self.store.max_tracking_id(self.name) or 0)
                if self._position >= head:
                    break
                events = self._next_batch(head, batch)
                if not events:
                    break
                last = events[-1][0]
                try:
                    touched = self.store.apply(events, Tracking(self.name, last), self.projection)
                except IntegrityError:
                    # Another runner on the same views (another process) got there first.
                    stored = self.store.max_tracking_id(self.name) or 0
                    if stored < last:
                        raise
                    self._adopt(stored)
                    continue
                self._forget(touched)
                self._advance(last)
                if progress is not None:
                    progress(self._position, head)
        return self._position

    def _adopt(self, stored: int) -> None:
        """Views advanced by another runner: what this one cached may be stale (only the
        access log's rows, when all it applied were access records)."""
        if stored <= self._position:
            return
        if self._log_only(self._position, stored):
            for cache in (self._rows, self._lists):
                for key in [k for k in cache if k[0] == LOG_VIEW]:
                    cache.pop(key, None)  # type: ignore[attr-defined]
        else:
            self._rows.clear()
            self._lists.clear()
        self._advance(stored)

    def _advance(self, through: int) -> None:
        """The views hold everything up to `through`: nothing held for them is needed."""
        with self._pending_lock:
            self._position = through
            for position in [p for p in self._pending if p <= through]:
                del self._pending[position]
        forget = getattr(self.app.recorder, "forget_written", None)
        if forget is not None:
            forget(through)

    def _next_batch(self, head: int, batch: int) -> list[tuple[int, Any]]:
        """The next events after the views' position: from memory when this process wrote
        them all, else read back from the log (decoding only those not in memory)."""
        stop = min(head, self._position + batch)
        wanted = range(self._position + 1, stop + 1)
        with self._pending_lock:
            known = [(p, self._pending.get(p)) for p in wanted]
        if all(event is not None for _, event in known):
            return known  # type: ignore[return-value]
        notes = self.app.recorder.select_notifications(
            start=self._position + 1, limit=batch, stop=head
        )
        mine = dict(known)
        return [(n.id, mine.get(n.id) or self.app.mapper.to_domain_event(n)) for n in notes]

    def rebuild(self, batch: int = 500, progress: Progress | None = None) -> int:
        with self._lock:
            self.store.clear()
            self._position = 0
            self._log_only_through = 0
            self._rows.clear()
            self._lists.clear()
        return self.catch_up(batch, progress)

    def _forget(self, touched: set[Key]) -> None:
        if len(self._rows) + len(self._lists) > self.max_cached:
            self._rows.clear()
            self._lists.clear()
        for view, subject in touched:
            self._lists.pop((view, subject), None)
        stale = {view for view, _ in touched}
        for cached in [k for k, row in self._rows.items() if k[0] in stale]:
            row = self._rows.get(cached)
            if row is None or (cached[0], row.subject) in touched:
                self._rows.pop(cached, None)

    def get(self, view: str, key: str, opening: frozenset[str] | None = None) -> Doc | None:
        found = self._rows.get((view, key))
        if found is None:
            with self._lock:  # not while a batch is being applied: it could be stale at once
                found = self.store.get_parsed(view, key)
                if found is not None:
                    self._rows[(view, key)] = found
        return found.open(view, self.store.codec, opening) if found else None

    def of_subject(
        self, view: str, subject: UUID | str, opening: frozenset[str] | None = None
    ) -> list[Doc]:
        """Rows are shared with the cache: the answer is read-only."""
        s = subject if isinstance(subject, str) else str(subject)
        found = self._lists.get((view, s))
        if found is None:
            with self._lock:
                found = self.store.of_subject_parsed(view, s)
                self._lists[(view, s)] = found
        codec = self.store.codec
        return [row.open(view, codec, opening) for row in found]

    def close(self) -> None:
        """Applies what this process committed since the last batch, then lets go."""
        try:
            if self._pending:
                self.catch_up()
        finally:
            if self.on_close is not None:
                self.on_close()


def sqlite_views(app: Application[UUID], path: str, sealer: Sealer | None) -> ViewRunner:
    datastore = Datastore(path, lock_timeout=10)
    store = SQLiteViewStore(datastore, Codec(sealer))
    store.create_table()
    head = _SQLiteHead(app.recorder.datastore.pool.db_name, app.recorder.events_table_name)  # type: ignore[attr-defined]

    def close() -> None:
        head.close()
        datastore.close()

    return ViewRunner(app, store, on_close=close, head=head, topics=head.topics)


class _SQLiteHead:
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


def postgres_views(app: Application[UUID], sealer: Sealer | None) -> ViewRunner:
    """Views beside the events, sharing the store's connection pool (closed with the app)."""
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    store = PostgresViewStore(datastore, Codec(sealer))
    store.create_table()
    return ViewRunner(app, store)
