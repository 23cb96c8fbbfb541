"""Verifying the hash chain against the stored records, straight from the database.

The verifier reads the raw tables (not through the application), recomputes every link and
names the first position where the stored history departs from what was chained:

    inserted   a record with no link: written around the recorder
    missing    a link whose record is gone, or a link naming a previous position that is gone
    changed    the record's bytes (or its link) differ from what was chained
    reordered  the record chained at this position now sits at another position
    checkpoint a signed checkpoint disagrees with the chain (history rewritten, or cut short)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

import psycopg
from psycopg import sql

from infra.chain import GENESIS, Head, link
from infra.checkpoint import Checkpoint
from infra.config import Settings

Record = tuple[int, bytes, int, bytes, bytes]  # position, id (16 bytes), version, topic, state
StoredLink = tuple[int, int, bytes, int, bytes]  # position, prev position, id, version, hash
BATCH = 20_000


class RecordSource(AbstractContextManager["RecordSource"], Protocol):
    def count(self) -> int: ...
    def head(self) -> Head: ...
    def records(self, start: int = 1, stop: int | None = None) -> Iterator[Record]: ...
    def links(self, start: int = 1, stop: int | None = None) -> Iterator[StoredLink]: ...
    def position_of(self, originator_id: bytes, version: int) -> int | None: ...
    def head_before(self, position: int) -> Head: ...


class SQLiteSource:
    def __init__(self, path: str, events: str = "stored_events", chain: str = "stored_chain"):
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self.events, self.chain = events, chain

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


class PostgresSource:
    def __init__(self, conninfo: str, schema: str, prefix: str = "backcheck"):
        self.conn = psycopg.connect(conninfo)
        self.conn.read_only = True
        self.schema = sql.Identifier(schema)
        self.events = sql.Identifier(f"{prefix}_events")
        self.chain = sql.Identifier(f"{prefix}_chain")

    def __enter__(self) -> PostgresSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def _q(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(schema=self.schema, events=self.events, chain=self.chain)

    def count(self) -> int:
        row = self.conn.execute(self._q("SELECT COUNT(*) FROM {schema}.{events}")).fetchone()
        return int(row[0]) if row else 0

    def head(self) -> Head:
        row = self.conn.execute(
            self._q("SELECT position, hash FROM {schema}.{chain} ORDER BY position DESC LIMIT 1")
        ).fetchone()
        return Head(row[0], bytes(row[1])) if row else Head(0, GENESIS)

    def head_before(self, position: int) -> Head:
        row = self.conn.execute(
            self._q(
                "SELECT position, hash FROM {schema}.{chain} WHERE position < %s "
                "ORDER BY position DESC LIMIT 1"
            ),
            (position,),
        ).fetchone()
        return Head(row[0], bytes(row[1])) if row else Head(0, GENESIS)

    def _stream(self, query: sql.Composed, params: tuple[int, ...]) -> Iterator[tuple[object, ...]]:
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
            yield pos, oid.bytes, ver, bytes(topic), bytes(state)  # type: ignore[union-attr]

    def links(self, start: int = 1, stop: int | None = None) -> Iterator[StoredLink]:
        query = self._q(
            "SELECT position, prev_position, originator_id, originator_version, hash "
            "FROM {schema}.{chain} WHERE position >= %s AND position <= %s ORDER BY position"
        )
        for pos, prev, oid, ver, h in self._stream(query, (start, stop or 2**62)):
            yield pos, prev, oid.bytes, ver, bytes(h)  # type: ignore[union-attr,arg-type]

    def position_of(self, originator_id: bytes, version: int) -> int | None:
        row = self.conn.execute(
            self._q(
                "SELECT notification_id FROM {schema}.{events} "
                "WHERE originator_id = %s AND originator_version = %s"
            ),
            (UUID(bytes=originator_id), version),
        ).fetchone()
        return int(row[0]) if row else None


def open_source(settings: Settings) -> RecordSource:
    if settings.backend == "sqlite":
        return SQLiteSource(str(settings.sqlite_path))
    env = settings.store_env()
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
    )
    return PostgresSource(conninfo, env.get("POSTGRES_SCHEMA", "public"))


@dataclass(frozen=True)
class Problem:
    position: int
    kind: str
    detail: str


@dataclass
class Verdict:
    checked: int = 0
    head: Head = field(default_factory=lambda: Head(0, GENESIS))
    problems: list[Problem] = field(default_factory=list)
    checkpoints: int = 0

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.position) if self.problems else None

    def as_dict(self) -> dict[str, object]:
        first = self.first
        return {
            "intact": self.intact,
            "checked": self.checked,
            "head": {"position": self.head.position, "hash": self.head.hash.hex()},
            "checkpoints": self.checkpoints,
            "first_bad_position": first.position if first else None,
            "problems": [p.__dict__ for p in sorted(self.problems, key=lambda p: p.position)],
        }


_END = (2**63, b"", 0, b"", b"")


def verify(
    source: RecordSource,
    checkpoints: list[Checkpoint] = (),  # type: ignore[assignment]
    progress: Callable[[int], None] | None = None,
) -> Verdict:
    """Recompute every link, compare with the stored chain and the given checkpoints."""
    verdict = Verdict(checkpoints=len(checkpoints))
    pinned = {c.position: c for c in checkpoints}
    seen_links: dict[int, bytes] = {}
    records = source.records()
    links = source.links()
    rec = next(records, _END)
    lnk = next(links, _END)
    prev_pos, prev_hash = 0, GENESIS
    problems = verdict.problems
    checked = 0
    while rec is not _END or lnk is not _END:
        r_pos, l_pos = rec[0], lnk[0]
        if r_pos < l_pos:
            problems.append(Problem(r_pos, "inserted", "a record with no chain link"))
            rec = next(records, _END)
            checked += 1
            continue
        if l_pos < r_pos:
            problems.append(Problem(l_pos, "missing", "the chain links a record that is gone"))
            prev_pos, prev_hash = l_pos, lnk[4]
            if l_pos in pinned:
                seen_links[l_pos] = lnk[4]
            lnk = next(links, _END)
            continue
        pos, oid, ver, topic, state = rec
        _, l_prev, l_oid, l_ver, l_hash = lnk
        if l_prev != prev_pos:
            problems.append(
                Problem(
                    pos,
                    "missing",
                    f"the link follows position {l_prev}, but the log "
                    f"has {prev_pos or 'nothing'} before it",
                )
            )
        if (oid, ver) != (l_oid, l_ver):
            elsewhere = source.position_of(l_oid, l_ver)
            if elsewhere is not None:
                problems.append(
                    Problem(
                        pos,
                        "reordered",
                        f"the record chained here now sits at position {elsewhere}",
                    )
                )
            else:
                problems.append(Problem(pos, "changed", "a different record than was chained"))
        elif link(prev_hash, pos, l_prev, oid, ver, topic, state) != l_hash:
            problems.append(
                Problem(pos, "changed", "the stored bytes differ from what was chained")
            )
        if pos in pinned:
            seen_links[pos] = l_hash
        prev_pos, prev_hash = pos, l_hash
        checked += 1
        if progress is not None and checked % 10_000 == 0:
            progress(checked)
        rec = next(records, _END)
        lnk = next(links, _END)
    if progress is not None:
        progress(checked)
    verdict.checked = checked
    verdict.head = Head(prev_pos, prev_hash)
    for position, cp in pinned.items():
        stored = seen_links.get(position)
        if stored is None:
            problems.append(
                Problem(
                    position,
                    "checkpoint",
                    f"the checkpoint signed at {cp.time} "
                    f"covers position {position}, which the chain no longer has",
                )
            )
        elif stored.hex() != cp.hash:
            problems.append(
                Problem(
                    position,
                    "checkpoint",
                    f"the chain at this position differs from the checkpoint signed at {cp.time}",
                )
            )
    return verdict
