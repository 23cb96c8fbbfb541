"""The Merkle tree over the log, as stored: written by the recorders in the insert's transaction.

One append-only table beside the chain (infra/audit/merkle.py says what the tree is):

    PREFIX_tree (leaf, level, hash, position)

holds every complete subtree: the node of `level` whose last leaf is `leaf` (merkle.py's node
(level, i) has leaf = (i + 1)·2^level - 1). Level 0 are the leaves, each with the position
of its record (the others have none). Keyed by (leaf, level), the rows sit in the order they
are written — a leaf, then the nodes it completes — so that a write appends to one page of
the table, and `audit verify` reads it once in that order. Positions grow with leaf indices,
so the leaf of a position is found by a binary search over at most the log's gaps
(`find_leaf`), without an index of its own.

A write takes the right edge of the tree from this process's last write when the chain's head
is where that write left it, else reads the tree's last leaf and at most log2 n stored nodes
(one statement each); it appends the new records' leaf hashes and stores the leaves and each
node they complete, in one statement: about two rows a record. The tree is written only while it is
*current* — its last leaf is the chain's head. A store chained before the tree existed has
none until `backcheck audit tree-backfill` (tree_backfill.py) builds it a batch at a time;
writers meanwhile leave it to the backfill, which catches up under the writer lock, each
batch in a transaction of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from infra.audit.c_core import accelerated
from infra.audit.merkle import Frontier, Key, NodeSource

TreeRow = tuple[int, int, bytes, int | None]  # leaf, level, hash, position (leaves only)


def row_key(key: Key) -> tuple[int, int]:
    """merkle.py's (level, index) of a node as the table keys it: (its last leaf, level)."""
    level, index = key
    return ((index + 1) << level) - 1, level


def node_key(leaf: int, level: int) -> Key:
    return level, ((leaf + 1) >> level) - 1


def tree_table(events_table_name: str) -> str:
    """`stored_events` → `stored_tree`, as the chain is `stored_chain`."""
    return events_table_name.removesuffix("_events") + "_tree"


@dataclass(frozen=True)
class TreeEnd:
    """The tree's last leaf as read in a write's transaction: its index and position, or
    (-1, 0) for an empty tree."""

    last_index: int
    last_position: int

    @property
    def size(self) -> int:
        return self.last_index + 1

    def current(self, chain_head_position: int) -> bool:
        """Does the tree end where the chain does (so new records are appended to both)?"""
        return self.last_position == chain_head_position


class FrontierCache:
    """The right edge of the tree as this process's last write left it, with the chain head
    that write ended at. When a new write finds the chain head there, the tree in the store is
    that tree (tree rows and links are written in one transaction, and the head's hash names
    the whole history before it), so neither the tree's end nor its edge need be read back.
    The edge is handed out to be extended in place and is not kept meanwhile: a write that
    fails before keeping it again leaves nothing, and one whose transaction then rolls back
    leaves an entry no later chain head matches."""

    def __init__(self) -> None:
        self._head: tuple[int, bytes] | None = None
        self._frontier: Frontier | None = None

    def take(self, chain_head: tuple[int, bytes]) -> Frontier | None:
        """The edge kept with `chain_head`, or None; either way nothing is kept after."""
        frontier, self._frontier = self._frontier, None
        return frontier if frontier is not None and self._head == chain_head else None

    def keep(self, chain_head: tuple[int, bytes], frontier: Frontier) -> None:
        self._head, self._frontier = chain_head, frontier


def _grow_python(
    stack: list[tuple[int, bytes]], index: int, positions: Sequence[int], digests: Sequence[bytes]
) -> list[TreeRow]:
    """The reference: merkle.Frontier.append's steps, inlined (every write's and the
    backfill's inner loop)."""
    rows: list[TreeRow] = []
    add, sha, push, pop = rows.append, hashlib.sha256, stack.append, stack.pop
    for position, d in zip(positions, digests, strict=True):
        h = sha(b"\x00" + d).digest()  # merkle.leaf_hash
        add((index, 0, h, position))
        level = 0
        while stack and stack[-1][0] == level:
            h = sha(b"\x01" + pop()[1] + h).digest()  # merkle.node_hash
            level += 1
            add((index, level, h, None))
        push((level, h))
        index += 1
    return rows


