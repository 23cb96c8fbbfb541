"""Holding the store to its signed checkpoints, for `audit verify`: which key signed each
checkpoint, and what a checkpoint note that does not hold proves.

**Keys.** A checkpoint is held to the key that signed it, found by its key id among the
trusted key (`--public-key`, else BACKCHECK_VERIFY_KEY) and, unless `--public-key` names one,
the public keys of the pairs `audit keygen --force` replaced, kept beside the trusted key as
`checkpoint-signing-KEYID.pub`. A kept checkpoint (DATA_DIR/checkpoints) signed by a key found
in neither is not held, and the verdict says so (`Unheld`); a checkpoint given with `-c` that
no such key signed, or whose signature does not verify (a note or document changed after it
was signed), cannot be used: CheckpointError naming the file (exit 2), never a tampered store.

**Notes.** A checkpoint note commits to the tree of its first SIZE records; it is held to the
tree rebuilt from the records themselves (`TreeCheck.heads`), so a stored tree node changed
alone is named as the tree's departure (`tree`), never as rewritten history. When the records'
tree differs from the signed root, what is proven is that the history up to the note's last
record differs from what it signed. Where the change begins is known in one case: the stored
tree still has the signed root at that size, so the stored tree is the history signed, and its
first departure from the records is where they were changed. Otherwise the problem is bounded
(`Problem.after`) by the last checkpoint below it that holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infra.audit.checkpoint import Checkpoint as JsonCheckpoint
from infra.audit.checkpoint import CheckpointError, key_id, load_public_key, parse
from infra.audit.checkpoint import check_signature as check_json_signature
from infra.audit.log_checkpoint import is_note, parse_checkpoint_note, trusted
from infra.audit.log_tree import LogTree
from infra.audit.merkle import ProofError
from infra.audit.notes import ED25519, Checkpoint, Note, NoteError, Verifier, verify
from infra.audit.tree_check import KIND as TREE
from infra.audit.verification import Problem, Unheld, Verdict

RETIRED = "checkpoint-signing-*.pub"  # a replaced pair's public key, named by its key id


@dataclass(frozen=True)
class Keyring:
    """The public keys checkpoints may be held to: the trusted key first."""

    keys: tuple[Ed25519PublicKey, ...]
    retired: Path | None  # where replaced keys were looked for (None: only the key given)

    @classmethod
    def of(cls, trusted_key: Path, *, retired: bool) -> Keyring:
        """The trusted key and, with `retired`, the replaced keys kept beside it (one that
        cannot be read holds nothing: what it signed is reported as not held)."""
        keys = [load_public_key(trusted_key)]
        if not retired:
            return cls(tuple(keys), None)
        for path in sorted(trusted_key.parent.glob(RETIRED)):
            try:
                keys.append(load_public_key(path))
            except CheckpointError:
                continue
        return cls(tuple(keys), trusted_key.parent)

    def named(self, origin: str | None) -> str:
        """The trusted key as a message names it (as a note's origin names it), and where
        replaced keys were looked for."""
        first = self.keys[0]
        if origin is None:  # a JSON checkpoint names the key by its own id
            name = key_id(first)
        else:
            verifier = Verifier(origin, ED25519, first)
            name = f"{verifier.name} ({verifier.key_id.hex()})"
        beside = f" nor by a replaced key kept in {self.retired}" if self.retired else ""
        return f"the trusted key {name}{beside}"

    def for_json(self, checkpoint: JsonCheckpoint) -> Ed25519PublicKey | None:
        return next((k for k in self.keys if key_id(k) == checkpoint.key_id), None)

    def for_note(self, note: Note, checkpoint: Checkpoint) -> Ed25519PublicKey | None:
        def signed(key: Ed25519PublicKey) -> bool:
            return any(trusted(checkpoint, key).matches(s) for s in note.signatures)

        return next((k for k in self.keys if signed(k)), None)


@dataclass
class Checkpoints:
    """The checkpoints to hold the store to, each with the key that signed it verified."""

    json: list[JsonCheckpoint]
    notes: list[tuple[Path, Checkpoint]]
    unheld: list[Unheld]


def load(files: Sequence[Path], keyring: Keyring, *, kept: bool) -> Checkpoints:
    """Each file read and its signature verified by the key that made it. `kept`: the files
    are those kept in DATA_DIR/checkpoints, and one whose key is not found is not held (it
    is listed in `unheld`); else they were named by the caller, and it is refused."""
    found = Checkpoints([], [], [])
    for path in files:
        data = _read(path)
        if is_note(data):
            note, signed = parse_checkpoint_note(data, str(path))
            key = keyring.for_note(note, signed)
            if key is None:
                names = ", ".join(f"{s.name} (key id {s.key_id.hex()})" for s in note.signatures)
                _not_found(found, path, kept, names, keyring.named(signed.origin))
                continue
            try:
                verify(note, [trusted(signed, key)])
            except NoteError as e:
                raise CheckpointError(_forged(path, str(e))) from None
            found.notes.append((path, signed))
            continue
        checkpoint = parse(data.decode(errors="replace"), str(path))
        key = keyring.for_json(checkpoint)
        if key is None:
            _not_found(found, path, kept, f"key {checkpoint.key_id}", keyring.named(None))
            continue
        problem = check_json_signature(checkpoint, key)
        if problem:
            raise CheckpointError(_forged(path, problem))
        found.json.append(checkpoint)
    return found


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(1 << 20)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint file {path}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: the checkpoint cannot be read: {e.strerror}") from None


def _forged(path: Path, problem: str) -> str:
    return (
        f"{path}: {problem}: the checkpoint was changed after it was signed, or forged; it "
        "cannot be used to judge the store"
    )


def _not_found(found: Checkpoints, path: Path, kept: bool, by: str, keys: str) -> None:
    if not kept:
        raise CheckpointError(
            f"{path}: signed by {by}, not by {keys}; give the public key that signed it "
            "with --public-key"
        )
    found.unheld.append(Unheld(str(path), by, f"signed by {by}, not by {keys}"))


def hold_notes(verdict: Verdict, notes: Sequence[tuple[Path, Checkpoint]], tree: LogTree) -> None:
    """Each note held to the records' tree head of its size (`verdict.heads`); a problem for
    each that does not hold, placed where the records depart if that can be known."""
    departs = next((p for p in verdict.problems if p.kind == TREE), None)
    for path, signed in notes:
        head = verdict.heads.get(signed.size)
        if head is not None and head[0] == signed.root_hash:
            verdict.held.append(head[1])
            continue
        last = head[1] if head is not None else verdict.head.position
        if departs is not None and departs.position <= last and _stored(tree, signed):
            verdict.problems.append(
                Problem(
                    departs.position,
                    "checkpoint",
                    f"the records differ from what {path} signed from here on: the stored tree "
                    f"still holds the signed tree of {signed.size} records, and departs from "
                    f"the records here ({departs.detail})",
                )
            )
        elif head is None:
            verdict.problems.append(
                Problem(
                    last,
                    "checkpoint",
                    f"{path} covers {signed.size} records; the tree has only {verdict.checked}, "
                    "as the log holds only that many records: it was cut short",
                    after=0,
                )
            )
        else:
            verdict.problems.append(
                Problem(
                    last,
                    "checkpoint",
                    f"the history up to the checkpoint at {last} ({signed.size} records) "
                    f"differs from what it signed ({path}): it was rewritten",
                    after=0,
                )
            )


def _stored(tree: LogTree, signed: Checkpoint) -> bool:
    """Whether the stored tree still has the signed root at the note's size."""
    try:
        return tree.tree_head(signed.size).root == signed.root_hash
    except ProofError:
        return False


def bound(verdict: Verdict) -> None:
    """Each problem that only bounds where history departs starts after the last position a
    checkpoint holds below it."""
    for n, problem in enumerate(verdict.problems):
        if problem.after is not None:
            below = [p for p in verdict.held if p < problem.position]
            verdict.problems[n] = replace(problem, after=max(below, default=0))
