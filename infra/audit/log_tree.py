"""Tree heads and proofs from the stored Merkle tree (infra/store/tree.py), read straight from the
store's tables through a `RecordSource` (sources.py): a tree head for any size or position, the
inclusion proof of any record in any tree size, the consistency proof between any two sizes.
Each reads at most O(log n) stored nodes, in one statement (infra/audit/merkle.py)."""

from __future__ import annotations

from dataclasses import dataclass

from infra.audit import merkle
from infra.audit.merkle import ProofError
from infra.audit.sources import RecordSource


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes


@dataclass(frozen=True)
class InclusionProof:
    index: int  # the leaf's index: how many records precede it in the log
    position: int
    size: int
    leaf: bytes  # the leaf hash, SHA-256(0x00 | record digest)
    path: list[bytes]


class LogTree:
    def __init__(self, source: RecordSource) -> None:
        self.source = source
        self.size, self.last_position = source.tree_end()

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ProofError(f"tree size {size} is beyond the stored tree's {self.size} leaves")

    def tree_head(self, size: int | None = None) -> TreeHead:
        size = self.size if size is None else size
        self._check_size(size)
        return TreeHead(size, merkle.root(size, self.source.tree_nodes))

    def leaf_index(self, position: int) -> int:
        index = self.source.leaf_index(position)
        if index is None:
            raise ProofError(f"no record at position {position} is in the tree")
        return index

    def head_at(self, position: int) -> TreeHead:
        """The tree head just after the record at `position`."""
        return self.tree_head(self.leaf_index(position) + 1)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        return merkle.inclusion_proof(index, size, self.source.tree_nodes)

    def prove(self, position: int, size: int) -> InclusionProof:
        """The inclusion proof of the record at `position` in the tree of `size` leaves."""
        index = self.leaf_index(position)
        self._check_size(size)
        plan = merkle.inclusion_plan(index, size)
        hashes = merkle.build([(index, index + 1), *plan], self.source.tree_nodes)
        return InclusionProof(index, position, size, hashes[0], hashes[1:])

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        self._check_size(new)
        return merkle.consistency_proof(old, new, self.source.tree_nodes)
