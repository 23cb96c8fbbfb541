"""Building the Merkle tree over a store chained before the tree existed, a batch at a time.

Each batch is a write transaction of its own, under the writer lock (so it is serialised with
every writer): it reads the tree's last leaf, the records after it with their chain links,
checks each record against its link — the digest it hashes to must give the stored link from
the link before — and appends the leaves and the nodes they complete. An interrupted backfill
resumes from the last batch committed. The batch that reaches the chain's head makes the tree
current, and from then on each writer extends it in the insert's transaction
(infra/store/tree.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from infra.audit.chain import GENESIS, LINK, RECORD_HEADER
from infra.audit.merkle import Frontier, NodeSource
from infra.store.tree import TreeEnd, TreeRow, grow

BACKFILL_BATCH = 20_000

# position, originator id (16 bytes), version, topic (bytes), state, link's prev position
# (None: no link), link hash
ChainedRecord = tuple[int, bytes, int, bytes, bytes, int | None, bytes | None]


class TreeBackfillError(RuntimeError):
    """The stored records disagree with their chain: no tree is built over them."""


def backfill_rows(
    end: TreeEnd, prev_link: bytes | None, records: Sequence[ChainedRecord], nodes: NodeSource
) -> list[TreeRow]:
    """The tree rows for `records` (the next ones after the tree's last leaf, in log order),
    each checked against the chain first. `prev_link` is the chain's hash at the tree's last
    leaf (None for an empty tree)."""
    prev_position, prev_hash = end.last_position, prev_link or GENESIS
    if end.size and prev_link is None:
        raise TreeBackfillError(
            f"position {end.last_position}: the tree's last leaf has no chain link; "
            "run `backcheck audit verify`"
        )
    positions, digests = [], []
    sha, rpack, lpack = hashlib.sha256, RECORD_HEADER.pack, LINK.pack  # chain.py's, inlined
    for position, oid, version, topic, state, link_prev, link_hash in records:
        if link_hash is None or link_prev != prev_position:
            raise TreeBackfillError(
                f"position {position}: the record has no chain link following position "
                f"{prev_position}; run `backcheck audit verify`"
            )
        d = sha(rpack(oid, version) + topic + b"\0" + state).digest()
        if sha(lpack(prev_hash, position, prev_position, d)).digest() != link_hash:
            raise TreeBackfillError(
                f"position {position}: the record differs from what was chained; "
                "run `backcheck audit verify`"
            )
        positions.append(position)
        digests.append(d)
        prev_position, prev_hash = position, link_hash
    return grow(Frontier.load(end.size, nodes), positions, digests)
