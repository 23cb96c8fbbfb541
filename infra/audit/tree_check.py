"""`audit verify`'s check of the Merkle tree: recomputed from the stored records' digests and
compared with every stored leaf and node, naming the first disagreement.

One pass over the records in log order and the tree's rows in key order (infra/store/tree.py:
a leaf, then the nodes it completes — the order the recomputation makes them in): each row
must be the one recomputed, with the same hash and, for a leaf, the record's position. A row
missing, one for no record, or one that differs is named by the position of the first record
it covers. A tree not built this far (a store chained before the tree, `audit tree-backfill`
not yet run) is named too: then the tree and the chain do not agree on what the log holds.
"""

from __future__ import annotations

import hashlib
from array import array

from infra.audit.chain import RECORD_HEADER
from infra.audit.sources import RecordSource

KIND = "tree"
Found = tuple[int, str]  # position, detail


def _what(leaf: int, level: int, positions: array[int]) -> str:
    if level == 0:
        return f"tree leaf {leaf}"
    index = ((leaf + 1) >> level) - 1
    first = index << level
    where = f", positions {positions[first]}..{positions[leaf]}" if leaf < len(positions) else ""
    return f"tree node level {level} index {index} (leaves {first}..{leaf}{where})"


def check_tree(source: RecordSource) -> Found | None:
    """The first place the stored tree departs from the tree of the stored records, if any."""
    positions: array[int] = array("q")
    stored = source.tree_rows()
    row = next(stored, None)
    # chain.py's digest and merkle.py's leaf and node hashes and Frontier.append, inlined:
    # this loop runs once a record
    sha, rpack, keep = hashlib.sha256, RECORD_HEADER.pack, positions.append
    stack: list[tuple[int, bytes]] = []
    push, pop = stack.append, stack.pop
    for index, (position, oid, version, topic, state) in enumerate(source.records()):
        keep(position)
        h = sha(b"\x00" + sha(rpack(oid, version) + topic + b"\0" + state).digest()).digest()
        if row is not None and row[0] == index and row[1] == 0 and row[2] == h:
            if row[3] != position:
                return position, f"tree leaf {index} names position {row[3]}, not this record's"
            row = next(stored, None)
        else:
            return _departs(row, index, 0, h, positions)
        level = 0
        while stack and stack[-1][0] == level:
            h = sha(b"\x01" + pop()[1] + h).digest()
            level += 1
            if row is not None and row[0] == index and row[1] == level and row[2] == h:
                row = next(stored, None)
            else:
                return _departs(row, index, level, h, positions)
        push((level, h))
    if row is not None:
        return _covered(row, positions), (
            f"{_what(row[0], row[1], positions)} covers records the log does not have"
        )
    return None


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
