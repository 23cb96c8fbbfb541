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

import multiprocessing
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import psycopg
from psycopg import sql

from infra.audit.chain import GENESIS, Head, LinkInput, link_many
from infra.audit.checkpoint import Checkpoint
from infra.config import Settings
from infra.store.server import store_error

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
    def last_position(self) -> int: ...


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


class PostgresSource:
    def __init__(
        self, conninfo: str, schema: str, prefix: str = "backcheck", where: str = "PostgreSQL"
    ):
        try:
            self.conn = psycopg.connect(conninfo)
        except psycopg.OperationalError as e:
            raise store_error(e, where) from None
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


def open_source(settings: Settings) -> RecordSource:
    if settings.backend == "sqlite":
        return SQLiteSource(str(settings.sqlite_path))
    return PostgresSource(
        settings.postgres_conninfo(), settings.postgres_schema, where=settings.describe()
    )


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


# past the end of the records and of the links (never a real position)
_NO_RECORD: Record = (2**63, b"", 0, b"", b"")
_NO_LINK: StoredLink = (2**63, 0, b"", 0, b"")


@dataclass
class _Part:
    problems: list[Problem]
    checked: int
    last: Head
    pinned_links: dict[int, bytes]


def _verify_range(source: RecordSource, lo: int, hi: int | None, pinned: frozenset[int]) -> _Part:
    """Check every link in [lo, hi] against its record and the stored link before it.

    Each link is judged from the stored hash of its predecessor, so ranges are independent and
    can run in parallel; if every link holds, the stored chain equals a recomputation from
    genesis, which is what checkpoints are compared with."""
    problems: list[Problem] = []
    seen: dict[int, bytes] = {}
    start = source.head_before(lo)
    prev_pos, prev_hash = start.position, start.hash
    records = source.records(lo, hi)
    links = source.links(lo, hi)
    rec = next(records, _NO_RECORD)
    lnk = next(links, _NO_LINK)
    # Links are recomputed in batches (by the C accelerator when it is built).
    batch: list[LinkInput] = []
    expected: list[tuple[int, bytes]] = []

    def flush() -> None:
        for (pos, stored), computed in zip(expected, link_many(batch), strict=True):
            if computed != stored:
                problems.append(
                    Problem(pos, "changed", "the stored bytes differ from what was chained")
                )
        batch.clear()
        expected.clear()

    checked = 0
    while rec is not _NO_RECORD or lnk is not _NO_LINK:
        r_pos, l_pos = rec[0], lnk[0]
        if r_pos < l_pos:
            problems.append(Problem(r_pos, "inserted", "a record with no chain link"))
            rec = next(records, _NO_RECORD)
            checked += 1
            continue
        if l_pos < r_pos:
            problems.append(Problem(l_pos, "missing", "the chain links a record that is gone"))
            prev_pos, prev_hash = l_pos, lnk[4]
            if l_pos in pinned:
                seen[l_pos] = lnk[4]
            lnk = next(links, _NO_LINK)
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
        if oid != l_oid or ver != l_ver:
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
        else:
            batch.append((prev_hash, pos, l_prev, oid, ver, topic, state))
            expected.append((pos, l_hash))
            if len(batch) >= 10_000:
                flush()
        if pos in pinned:
            seen[pos] = l_hash
        prev_pos, prev_hash = pos, l_hash
        checked += 1
        rec = next(records, _NO_RECORD)
        lnk = next(links, _NO_LINK)
    flush()
    return _Part(problems, checked, Head(prev_pos, prev_hash), seen)


def _verify_chunk(
    opener: Callable[[], RecordSource], lo: int, hi: int | None, pinned: frozenset[int]
) -> _Part:
    with opener() as source:
        return _verify_range(source, lo, hi, pinned)


def verify(
    source: RecordSource,
    checkpoints: Sequence[Checkpoint] = (),
    progress: Callable[[int], None] | None = None,
    *,
    opener: Callable[[], RecordSource] | None = None,
    workers: int = 1,
    chunk: int = 100_000,
) -> Verdict:
    """Recompute every link, compare with the stored chain and the given checkpoints.

    The log is cut into chunks of positions; with an `opener` (a picklable function that opens
    another connection to the same store) and `workers` > 1 the chunks run in parallel
    processes. Results are merged in order, so the verdict does not depend on the split."""
    verdict = Verdict(checkpoints=len(checkpoints))
    pinned = {c.position: c for c in checkpoints}
    keys = frozenset(pinned)
    top = source.last_position()
    bounds: list[tuple[int, int | None]] = [
        (lo, min(lo + chunk - 1, top)) for lo in range(1, top + 1, chunk)
    ] or [(1, None)]
    bounds[-1] = (bounds[-1][0], None)  # the last chunk takes whatever sits beyond
    if workers > 1 and opener is not None and len(bounds) > 1:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        with pool:
            parts: Iterator[_Part] = pool.map(
                _verify_chunk,
                [opener] * len(bounds),
                [lo for lo, _ in bounds],
                [hi for _, hi in bounds],
                [keys] * len(bounds),
            )
            merged = _merge(verdict, parts, progress)
    else:
        merged = _merge(
            verdict, (_verify_range(source, lo, hi, keys) for lo, hi in bounds), progress
        )
    for position, cp in pinned.items():
        stored = merged.get(position)
        if stored is None:
            verdict.problems.append(
                Problem(
                    position,
                    "checkpoint",
                    f"the checkpoint signed at {cp.time} "
                    f"covers position {position}, which the chain no longer has",
                )
            )
        elif stored.hex() != cp.hash:
            verdict.problems.append(
                Problem(
                    position,
                    "checkpoint",
                    f"the chain at this position differs from the checkpoint signed at {cp.time}",
                )
            )
    return verdict


def _merge(
    verdict: Verdict, parts: Iterable[_Part], progress: Callable[[int], None] | None
) -> dict[int, bytes]:
    pinned_links: dict[int, bytes] = {}
    for part in parts:
        verdict.problems.extend(part.problems)
        verdict.checked += part.checked
        pinned_links.update(part.pinned_links)
        verdict.head = part.last  # parts arrive in log order
        if progress is not None:
            progress(verdict.checked)
    return pinned_links
