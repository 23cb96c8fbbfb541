"""`audit prove` and `audit consistency`: RFC 9162 proofs from the stored tree against signed
checkpoint notes, each verified (merkle.py's verifiers, docs/proofs.md §2) before it is handed
out. A checkpoint is used only when the trusted key signed it and the stored tree holds its
root at its size: a proof against a checkpoint the store contradicts would prove nothing.

Refusals, each one line (infra/problem.py): a checkpoint unreadable or signed by another key
(CheckpointError, exit 2); a position or event the store or the checkpoint does not hold
(NotFoundError, exit 4); OLD newer than NEW, or checkpoints of two logs (ProofError, exit 2);
a checkpoint the stored tree contradicts, or two that fork (ForkError, exit 65).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.errors import NotFoundError
from infra.audit import merkle
from infra.audit.log_checkpoint import ForkError, against_tree, trusted_checkpoint
from infra.audit.log_tree import LogTree
from infra.audit.merkle import ProofError
from infra.audit.notes import MAX_NOTE_BYTES, Checkpoint, Note
from infra.audit.sources import RecordSource


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class HeldCheckpoint:
    """A checkpoint note the trusted key signed and the stored tree holds."""

    source: str  # the file it came from, for messages
    note: Note
    checkpoint: Checkpoint


def read_checkpoint(path: Path, public_key: Ed25519PublicKey, tree: LogTree) -> HeldCheckpoint:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_NOTE_BYTES + 1)
    except OSError as e:
        from infra.audit.checkpoint import CheckpointError

        raise CheckpointError(f"{path}: the checkpoint cannot be read: {e.strerror}") from None
    return hold(data, str(path), public_key, tree)


def hold(data: bytes, source: str, public_key: Ed25519PublicKey, tree: LogTree) -> HeldCheckpoint:
    note, checkpoint = trusted_checkpoint(data, source, public_key)
    found = against_tree(checkpoint, tree)
    if found is not None:
        raise ForkError(f"{source} (size {checkpoint.size}) and the store disagree: {found[1]}")
    return HeldCheckpoint(source, note, checkpoint)


def event_position(source: RecordSource, event: str) -> int:
    """The position of the event named `AGGREGATE_ID[:VERSION]` (version 1 when not given)."""
    text = event.strip()[:100]
    aggregate, _, version = text.partition(":")
    try:
        oid = UUID(aggregate)
        number = int(version) if version else 1
        if not 0 <= number < 2**63:
            raise ValueError
    except ValueError:
        raise ProofError(
            f"--event {text!a}: expected AGGREGATE_ID[:VERSION], a UUID and a version number"
        ) from None
    position = source.position_of(oid.bytes, number)
    if position is None:
        raise NotFoundError(f"no event {oid} version {number} in the store")
    return position


def prove(tree: LogTree, held: HeldCheckpoint, position: int) -> dict[str, Any]:
    """The inclusion proof of the record at `position` in the checkpoint's tree, verified."""
    size, root = held.checkpoint.size, held.checkpoint.root_hash
    index = tree.source.leaf_index(position)
    if index is None:
        raise NotFoundError(f"no record at position {position} in the store's tree")
    if index >= size:
        raise NotFoundError(
            f"position {position} (leaf {index}) is beyond the checkpoint {held.source}, "
            f"which covers {size} records"
        )
    proof = tree.prove(position, size)
    if not merkle.verify_inclusion(proof.index, size, proof.leaf, proof.path, root):
        raise ForkError(f"the stored tree's proof of leaf {index} fails against {held.source}")
    return {
        "origin": held.checkpoint.origin,
        "tree_size": size,
        "root_hash": _b64(root),
        "position": position,
        "leaf_index": proof.index,
        "leaf_hash": _b64(proof.leaf),
        "inclusion_proof": [_b64(h) for h in proof.path],
        "checkpoint": str(held.note),
    }


def consistency(tree: LogTree, old: HeldCheckpoint, new: HeldCheckpoint) -> dict[str, Any]:
    """The consistency proof from OLD's tree to NEW's, verified."""
    a, b = old.checkpoint, new.checkpoint
    if a.origin != b.origin:
        raise ProofError(f"{old.source} is of log {a.origin!a}, {new.source} of {b.origin!a}")
    if a.size > b.size:
        raise ProofError(
            f"OLD {old.source} (size {a.size}) is newer than NEW {new.source} (size {b.size}); "
            "give them the other way round"
        )
    if a.size == b.size and a.root_hash != b.root_hash:
        raise ForkError(f"{old.source} and {new.source} differ at size {a.size}")
    proof = tree.consistency_proof(a.size, b.size) if a.size else []
    if a.size and not merkle.verify_consistency(a.size, b.size, a.root_hash, b.root_hash, proof):
        raise ForkError(
            f"{old.source} (size {a.size}) and {new.source} (size {b.size}) are not consistent"
        )
    return {
        "origin": a.origin,
        "old_size": a.size,
        "new_size": b.size,
        "old_root": _b64(a.root_hash),
        "new_root": _b64(b.root_hash),
        "consistency_proof": [_b64(h) for h in proof],
    }
