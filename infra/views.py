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

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from domain.classification import ERASED_VALUE, PersonalField
from infra.sealing import Sealer
from projections.read_views import ReadViews
from projections.rows import Doc

Key = tuple[str, str]
Progress = Callable[[int, int], None]


class Codec:
    """Documents to stored bytes and back; personal fields sealed per subject, view and row."""

    def __init__(self, sealer: Sealer | None) -> None:
        self.sealer = sealer

    def encode(self, view: str, key: str, subject: str, doc: Doc) -> bytes:
        return orjson.dumps(self._seal(doc, "doc", (subject, f"view:{view}:{key}", 0)))

    def decode(self, view: str, key: str, subject: str, data: bytes | str) -> Doc:
        value: Doc = self._open(orjson.loads(data), "doc", (subject, f"view:{view}:{key}", 0))
        return value

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

    def _open(self, value: Any, path: str, ctx: tuple[str, str, int]) -> Any:
        if isinstance(value, dict):
            if "sealed" in value and self.sealer is not None:
                text = self.sealer.open_field(value, path, ctx)
                return PersonalField(value["name"], value["category"], text)
            if value.get("erased") is True and "category" in value:
                return PersonalField(value["name"], value["category"], ERASED_VALUE)
            return {k: self._open(v, f"{path}.{k}", ctx) for k, v in value.items()}
        if isinstance(value, list):
            return [self._open(v, f"{path}.{i}", ctx) for i, v in enumerate(value)]
        return value


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
    ) -> None: ...

    def max_tracking_id(self, application_name: str) -> int | None: ...

    def get(self, view: str, key: str) -> Doc | None: ...

    def of_subject(self, view: str, subject: UUID) -> list[Doc]: ...

    def dump(self) -> list[tuple[str, str, str, Doc]]: ...

    def clear(self) -> None: ...


