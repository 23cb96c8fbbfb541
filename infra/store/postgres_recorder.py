"""The PostgreSQL event recorder: the library's, chained and indexed by subject like the
SQLite one (infra/store/recorder.py, whose module text says what both do). A module of its own
so that a SQLite store never loads psycopg.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from infra.audit.chain import GENESIS, Head, Link, extend
from infra.audit.merkle import NodeSource
from infra.privacy.erasures import ERASURE_TOPICS
from infra.store.ddl import serialise_ddl
from infra.store.pg_pool import AfterLostConnections, retried
from infra.store.recorder import (
    APPEND_ONLY,
    Chained,
    _check_head,
    _uuid,
    insert_new_keys,
    refuse_lost_events,
)
from infra.store.subjects import backfill, index_rows, subjects_table
from infra.store.tree import (
    FrontierCache,
    TreeEnd,
    TreeRow,
    extend_tree,
    postgres_nodes,
    tree_table,
)
from infra.store.tree_backfill import BACKFILL_BATCH, backfill_rows


class ChainedPostgresApplicationRecorder(
    Chained, AfterLostConnections, PostgresApplicationRecorder
):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.chain_table_name = events_table_name.removesuffix("_events") + "_chain"
        self.subjects_table_name = subjects_table(events_table_name)
        self.tree_table_name = tree_table(events_table_name)
        self.frontier = FrontierCache()
        for name in (self.chain_table_name, self.subjects_table_name, self.tree_table_name):
            self.check_identifier_length(name)
        tree = Identifier(self.tree_table_name)
        schema = Identifier(self.datastore.schema)
        chain = Identifier(self.chain_table_name)
        subjects = Identifier(self.subjects_table_name)
        events = Identifier(self.events_table_name)
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
                "CREATE TABLE IF NOT EXISTS {schema}.{subjects} ("
                "subject uuid NOT NULL, position bigint NOT NULL, "
                "PRIMARY KEY (subject, position))"
            ).format(schema=schema, subjects=subjects),
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{tree} ("
                "leaf bigint NOT NULL, level smallint NOT NULL, hash bytea NOT NULL, "
                "position bigint, PRIMARY KEY (leaf, level))"
            ).format(schema=schema, tree=tree),
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{refuse}() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION '% " + APPEND_ONLY + ": % refused', TG_TABLE_NAME, TG_OP "
                "USING ERRCODE = 'insufficient_privilege'; END $$"
            ).format(schema=schema, refuse=refuse),
        ]
        tables = (self.events_table_name, self.chain_table_name, self.subjects_table_name)
        for table in (*tables, self.tree_table_name):
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
        # the chain's head, the log's last record before the new ones and the tree's last
        # leaf, in one statement
        self.select_head_statement = SQL(
            "SELECT (SELECT MAX(notification_id) FROM {schema}.{events} "
            "WHERE notification_id < %s) AS last, c.position, c.hash, "
            "l.idx AS leaf, l.position AS leaf_position "
            "FROM (SELECT 1) AS one "
            "LEFT JOIN LATERAL (SELECT position, hash FROM {schema}.{chain} "
            "ORDER BY position DESC LIMIT 1) AS c ON true "
            "LEFT JOIN LATERAL (SELECT leaf AS idx, position FROM {schema}.{tree} "
            "WHERE level = 0 ORDER BY leaf DESC LIMIT 1) AS l ON true"
        ).format(schema=schema, events=events, chain=chain, tree=tree)
        self.select_erasures_statement = SQL(
            "SELECT topic, state FROM {schema}.{events} WHERE originator_id = %s "
            "AND topic = ANY(%s)"
        ).format(schema=schema, events=events)
        self.select_tree_end_statement = SQL(
            "SELECT leaf AS idx, position FROM {schema}.{tree} WHERE level = 0 "
            "ORDER BY leaf DESC LIMIT 1"
        ).format(schema=schema, tree=tree)
        self.select_link_statement = SQL(
            "SELECT hash FROM {schema}.{chain} WHERE position = %s"
        ).format(schema=schema, chain=chain)
        self.select_chained_after_statement = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, "
            "c.prev_position, c.hash FROM {schema}.{events} e LEFT JOIN {schema}.{chain} c "
            "ON c.position = e.notification_id WHERE e.notification_id > %s "
            "ORDER BY e.notification_id LIMIT %s"
        ).format(schema=schema, events=events, chain=chain)
        self.count_after_statement = SQL(
            "SELECT GREATEST(COALESCE(MAX(notification_id), 0) - %s, 0) AS n FROM {schema}.{events}"
        ).format(schema=schema, events=events)
        self.insert_tree_statement = SQL(
            "INSERT INTO {schema}.{tree} SELECT * FROM "
            "unnest(%s::bigint[], %s::smallint[], %s::bytea[], %s::bigint[])"
        ).format(schema=schema, tree=tree)
        self.insert_links_statement = SQL(
            "INSERT INTO {schema}.{chain} SELECT * FROM "
            "unnest(%s::bigint[], %s::bigint[], %s::uuid[], %s::bigint[], %s::bytea[])"
        ).format(schema=schema, chain=chain)
        self.insert_subjects_statement = SQL(
            "INSERT INTO {schema}.{subjects} SELECT * FROM unnest(%s::uuid[], %s::bigint[])"
        ).format(schema=schema, subjects=subjects)
        self.select_subject_statement = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state "
            "FROM {schema}.{subjects} s JOIN {schema}.{events} e "
            "ON e.notification_id = s.position "
            "WHERE s.subject = %s AND s.position >= %s ORDER BY s.position LIMIT %s"
        ).format(schema=schema, subjects=subjects, events=events)
        self.select_states_after_statement = SQL(
            "SELECT notification_id, state FROM {schema}.{events} "
            "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(schema=schema, events=events)
        self.select_positions_statement = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version "
            "FROM {schema}.{events} e JOIN unnest(%s::uuid[], %s::bigint[]) AS k(id, version) "
            "ON e.originator_id = k.id AND e.originator_version = k.version"
        ).format(schema=schema, events=events)
        self.lock_events_statement = SQL("LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE").format(
            schema=schema, events=events
        )

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
        """Under the set-up lock: the tables, and for a store written before the subject index,
        the index filled in from the log in the same transaction (writers held off meanwhile
        by the lock every insert of the library takes)."""
        serialise_ddl(curs)
        curs.execute(
            "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname IN (%s, %s, %s)",
            (
                self.datastore.schema,
                self.subjects_table_name,
                self.events_table_name,
                self.chain_table_name,
            ),
        )
        found = {row["name"] for row in curs.fetchall()}
        if self.chain_table_name in found and self.events_table_name not in found:
            schema = Identifier(self.datastore.schema)
            curs.execute(
                SQL("SELECT count(*) AS links FROM {}.{}").format(
                    schema, Identifier(self.chain_table_name)
                )
            )
            row = curs.fetchone()
            refuse_lost_events(
                f"the schema {self.datastore.schema}",
                self.events_table_name,
                row["links"] if row is not None else 0,
            )
        indexed = self.subjects_table_name in found
        super()._create_table(curs)
        if not indexed:
            curs.execute(self.lock_events_statement)

            def read_after(position: int, limit: int) -> list[tuple[int, bytes]]:
                curs.execute(self.select_states_after_statement, (position, limit))
                return [(r["notification_id"], bytes(r["state"])) for r in curs.fetchall()]

            backfill(read_after, lambda rows: self._insert_subjects(curs, rows))

    def _insert_subjects(self, curs: Cursor[DictRow], rows: list[tuple[UUID, int]]) -> None:
        if rows:
            subjects, positions = zip(*rows, strict=True)
            curs.execute(
                self.insert_subjects_statement, (list(subjects), list(positions)), prepare=True
            )

    def select_subject_notifications(
        self, subject: UUID, start: int = 1, limit: int = 500
    ) -> list[Notification]:
        """The events about `subject` from position `start` on, in log order, by the index.
        A read: run again after a lost connection, as the library's reads are (`retried`)."""

        def read() -> list[Notification]:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(self.select_subject_statement, (subject, start, limit), prepare=True)
                return [
                    Notification(
                        id=row["notification_id"],
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                    for row in curs.fetchall()
                ]

        return retried(read)

    def positions_of(self, events: Sequence[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        """The log position of each stored event named by (originator id, version), by the
        events' primary key; an event not stored is left out. A read: run again after a lost
        connection (`retried`)."""
        if not events:
            return {}
        ids, versions = zip(*events, strict=True)

        def read() -> dict[tuple[UUID, int], int]:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(self.select_positions_statement, (list(ids), list(versions)))
                return {
                    (row["originator_id"], row["originator_version"]): row["notification_id"]
                    for row in curs.fetchall()
                }

        return retried(read)

    def _erasures(self, curs: Cursor[DictRow], subject: UUID) -> list[tuple[str, bytes]]:
        """The subject's erasure records, read in the write's transaction."""
        curs.execute(self.select_erasures_statement, (subject, list(ERASURE_TOPICS)), prepare=True)
        return [(str(row["topic"]), bytes(row["state"])) for row in curs.fetchall()]

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        # after the events' insert, under its lock on their table: an erasure committed
        # before it is seen, one committed after it destroys these keys too
        insert_new_keys(curs, stored_events, lambda subject: self._erasures(curs, subject))
        if not ids:
            return ids
        ids = sorted(ids)
        curs.execute(self.select_head_statement, (ids[0],), prepare=True)
        row = curs.fetchone()
        assert row is not None  # one row, always
        found = row["position"] is not None
        head = Head(row["position"], bytes(row["hash"])) if found else Head(0, GENESIS)
        _check_head(head, row["last"], ids[0])
        digests: list[bytes] = []
        links = extend(
            head,
            [
                (i, _uuid(s.originator_id), s.originator_version, s.topic, s.state)
                for i, s in zip(ids, stored_events, strict=True)
            ],
            digests,
        )
        columns = [list(column) for column in zip(*links, strict=True)]
        curs.execute(self.insert_links_statement, columns, prepare=True)
        self._insert_subjects(curs, index_rows(ids, (s.state for s in stored_events)))
        leaf = row["leaf"]  # read with the head: one round trip
        end = TreeEnd(-1, 0) if leaf is None else TreeEnd(leaf, row["leaf_position"])
        self.extend_tree(curs, end, head, links[-1], ids, digests)
        return ids

    def extend_tree(
        self,
        curs: Cursor[DictRow],
        end: TreeEnd,
        head: Head,
        last: Link,
        ids: list[int],
        digests: list[bytes],
    ) -> None:
        """The new records' leaves and the nodes they complete, when the tree is current."""
        rows = extend_tree(
            self.frontier,
            (head.position, head.hash),
            (last.position, last.hash),
            lambda: end,
            lambda: self.tree_nodes(curs),
            ids,
            digests,
        )
        self.insert_tree(curs, rows)

    def tree_nodes(self, curs: Cursor[DictRow]) -> NodeSource:
        return postgres_nodes(
            lambda q, p: [tuple(r.values()) for r in curs.execute(q, p).fetchall()],
            self.datastore.schema,
            self.tree_table_name,
        )

    def insert_tree(self, curs: Cursor[DictRow], rows: list[TreeRow]) -> None:
        if rows:
            columns = [list(c) for c in zip(*rows, strict=True)]
            curs.execute(self.insert_tree_statement, columns, prepare=True)

    def backfill_tree(self, limit: int = BACKFILL_BATCH) -> tuple[int, int]:
        """One batch of the tree's backfill (infra/store/tree_backfill.py), in a write
        transaction of its own, writers held off by their table lock: (leaves added, positions
        after the last leaf: records left to add but for the log's gaps)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.lock_events_statement)
            curs.execute(self.select_tree_end_statement)
            row = curs.fetchone()
            end = TreeEnd(row["idx"], row["position"]) if row else TreeEnd(-1, 0)
            curs.execute(self.select_link_statement, (end.last_position,))
            link = curs.fetchone()
            curs.execute(self.select_chained_after_statement, (end.last_position, limit))
            records = [
                (
                    r["notification_id"],
                    r["originator_id"].bytes,
                    r["originator_version"],
                    r["topic"].encode(),
                    bytes(r["state"]),
                    r["prev_position"],
                    None if r["hash"] is None else bytes(r["hash"]),
                )
                for r in curs.fetchall()
            ]
            prev = bytes(link["hash"]) if link else None
            self.insert_tree(curs, backfill_rows(end, prev, records, self.tree_nodes(curs)))
            after = records[-1][0] if records else end.last_position
            curs.execute(self.count_after_statement, (after,))
            counted = curs.fetchone()
            return len(records), int(counted["n"]) if counted else 0
