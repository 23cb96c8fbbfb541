"""`audit verify`'s check of the Merkle tree: recomputed from the stored records' digests and
compared with every stored leaf and node, naming the first disagreement.

One pass over the records in log order: leaf m must be the m-th record, with the leaf hash of
its digest; each node the recomputation completes must be the next stored node of its level
(each level read in index order); anything stored beyond is a node or leaf for no record. A
tree not built this far (a store chained before the tree, `audit tree-backfill` not yet run)
is named too: then the tree and the chain do not agree on what the log holds.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

from infra.audit.chain import digest
from infra.audit.merkle import Frontier, leaf_hash
from infra.audit.sources import RecordSource

KIND = "tree"
Found = tuple[int, str]  # position, detail


def _node(level: int, index: int, positions: array[int]) -> str:
    first, last = index << level, ((index + 1) << level) - 1
    return (
        f"tree node level {level} index {index} (leaves {first}..{last}, positions "
        f"{positions[first]}..{positions[last]})"
    )


def check_tree(source: RecordSource) -> Found | None:
    """The first place the stored tree departs from the tree of the stored records, if any."""
    frontier = Frontier()
    positions: array[int] = array("q")
    stored_leaves = source.leaves()
    levels: dict[int, Iterator[tuple[int, bytes]]] = {}
    completed: list[tuple[int, int, bytes]] = []
    for position, oid, version, topic, state in source.records():
        index = len(positions)
        stored = next(stored_leaves, None)
        if stored is None:
            return position, (
                f"the record has no tree leaf: the tree ends after {index} leaves "
                "(run `backcheck audit tree-backfill`)"
            )
        s_index, s_position, s_hash = stored
        if s_index != index or s_position != position:
            return position, (
                f"tree leaf {s_index} names position {s_position}, but the log's record "
                f"{index} is at this position"
            )
        h = leaf_hash(digest(oid, version, topic, state))
        if s_hash != h:
            return position, f"tree leaf {index} differs from the record's digest"
        positions.append(position)
        completed.clear()
        frontier.append(h, completed)
        for level, i, node in completed:
            stream = levels.setdefault(level, source.tree_level(level))
            got = next(stream, None)
            if got is None or got[0] != i:
                return positions[i << level], f"{_node(level, i, positions)} is missing"
            if got[1] != node:
                return positions[i << level], (
                    f"{_node(level, i, positions)} differs from the tree recomputed from the "
                    "records"
                )
    extra = next(stored_leaves, None)
    if extra is not None:
        return extra[1], f"tree leaf {extra[0]} names position {extra[1]}, which holds no record"
    for level in range(1, len(positions).bit_length() + 2):
        got = next(levels.get(level) or source.tree_level(level), None)
        if got is not None:
            return (positions[-1] if positions else 0), (
                f"tree node level {level} index {got[0]} covers leaves the log does not have"
            )
    return None
