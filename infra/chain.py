"""The hash chain over every stored event, in notification-log order.

Each link covers the previous link's hash, the positions of both, and the record exactly as
stored (originator id, version, topic, state bytes). Hashing what is stored — ciphertext once
values are encrypted — means destroying a key never breaks the chain.

    hash(n) = SHA-256(hash(prev) | pos(n) | pos(prev) | id | version | topic | 0 | state)

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
_HEADER = struct.Struct(">32sQQ16sQ")
_sha256 = hashlib.sha256


def link(
    prev_hash: bytes,
    position: int,
    prev_position: int,
    originator_id: bytes,
    version: int,
    topic: bytes,
    state: bytes,
) -> bytes:
    """One link of the chain. `originator_id` is the 16 raw bytes of the UUID."""
    return _sha256(
        _HEADER.pack(prev_hash, position, prev_position, originator_id, version)
        + topic
        + b"\0"
        + state
    ).digest()


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
