"""The Merkle tree's hashing and proofs (infra/audit/merkle.py) against the RFC 6962 / 9162
test vectors published with transparency-dev/merkle (proof/verify_test.go: eight leaves, the
root of every size 1..8, and its inclusion and consistency proofs), and against a plain
recursive MTH written from the RFC's definition, for every size and index up to 70."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from infra.audit import merkle
from infra.audit.merkle import Frontier, Key, ProofError
from tests.c_core import require_c_core

LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
          "5051525354555657", "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, 1-based as published; tree size; proof)
INCLUSION = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


class MemoryTree:
    """Every perfect subtree of a list of leaves, kept the way the store keeps them."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.nodes: dict[Key, bytes] = {}
        frontier = Frontier()
        for i, data in enumerate(leaves):
            h = merkle.leaf_hash(data)
            self.nodes[(0, i)] = h
            out: list[tuple[int, int, bytes]] = []
            frontier.append(h, out)
            self.nodes.update({(level, index): h for level, index, h in out})
        self.frontier = frontier

    def __call__(self, keys: Sequence[Key]) -> dict[Key, bytes]:
        return {k: self.nodes[k] for k in keys if k in self.nodes}


def mth(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 as written, recursively: the reference the tree is held to."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return merkle.leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


TREE = MemoryTree(LEAVES)


def test_roots_of_every_size_are_the_published_ones() -> None:
    assert merkle.root(0, TREE) == hashlib.sha256(b"").digest()
    for size in range(1, 9):
        assert merkle.root(size, TREE).hex() == ROOTS[size - 1]
    assert TREE.frontier.root().hex() == ROOTS[7]


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_inclusion_proofs_are_the_published_ones(leaf: int, size: int, proof: list[str]) -> None:
    built = merkle.inclusion_proof(leaf - 1, size, TREE)
    assert [p.hex() for p in built] == proof
    leaf_hash = merkle.leaf_hash(LEAVES[leaf - 1])
    root = bytes.fromhex(ROOTS[size - 1])
    assert merkle.verify_inclusion(leaf - 1, size, leaf_hash, built, root)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_are_the_published_ones(old: int, new: int, proof: list[str]) -> None:
    built = merkle.consistency_proof(old, new, TREE)
    assert [p.hex() for p in built] == proof
    old_root, new_root = bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1])
    assert merkle.verify_consistency(old, new, old_root, new_root, built)


def _flipped(proof: list[bytes], i: int) -> list[bytes]:
    return [bytes([p[0] ^ 8]) + p[1:] if j == i else p for j, p in enumerate(proof)]


