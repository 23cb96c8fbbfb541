"""`audit verify`'s check of the Merkle tree: rebuilt from the stored records' digests and
compared with every stored leaf and node, naming the first disagreement.

The chain's pass already computes every record's digest (the leaf's input), so it hands them
here, range by range in log order, with the records' positions (`TreeCheck.feed`): this pass
only builds the leaves and nodes from them (`infra.store.tree.grow`, in the C core when built)
and walks the tree's rows in key order (infra/store/tree.py: a leaf, then the nodes it completes
— the order the rebuild makes them in): each row must be the one rebuilt, with the same hash
and, for a leaf, the record's position. A row missing, one for no record, or one that differs
is named by the position of the first record it covers. A tree not built this far (a store
chained before the tree, `audit tree-backfill` not yet run) is named too: then the tree and the
chain do not agree on what the log holds.

On the way it keeps the root of the records' own tree at each size asked for (`heads`): the
checkpoint notes are held to those, not to the stored tree, so a stored node changed alone is
the tree's fault, never the records'; the tree is rebuilt on past a departure while a size
asked for is still ahead.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from infra.audit.c_core import accelerated
from infra.audit.merkle import EMPTY_ROOT, Frontier
from infra.store.tree import TreeRow, grow

Matches = Callable[[list[tuple[int, bytes]], int, bytes, bytes, list[TreeRow]], bool]
_matches: Matches | None = accelerated("tree_matches")  # the C core's row check
KIND = "tree"
Found = tuple[int, str]  # position, detail


def _what(leaf: int, level: int, positions: array[int]) -> str:
    if level == 0:
        return f"tree leaf {leaf}"
    index = ((leaf + 1) >> level) - 1
    first = index << level
    where = f", positions {positions[first]}..{positions[leaf]}" if leaf < len(positions) else ""
    return f"tree node level {level} index {index} (leaves {first}..{leaf}{where})"


class TreeCheck:
    """The stored tree's rows (`RecordSource.tree_rows()`, in (leaf, level) order) checked
    against the tree of the records fed in log order; `found` is the first departure, and
    `heads` the records' tree head (root, last record's position) at each of `sizes`."""

    def __init__(self, rows: Iterator[TreeRow], sizes: Iterable[int] = ()) -> None:
        self.rows = rows
        self.frontier = Frontier()
        self.positions: array[int] = array("q")
        self.found: Found | None = None
        self.sizes = sorted(set(sizes))
        self.heads: dict[int, tuple[bytes, int]] = {0: (EMPTY_ROOT, 0)} if 0 in self.sizes else {}

    def feed(self, positions: bytes, digests: bytes) -> None:
        """The next records: their positions (array "q" bytes) and digests (32 bytes each),
        cut where a size asked for falls, so its head is taken there."""
        start, count = self.frontier.size, len(digests) // 32
        cuts = [size - start for size in self.sizes if start < size <= start + count]
        at = 0
        for cut in [*cuts, count]:
            if cut > at:
                self._feed(positions[at * 8 : cut * 8], digests[at * 32 : cut * 32])
            at = cut
            size = start + cut
            if cut in cuts and self.frontier.size == size:
                self.heads[size] = (self.frontier.root(), self.positions[size - 1])

    def _feed(self, positions: bytes, digests: bytes) -> None:
        if self.found is not None:
            if self.sizes and self.sizes[-1] > self.frontier.size:  # heads still to take
                first = len(self.positions)
                self.positions.frombytes(positions)
                ds = [digests[i : i + 32] for i in range(0, len(digests), 32)]
                grow(self.frontier, self.positions[first:], ds)
            return
        first = len(self.positions)
        self.positions.frombytes(positions)
        before, after = self.frontier.size, self.frontier.size + len(self.positions) - first
        # n leaves complete n - popcount(n) nodes: the rows a tree of `after` leaves adds
        count = after - before + (after - after.bit_count()) - (before - before.bit_count())
        stored = list(islice(self.rows, count))
        if _matches is not None:  # the C core checks the rows without building them
            edge = list(self.frontier.stack)
            if _matches(self.frontier.stack, before, positions, digests, stored):
                self.frontier.size = after
                return
            self.frontier.stack[:] = edge  # they differ: rebuilt below to name where
        ds = [digests[i : i + 32] for i in range(0, len(digests), 32)]
        expected = grow(self.frontier, self.positions[first:], ds)
        if stored != expected:
            self.found = self._departure(expected, stored)

    def _departure(self, expected: list[TreeRow], stored: list[TreeRow]) -> Found | None:
        for at, (leaf, level, h, position) in enumerate(expected):
            row = stored[at] if at < len(stored) else None
            if row is None or row[0] != leaf or row[1] != level or row[2] != h:
                return _departs(row, leaf, level, h, self.positions)
            if level == 0 and row[3] != position:
                return position or 0, f"tree leaf {leaf} names position {row[3]}, not this record's"
        return None  # only a node's position column differs: it names nothing the tree proves

    def result(self) -> Found | None:
        """The first departure, once every record was fed; the stored rows left over, if any,
        cover records the log does not have."""
        row = next(self.rows, None) if self.found is None else None
        if row is not None:
            what = _what(row[0], row[1], self.positions)
            detail = f"{what} covers records the log does not have"
            self.found = _covered(row, self.positions), detail
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()
        return self.found


def _departs(
    row: tuple[int, int, bytes, int | None] | None,
    index: int,
    level: int,
    expected: bytes,
    positions: array[int],
) -> Found:
    """How the stored row (or its absence) departs from the row recomputed at this point."""
    first = positions[(((index + 1) >> level) - 1) << level]
    if row is None or (row[0], row[1]) > (index, level):
        if level == 0:
            return first, (
                f"the record has no tree leaf: the tree ends after {index} leaves "
                "(run `backcheck audit tree-backfill`)"
            )
        return first, f"{_what(index, level, positions)} is missing"
    if (row[0], row[1]) < (index, level):
        return _covered(row, positions), (
            f"{_what(row[0], row[1], positions)} is stored but not part of the tree"
        )
    detail = "the record's digest" if level == 0 else "the tree of the records"
    return first, f"{_what(index, level, positions)} differs from {detail}"


def _covered(row: tuple[int, int, bytes, int | None], positions: array[int]) -> int:
    """The position of the first record a stored row covers, as far as the log goes."""
    first = (((row[0] + 1) >> row[1]) - 1) << row[1]
    if first < len(positions):
        return positions[first]
    return row[3] if row[3] is not None else (positions[-1] if positions else 0)
