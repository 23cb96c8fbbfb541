"""A witness's judgement and memory: is a new checkpoint of the log it follows signed by the
log's key and consistent with the last one it holds? (c2sp.org/tlog-witness, without its HTTP.)

The witness's state directory holds:

    state.json          the last checkpoint it accepted (the signed note) and where it is on
                        the checkpoints topic (next offset per partition), written at once
                        (a file written aside, synced, renamed over)
    cosigned/SIZE.note  its own copy of every checkpoint it accepted, with its cosignature
    ALARM               written when it finds a fork or a rollback: what, where, when. While
                        it is there the witness cosigns nothing and will not start; an
                        operator examines the log, then removes it (docs/decisions: witnesses)
    witness.key         (by convention) its Ed25519 cosigning key, `audit witness-keygen`

A first checkpoint is taken on trust (there is nothing to check it against); from then on
each must extend the one held: a larger size with an RFC 9162 consistency proof from the held
size, or the same size and root (already held). A smaller size is a rollback; the same size
with another root, or a proof that fails, is a fork.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from infra.audit import merkle
from infra.audit.checkpoint import CheckpointError
from infra.audit.notes import (
    COSIGNATURE_V1,
    Checkpoint,
    Note,
    NoteError,
    Signer,
    Verifier,
    cosign,
    parse_checkpoint,
    parse_note,
    verify,
)
from infra.files import write_whole

STATE = "state.json"
ALARM = "ALARM"
COSIGNED = "cosigned"
MAX_STATE_BYTES = 1 << 20


class Finding(StrEnum):
    ACCEPTED = "accepted"  # consistent (or the first): cosign it
    HELD = "held"  # the checkpoint held already: its cosignature stands
    UNPROVEN = "unproven"  # larger, but its proof is from another size than the one held
    BAD_SIGNATURE = "bad-signature"  # not signed by the log's key, or another origin
    FORK = "fork"  # the same size with another root, or a consistency proof that fails
    ROLLBACK = "rollback"  # smaller than the one held


ALARMS = frozenset({Finding.FORK, Finding.ROLLBACK})


@dataclass(frozen=True)
class Judgement:
    finding: Finding
    detail: str  # one line: what was checked and what failed
    checkpoint: Checkpoint | None = None

    @property
    def alarm(self) -> bool:
        return self.finding in ALARMS


class Witness:
    """One witness of one log: its keys and its state directory."""

    def __init__(self, directory: Path, log: Verifier, key: Signer) -> None:
        if key.signature_type != COSIGNATURE_V1:
            raise CheckpointError("the witness key must be a cosigner key (type 0x04)")
        if log.signature_type != 0x01:
            raise CheckpointError("--log-key must be the log's note key (type 0x01)")
        self.directory, self.log, self.key = directory, log, key
        try:
            (directory / COSIGNED).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CheckpointError(f"{directory}: the state directory cannot be made: {e}") from None
        self.floor: int | None = None  # set by `trust` until the topic reaches its size
        self.held, self.offsets = self._load()

    def _load(self) -> tuple[Note | None, dict[int, int]]:
        path = self.directory / STATE
        try:
            raw = path.read_bytes()[: MAX_STATE_BYTES + 1]
        except FileNotFoundError:
            return None, {}
        except OSError as e:
            raise CheckpointError(f"{path}: cannot be read: {e.strerror}") from None
        try:
            if len(raw) > MAX_STATE_BYTES:
                raise ValueError("over 1 MiB")
            data = json.loads(raw)
            held = parse_note(data["checkpoint"]) if data.get("checkpoint") else None
            if held is not None and parse_checkpoint(held.text).origin != self.log.name:
                raise ValueError(f"it holds a checkpoint of another log than {self.log.name}")
            offsets = {int(p): int(o) for p, o in dict(data["offsets"]).items()}
            self.floor = int(data["floor"]) if data.get("floor") is not None else None
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{path}: not a witness state ({e})") from None
        return held, offsets

    @property
    def held_checkpoint(self) -> Checkpoint | None:
        return parse_checkpoint(self.held.text) if self.held is not None else None

    def alarm_raised(self) -> str | None:
        """The alarm standing in the state directory, if any (its text, one line)."""
        path = self.directory / ALARM
        try:
            return " ".join(path.read_text(errors="replace")[:2000].split())
        except FileNotFoundError:
            return None

    def judge(self, note: Note, old_size: int, proof: Sequence[bytes]) -> Judgement:
        """What this checkpoint is to the witness (nothing is written)."""
        try:
            checkpoint = parse_checkpoint(note.text)
            if checkpoint.origin != self.log.name:
                raise NoteError(f"origin {checkpoint.origin!r} is not the log {self.log.name!r}")
            verify(note, [self.log])
        except NoteError as e:
            return Judgement(Finding.BAD_SIGNATURE, f"checkpoint refused: {e}")
        held = self.held_checkpoint
        size = checkpoint.size
        if self.floor is not None and size < self.floor:
            return Judgement(
                Finding.UNPROVEN,
                f"size {size}: before the trusted checkpoint of size {self.floor}, which the "
                "topic has not reached yet; not cosigned",
                checkpoint,
            )
        if held is None:
            return Judgement(
                Finding.ACCEPTED, f"size {size}: the first, taken on trust", checkpoint
            )
        if size < held.size:
            return Judgement(
                Finding.ROLLBACK,
                f"rollback: size {size} is smaller than the size {held.size} held",
                checkpoint,
            )
        if size == held.size:
            if checkpoint.root_hash == held.root_hash:
                return Judgement(Finding.HELD, f"size {size}: held already", checkpoint)
            return Judgement(
                Finding.FORK,
                f"fork: size {size} has root {checkpoint.root_hash.hex()[:16]}…, the held "
                f"checkpoint of that size {held.root_hash.hex()[:16]}…",
                checkpoint,
            )
        if old_size != held.size:
            return Judgement(
                Finding.UNPROVEN,
                f"size {size}: its consistency proof is from size {old_size}, the witness "
                f"holds size {held.size}; not cosigned",
                checkpoint,
            )
        if not merkle.verify_consistency(
            held.size, size, held.root_hash, checkpoint.root_hash, proof
        ):
            return Judgement(
                Finding.FORK,
                f"fork: the consistency proof from the held size {held.size} to size {size} "
                "does not verify",
                checkpoint,
            )
        return Judgement(Finding.ACCEPTED, f"size {size}: extends size {held.size}", checkpoint)

    def accept(self, note: Note, now: datetime) -> Note:
        """Cosigns a checkpoint judged ACCEPTED: keeps the cosigned copy, then holds it."""
        if self.alarm_raised() is not None:
            raise CheckpointError("the witness has raised an alarm: it cosigns nothing")
        cosignature = cosign(note, self.key, int(now.timestamp()))
        cosigned = note.with_signatures([cosignature])
        size = parse_checkpoint(note.text).size
        write_whole(self.directory / COSIGNED / f"{size}.note", str(cosigned).encode())
        self.held = note
        return cosigned

    def reached(self, checkpoint: Checkpoint | None) -> None:
        """The topic has reached the trusted size: from here on a smaller one is a rollback
        (kept in the state by the next `passed`)."""
        if checkpoint is not None and self.floor is not None and checkpoint.size >= self.floor:
            self.floor = None

    def cosigned(self, size: int) -> Note | None:
        """The witness's own copy of the checkpoint of `size` it cosigned, if it did."""
        try:
            return parse_note((self.directory / COSIGNED / f"{size}.note").read_bytes())
        except FileNotFoundError:
            return None

    def passed(self, partition: int, offset: int) -> None:
        """The message at partition@offset is dealt with: the state (the held checkpoint and
        where to read on) is written at once."""
        self.offsets[partition] = offset + 1
        write_whole(self.directory / STATE, self._state())

    def _state(self) -> bytes:
        data = {
            "log": self.log.vkey,
            "checkpoint": str(self.held) if self.held is not None else None,
            "offsets": {str(p): o for p, o in sorted(self.offsets.items())},
            "floor": self.floor,
        }
        return json.dumps(data, indent=2).encode() + b"\n"

    def trust(self, note: Note, source: str) -> Judgement | None:
        """Starts from a checkpoint the operator trusts (`audit witness --trust FILE`) rather
        than the first the topic shows. A fresh witness holds it, and sets aside what the
        topic carries before it reaches its size (history it cannot check; not an alarm);
        from then on every checkpoint must extend it. A witness holding one already: the same
        size with another root is a fork (the alarm's judgement is returned, not raised
        here); a smaller one than trusted is refused (its state must go first); a larger one
        was accepted since."""
        judged = self.judge(note, 0, [])
        if judged.finding is Finding.BAD_SIGNATURE or judged.checkpoint is None:
            raise CheckpointError(f"--trust {source}: {judged.detail}")
        trusted, held = judged.checkpoint, self.held_checkpoint
        if held is None:
            self.held, self.floor = note, trusted.size
            write_whole(self.directory / STATE, self._state())
            return None
        if held.size == trusted.size and held.root_hash != trusted.root_hash:
            return Judgement(
                Finding.FORK,
                f"fork: the trusted checkpoint {source} of size {trusted.size} has another "
                "root than the one held",
                trusted,
            )
        if held.size < trusted.size:
            raise CheckpointError(
                f"--trust {source}: the witness holds size {held.size}, older than the trusted "
                f"size {trusted.size}, and cannot check one against the other; move its state "
                f"directory {self.directory} away to start from the trusted checkpoint"
            )
        return None

    def raise_alarm(self, judgement: Judgement, where: str, now: datetime) -> None:
        text = json.dumps(
            {
                "finding": judgement.finding.value,
                "detail": judgement.detail,
                "message": where,
                "time": now.isoformat(),
                "held": str(self.held) if self.held is not None else None,
            },
            indent=2,
        )
        write_whole(self.directory / ALARM, text.encode() + b"\n")
