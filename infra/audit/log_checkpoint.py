"""Checkpoints of the log as C2SP signed notes (notes.py, docs/proofs.md §3.2): the stored
Merkle tree's head — origin, tree size, root hash — signed with the store's checkpoint key
under the log's origin (BACKCHECK_LOG_ORIGIN, else derived from where the store is), so
transparency-log tooling can read them. Written by `audit checkpoint` and the scheduler into
DATA_DIR/checkpoints as checkpoint-SIZE.note, next to the v1 JSON checkpoints kept before
(checkpoint.py), which stay verifiable.

A note is trusted when a signature line names the note's origin with the key id of the trusted
public key under that name (the origin is the key's name by convention) and verifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infra.audit.checkpoint import CheckpointError, load_private_key
from infra.audit.log_tree import LogTree
from infra.audit.notes import (
    ED25519,
    MAX_NOTE_BYTES,
    Checkpoint,
    Note,
    NoteError,
    Signer,
    Verifier,
    parse_checkpoint,
    parse_note,
    sign,
    verify,
)
from infra.config import Settings

SUFFIX = ".note"


class ForkError(ValueError):
    """Two checkpoints, or a checkpoint and the stored tree, disagree about the log: one is
    not a prefix of the other. The message names both and the sizes."""


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint note and what it commits to: `position` is the last record's in it."""

    note: Note
    checkpoint: Checkpoint
    position: int

    @property
    def size(self) -> int:
        return self.checkpoint.size


def signer(settings: Settings) -> Signer:
    """The log's note signer: the checkpoint key, named by the log's origin."""
    return Signer(settings.origin, load_private_key(settings.signing_key_path))


def vkey(settings: Settings, public_key: Ed25519PublicKey) -> str:
    """The verifier key line (c2sp.org/signed-note) of the checkpoint key under the origin."""
    return Verifier(settings.origin, ED25519, public_key).vkey


def sign_tree(tree: LogTree, by: Signer, size: int | None = None) -> SignedCheckpoint:
    """The tree head of `size` leaves (default: the whole stored tree) as a signed note."""
    head = tree.tree_head(size)
    checkpoint = Checkpoint(by.name, head.size, head.root)
    position = (tree.source.leaf_position(head.size - 1) or 0) if head.size else 0
    return SignedCheckpoint(sign(checkpoint.text(), by), checkpoint, position)


def is_note(data: bytes) -> bool:
    """A signed note, as opposed to a v1 JSON checkpoint (which starts with a brace)."""
    return not data.lstrip().startswith(b"{")


def parse_checkpoint_note(data: bytes, source: str) -> tuple[Note, Checkpoint]:
    try:
        note = parse_note(data)
        return note, parse_checkpoint(note.text)
    except NoteError as e:
        raise CheckpointError(f"{source}: not a checkpoint note ({e})") from None


def read_note(path: Path) -> tuple[Note, Checkpoint]:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_NOTE_BYTES + 1)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint file {path}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: the checkpoint cannot be read: {e.strerror}") from None
    return parse_checkpoint_note(data, str(path))


def trusted(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> Verifier:
    return Verifier(checkpoint.origin, ED25519, public_key)


def signed_by(note: Note, checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    """Whether the note carries a signature line of the trusted key (good or bad)."""
    verifier = trusted(checkpoint, public_key)
    return any(verifier.matches(s) for s in note.signatures)


def check_signature(note: Note, checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> str | None:
    """None when the trusted key signed the note; otherwise what is wrong."""
    verifier = trusted(checkpoint, public_key)
    if not signed_by(note, checkpoint, public_key):
        names = ", ".join(f"{s.name} ({s.key_id.hex()})" for s in note.signatures)
        return (
            f"signed by {names}, not by the trusted key {verifier.name} ({verifier.key_id.hex()})"
        )
    try:
        verify(note, [verifier])
    except NoteError as e:
        return str(e)
    return None


def trusted_checkpoint(
    data: bytes, source: str, public_key: Ed25519PublicKey
) -> tuple[Note, Checkpoint]:
    """A checkpoint note the trusted key signed, or CheckpointError saying why not."""
    note, checkpoint = parse_checkpoint_note(data, source)
    problem = check_signature(note, checkpoint, public_key)
    if problem:
        raise CheckpointError(f"{source}: {problem}")
    return note, checkpoint


def against_tree(checkpoint: Checkpoint, tree: LogTree) -> tuple[int, str] | None:
    """Where the stored tree departs from a checkpoint (position, detail), None if it holds:
    the tree head of the checkpoint's size must be its root."""
    if checkpoint.size > tree.size:
        return tree.last_position, (
            f"the checkpoint covers {checkpoint.size} records; the tree has only {tree.size} "
            "(the log was cut short, or the tree not built: `audit tree-backfill`)"
        )
    if tree.tree_head(checkpoint.size).root != checkpoint.root_hash:
        last = tree.source.leaf_position(checkpoint.size - 1) if checkpoint.size else 0
        return last or 0, (
            f"the tree of the first {checkpoint.size} records differs from the signed "
            "checkpoint's root: history up to here was rewritten"
        )
    return None
