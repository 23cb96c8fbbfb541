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
from dataclasses import dataclass
from typing import NamedTuple
from uuid import UUID

GENESIS = bytes(32)
_RECORD = struct.Struct(">16sQ")
_LINK = struct.Struct(">32sQQ32s")
_sha256 = hashlib.sha256


def digest(originator_id: bytes, version: int, topic: bytes, state: bytes) -> bytes:
    """The digest of one stored record. `originator_id` is the 16 raw bytes of the UUID."""
    return _sha256(_RECORD.pack(originator_id, version) + topic + b"\0" + state).digest()


def chain_step(prev_hash: bytes, position: int, prev_position: int, record_digest: bytes) -> bytes:
    return _sha256(_LINK.pack(prev_hash, position, prev_position, record_digest)).digest()


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


def extend(head: Head, records: list[tuple[int, UUID, int, str, bytes]]) -> list[Link]:
    """Links for newly stored records (position, id, version, topic, state), in order."""
    links = []
    prev_hash, prev_position = head.hash, head.position
    for position, originator_id, version, topic, state in records:
        h = link(
            prev_hash, position, prev_position, originator_id.bytes, version, topic.encode(), state
        )
        links.append(Link(position, prev_position, originator_id, version, h))
        prev_hash, prev_position = h, position
    return links


class ChainBrokenError(RuntimeError):
    """The chain head does not sit where new records start: something was stored around the
    recorder. Writing stops until a compliance officer has run `backcheck audit verify`."""
