"""The Merkle tree over the log (RFC 9162 §2.1), its hashing and proofs, on any node store.

The tree's leaves are the record digests the chain already defines (chain.py), in log order;
leaf index m is the m-th stored record (positions may have gaps, indices have none). Hashing is
domain-separated as in RFC 9162:

    leaf hash   = SHA-256(0x00 | digest)
    node hash   = SHA-256(0x01 | left | right)
    MTH({})     = SHA-256()

The store keeps every *perfect* subtree: node (level L, index i) is the hash of the leaves
[i·2^L, (i+1)·2^L); level 0 holds the leaf hashes. Any range [a, b) that the RFC's recursion
meets splits into O(log n) perfect subtrees, so the root of any tree size and every proof is
built from O(log n) stored nodes, fetched at once through a `NodeSource`. Proofs are the RFC's
PATH (§2.1.3.1) and PROOF/SUBPROOF (§2.1.4.1); the verifiers are §2.1.3.2 and §2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()
HASH_SIZE = 32

Key = tuple[int, int]  # (level, index) of a perfect subtree
NodeSource = Callable[[Sequence[Key]], dict[Key, bytes]]  # the stored hashes of those asked


class ProofError(ValueError):
    """A proof asked for sizes or indices the tree does not have, or a node it lacks."""


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def subtrees(start: int, end: int) -> list[Key]:
    """The perfect subtrees that make up leaves [start, end), left to right. `start` must be
    aligned to the largest of them (true of every range the RFC's recursion splits off)."""
    keys: list[Key] = []
    at, size = start, end - start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, at >> level))
            at += 1 << level
    return keys


def fold(hashes: Sequence[bytes]) -> bytes:
    """The root over consecutive perfect subtrees (largest first): MTH's right fold."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _largest_power_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


# A proof is planned as a list of ranges, each to be hashed as MTH over [a, b); the nodes all
# of them need are then fetched in one call.
Plan = list[tuple[int, int]]


def inclusion_plan(index: int, size: int) -> Plan:
    """RFC 9162 PATH(index, D[0:size]) as the ranges whose MTH form it, in proof order."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    plan: Plan = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _largest_power_below(hi - lo)
        if m < k:
            plan.append((lo + k, hi))
            hi = lo + k
        else:
            plan.append((lo, lo + k))
            lo, m = lo + k, m - k
    plan.reverse()  # PATH lists the deepest sibling first
    return plan


def consistency_plan(old: int, new: int) -> Plan:
    """RFC 9162 PROOF(old, D[0:new]) = SUBPROOF(old, D[0:new], true), as ranges."""
    if not 0 <= old <= new:
        raise ProofError(f"no consistency proof from size {old} to size {new}")
    if old == 0 or old == new:
        return []
    plan: Plan = []
    lo, hi, m, whole = 0, new, old, True
    while m != hi - lo:
        k = _largest_power_below(hi - lo)
        if m <= k:
            plan.append((lo + k, hi))
            hi = lo + k
        else:
            plan.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        plan.append((lo, hi))
    plan.reverse()
    return plan


def build(plan: Plan, nodes: NodeSource) -> list[bytes]:
    """The hashes a plan names, from the stored perfect subtrees (one fetch)."""
    parts = [subtrees(a, b) for a, b in plan]
    wanted = sorted({key for keys in parts for key in keys})
    found = nodes(wanted)
    missing = [key for key in wanted if key not in found]
    if missing:
        level, index = missing[0]
        raise ProofError(f"the tree lacks node level {level} index {index}")
    return [fold([found[key] for key in keys]) for keys in parts]


def root(size: int, nodes: NodeSource) -> bytes:
    """MTH of the first `size` leaves."""
    return build([(0, size)], nodes)[0] if size else EMPTY_ROOT


def inclusion_proof(index: int, size: int, nodes: NodeSource) -> list[bytes]:
    return build(inclusion_plan(index, size), nodes)


def consistency_proof(old: int, new: int, nodes: NodeSource) -> list[bytes]:
    return build(consistency_plan(old, new), nodes)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` show leaf hash `leaf` at `index` in the tree of `size`
    leaves whose root is `expected_root`?"""
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == expected_root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: does `proof` show the tree of `old` leaves with root `old_root` is a
    prefix of the tree of `new` leaves with root `new_root`? (An empty tree is a prefix of
    any, and a tree of itself, each with an empty proof.)"""
    if not 0 <= old <= new or any(len(p) != HASH_SIZE for p in proof):
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    path = list(proof)
    if old & (old - 1) == 0:  # an exact power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


class Frontier:
    """The right edge of a growing tree (its perfect subtrees, largest first), from which new
    leaves are appended: each append yields the nodes it completes, for storing."""

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.stack: list[tuple[int, bytes]] = list(
            zip((level for level, _ in subtrees(0, size)), hashes, strict=True)
        )

    @classmethod
    def load(cls, size: int, nodes: NodeSource) -> Frontier:
        keys = subtrees(0, size)
        found = nodes(keys)
        if len(found) != len(keys):
            level, index = next(k for k in keys if k not in found)
            raise ProofError(f"the tree lacks node level {level} index {index}")
        return cls(size, [found[k] for k in keys])

    def append(self, leaf: bytes, out: list[tuple[int, int, bytes]]) -> None:
        """Adds a leaf hash; (level, index, hash) of every node it completes (level >= 1)
        goes to `out`."""
        stack, sha = self.stack, _sha256
        level, h = 0, leaf
        self.size += 1
        n = self.size
        while stack and stack[-1][0] == level:
            h = sha(b"\x01" + stack.pop()[1] + h).digest()
            level += 1
            out.append((level, (n >> level) - 1, h))
        stack.append((level, h))

    def root(self) -> bytes:
        return fold([h for _, h in self.stack])