def test_tampered_inclusion_proofs_are_refused() -> None:
    """The published corruptions (transparency-dev's corruptInclusionProof) all fail."""
    for leaf, size, hexes in INCLUSION[1:]:
        index, proof = leaf - 1, [bytes.fromhex(h) for h in hexes]
        root, leaf_hash = bytes.fromhex(ROOTS[size - 1]), merkle.leaf_hash(LEAVES[leaf - 1])
        some = bytes.fromhex("abacaba0" + "0" * 40 + "60061e00123456")
        bad = [
            (index - 1, size, leaf_hash, proof, root),
            (index + 1, size, leaf_hash, proof, root),
            (index ^ 2, size, leaf_hash, proof, root),
            (index, size * 2, leaf_hash, proof, root),
            (index, size // 2, leaf_hash, proof, root),
            (index, size, b"WrongLeaf", proof, root),
            (index, size, leaf_hash, proof, hashlib.sha256(b"").digest()),
            (index, size, leaf_hash, proof, some),
            (index, size, leaf_hash, [*proof, b""], root),
            (index, size, leaf_hash, [*proof, root], root),
            (index, size, leaf_hash, [b"", *proof], root),
            (index, size, leaf_hash, [root, *proof], root),
            (index, size, leaf_hash, proof[:-1], root),
            (index, size, leaf_hash, [proof[0], some, *proof[1:]], root),
        ] + [(index, size, leaf_hash, _flipped(proof, i), root) for i in range(len(proof))]
        for case in bad:
            assert not merkle.verify_inclusion(*case), (leaf, size, case[:2])


def test_tampered_consistency_proofs_are_refused() -> None:
    for old, new, hexes in CONSISTENCY[1:]:
        proof = [bytes.fromhex(h) for h in hexes]
        r1, r2 = bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1])
        bad = [
            (old - 1, new, r1, r2, proof),
            (old + 1, new, r1, r2, proof),
            (old ^ 2, new, r1, r2, proof),
            (old, new * 2, r1, r2, proof),
            (old, new // 2, r1, r2, proof),
            (old, new, b"WrongRoot", r2, proof),
            (old, new, r1, b"WrongRoot", proof),
            (old, new, r2, r1, proof),
            (old, new, r1, r2, []),
            (old, new, r1, r2, [*proof, b""]),
            (old, new, r1, r2, [*proof, r1]),
            (old, new, r1, r2, [*proof, r2]),
            (old, new, r1, r2, [b"", *proof]),
            (old, new, r1, r2, [r1, *proof]),
            (old, new, r1, r2, [r2, *proof]),
            (old, new, r1, r2, [proof[0], *proof]),
            (old, new, r1, r2, proof[:-1]),
        ] + [(old, new, r1, r2, _flipped(proof, i)) for i in range(len(proof))]
        for case in bad:
            assert not merkle.verify_consistency(*case), (old, new, case[:2])


def test_every_size_and_index_against_the_rfc_definition() -> None:
    leaves = [i.to_bytes(4, "big") for i in range(70)]
    tree = MemoryTree(leaves)
    for size in range(1, 71):
        root = merkle.root(size, tree)
        assert root == mth(leaves[:size])
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, tree)
            assert len(proof) <= (size - 1).bit_length()
            leaf = merkle.leaf_hash(leaves[index])
            assert merkle.verify_inclusion(index, size, leaf, proof, root)
        for old in range(0, size + 1):
            proof = merkle.consistency_proof(old, size, tree)
            old_root = merkle.root(old, tree)
            assert merkle.verify_consistency(old, size, old_root, root, proof)
            if 0 < old < size:
                assert not merkle.verify_consistency(old, size, root, root, proof)


def test_proofs_outside_the_tree_are_refused() -> None:
    with pytest.raises(ProofError, match="not in a tree of size 8"):
        merkle.inclusion_proof(8, 8, TREE)
    with pytest.raises(ProofError, match="from size 9 to size 8"):
        merkle.consistency_proof(9, 8, TREE)
    with pytest.raises(ProofError, match="lacks node level 0 index 8"):
        merkle.inclusion_proof(0, 9, TREE)


def test_the_leaf_of_a_position_is_found_over_the_logs_gaps() -> None:
    from infra.store.tree import find_leaf

    looked: list[int] = []
    for gaps in ([], [3], [2, 3, 4, 9, 10, 30], list(range(5, 60, 2))):
        positions = [p for p in range(1, 80) if p not in gaps]

        def position_of(index: int, positions: list[int] = positions) -> int | None:
            looked.append(index)
            return positions[index] if index < len(positions) else None

        for p in range(0, 82):
            looked.clear()
            expected = positions.index(p) if p in positions else None
            assert find_leaf(p, len(positions), positions[-1], position_of) == expected
            assert len(looked) <= max(1, len(gaps).bit_length() + 1)


