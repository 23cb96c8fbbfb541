"""audit verify's tree pass (infra/audit/tree_check.py) fed record digests range by range: the
stored rows checked by the C core's tree_matches and by the rebuilt rows alike, every stored
row held to the tree of the records, and each kind of departure named the same way."""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator

import pytest

from infra.audit import tree_check
from infra.audit.merkle import Frontier
from infra.audit.tree_check import Found, TreeCheck
from infra.store.tree import TreeRow, grow
from tests.c_core import require_c_core

N = 37
POSITIONS = [3 * i + 2 for i in range(N)]  # gaps, as a PostgreSQL sequence leaves
DIGESTS = [hashlib.sha256(b"record %d" % i).digest() for i in range(N)]


def _rows() -> list[TreeRow]:
    return grow(Frontier(), POSITIONS, DIGESTS)


def _check(
    rows: list[TreeRow], cuts: list[int], c_core: bool, mp: pytest.MonkeyPatch
) -> Found | None:
    if not c_core:
        mp.setattr(tree_check, "_matches", None)
    else:
        require_c_core(tree_check._matches)
    stored: Iterator[TreeRow] = iter(rows)
    check = TreeCheck(stored)
    for lo, hi in zip([0, *cuts], [*cuts, N], strict=True):
        check.feed(array("q", POSITIONS[lo:hi]).tobytes(), b"".join(DIGESTS[lo:hi]))
    return check.result()


SPLITS = [[], [1], [8, 9, 16], [5, 20, 31], list(range(1, N))]


@pytest.mark.parametrize("cuts", SPLITS)
@pytest.mark.parametrize("c_core", [True, False])
def test_the_stored_tree_of_the_records_holds(
    cuts: list[int], c_core: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _check(_rows(), cuts, c_core, monkeypatch) is None


def _node_changed(rows: list[TreeRow]) -> list[TreeRow]:
    at = next(i for i, r in enumerate(rows) if r[:2] == (15, 3))
    rows[at] = (15, 3, bytes(32), None)
    return rows


def _leaf_moved(rows: list[TreeRow]) -> list[TreeRow]:
    at = next(i for i, r in enumerate(rows) if r[:2] == (20, 0))
    rows[at] = (*rows[at][:3], 999)
    return rows


def _node_gone(rows: list[TreeRow]) -> list[TreeRow]:
    return [r for r in rows if r[:2] != (7, 2)]


TAMPERED = [
    (_node_changed, 26, "tree node level 3 index 1 (leaves 8..15, positions 26..47) differs"),
    (_leaf_moved, 62, "tree leaf 20 names position 999, not this record's"),
    (_node_gone, 14, "tree node level 2 index 1 (leaves 4..7, positions 14..23) is missing"),
    (lambda rows: rows[: rows.index(next(r for r in rows if r[0] == 30))], 92,
     "the record has no tree leaf: the tree ends after 30 leaves"),
    (lambda rows: [*rows, (N, 0, bytes(32), 200)], 200,
     f"tree leaf {N} covers records the log does not have"),
]  # fmt: skip


@pytest.mark.parametrize(("tamper", "position", "detail"), TAMPERED)
@pytest.mark.parametrize("cuts", SPLITS)
@pytest.mark.parametrize("c_core", [True, False])
def test_a_tampered_tree_is_named_with_where(
    tamper: object,
    position: int,
    detail: str,
    cuts: list[int],
    c_core: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = _check(tamper(_rows()), cuts, c_core, monkeypatch)  # type: ignore[operator]
    assert found is not None
    assert found[0] == position
    assert found[1].startswith(detail)


def test_the_c_core_matches_exactly_the_rows_grow_builds() -> None:
    """tree_matches says yes to grow's rows and leaves grow's edge; no to any row changed,
    missing or extra, a node's position included."""
    match = require_c_core(tree_check._matches)
    edge = Frontier()
    grow(edge, POSITIONS[:11], DIGESTS[:11])
    positions, digests = array("q", POSITIONS[11:]).tobytes(), b"".join(DIGESTS[11:])
    reference = Frontier(11, [h for _, h in edge.stack])
    rows = grow(reference, POSITIONS[11:], DIGESTS[11:])
    stack = list(edge.stack)
    assert match(stack, 11, positions, digests, rows)
    assert stack == reference.stack
    for wrong in (
        rows[:-1],
        [*rows, rows[-1]],
        [rows[0], (rows[1][0], rows[1][1], rows[1][2], 5), *rows[2:]],
        [(rows[0][0], 0, rows[0][2], rows[0][3] + 1), *rows[1:]],
        [*rows[:-1], (*rows[-1][:2], bytes(32), rows[-1][3])],
    ):
        assert not match(list(edge.stack), 11, positions, digests, wrong)
    with pytest.raises(ValueError, match="8 bytes a position"):
        match([], 0, b"1234", bytes(32), [])


def _heads(
    rows: list[TreeRow], cuts: list[int], sizes: list[int], c_core: bool, mp: pytest.MonkeyPatch
) -> dict[int, tuple[bytes, int]]:
    if not c_core:
        mp.setattr(tree_check, "_matches", None)
    check = TreeCheck(iter(rows), sizes)
    for lo, hi in zip([0, *cuts], [*cuts, N], strict=True):
        check.feed(array("q", POSITIONS[lo:hi]).tobytes(), b"".join(DIGESTS[lo:hi]))
    check.result()
    return check.heads


def _records_head(size: int) -> tuple[bytes, int]:
    edge = Frontier()
    grow(edge, POSITIONS[:size], DIGESTS[:size])
    return edge.root(), POSITIONS[size - 1] if size else 0


@pytest.mark.parametrize("cuts", SPLITS)
@pytest.mark.parametrize("c_core", [True, False])
@pytest.mark.parametrize("tamper", [lambda rows: rows, _node_changed, _node_gone])
def test_the_records_own_tree_heads_are_taken_at_the_sizes_asked_whatever_the_stored_tree(
    cuts: list[int], c_core: bool, tamper: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoint notes are held to these: a stored node changed or gone changes none."""
    if c_core:
        require_c_core(tree_check._matches)
    sizes = [0, 1, 8, 9, 16, 30, N]

    heads = _heads(tamper(_rows()), cuts, sizes, c_core, monkeypatch)  # type: ignore[operator]

    assert heads == {size: _records_head(size) for size in sizes}