Grow = Callable[[list[tuple[int, bytes]], int, Sequence[int], Sequence[bytes]], list[TreeRow]]
_grow_c: Grow | None = accelerated("tree_grow")  # the C core's, when built
_grow: Grow = _grow_c or _grow_python


def grow(frontier: Frontier, positions: Sequence[int], digests: Sequence[bytes]) -> list[TreeRow]:
    """The rows that append records (positions, record digests) to the stored tree whose
    right edge is `frontier` (extended in place): each leaf, then the nodes it completes."""
    rows = _grow(frontier.stack, frontier.size, positions, digests)
    frontier.size += len(digests)
    return rows


def extend_tree(
    cache: FrontierCache,
    head: tuple[int, bytes],
    new_head: tuple[int, bytes],
    read_end: Callable[[], TreeEnd],
    nodes: Callable[[], NodeSource],
    positions: Sequence[int],
    digests: Sequence[bytes],
) -> list[TreeRow]:
    """The tree rows of a write that moves the chain from `head` to `new_head` (position,
    hash), none while the tree is not current (a backfill still to run). The tree's end and
    edge are read (`read_end`, then the edge's nodes from `nodes()`) only when the cache
    does not hold the edge at `head`."""
    frontier = cache.take(head)
    if frontier is None:
        end = read_end()
        if not end.current(head[0]):
            return []
        frontier = Frontier.load(end.size, nodes())
    rows = grow(frontier, positions, digests)
    cache.keep(new_head, frontier)
    return rows


def find_leaf(
    position: int, size: int, last_position: int, position_of: Callable[[int], int | None]
) -> int | None:
    """The index of the leaf of the record at `position`, or None. Positions start at 1 and
    grow with indices, so leaf i sits at position >= i + 1, and at most `last_position - size`
    positions are missing before any: a binary search over that many (one look-up when the
    log has no gaps, as on SQLite)."""
    if not 0 < position <= last_position or size == 0:
        return None
    gaps = last_position - size
    lo, hi = max(0, position - 1 - gaps), min(size - 1, position - 1)
    while lo <= hi:
        mid = (lo + hi) // 2
        at = position_of(mid)
        if at is None:
            return None
        if at == position:
            return mid
        if at < position:
            lo = mid + 1
        else:
            hi = mid - 1
    return None


# --- SQLite ------------------------------------------------------------------------------------


def sqlite_ddl(tree: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {tree} ("
        "leaf INTEGER NOT NULL, level INTEGER NOT NULL, hash BLOB NOT NULL, position INTEGER, "
        "PRIMARY KEY (leaf, level)) WITHOUT ROWID"
    )


Execute = Callable[[str, Sequence[object]], list[tuple[object, ...]]]


def sqlite_nodes(execute: Execute, tree: str) -> NodeSource:
    """The stored hashes of the keys asked, in one statement."""

    def fetch(keys: Sequence[Key]) -> dict[Key, bytes]:
        if not keys:
            return {}
        rows = execute(
            f"SELECT leaf, level, hash FROM {tree} WHERE "
            + " OR ".join(["(leaf = ? AND level = ?)"] * len(keys)),
            [v for key in keys for v in row_key(key)],
        )
        return {node_key(int(f), int(lv)): bytes(h) for f, lv, h in rows}  # type: ignore[call-overload]

    return fetch


# --- PostgreSQL (the driver's composition, without importing it here) ------------------------

PgExecute = Callable[[Any, Sequence[object]], list[tuple[object, ...]]]


def postgres_nodes(execute: PgExecute, schema: str, tree: str) -> NodeSource:
    """The stored hashes of the keys asked, in one statement (keys joined as arrays)."""
    from psycopg.sql import SQL, Identifier

    statement = SQL(
        "SELECT t.leaf, t.level, t.hash FROM {schema}.{tree} t "
        "JOIN unnest(%s::bigint[], %s::smallint[]) AS k(leaf, level) "
        "ON t.leaf = k.leaf AND t.level = k.level"
    ).format(schema=Identifier(schema), tree=Identifier(tree))

    def fetch(keys: Sequence[Key]) -> dict[Key, bytes]:
        if not keys:
            return {}
        wanted = [row_key(key) for key in keys]
        rows = execute(statement, [[f for f, _ in wanted], [lv for _, lv in wanted]])
        return {node_key(int(f), int(lv)): bytes(h) for f, lv, h in rows}  # type: ignore[call-overload]

    return fetch