def test_a_kept_right_edge_is_used_only_after_the_chain_head_it_was_kept_with() -> None:
    """The recorders' FrontierCache: a write whose transaction then rolled back kept an edge
    with a chain head no later write finds, so the next write reads the tree back instead."""
    from infra.store.tree import FrontierCache, TreeEnd, extend_tree

    cache = FrontierCache()
    reads: list[int] = []

    def read_end() -> TreeEnd:
        reads.append(1)
        return TreeEnd(-1, 0)

    digests = [bytes([i]) * 32 for i in range(3)]
    rows = extend_tree(cache, (0, bytes(32)), (2, b"h2" * 16), read_end, _tree, [1, 2], digests[:2])
    assert len(reads) == 1  # nothing kept yet: the tree's end read
    assert [(leaf, level) for leaf, level, _, _ in rows] == [(0, 0), (1, 0), (1, 1)]
    # the next write starts where that one ended: nothing read back
    more = extend_tree(cache, (2, b"h2" * 16), (3, b"h3" * 16), read_end, _tree, [3], digests[2:])
    assert len(reads) == 1
    assert [(leaf, level) for leaf, level, _, _ in more] == [(2, 0)]
    # a chain head the kept edge does not know (that write rolled back; another wrote): read
    extend_tree(cache, (2, b"xx" * 16), (3, b"h3" * 16), read_end, _tree, [3], digests[2:])
    assert len(reads) == 2


def test_a_right_edge_handed_out_is_not_kept_until_its_write_has_its_rows() -> None:
    """The edge is extended in place: a write that fails between taking it and keeping it
    again (here: a digest that is not bytes, after the first leaf went in) must not leave
    it, half grown, for the next write at the same chain head, which reads the tree back."""
    from infra.store.tree import FrontierCache, TreeEnd, extend_tree

    cache = FrontierCache()
    ends = [TreeEnd(-1, 0)]
    reads: list[int] = []

    def read_end() -> TreeEnd:
        reads.append(1)
        return ends[-1]

    d = [bytes([i]) * 32 for i in range(3)]
    h1 = (1, b"h1" * 16)
    extend_tree(cache, (0, bytes(32)), h1, read_end, lambda: TREE, [1], d[:1])
    ends.append(TreeEnd(0, 1))  # as stored: TREE's leaf 0 at position 1
    bad: list[bytes] = [d[1], 5]  # type: ignore[list-item]
    with pytest.raises(TypeError):
        extend_tree(cache, h1, (3, b"h3" * 16), read_end, lambda: TREE, [2, 3], bad)
    assert len(reads) == 1
    rows = extend_tree(cache, h1, (2, b"h2" * 16), read_end, lambda: TREE, [2], d[1:2])
    assert len(reads) == 2  # read back, not the failed write's half-grown edge
    leaf = merkle.leaf_hash(d[1])
    assert rows == [(1, 0, leaf, 2), (1, 1, merkle.node_hash(TREE.nodes[(0, 0)], leaf), None)]


def _tree() -> MemoryTree:
    return TREE


@pytest.mark.parametrize("start", [0, 1, 5, 6, 7, 8, 1023, 0b1011011])
def test_the_c_core_grows_the_tree_as_the_python_reference_does(start: int) -> None:
    """infra/audit/_chain.c's tree_grow against tree.py's reference: the same rows, and the
    same right edge left, from trees of several sizes, a leaf at a time and many at once."""
    from infra.store import tree

    grow = require_c_core(tree._grow_c)
    digests = [hashlib.sha256(b"record %d" % i).digest() for i in range(start + 40)]
    edge = Frontier()
    for h in digests[:start]:
        edge.append(merkle.leaf_hash(h), [])
    for batch in ([1] * 20, [7, 13]):
        c_stack, py_stack = list(edge.stack), list(edge.stack)
        index = start
        for n in batch:
            positions = list(range(index + 1, index + n + 1))
            part = digests[index : index + n]
            c_rows = grow(c_stack, index, positions, part)
            assert c_rows == tree._grow_python(py_stack, index, positions, part)
            assert c_stack == py_stack
            index += n


def test_the_c_core_refuses_digests_it_cannot_hash() -> None:
    from infra.store import tree

    grow = require_c_core(tree._grow_c)
    with pytest.raises(ValueError, match="32 bytes"):
        grow([], 0, [1], [b"short"])
    with pytest.raises(ValueError, match="as many digests as positions"):
        grow([], 0, [1, 2], [bytes(32)])
    with pytest.raises(TypeError, match="bytes"):
        grow([], 0, [1], ["not bytes"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="tuples"):
        grow([0], 0, [1], [bytes(32)])  # type: ignore[list-item]
