"""The independent verifier's RFC 9162 proof checks against the published test vectors.

The vectors are the ones every RFC 6962 implementation tests with (Certificate Transparency's
reference tree of eight leaves; the same tree and proofs as transparency-dev/merkle's testdata
`happy-path` probes): leaf data, root hashes of every prefix, inclusion and consistency
proofs. The probes that must fail are made here the same way that testdata makes them:
each number moved, each proof hash bit-flipped, hashes added before and after, roots swapped.
(A tree size moved by one is no probe there: for some leaves the same proof and root fit both
sizes. A bundle binds the size by the checkpoint's signature over size and root together.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from infra.audit.verify_bundle import (
    InvalidError,
    check_consistency,
    check_inclusion,
    consistency_proof_length,
    inclusion_proof_length,
    leaf_hash,
)
from tests.proofs import consistency, mth, path

LEAVES = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f")
]  # fmt: skip
ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
H = {
    "L1": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "N23": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "N4_8": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "L4": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "N67": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "L5": "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "L2": "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "N45": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "L6": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
}
# (leaf index, tree size, proof)
INCLUSION = [
    (0, 1, []),
    (0, 8, ["L1", "N23", "N4_8"]),
    (5, 8, ["L4", "N67", ROOTS[4]]),
    (2, 3, [ROOTS[2]]),
    (1, 5, [ROOTS[1], "N23", "L4"]),
]
# (size1, size2, proof)
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["L1", "N23", "N4_8"]),
    (6, 8, ["N45", "N67", ROOTS[4]]),
    (2, 5, ["N23", "L4"]),
    (6, 7, ["N45", "L6", ROOTS[4]]),
]


def _accepted(check: Callable[..., None], *args: Any) -> bool:
    try:
        check(*args)
    except InvalidError:
        return False
    return True


def _h(name: str) -> bytes:
    return bytes.fromhex(H.get(name, name))


def _root(size: int) -> bytes:
    return bytes.fromhex(ROOTS[size])


def test_the_reference_tree_gives_the_published_roots_and_leaf_hashes() -> None:
    for size, root in ROOTS.items():
        assert mth(LEAVES[:size]).hex() == root
    assert leaf_hash(LEAVES[1]) == _h("L1")
    assert leaf_hash(LEAVES[5]) == _h("L5")
    assert hashlib.sha256(b"").hexdigest() == ROOTS[0]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_the_published_inclusion_proofs_verify(index: int, size: int, proof: list[str]) -> None:
    hashes = [_h(p) for p in proof]
    assert path(index, LEAVES[:size]) == hashes
    check_inclusion(index, size, leaf_hash(LEAVES[index]), hashes, _root(size))


def _inclusion_probes(
    index: int, size: int, proof: list[bytes]
) -> list[tuple[str, tuple[Any, ...]]]:
    leaf, root = leaf_hash(LEAVES[index]), _root(size)
    probes = [
        ("index+1", (index + 1, size, leaf, proof, root)),
        ("index-1", (index - 1, size, leaf, proof, root)),
        ("index^2", (index ^ 2, size, leaf, proof, root)),
        ("size*2", (index, size * 2, leaf, proof, root)),
        ("size/2", (index, size // 2, leaf, proof, root)),
        ("leaf", (index, size, leaf_hash(b"other"), proof, root)),
        ("root", (index, size, leaf, proof, hashlib.sha256(b"random").digest())),
        ("empty root", (index, size, leaf, proof, _root(0))),
        ("preceding root", (index, size, leaf, [root, *proof], root)),
        ("trailing root", (index, size, leaf, [*proof, root], root)),
        ("preceding garbage", (index, size, leaf, [bytes(32), *proof], root)),
        ("trailing garbage", (index, size, leaf, [*proof, bytes(32)], root)),
        ("truncated", (index, size, leaf, proof[:-1], root)),
    ]
    for n, h in enumerate(proof):
        for bit in (0, 1, 7):
            flipped = bytearray(h)
            flipped[bit // 8] ^= 1 << (bit % 8)
            probes.append((f"proof[{n}] bit {bit}", (index, size, leaf, [
                *proof[:n], bytes(flipped), *proof[n + 1 :]], root)))  # fmt: skip
    return [(name, args) for name, args in probes if args[:3] != (index, size, leaf) or
            args[3:] != (proof, root)]  # fmt: skip


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_every_changed_inclusion_probe_is_refused(index: int, size: int, proof: list[str]) -> None:
    hashes = [_h(p) for p in proof]
    probes = _inclusion_probes(index, size, hashes)
    assert [name for name, args in probes if _accepted(check_inclusion, *args)] == []


def test_inclusion_in_an_empty_tree_or_past_its_end_is_refused() -> None:
    leaf = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    for index, size in ((0, 0), (1, 0), (2, 1), (1, 1)):
        with pytest.raises(InvalidError, match="outside a tree"):
            check_inclusion(index, size, leaf, [], _root(0))
    with pytest.raises(InvalidError, match="does not lead"):
        check_inclusion(0, 1, leaf, [], _root(0))


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_the_published_consistency_proofs_verify(size1: int, size2: int, proof: list[str]) -> None:
    hashes = [_h(p) for p in proof]
    assert consistency(size1, LEAVES[:size2]) == hashes
    check_consistency(size1, size2, _root(size1), _root(size2), hashes)


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY[1:])
def test_every_changed_consistency_probe_is_refused(
    size1: int, size2: int, proof: list[str]
) -> None:
    hashes = [_h(p) for p in proof]
    r1, r2 = _root(size1), _root(size2)
    probes = [
        (size1 + 1, size2, r1, r2, hashes),
        (size1 - 1, size2, r1, r2, hashes),
        (size1 ^ 2, size2, r1, r2, hashes),
        (size1, size2, r1, r2, [hashes[0], *hashes]),
        (size1, size2 * 2, r1, r2, hashes),
        (size1, size2 // 2, r1, r2, hashes),
        (size1, size2, r2, r1, hashes),
        (size1, size2, hashlib.sha256(b"x").digest(), r2, hashes),
        (size1, size2, r1, hashlib.sha256(b"x").digest(), hashes),
        (size1, size2, r1, r2, [r1, *hashes]),
        (size1, size2, r1, r2, [r2, *hashes]),
        (size1, size2, r1, r2, [*hashes, r1]),
        (size1, size2, r1, r2, [*hashes, r2]),
        (size1, size2, r1, r2, [bytes(32), *hashes]),
        (size1, size2, r1, r2, [*hashes, bytes(32)]),
        (size1, size2, r1, r2, hashes[:-1]),
        (size1, size2, r1, r2, []),
    ]
    for n in range(len(hashes)):
        for bit in (0, 1, 2):
            flipped = bytearray(hashes[n])
            flipped[0] ^= 1 << bit
            probes.append((size1, size2, r1, r2, [*hashes[:n], bytes(flipped), *hashes[n + 1 :]]))
    changed = [p for p in probes if p != (size1, size2, r1, r2, hashes)]
    assert len(changed) == len(probes)
    assert [n for n, p in enumerate(changed) if _accepted(check_consistency, *p)] == []


def test_the_published_consistency_edge_cases_are_refused() -> None:
    one, two = b"don't care 1", b"don't care 2"
    empty = _root(0)
    refused = [
        (0, 1, empty, empty, [empty]),  # from an empty tree: useless
        (0, 0, empty, two, []),
        (1, 1, empty, two, []),
        (2, 1, one, two, []),
        (1, 0, one, two, []),
        (0, 1, one, two, []),
        (0, 1, empty, two, []),
        (1, 1, one, two, []),
        (0, 0, one, one, []),
        (0, 0, one, two, []),
        (1, 2, one, two, []),
        (1, 1, empty, empty, [empty]),
        (0, 0, empty, empty, [empty]),
    ]
    assert [n for n, p in enumerate(refused) if _accepted(check_consistency, *p)] == []
    assert _accepted(check_consistency, 1, 1, two, two, [])


def test_every_proof_of_every_small_tree_verifies_and_has_the_computed_length() -> None:
    leaves = [n.to_bytes(2, "big") for n in range(70)]
    for size in range(1, 70):
        entries = leaves[:size]
        root = mth(entries)
        for index in range(size):
            proof = path(index, entries)
            assert len(proof) == inclusion_proof_length(index, size)
            check_inclusion(index, size, leaf_hash(entries[index]), proof, root)
        for size1 in range(1, size):
            proof = consistency(size1, entries)
            assert len(proof) == consistency_proof_length(size1, size)
            check_consistency(size1, size, mth(leaves[:size1]), root, proof)
