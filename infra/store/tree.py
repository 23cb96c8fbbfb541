"""The Merkle tree over the log, as stored: written by the recorders in the insert's transaction.

Two append-only tables beside the chain (infra/audit/merkle.py says what the tree is):

    PREFIX_leaves  (idx, position, hash)   leaf idx is the record at `position`; hash = level 0
    PREFIX_tree    (level, idx, hash)      every complete subtree of level >= 1

A write reads the tree's last leaf with the chain's head, loads the right edge of the tree
(at most log2 n stored nodes, one statement), appends the new records' leaf hashes and stores
the leaves and each node they complete: about two rows a record. The tree is written only
while it is *current* — its last leaf is the chain's head. A store chained before the tree
existed has none until `backcheck audit tree-backfill` (infra/audit/backfill.py) builds it a
batch at a time; writers meanwhile leave it to the backfill, which catches up under the
writer lock, each batch in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from infra.audit.merkle import Frontier, Key, NodeSource, leaf_hash

LeafRow = tuple[int, int, bytes]  # idx, position, hash
NodeRow = tuple[int, int, bytes]  # level, idx, hash


def tree_tables(events_table_name: str) -> tuple[str, str]:
    """`stored_events` → (`stored_leaves`, `stored_tree`), as the chain is `stored_chain`."""
    prefix = events_table_name.removesuffix("_events")
    return f"{prefix}_leaves", f"{prefix}_tree"


@dataclass(frozen=True)
class TreeEnd:
    """The tree's last leaf as read in the write's transaction: its index, its position and
    hash, or (-1, 0, None) for an empty tree."""

    last_index: int
    last_position: int
    last_hash: bytes | None = None

    @property
    def size(self) -> int:
        return self.last_index + 1

    def current(self, chain_head_position: int) -> bool:
        """Does the tree end where the chain does (so new records are appended to both)?"""
        return self.last_position == chain_head_position


class FrontierCache:
    """The right edge of the tree as this process last wrote it, so that a write need not read
    it back: used only when the tree read in the write's transaction ends in the same leaf at
    the same index (a leaf hash names one record, stored once), else loaded from the store.
    A write that rolls back leaves an entry no later tree matches."""

    def __init__(self) -> None:
        self._kept: tuple[int, bytes | None, tuple[tuple[int, bytes], ...]] | None = None

    def frontier(self, end: TreeEnd, nodes: NodeSource) -> Frontier:
        kept = self._kept
        if kept is not None and kept[0] == end.size and kept[1] == end.last_hash:
            frontier = Frontier(0)
            frontier.size, frontier.stack = end.size, list(kept[2])
            return frontier
        return Frontier.load(end.size, nodes)

    def keep(self, frontier: Frontier, last_hash: bytes | None) -> None:
        self._kept = (frontier.size, last_hash, tuple(frontier.stack))


def grow(
    end: TreeEnd,
    nodes: NodeSource,
    positions: Sequence[int],
    digests: Sequence[bytes],
    cache: FrontierCache | None = None,
) -> tuple[list[LeafRow], list[NodeRow]]:
    """The rows that append records (positions, record digests) to the stored tree."""
    frontier = cache.frontier(end, nodes) if cache else Frontier.load(end.size, nodes)
    leaves: list[LeafRow] = []
    completed: list[NodeRow] = []
    index = end.size
    for position, d in zip(positions, digests, strict=True):
        h = leaf_hash(d)
        leaves.append((index, position, h))
        frontier.append(h, completed)
        index += 1
    if cache is not None:
        cache.keep(frontier, leaves[-1][2] if leaves else end.last_hash)
    return leaves, completed


def split_keys(keys: Sequence[Key]) -> tuple[list[int], list[Key]]:
    """Level-0 keys (in the leaves table) apart from the others (in the tree table)."""
    return [i for level, i in keys if level == 0], [k for k in keys if k[0] > 0]


# --- SQLite ------------------------------------------------------------------------------------


def sqlite_ddl(leaves: str, tree: str) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {leaves} ("
        "idx INTEGER PRIMARY KEY, position INTEGER NOT NULL UNIQUE, hash BLOB NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {tree} ("
        "level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, "
        "PRIMARY KEY (level, idx)) WITHOUT ROWID",
    ]


def sqlite_replace_keys(leaves: str, tree: str) -> list[tuple[str, str]]:
    """What an insert into each table must not collide with (see the recorder's triggers)."""
    return [
        (leaves, "idx = NEW.idx OR position = NEW.position"),
        (tree, "level = NEW.level AND idx = NEW.idx"),
    ]


Execute = Callable[[str, Sequence[object]], list[tuple[object, ...]]]


def sqlite_nodes(execute: Execute, leaves: str, tree: str) -> NodeSource:
    """The stored hashes of the keys asked, in one statement."""

    def fetch(keys: Sequence[Key]) -> dict[Key, bytes]:
        if not keys:
            return {}
        level0, upper = split_keys(keys)
        parts, params = [], []
        if level0:
            parts.append(
                f"SELECT 0, idx, hash FROM {leaves} WHERE idx IN ({','.join('?' * len(level0))})"
            )
            params += level0
        if upper:
            parts.append(
                f"SELECT level, idx, hash FROM {tree} WHERE "
                + " OR ".join(["(level = ? AND idx = ?)"] * len(upper))
            )
            params += [v for key in upper for v in key]
        rows = execute(" UNION ALL ".join(parts), params)
        return {(int(lv), int(i)): bytes(h) for lv, i, h in rows}  # type: ignore[call-overload]

    return fetch


# --- PostgreSQL (the driver's composition, without importing it here) ------------------------

PgExecute = Callable[[Any, Sequence[object]], list[tuple[object, ...]]]


def postgres_nodes(execute: PgExecute, schema: str, leaves: str, tree: str) -> NodeSource:
    """The stored hashes of the keys asked, in one statement (keys joined as arrays)."""
    from psycopg.sql import SQL, Identifier

    statement = SQL(
        "SELECT 0::smallint, idx, hash FROM {schema}.{leaves} WHERE idx = ANY(%s::bigint[]) "
        "UNION ALL SELECT t.level, t.idx, t.hash FROM {schema}.{tree} t "
        "JOIN unnest(%s::smallint[], %s::bigint[]) AS k(level, idx) "
        "ON t.level = k.level AND t.idx = k.idx"
    ).format(schema=Identifier(schema), leaves=Identifier(leaves), tree=Identifier(tree))

    def fetch(keys: Sequence[Key]) -> dict[Key, bytes]:
        if not keys:
            return {}
        level0, upper = split_keys(keys)
        rows = execute(statement, [level0, [lv for lv, _ in upper], [i for _, i in upper]])
        return {(int(lv), int(i)): bytes(h) for lv, i, h in rows}  # type: ignore[call-overload]

    return fetch
