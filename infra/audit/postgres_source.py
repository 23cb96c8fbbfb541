"""The stored records and chain links read straight from a PostgreSQL schema's tables (the
`RecordSource` of infra/audit/sources.py, whose text says what a source is for); a module of
its own so that an audit of a SQLite store never loads psycopg."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from infra.audit.chain import GENESIS, Head
from infra.audit.merkle import Key
from infra.audit.sources import BATCH, KEY_ROWS, Record, StoredLink, WrappedKey, wrapped_key
from infra.privacy.erasures import erasures_in
from infra.store.server import StoreMisconfiguredError, store_error
from infra.store.tree import TreeRow, find_leaf, postgres_nodes, tree_table
from services.shredding import Pair


class PostgresSource:
    def __init__(
        self, conninfo: str, schema: str, prefix: str = "backcheck", where: str = "PostgreSQL"
    ):
        try:
            self.conn = psycopg.connect(conninfo)
        except psycopg.OperationalError as e:
            raise store_error(e, where) from None
        self.conn.read_only = True
        try:
            self._held(schema, f"{prefix}_events", where)
        except BaseException:
            self.conn.close()
            raise
        self.schema = sql.Identifier(schema)
        self.events = sql.Identifier(f"{prefix}_events")
        self.chain = sql.Identifier(f"{prefix}_chain")
        self.schema_name = schema
        self.tree_name = tree_table(f"{prefix}_events")
        self.tree_id = sql.Identifier(self.tree_name)

    def _held(self, schema: str, events: str, where: str) -> None:
        """The schema is there and holds the store's events table, or the setting is refused
        in one line (these records are read, never made: a schema without the table is not
        the store that was meant, and the driver's UndefinedTable would be a traceback)."""
        row = self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s), "
            "EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s)",
            (schema, schema, events),
        ).fetchone()
        self.conn.rollback()  # the read-only transaction the check opened
        if row is None or not row[0]:
            raise StoreMisconfiguredError(
                f"BACKCHECK_DATABASE_URL: {where} has no schema {schema!r}: create it "
                f"(CREATE SCHEMA {schema}) or name one that exists; `backcheck store migrate` "
                "makes its target's"
            )
        if not row[1]:
            raise StoreMisconfiguredError(
                f"BACKCHECK_DATABASE_URL: {where} holds no store in schema {schema!r} (no "
                f"table {events}): name the schema the store is in; a command that writes "
                "(e.g. `backcheck info`) makes a new store there"
            )

    def __enter__(self) -> PostgresSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def _q(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(
            schema=self.schema,
            events=self.events,
            chain=self.chain,
            tree=self.tree_id,
        )

    def count(self) -> int:
        row = self.conn.execute(self._q("SELECT COUNT(*) FROM {schema}.{events}")).fetchone()
        return int(row[0]) if row else 0

    def head(self) -> Head:
        row = self.conn.execute(
            self._q("SELECT position, hash FROM {schema}.{chain} ORDER BY position DESC LIMIT 1")
        ).fetchone()
        return Head(row[0], bytes(row[1])) if row else Head(0, GENESIS)

    def last_position(self) -> int:
        row = self.conn.execute(
            self._q(
                "SELECT GREATEST((SELECT MAX(notification_id) FROM {schema}.{events}), "
                "(SELECT MAX(position) FROM {schema}.{chain}))"
            )
        ).fetchone()
        return int(row[0] or 0) if row else 0

    def head_before(self, position: int) -> Head:
        row = self.conn.execute(
            self._q(
                "SELECT position, hash FROM {schema}.{chain} WHERE position < %s "
                "ORDER BY position DESC LIMIT 1"
            ),
            (position,),
        ).fetchone()
        return Head(row[0], bytes(row[1])) if row else Head(0, GENESIS)

    def _stream(self, query: sql.Composed, params: tuple[int, ...]) -> Iterator[tuple[Any, ...]]:
        with self.conn.cursor(name=f"audit_{id(query)}") as cursor:
            cursor.itersize = BATCH
            cursor.execute(query, params)
            yield from cursor

    def records(self, start: int = 1, stop: int | None = None) -> Iterator[Record]:
        query = self._q(
            "SELECT notification_id, originator_id, originator_version, "
            "convert_to(topic, 'UTF8'), state FROM {schema}.{events} "
            "WHERE notification_id >= %s AND notification_id <= %s ORDER BY notification_id"
        )
        for pos, oid, ver, topic, state in self._stream(query, (start, stop or 2**62)):
            yield pos, oid.bytes, ver, bytes(topic), bytes(state)

    def links(self, start: int = 1, stop: int | None = None) -> Iterator[StoredLink]:
        query = self._q(
            "SELECT position, prev_position, originator_id, originator_version, hash "
            "FROM {schema}.{chain} WHERE position >= %s AND position <= %s ORDER BY position"
        )
        for pos, prev, oid, ver, h in self._stream(query, (start, stop or 2**62)):
            yield pos, prev, oid.bytes, ver, bytes(h)

    def position_of(self, originator_id: bytes, version: int) -> int | None:
        row = self.conn.execute(
            self._q(
                "SELECT notification_id FROM {schema}.{events} "
                "WHERE originator_id = %s AND originator_version = %s"
            ),
            (UUID(bytes=originator_id), version),
        ).fetchone()
        return int(row[0]) if row else None

    def held_keys(self) -> set[Pair]:
        query = self._q("SELECT subject, tier FROM {schema}.backcheck_keys")
        try:
            rows = self.conn.execute(query).fetchall()
        except psycopg.errors.UndefinedTable:  # a store that never sealed a value
            self.conn.rollback()
            return set()
        return {(UUID(subject), tier) for subject, tier in rows}

    def wrapped_keys(self) -> list[WrappedKey]:
        query = self._q(KEY_ROWS.replace("backcheck_keys", "{schema}.backcheck_keys"))
        try:
            return [wrapped_key(row) for row in self.conn.execute(query).fetchall()]
        except psycopg.errors.UndefinedTable:  # a store that never sealed a value
            self.conn.rollback()
            return []

    def erasures(self, subjects: Iterable[UUID]) -> dict[UUID, tuple[bool, set[str]]]:
        query = self._q("SELECT topic, state FROM {schema}.{events} WHERE originator_id = %s")
        return {
            s: erasures_in((t, bytes(b)) for t, b in self.conn.execute(query, (s,)).fetchall())
            for s in subjects
        }

    def tree_nodes(self, keys: Sequence[Key]) -> dict[Key, bytes]:
        def execute(statement: Any, params: Sequence[object]) -> list[tuple[object, ...]]:
            return self.conn.execute(statement, params).fetchall()

        return postgres_nodes(execute, self.schema_name, self.tree_name)(keys)

    def tree_end(self) -> tuple[int, int]:
        row = self.conn.execute(
            self._q(
                "SELECT leaf, position FROM {schema}.{tree} WHERE level = 0 "
                "ORDER BY leaf DESC LIMIT 1"
            )
        ).fetchone()
        return (int(row[0]) + 1, int(row[1])) if row else (0, 0)

    def leaf_position(self, index: int) -> int | None:
        query = self._q("SELECT position FROM {schema}.{tree} WHERE leaf = %s AND level = 0")
        row = self.conn.execute(query, (index,)).fetchone()
        return int(row[0]) if row else None

    def leaf_index(self, position: int) -> int | None:
        return find_leaf(position, *self.tree_end(), self.leaf_position)

    def tree_rows(self) -> Iterator[TreeRow]:
        query = self._q(
            "SELECT leaf, level, hash, position FROM {schema}.{tree} ORDER BY leaf, level"
        )
        for leaf, level, h, position in self._stream(query, ()):
            yield leaf, level, bytes(h), position
