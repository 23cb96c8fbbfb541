"""The stored records and chain links, read straight from the database's tables (SQLite file
or PostgreSQL schema), for verification and evidence bundles: not through the application,
so nothing is decoded and no key is needed. Also the key table's (subject, tier) rows and a
subject's erasures as stored, for the key check (keys.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol
from uuid import UUID

from infra.audit.chain import GENESIS, Head
from infra.audit.merkle import Key
from infra.config import Settings
from infra.privacy.erasures import erasures_in
from infra.store.pool import existing_store
from infra.store.tree import TreeRow, find_leaf, sqlite_nodes, tree_table
from services.shredding import Pair

Record = tuple[int, bytes, int, bytes, bytes]  # position, id (16 bytes), version, topic, state
StoredLink = tuple[int, int, bytes, int, bytes]  # position, prev position, id, version, hash
# a key row as stored: subject, scope, wrapped, master, next wrapped, next master (rotation)
WrappedKey = tuple[UUID, str, bytes, str | None, bytes | None, str | None]
KEY_ROWS = "SELECT subject, tier, wrapped, master, next_wrapped, next_master FROM backcheck_keys"


def wrapped_key(row: tuple[object, ...]) -> WrappedKey:
    subject, scope, wrapped, master, next_wrapped, next_master = row
    return (
        UUID(str(subject)),
        str(scope),
        bytes(wrapped),  # type: ignore[call-overload]
        None if master is None else str(master),
        None if next_wrapped is None else bytes(next_wrapped),  # type: ignore[call-overload]
        None if next_master is None else str(next_master),
    )


BATCH = 20_000


class RecordSource(AbstractContextManager["RecordSource"], Protocol):
    def count(self) -> int: ...
    def head(self) -> Head: ...
    def records(self, start: int = 1, stop: int | None = None) -> Iterator[Record]: ...
    def links(self, start: int = 1, stop: int | None = None) -> Iterator[StoredLink]: ...
    def position_of(self, originator_id: bytes, version: int) -> int | None: ...
    def head_before(self, position: int) -> Head: ...
    def last_position(self) -> int: ...
    def held_keys(self) -> set[Pair]: ...
    def wrapped_keys(self) -> list[WrappedKey]: ...
    def erasures(self, subjects: Iterable[UUID]) -> dict[UUID, tuple[bool, set[str]]]: ...
    # the Merkle tree (infra/store/tree.py)
    def tree_nodes(self, keys: Sequence[Key]) -> dict[Key, bytes]: ...
    def tree_end(self) -> tuple[int, int]: ...  # (leaves stored, last leaf's position)
    def leaf_index(self, position: int) -> int | None: ...
    def leaf_position(self, index: int) -> int | None: ...  # the record at leaf `index`
    def tree_rows(self) -> Iterator[TreeRow]: ...  # as stored, in (leaf, level) order


class SQLiteSource:
    def __init__(self, path: str, events: str = "stored_events", chain: str = "stored_chain"):
        self.conn = sqlite3.connect(f"file:{existing_store(path)}?mode=ro", uri=True)
        self.events, self.chain = events, chain
        self.tree_table = tree_table(events)

    def __enter__(self) -> SQLiteSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def count(self) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {self.events}").fetchone()[0])

    def head(self) -> Head:
        row = self.conn.execute(
            f"SELECT position, hash FROM {self.chain} ORDER BY position DESC LIMIT 1"
        ).fetchone()
        return Head(row[0], bytes(row[1])) if row else Head(0, GENESIS)

    def last_position(self) -> int:
        row = self.conn.execute(
            f"SELECT MAX(x) FROM (SELECT MAX(rowid) AS x FROM {self.events} "
            f"UNION ALL SELECT MAX(position) FROM {self.chain})"
        ).fetchone()
        return int(row[0] or 0)

    def head_before(self, position: int) -> Head:
        row = self.conn.execute(
            f"SELECT position, hash FROM {self.chain} WHERE position < ? "
            "ORDER BY position DESC LIMIT 1",
            (position,),
        ).fetchone()
        return Head(row[0], bytes(row[1])) if row else Head(0, GENESIS)

    def _range(self, column: str, start: int, stop: int | None) -> tuple[str, tuple[int, ...]]:
        if stop is None:
            return f"WHERE {column} >= ?", (start,)
        return f"WHERE {column} >= ? AND {column} <= ?", (start, stop)

    def records(self, start: int = 1, stop: int | None = None) -> Iterator[Record]:
        where, params = self._range("rowid", start, stop)
        cursor = self.conn.execute(
            f"SELECT rowid, originator_id, originator_version, CAST(topic AS BLOB), "
            "CAST(state AS BLOB) "
            f"FROM {self.events} {where} ORDER BY rowid",
            params,
        )
        fromhex = bytes.fromhex  # ids are stored as 32 hex digits
        for pos, oid, ver, topic, state in cursor:
            yield pos, fromhex(oid), ver, topic, state

    def links(self, start: int = 1, stop: int | None = None) -> Iterator[StoredLink]:
        where, params = self._range("position", start, stop)
        cursor = self.conn.execute(
            f"SELECT position, prev_position, originator_id, originator_version, hash "
            f"FROM {self.chain} {where} ORDER BY position",
            params,
        )
        fromhex = bytes.fromhex
        for pos, prev, oid, ver, h in cursor:
            yield pos, prev, fromhex(oid), ver, h

    def position_of(self, originator_id: bytes, version: int) -> int | None:
        row = self.conn.execute(
            f"SELECT rowid FROM {self.events} WHERE originator_id = ? AND originator_version = ?",
            (UUID(bytes=originator_id).hex, version),
        ).fetchone()
        return int(row[0]) if row else None

    def held_keys(self) -> set[Pair]:
        try:
            rows = self.conn.execute("SELECT subject, tier FROM backcheck_keys").fetchall()
        except sqlite3.OperationalError:  # no key table: a store that never sealed a value
            return set()
        return {(UUID(subject), tier) for subject, tier in rows}

    def wrapped_keys(self) -> list[WrappedKey]:
        try:
            return [wrapped_key(row) for row in self.conn.execute(KEY_ROWS).fetchall()]
        except sqlite3.OperationalError:  # no key table: a store that never sealed a value
            return []

    def erasures(self, subjects: Iterable[UUID]) -> dict[UUID, tuple[bool, set[str]]]:
        query = f"SELECT topic, CAST(state AS BLOB) FROM {self.events} WHERE originator_id = ?"
        return {s: erasures_in(self.conn.execute(query, (s.hex,)).fetchall()) for s in subjects}

    def tree_nodes(self, keys: Sequence[Key]) -> dict[Key, bytes]:
        def execute(statement: str, params: Sequence[object]) -> list[tuple[object, ...]]:
            return self.conn.execute(statement, params).fetchall()

        return sqlite_nodes(execute, self.tree_table)(keys)

    def tree_end(self) -> tuple[int, int]:
        row = self.conn.execute(
            f"SELECT leaf, position FROM {self.tree_table} WHERE level = 0 "
            "ORDER BY leaf DESC LIMIT 1"
        ).fetchone()
        return (int(row[0]) + 1, int(row[1])) if row else (0, 0)

    def leaf_position(self, index: int) -> int | None:
        query = f"SELECT position FROM {self.tree_table} WHERE leaf = ? AND level = 0"
        row = self.conn.execute(query, (index,)).fetchone()
        return int(row[0]) if row else None

    def leaf_index(self, position: int) -> int | None:
        return find_leaf(position, *self.tree_end(), self.leaf_position)

    def tree_rows(self) -> Iterator[TreeRow]:
        yield from self.conn.execute(
            f"SELECT leaf, level, hash, position FROM {self.tree_table} ORDER BY leaf, level"
        )


def open_source(settings: Settings) -> RecordSource:
    if settings.backend == "sqlite":
        return SQLiteSource(str(settings.sqlite_path))
    from infra.audit.postgres_source import PostgresSource  # its driver, for it alone

    return PostgresSource(
        settings.postgres_conninfo(), settings.postgres_schema, where=settings.describe()
    )
