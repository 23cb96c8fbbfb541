# The C core of infra/audit/chain.py (infra/audit/_chain.c): its signatures, for type checkers.

from collections.abc import Sequence

def link_many(items: list[tuple[bytes, int, int, bytes, int, bytes, bytes]], /) -> list[bytes]:
    """Links of the chain for (prev, pos, prev_pos, id, version, topic, state) tuples."""

def link_many_digests(
    items: list[tuple[bytes, int, int, bytes, int, bytes, bytes]], /
) -> tuple[list[bytes], bytes]:
    """link_many's links, and the records' digests as one bytes object (32 bytes each)."""

def tree_grow(
    stack: list[tuple[int, bytes]],
    index: int,
    positions: Sequence[int],
    digests: Sequence[bytes],
    /,
) -> list[tuple[int, int, bytes, int | None]]:
    """Leaves and completed nodes of the Merkle tree from record digests (tree.grow)."""

def tree_matches(
    stack: list[tuple[int, bytes]],
    index: int,
    positions: bytes,
    digests: bytes,
    stored: list[tuple[int, int, bytes, int | None]],
    /,
) -> bool:
    """Whether `stored` is exactly tree_grow's rows for these records (array "q" positions,
    32-byte digests); `stack` is updated as tree_grow would when it is."""
