"""Event recorders that chain every stored record and refuse to change history.

They are the library's SQLite and PostgreSQL application recorders plus, inside the same
transaction as each insert, the chain links for the new records. Writers are already serialised
there (SQLite's single writer; PostgreSQL's EXCLUSIVE table lock taken by the library to keep
notification ids in commit order), so concurrent writers cannot fork the chain.

UPDATE, DELETE (and TRUNCATE on PostgreSQL) of events or links are refused by triggers in the
database itself. Concurrent writers are grouped into one transaction (infra/store/group_commit.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from infra.audit.chain import GENESIS, ChainBrokenError, Head, extend
from infra.store.ddl import serialise_ddl
from infra.store.filelock import for_database
from infra.store.group_commit import GroupCommit
from infra.store.statements import chunks, values

APPEND_ONLY = "is append-only"


def _check_head(head: Head, last_event_before: int | None, first_new: int) -> None:
    if (last_event_before or 0) != head.position:
        raise ChainBrokenError(
            f"the chain ends at position {head.position} but the log has records up to "
            f"{last_event_before} before the new position {first_new}: records were written "
            "around the recorder; run `backcheck audit verify`"
        )


class ChainedSQLiteApplicationRecorder(GroupCommit, SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        self.chain_table_name = events_table_name.removesuffix("_events") + "_chain"
        super().__init__(datastore, events_table_name)
        self.writer_lock = for_database(datastore.pool.db_name)

    def exclusive(self) -> AbstractContextManager[Any]:
        """Writers of other processes on the same file wait in the kernel, not in SQLite's
        sleeping busy handler (infra/store/filelock.py)."""
        return self.writer_lock.held()

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {self.chain_table_name} ("
            "position INTEGER PRIMARY KEY, "
            "prev_position INTEGER NOT NULL, "
            "originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, "
            "hash BLOB NOT NULL)"
        )
        for table in (self.events_table_name, self.chain_table_name):
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_refuse_{op.lower()} "
                    f"BEFORE {op} ON {table} BEGIN "
                    f"SELECT RAISE(ABORT, '{table} {APPEND_ONLY}: {op} refused'); END"
                )
        # INSERT OR REPLACE deletes the row it collides with without firing the DELETE
        # trigger (SQLite fires it only under PRAGMA recursive_triggers, a per-connection
        # setting a hostile writer leaves off): refuse any insert that would collide. The
        # library's own optimistic-concurrency check still sees an IntegrityError (RAISE
        # answers SQLITE_CONSTRAINT), now from the trigger instead of the primary key.
        for table, key in (
            (
                self.events_table_name,
                "originator_id = NEW.originator_id AND originator_version = NEW.originator_version",
            ),
            (self.chain_table_name, "position = NEW.position"),
        ):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_refuse_replace "
                f"BEFORE INSERT ON {table} WHEN EXISTS (SELECT 1 FROM {table} WHERE {key}) "
                f"BEGIN SELECT RAISE(ABORT, '{table} {APPEND_ONLY}: REPLACE refused'); END"
            )
        return statements

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's insert, in as few statements as possible (infra/store/statements.py):
        the events in one multi-row INSERT, the chain's head and the log's last record
        before them in one SELECT, the links in one INSERT."""
        if not stored_events:
            return []
        ids: list[int] = []
        for chunk in chunks(stored_events, 4):
            c.execute(
                f"INSERT INTO {self.events_table_name} {values(4, len(chunk))}",
                [value for s in chunk for value in _event_row(s)],
            )
            # rowids of a table without INTEGER PRIMARY KEY are handed out as the largest
            # so far plus one: the rows of one statement, under the write lock, are
            # consecutive, ending at the last insert's rowid
            last = c.lastrowid
            ids.extend(range(last - len(chunk) + 1, last + 1))
        c.execute(self._head_statement, (ids[0],))
        before, position, hash_ = c.fetchone()
        head = Head(position, hash_) if position is not None else Head(0, GENESIS)
        _check_head(head, before, ids[0])
        links = extend(
            head,
            [
                (i, _uuid(s.originator_id), s.originator_version, s.topic, s.state)
                for i, s in zip(ids, stored_events, strict=True)
            ],
        )
        for chunk_of_links in chunks(links, 5):
            c.execute(
                f"INSERT INTO {self.chain_table_name} {values(5, len(chunk_of_links))}",
                [
                    value
                    for x in chunk_of_links
                    for value in (
                        x.position,
                        x.prev_position,
                        x.originator_id.hex,
                        x.originator_version,
                        x.hash,
                    )
                ],
            )
        return ids

    @property
    def _head_statement(self) -> str:
        chain, events = self.chain_table_name, self.events_table_name
        return (
            f"SELECT (SELECT MAX(rowid) FROM {events} WHERE rowid < ?), "
            f"(SELECT position FROM {chain} ORDER BY position DESC LIMIT 1), "
            f"(SELECT hash FROM {chain} ORDER BY position DESC LIMIT 1)"
        )


def _event_row(s: StoredEvent) -> tuple[str, int, str, bytes]:
    """A stored event as the library's SQLite recorder writes it."""
    oid = s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id
    return oid, s.originator_version, s.topic, s.state


