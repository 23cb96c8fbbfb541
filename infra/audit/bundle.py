"""Evidence bundles with proofs (backcheck.evidence.v2): the writer. docs/proofs.md is the
specification; `verify_bundle.py` is the independent reader.

A bundle is a signed note (c2sp.org/signed-note) by the log's key, whose text is two lines:

    backcheck.evidence.v2
    {"checkpoint": "<signed checkpoint note>", "records": [...], ...}   canonical JSON

Each record carries its stored fields (so its digest can be recomputed), its leaf index and
its RFC 9162 inclusion proof against the checkpoint, as indexes into one table of the distinct
proof hashes (a subject's events are often near each other: their paths share the upper
nodes); nothing about anyone else's events but those hashes. Consistency proofs from older
checkpoints let a holder of one of them check that the log has not forked since.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from infra.audit.notes import MAX_BUNDLE_BYTES, Note, Signer, parse_checkpoint, parse_note, sign

KIND = "backcheck.evidence.v2"


@dataclass(frozen=True)
class ProvenRecord:
    position: int  # the notification id, for people; the proof binds the leaf index
    leaf_index: int
    originator_id: UUID
    version: int
    topic: str
    state: bytes  # exactly as stored (ciphertext where sealed)
    inclusion_proof: Sequence[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    proof: Sequence[bytes]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def canonical(obj: Any) -> str:
    """Sorted keys, no spaces, UTF-8 (control characters escaped by JSON itself)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write_bundle(
    subject: UUID,
    exported_at: datetime,
    checkpoint: Note,
    records: Sequence[ProvenRecord],
    signer: Signer,
    *,
    consistency: Sequence[ConsistencyProof] = (),
    timeline: Sequence[dict[str, Any]] = (),
) -> bytes:
    """The bundle's bytes: the body, sealed by the log's key (`signer`, type 0x01)."""
    parse_checkpoint(checkpoint.text)
    parse_note(str(checkpoint))
    ordered = sorted(records, key=lambda r: r.leaf_index)
    table: dict[bytes, int] = {}  # each distinct proof hash once: the records' paths share many
    for r in ordered:
        for h in r.inclusion_proof:
            table.setdefault(h, len(table))
    body = {
        "subject": str(subject),
        "exported_at": exported_at.isoformat(),
        "checkpoint": str(checkpoint),
        "records": [
            {
                "position": r.position,
                "leaf_index": r.leaf_index,
                "originator_id": str(r.originator_id),
                "version": r.version,
                "topic": r.topic,
                "state": _b64(r.state),
                "inclusion_proof": [table[h] for h in r.inclusion_proof],
            }
            for r in ordered
        ],
        "proof_hashes": [_b64(h) for h in table],
        "consistency": [
            {"old_size": c.old_size, "new_size": c.new_size, "proof": [_b64(h) for h in c.proof]}
            for c in consistency
        ],
        "timeline": list(timeline),
    }
    return str(sign(f"{KIND}\n{canonical(body)}\n", signer, MAX_BUNDLE_BYTES)).encode()
