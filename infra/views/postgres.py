"""Views on PostgreSQL: tables in the store's schema, beside the events, rows as jsonb.

Each read and each batch is one transaction on the event store's pool, run again when the
server dropped its connection (a restart, a failover, a terminated backend) or rolled it back
to be run again: the event store's policy (`infra/store/pg_pool.py`, `retried`). A batch run
again is projected again from its events; one whose commit's answer was lost is refused by its
tracking record the second time, and the runner takes up from the stored position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.sql import SQL, Composed, Identifier

from infra.privacy.sealing import Sealer
from infra.store.ddl import SerialisedTrackingDDL, serialise_ddl
from infra.store.filelock import AlreadyRunningError
from infra.store.pg_pool import retried
from infra.views.codec import Codec, Parsed
from infra.views.kept import Kept
from infra.views.runner import Decode, Log, ViewRunner
from infra.views.store import BatchRows, Dumped, Key, Projection, Run, Stored, refused_because

T = TypeVar("T")

# Advisory locks of the view writers: this number ("bckv" in ASCII), then the tracked name's hash.
VIEWS_LOCK = 0x62636B76


class PostgresViewStore(SerialisedTrackingDDL, PostgresTrackingRecorder):
    """Views in the store's PostgreSQL schema, documents as jsonb."""

    def __init__(
        self, datastore: PostgresDatastore, codec: Codec, table: str = "backcheck_views"
    ) -> None:
        super().__init__(datastore, tracking_table_name=f"{table}_tracking")
        self.codec = codec
        self.table = table
        self.check_identifier_length(table)
        # a rebuild's table aside (decision 0061), renamed over this one when complete
        self.aside = f"{table}_aside"
        self.check_identifier_length(f"{self.aside}_by_subject")
        schema, rows = Identifier(datastore.schema), Identifier(table)
        self.sql_create_statements += _rows_table(schema, table, exists_ok=True)
        templates = {
            "one": "SELECT subject::text, doc::text, mac FROM {}.{} WHERE view=%s AND key=%s",
            "subject": "SELECT key, doc::text, mac FROM {}.{} "
            "WHERE subject=%s AND view=%s ORDER BY key",
            # a range of the primary key, in its order: a page costs what its rows do
            "page": "SELECT key, subject::text, doc::text, mac FROM {}.{} "
            "WHERE view=%s AND key>%s ORDER BY key LIMIT %s",
            "upsert": "INSERT INTO {}.{} VALUES (%s, %s, %s, %s::jsonb, %s) "
            "ON CONFLICT (view, key) "
            "DO UPDATE SET subject=excluded.subject, doc=excluded.doc, mac=excluded.mac",
            "delete": "DELETE FROM {}.{} WHERE view=%s AND key=%s",
            "dump": "SELECT view, key, subject::text, doc::text, mac FROM {}.{} ORDER BY view, key",
            "clear": "DELETE FROM {}.{}",
            "counts": "SELECT view, COUNT(*) AS n FROM {}.{} GROUP BY view ORDER BY view",
        }
        tracking = Identifier(self.tracking_table_name)
        self.sql: dict[str, Composed] = {
            name: SQL(text).format(schema, rows) for name, text in templates.items()
        }
        aside = Identifier(self.aside)
        self.aside_sql: dict[str, Composed] = {
            name: SQL(templates[name]).format(schema, aside)
            for name in ("one", "subject", "upsert", "delete")
        }
        self.sql["drop_aside"] = SQL("DROP TABLE IF EXISTS {}.{}").format(schema, aside)
        # the live table dropped, the one aside renamed in its place with its two indexes
        self.swap_sql = [
            SQL("DROP TABLE {}.{}").format(schema, rows),
            SQL("ALTER TABLE {}.{} RENAME TO {}").format(schema, aside, rows),
            *(
                SQL("ALTER INDEX {}.{} RENAME TO {}").format(
                    schema, Identifier(f"{self.aside}_{end}"), Identifier(f"{table}_{end}")
                )
                for end in ("pkey", "by_subject")
            ),
        ]
        self.schema = schema
        self.schema_name = datastore.schema
        # the library's migration marker stays: without it the next open migrates again
        self.sql["clear_tracking"] = SQL(
            "DELETE FROM {}.{} WHERE application_name != '__migration__'"
        ).format(schema, tracking)
        self.sql["progress"] = SQL(
            "SELECT application_name AS name, MAX(notification_id) AS position FROM {}.{} "
            "WHERE application_name != '__migration__' "
            "GROUP BY application_name ORDER BY application_name"
        ).format(schema, tracking)

    def _create_table(self, curs: Any) -> None:
        """A tracking table that lost the library's migration marker (cleared by a rebuild
        before the clear kept it) after the library had migrated it once: it is single-row
        already, and the library would migrate it again, renaming it onto the `bkup1_` table
        it left the first time, and fail. Put the marker back first (under the set-up lock)."""
        serialise_ddl(curs)
        backup = f"bkup1_{self.tracking_table_name}"[: self.MAX_IDENTIFIER_LEN]
        curs.execute(
            "SELECT count(*) AS found FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname IN (%s, %s)",
            (self.datastore.schema, self.tracking_table_name, backup),
        )
        if self.datastore.single_row_tracking and curs.fetchone()["found"] == 2:
            marker = self.table_migration_identifier
            if self._max_tracking_id(marker, curs) is None:
                self._insert_tracking(curs, Tracking(marker, 1))
            self.tracking_table_exists = True
            self.tracking_migration_previous = self.tracking_migration_current = 1
        # the rows' table gone (dropped by hand) while the tracking still says how far the
        # views stand: made again empty, its tracking goes too, and the log is applied again
        curs.execute(
            "SELECT to_regclass(%s) IS NULL AS rows_lost, to_regclass(%s) IS NOT NULL AS tracked",
            (f"{self.schema_name}.{self.table}", f"{self.schema_name}.{self.tracking_table_name}"),
        )
        found = curs.fetchone()
        lost = found is not None and found["rows_lost"] and found["tracked"]
        super()._create_table(curs)
        if lost:
            curs.execute(self.sql["clear_tracking"])
        self._add_macs(curs)

    def _add_macs(self, curs: Any) -> None:
        """A table written before rows carried a MAC (`integrity.py`): its rows are dropped,
        with their tracking, and the column added, in the set-up transaction; the runner
        writes them again from the event store, each with its MAC."""
        curs.execute(
            "SELECT count(*) AS found FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s AND column_name = 'mac'",
            (self.datastore.schema, self.table),
        )
        if curs.fetchone()["found"]:
            return
        curs.execute(self.sql["clear"])
        curs.execute(self.sql["clear_tracking"])
        curs.execute(
            SQL("ALTER TABLE {}.{} ADD COLUMN mac bytea").format(
                Identifier(self.datastore.schema), Identifier(self.table)
            )
        )

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
        return retried(lambda: self._apply_tracked(runs, projection, stored))

    def _apply_tracked(
        self, runs: Sequence[Run], projection: Projection, stored: Stored | None
    ) -> set[Key]:
        with self.datastore.transaction(commit=True) as curs:
            # one writer per tracked name at a time (in name order: no deadlock), or one for
            # the whole table when rows are shared between them (read, changed, written back:
            # two at once would lose a count); and a run another process applied, any of it,
            # meanwhile is refused before it is projected
            names = (
                [self.table]
                if projection.shared_rows
                else sorted({tracking.application_name for _, tracking in runs})
            )
            for name in names:
                curs.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (VIEWS_LOCK, name))
            for _, tracking in runs:
                done = self._max_tracking_id(tracking.application_name, curs)
                why = refused_because(tracking, done)
                if why is not None:
                    raise IntegrityError(why)
            rows = BatchRows(_PostgresReads(curs, self.sql), self.codec, stored)
            rows.project(runs, projection)
            _write(curs, rows, self.sql)
            for _, tracking in runs:
                self._insert_tracking(curs, tracking)
        return rows.touched()

    # --- a rebuild, aside ------------------------------------------------------------------

    @contextmanager
    def rebuilding(self) -> Iterator[None]:
        """An advisory lock of the session, on a connection held for the rebuild (the server
        lets it go if the process dies): a second rebuild would drop the first's table aside,
        make it again and write into it too."""
        with self.datastore.get_connection() as conn:
            found = conn.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s)) AS held",
                (VIEWS_LOCK, f"{self.table}:rebuild"),
            ).fetchone()
            conn.commit()
            if not (found and found["held"]):
                raise AlreadyRunningError(
                    f"another rebuild of the views {self.table} is running in the schema "
                    f"{self.schema_name}; try again when it is done"
                )
            try:
                yield
            finally:
                conn.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))",
                    (VIEWS_LOCK, f"{self.table}:rebuild"),
                )
                conn.commit()

    def start_aside(self) -> None:
        def start() -> None:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(self.sql["drop_aside"])
                for statement in _rows_table(self.schema, self.aside, exists_ok=False):
                    curs.execute(statement)

        retried(start)

    def apply_aside(
        self, events: Sequence[tuple[int, Any]], projection: Projection, stored: Stored
    ) -> None:
        def apply() -> None:
            with self.datastore.transaction(commit=True) as curs:
                rows = BatchRows(_PostgresReads(curs, self.aside_sql), self.codec, stored)
                rows.project([(events, Tracking("", 0))], projection)
                _write(curs, rows, self.aside_sql)

        retried(apply)

    def swap_aside(self, name: str, position: int) -> bool:
        """As on SQLite (`sqlite.py`), under the locks every batch of the live rows takes
        (the table's and the tracked name's), so no batch is applied to them meanwhile."""

        def swap() -> bool:
            with self.datastore.transaction(commit=True) as curs:
                for lock in sorted({self.table, name}):
                    curs.execute(
                        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (VIEWS_LOCK, lock)
                    )
                tracked = self._max_tracking_id(name, curs) or 0
                if tracked > position:
                    return False
                curs.execute(
                    "SELECT to_regclass(%s) AS aside", (f"{self.schema_name}.{self.aside}",)
                )
                found = curs.fetchone()
                if found is not None and found["aside"] is None and tracked == position:
                    return True  # swapped already: a retry after its commit's answer was lost
                for statement in self.swap_sql:
                    curs.execute(statement)
                curs.execute(self.sql["clear_tracking"])
                if position:
                    self._insert_tracking(curs, Tracking(name, position))
            return True

        swapped: bool = retried(swap)
        return swapped

    def drop_aside(self) -> None:
        retried(lambda: self._rows_done("drop_aside"))

    def _rows_done(self, statement: str) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.sql[statement])

    def max_tracking_id(self, application_name: str) -> int | None:
        # the library's query, under our policy rather than its retries (any OperationalError,
        # 0.2 s before the first)
        found: int | None = retried(lambda: _MAX_TRACKING_ID(self, application_name))
        return found

    def get_parsed(self, view: str, key: str) -> Parsed | None:
        found = retried(lambda: self._read(lambda reads: reads.select_one(view, key)))
        return self._parsed(view, key, *found) if found else None

    def of_subject_parsed(self, view: str, subject: str) -> list[Parsed]:
        found = retried(lambda: self._read(lambda reads: reads.select_subject(view, subject)))
        return [self._parsed(view, key, subject, data, mac) for key, data, mac in found]

    def page_parsed(self, view: str, after: str | None, limit: int) -> list[Parsed]:
        found = retried(lambda: self._rows("page", (view, after or "", limit)))
        return [self._parsed(view, r["key"], r["subject"], r["doc"], r["mac"]) for r in found]

    def _read(self, select: Callable[[_PostgresReads], T]) -> T:
        with self.datastore.transaction(commit=False) as curs:
            return select(_PostgresReads(curs, self.sql))

    def _rows(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """The rows `statement` (one of `self.sql`) selects, in a transaction of their own."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.sql[statement], params)
            return curs.fetchall()

    def _parsed(
        self, view: str, key: str, subject: str, data: bytes | str, mac: bytes | None
    ) -> Parsed:
        checked = self.codec.verified(view, key, subject, data, mac, exact=False)
        return Parsed.of(key, subject, checked)

    def dump(self) -> list[Dumped]:
        found = [
            (r["view"], r["key"], r["subject"], r["doc"], r["mac"])
            for r in retried(lambda: self._rows("dump"))
        ]
        codec = self.codec
        return [
            (v, k, s, codec.decode(v, k, s, codec.verified(v, k, s, d, m, exact=False)))
            for v, k, s, d, m in found
        ]

    def counts(self) -> dict[str, int]:
        return {r["view"]: r["n"] for r in retried(lambda: self._rows("counts"))}

    def progress(self) -> dict[str, int]:
        """Each tracked name (a runner, or a worker's partition) and the position it reached."""
        return {r["name"]: r["position"] for r in retried(lambda: self._rows("progress"))}

    def clear(self) -> None:
        retried(self._clear)

    def _clear(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.sql["clear"])
            curs.execute(self.sql["clear_tracking"])


def _rows_table(schema: Identifier, table: str, *, exists_ok: bool) -> list[Composed]:
    """The statements making a table of view rows and its subject index."""
    rows = Identifier(table)
    maybe = SQL("IF NOT EXISTS ") if exists_ok else SQL("")
    return [
        SQL(
            "CREATE TABLE {maybe}{schema}.{rows} (view text NOT NULL, key text NOT NULL, "
            "subject uuid NOT NULL, doc jsonb NOT NULL, mac bytea, PRIMARY KEY (view, key))"
        ).format(maybe=maybe, schema=schema, rows=rows),
        SQL("CREATE INDEX {maybe}{index} ON {schema}.{rows} (subject, view)").format(
            maybe=maybe, index=Identifier(f"{table}_by_subject"), schema=schema, rows=rows
        ),
    ]


def _write(curs: Any, rows: BatchRows, sql: dict[str, Composed]) -> None:
    """The batch's changed rows written: in the rows' order, each run of upserts (or deletes)
    sent as one batch (psycopg's `executemany` pipelines it, where a statement each waited
    for its answer)."""
    kind: str | None = None
    batch: list[tuple[Any, ...]] = []
    for view, key, subject, data, mac in rows.dirty():
        this = "delete" if data is None else "upsert"
        if this != kind and batch:
            curs.executemany(sql[kind or this], batch)
            batch = []
        kind = this
        batch.append((view, key) if data is None else (view, key, subject, data.decode(), mac))
    if kind is not None and batch:
        curs.executemany(sql[kind], batch)


# the library's query without its retries (`max_tracking_id`)
_MAX_TRACKING_ID = PostgresTrackingRecorder.max_tracking_id.__wrapped__


class _PostgresReads:
    exact = False  # jsonb gives a document back in its own layout

    def __init__(self, curs: Any, sql: dict[str, Composed]) -> None:
        self.curs = curs
        self.sql = sql

    def select_one(self, view: str, key: str) -> tuple[str, bytes, bytes | None] | None:
        self.curs.execute(self.sql["one"], (view, key))
        row = self.curs.fetchone()
        return (row["subject"], row["doc"], row["mac"]) if row else None

    def select_subject(self, view: str, subject: str) -> list[tuple[str, bytes, bytes | None]]:
        self.curs.execute(self.sql["subject"], (subject, view))
        return [(r["key"], r["doc"], r["mac"]) for r in self.curs.fetchall()]


def postgres_runner(
    kept: Kept,
    log: Log,
    decode: Decode,
    name: str,
    datastore: PostgresDatastore,
    sealer: Sealer | None,
) -> ViewRunner:
    """The in-process runner of `kept` on its table beside the events, sharing the store's
    connection pool (closed with the application)."""
    store = PostgresViewStore(datastore, kept.codec(sealer), table=kept.table)
    store.create_table()
    return ViewRunner(name, log, decode, store, kept)