class ChainedPostgresApplicationRecorder(GroupCommit, PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.chain_table_name = events_table_name.removesuffix("_events") + "_chain"
        self.check_identifier_length(self.chain_table_name)
        schema = Identifier(self.datastore.schema)
        chain = Identifier(self.chain_table_name)
        refuse = Identifier(f"{self.chain_table_name}_refuse_change")
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{chain} ("
                "position bigint PRIMARY KEY, "
                "prev_position bigint NOT NULL, "
                "originator_id uuid NOT NULL, "
                "originator_version bigint NOT NULL, "
                "hash bytea NOT NULL)"
            ).format(schema=schema, chain=chain),
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{refuse}() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION '% " + APPEND_ONLY + ": % refused', TG_TABLE_NAME, TG_OP "
                "USING ERRCODE = 'insufficient_privilege'; END $$"
            ).format(schema=schema, refuse=refuse),
        ]
        for table in (self.events_table_name, self.chain_table_name):
            self.sql_create_statements += [
                SQL(
                    "CREATE OR REPLACE TRIGGER {name} BEFORE UPDATE OR DELETE ON {schema}.{table} "
                    "FOR EACH ROW EXECUTE FUNCTION {schema}.{refuse}()"
                ).format(
                    name=Identifier(f"{table}_append_only"),
                    schema=schema,
                    table=Identifier(table),
                    refuse=refuse,
                ),
                SQL(
                    "CREATE OR REPLACE TRIGGER {name} BEFORE TRUNCATE ON {schema}.{table} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{refuse}()"
                ).format(
                    name=Identifier(f"{table}_no_truncate"),
                    schema=schema,
                    table=Identifier(table),
                    refuse=refuse,
                ),
            ]
        self.select_head_statement = SQL(
            "SELECT position, hash FROM {schema}.{chain} ORDER BY position DESC LIMIT 1"
        ).format(schema=schema, chain=chain)
        self.select_last_before_statement = SQL(
            "SELECT MAX(notification_id) AS last FROM {schema}.{table} WHERE notification_id < %s"
        ).format(schema=schema, table=Identifier(self.events_table_name))
        self.insert_links_statement = SQL(
            "INSERT INTO {schema}.{chain} VALUES (%s, %s, %s, %s, %s)"
        ).format(schema=schema, chain=chain)

    def create_table(self) -> None:
        """The library makes its composite type first, in a transaction of its own, and only
        tolerates finding it made (DuplicateObject): two processes making it at the same moment
        collide on the catalogue instead (UniqueViolation). Made here under the DDL lock, once;
        the library's attempt then finds it."""
        with self.datastore.transaction(commit=True) as curs:
            serialise_ddl(curs)
            # the catalogue read as a table (a snapshot taken after the lock), not through
            # to_regtype: that looks in this session's catalogue cache, which may still hold
            # "no such type" from before another process made it
            curs.execute(
                "SELECT count(*) AS found FROM pg_type t JOIN pg_namespace n "
                "ON n.oid = t.typnamespace WHERE n.nspname = %s AND t.typname = %s",
                (self.datastore.schema, self.stored_event_type_name),
            )
            row = curs.fetchone()
            if row is not None and row["found"] == 0:
                for statement in self.sql_create_statements:
                    if "CREATE TYPE" in statement.as_string():
                        curs.execute(statement, prepare=False)
        super().create_table()

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        serialise_ddl(curs)
        super()._create_table(curs)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if not ids:
            return ids
        ids = sorted(ids)
        curs.execute(self.select_head_statement)
        row = curs.fetchone()
        head = Head(row["position"], bytes(row["hash"])) if row else Head(0, GENESIS)
        curs.execute(self.select_last_before_statement, (ids[0],))
        last = curs.fetchone()
        _check_head(head, last["last"] if last else None, ids[0])
        links = extend(
            head,
            [
                (i, _uuid(s.originator_id), s.originator_version, s.topic, s.state)
                for i, s in zip(ids, stored_events, strict=True)
            ],
        )
        curs.executemany(self.insert_links_statement, [tuple(x) for x in links])
        return ids


def _uuid(originator_id: UUID | str) -> UUID:
    return originator_id if isinstance(originator_id, UUID) else UUID(originator_id)


ChainedRecorder = ChainedSQLiteApplicationRecorder | ChainedPostgresApplicationRecorder


def chained(recorder: ApplicationRecorder) -> ChainedRecorder:
    """The application's recorder as infra/config.py has the library make it: chained, with
    group commit (and its note of what this process wrote)."""
    if isinstance(recorder, ChainedSQLiteApplicationRecorder | ChainedPostgresApplicationRecorder):
        return recorder
    raise TypeError(
        f"{type(recorder).__name__} is not a backcheck recorder; the store's environment names "
        "one of infra/store/recorder.py (infra/config.py: APPLICATION_RECORDER_TOPIC)"
    )


def datastore_of(recorder: ApplicationRecorder) -> SQLiteDatastore | PostgresDatastore:
    """The event store's database (its connection pool), which the key store, the views and
    the relay share: the one way to it from an application's recorder."""
    return chained(recorder).datastore