class SQLiteViewStore(SQLiteTrackingRecorder):
    """Views in their own SQLite file next to the event store: rebuildable, so writes are not
    synced to disk one by one (a crash loses at most the tail, which the runner replays)."""

    def __init__(self, datastore: SQLiteDatastore, codec: Codec) -> None:
        super().__init__(datastore)
        self.codec = codec

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS view_rows (view TEXT NOT NULL, key TEXT NOT NULL, "
            "subject TEXT NOT NULL, doc BLOB NOT NULL, PRIMARY KEY (view, key)) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS view_rows_by_subject ON view_rows (subject, view)",
        ]

    def apply(
        self, events: Sequence[tuple[int, Any]], tracking: Tracking, projection: ReadViews
    ) -> None:
        with self.datastore.get_connection(commit=True) as conn:
            conn.cursor().execute("PRAGMA synchronous=NORMAL")  # per connection, outside a txn
            self._apply(conn, events, tracking, projection)

    def _apply(
        self,
        conn: Any,
        events: Sequence[tuple[int, Any]],
        tracking: Tracking,
        projection: ReadViews,
    ) -> None:
        with conn.transaction(commit=True) as c:
            rows = BatchRows(_SQLiteReads(c), self.codec)
            for position, event in events:
                projection.process(event, rows, position)
            for view, key, subject, data in rows.dirty():
                if data is None:
                    c.execute("DELETE FROM view_rows WHERE view=? AND key=?", (view, key))
                else:
                    c.execute(
                        "INSERT INTO view_rows VALUES (?, ?, ?, ?) ON CONFLICT (view, key) "
                        "DO UPDATE SET subject=excluded.subject, doc=excluded.doc",
                        (view, key, subject, data),
                    )
            self._insert_tracking(c, tracking)

    def get(self, view: str, key: str) -> Doc | None:
        with self.datastore.transaction(commit=False) as c:
            found = _SQLiteReads(c).select_one(view, key)
        return self.codec.decode(view, key, found[0], found[1]) if found else None

    def of_subject(self, view: str, subject: UUID) -> list[Doc]:
        s = str(subject)
        with self.datastore.transaction(commit=False) as c:
            found = _SQLiteReads(c).select_subject(view, s)
        return [self.codec.decode(view, key, s, data) for key, data in found]

    def dump(self) -> list[tuple[str, str, str, Doc]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT view, key, subject, doc FROM view_rows ORDER BY view, key")
            found = [tuple(r) for r in c.fetchall()]
        return [(v, k, s, self.codec.decode(v, k, s, d)) for v, k, s, d in found]

    def clear(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("DELETE FROM view_rows")
            c.execute("DELETE FROM tracking")


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


class PostgresViewStore(PostgresTrackingRecorder):
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
        }
        self.sql = {k: q.format(schema, rows) for k, q in self.sql.items()}
        self.sql["clear_tracking"] = SQL("DELETE FROM {}.{}").format(
            schema, Identifier(self.tracking_table_name)
        )

    def apply(
        self, events: Sequence[tuple[int, Any]], tracking: Tracking, projection: ReadViews
    ) -> None:
        with self.datastore.transaction(commit=True) as curs:
            rows = BatchRows(_PostgresReads(curs, self.sql), self.codec)
            for position, event in events:
                projection.process(event, rows, position)
            for view, key, subject, data in rows.dirty():
                if data is None:
                    curs.execute(self.sql["delete"], (view, key))
                else:
                    curs.execute(self.sql["upsert"], (view, key, subject, data.decode()))
            self._insert_tracking(curs, tracking)

    def get(self, view: str, key: str) -> Doc | None:
        with self.datastore.transaction(commit=False) as curs:
            found = _PostgresReads(curs, self.sql).select_one(view, key)
        return self.codec.decode(view, key, found[0], found[1]) if found else None

    def of_subject(self, view: str, subject: UUID) -> list[Doc]:
        s = str(subject)
        with self.datastore.transaction(commit=False) as curs:
            found = _PostgresReads(curs, self.sql).select_subject(view, s)
        return [self.codec.decode(view, key, s, data) for key, data in found]

    def dump(self) -> list[tuple[str, str, str, Doc]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.sql["dump"])
            found = [(r["view"], r["key"], r["subject"], r["doc"]) for r in curs.fetchall()]
        return [(v, k, s, self.codec.decode(v, k, s, d)) for v, k, s, d in found]

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
    """Keeps the views up to date from the application's notification log, in process.

    `catch_up()` is cheap when there is nothing new (one MAX query), and when many threads ask
    at once one of them applies everything pending in one transaction while the others wait
    for it: reads stay consistent with every write committed before they started."""

    def __init__(
        self,
        app: Application[UUID],
        store: ViewStore,
        projection: ReadViews | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.on_close = on_close
        self.projection = projection or ReadViews()
        self.name = app.name
        self._lock = threading.Lock()
        self._position = store.max_tracking_id(self.name) or 0

    @property
    def position(self) -> int:
        return self._position

    def catch_up(self, batch: int = 500, progress: Progress | None = None) -> int:
        head = self.app.recorder.max_notification_id() or 0
        if head <= self._position:
            return self._position
        with self._lock:
            self._position = self.store.max_tracking_id(self.name) or 0
            while self._position < head:
                notes = self.app.recorder.select_notifications(
                    start=self._position + 1, limit=batch, stop=head
                )
                if not notes:
                    break
                events = [(n.id, self.app.mapper.to_domain_event(n)) for n in notes]
                self.store.apply(events, Tracking(self.name, notes[-1].id), self.projection)
                self._position = notes[-1].id
                if progress is not None:
                    progress(self._position, head)
        return self._position

    def rebuild(self, batch: int = 500, progress: Progress | None = None) -> int:
        with self._lock:
            self.store.clear()
            self._position = 0
        return self.catch_up(batch, progress)

    def get(self, view: str, key: str) -> Doc | None:
        return self.store.get(view, key)

    def of_subject(self, view: str, subject: UUID) -> list[Doc]:
        return self.store.of_subject(view, subject)

    def close(self) -> None:
        if self.on_close is not None:
            self.on_close()


def sqlite_views(app: Application[UUID], path: str, sealer: Sealer | None) -> ViewRunner:
    datastore = SQLiteDatastore(path, lock_timeout=10)
    store = SQLiteViewStore(datastore, Codec(sealer))
    store.create_table()
    return ViewRunner(app, store, on_close=datastore.close)


def postgres_views(app: Application[UUID], sealer: Sealer | None) -> ViewRunner:
    """Views beside the events, sharing the store's connection pool (closed with the app)."""
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    store = PostgresViewStore(datastore, Codec(sealer))
    store.create_table()
    return ViewRunner(app, store)
