"""The hash chain over every stored event, in notification-log order.

Each link covers the previous link's hash, the positions of both, and the digest of the record
exactly as stored (originator id, version, topic, state bytes):

    digest(n) = SHA-256(id | version | topic | 0 | state)
    hash(n)   = SHA-256(hash(prev) | pos(n) | pos(prev) | digest(n))

Hashing what is stored — ciphertext once values are encrypted — means destroying a key never
breaks the chain. Linking digests rather than bytes lets an evidence bundle prove one subject's
events up to a signed checkpoint while carrying only digests of everyone else's.

Positions are notification ids. They may have gaps (a PostgreSQL sequence skips on rollback),
so each link names the position before it; a deleted record then shows as missing, not as a
changed successor.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple
from uuid import UUID

from infra.audit.c_core import accelerated

GENESIS = bytes(32)
RECORD_HEADER = struct.Struct(">16sQ")
LINK = struct.Struct(">32sQQ32s")
_sha256 = hashlib.sha256


def digest(originator_id: bytes, version: int, topic: bytes, state: bytes) -> bytes:
    """The digest of one stored record. `originator_id` is the 16 raw bytes of the UUID."""
    return _sha256(RECORD_HEADER.pack(originator_id, version) + topic + b"\0" + state).digest()


def chain_step(prev_hash: bytes, position: int, prev_position: int, record_digest: bytes) -> bytes:
    return _sha256(LINK.pack(prev_hash, position, prev_position, record_digest)).digest()


def link(
    prev_hash: bytes,
    position: int,
    prev_position: int,
    originator_id: bytes,
    version: int,
    topic: bytes,
    state: bytes,
) -> bytes:
    """One link of the chain, from the record's stored bytes."""
    return chain_step(
        prev_hash, position, prev_position, digest(originator_id, version, topic, state)
    )


LinkInput = tuple[bytes, int, int, bytes, int, bytes, bytes]


def _link_many_python(items: list[LinkInput]) -> list[bytes]:
    """Reference implementation: one `link` per (prev, pos, prev_pos, id, version, topic, state)."""
    sha, rpack, lpack, nul = _sha256, RECORD_HEADER.pack, LINK.pack, b"\0"
    return [
        sha(
            lpack(prev, pos, prev_pos, sha(rpack(oid, ver) + topic + nul + state).digest())
        ).digest()
        for prev, pos, prev_pos, oid, ver, topic, state in items
    ]


def _link_many_digests_python(items: list[LinkInput]) -> tuple[list[bytes], bytes]:
    """`link_many`'s links, and the records' digests in order as one bytes object (32 bytes
    each): what `audit verify`'s tree pass builds the Merkle tree's leaves from."""
    sha, rpack, lpack, nul = _sha256, RECORD_HEADER.pack, LINK.pack, b"\0"
    digests = [
        sha(rpack(oid, ver) + topic + nul + state).digest()
        for _, _, _, oid, ver, topic, state in items
    ]
    links = [
        sha(lpack(prev, pos, prev_pos, d)).digest()
        for (prev, pos, prev_pos, *_), d in zip(items, digests, strict=True)
    ]
    return links, b"".join(digests)


LinkMany = Callable[[list[LinkInput]], list[bytes]]
LinkManyDigests = Callable[[list[LinkInput]], tuple[list[bytes], bytes]]
_link_many_c: LinkMany | None = accelerated("link_many")
link_many: LinkMany = _link_many_c or _link_many_python
_link_many_digests_c: LinkManyDigests | None = accelerated("link_many_digests")
link_many_digests: LinkManyDigests = _link_many_digests_c or _link_many_digests_python
ACCELERATED = _link_many_c is not None


class Link(NamedTuple):
    """A stored row of the chain table."""

    position: int
    prev_position: int
    originator_id: UUID
    originator_version: int
    hash: bytes


@dataclass(frozen=True)
class Head:
    position: int
    hash: bytes


def extend(
    head: Head,
    records: list[tuple[int, UUID, int, str, bytes]],
    digests: list[bytes] | None = None,
) -> list[Link]:
    """Links for newly stored records (position, id, version, topic, state), in order; each
    record's digest also goes to `digests` when given (the Merkle tree's leaves)."""
    links = []
    prev_hash, prev_position = head.hash, head.position
    for position, originator_id, version, topic, state in records:
        d = digest(originator_id.bytes, version, topic.encode(), state)
        if digests is not None:
            digests.append(d)
        h = chain_step(prev_hash, position, prev_position, d)
        links.append(Link(position, prev_position, originator_id, version, h))
        prev_hash, prev_position = h, position
    return links


class ChainBrokenError(RuntimeError):
    """The chain head does not sit where new records start: something was stored around the
    recorder. Writing stops until a compliance officer has run `backcheck audit verify`."""
