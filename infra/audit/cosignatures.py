"""Witness cosignatures coming home: which cosignature lines the store takes, and the newest
checkpoint enough witnesses cosigned, as the note a bundle carries (docs/decisions: witness
cosignatures in the store and in bundles).

A cosigned checkpoint note (c2sp.org/tlog-cosignature) is taken only when each of these holds,
else it is refused with the reason (`CosignatureError`), or, when the log's own key signed a
tree the store contradicts, as a fork (`ForkError`):

1. its text is a checkpoint (c2sp.org/tlog-checkpoint) of this log's origin, with no extension
   lines (the store signs none);
2. the log's key signed it, and the signature verifies (a checkpoint the store never signed is
   not evidence of anything the store holds);
3. the stored tree has that root at that size;
4. it carries a cosignature of at least one configured witness (BACKCHECK_WITNESS_KEYS), and
   every such line verifies. Lines of other keys are left out.

What is kept is each accepted line with the checkpoint it is on (origin, size, root), its
witness (`name+keyid`) and its time: infra/audit/cosignature_store.py.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from infra.audit.log_checkpoint import ForkError, against_tree
from infra.audit.log_tree import LogTree
from infra.audit.notes import (
    COSIGNATURE_V1,
    Checkpoint,
    Note,
    NoteError,
    Signature,
    Verifier,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    verify,
    verify_cosignature,
)

VARIABLE = "BACKCHECK_WITNESS_KEYS"


class CosignatureError(ValueError):
    """A cosignature refused, or a request for cosignatures that cannot be met as asked (more
    witnesses required than are configured); the message says which and why. `bad_signature`:
    a configured witness's cosignature line that does not verify (else: not taken for another
    reason)."""

    def __init__(self, message: str, *, bad_signature: bool = False) -> None:
        super().__init__(message)
        self.bad_signature = bad_signature


class NotCosignedError(Exception):
    """No checkpoint cosigned by enough witnesses covers what was asked: a newer one must be
    published and cosigned first. The message says what the store holds."""


@dataclass(frozen=True)
class Cosignature:
    """One witness's cosignature line on one checkpoint of the log."""

    checkpoint: Checkpoint
    witness: str  # name+hex key id: who, as a vkey begins
    line: str  # the signature line, without its newline
    time: int  # the cosignature's POSIX time

    @property
    def signature(self) -> Signature:
        return parse_note(f"x\n\n{self.line}\n").signatures[0]


def witness_id(verifier: Verifier) -> str:
    return f"{verifier.name}+{verifier.key_id.hex()}"


def configured(vkeys: Sequence[str]) -> list[Verifier]:
    """The configured witnesses (the settings checked them already: config/parsing.py)."""
    return [parse_vkey(v) for v in vkeys]


def _refused(source: str, why: str, *, bad_signature: bool = False) -> CosignatureError:
    return CosignatureError(f"{source}: refused: {why}", bad_signature=bad_signature)


def accept(
    note: Note, source: str, log: Verifier, witnesses: Sequence[Verifier], tree: LogTree
) -> list[Cosignature]:
    """The cosignatures of configured witnesses on a checkpoint note, each checked (the
    module's text says how); CosignatureError or ForkError, naming `source`, if refused."""
    try:
        checkpoint = parse_checkpoint(note.text)
    except NoteError as e:
        raise _refused(source, f"not a checkpoint ({e})") from None
    if checkpoint.origin != log.name:
        raise _refused(
            source, f"a checkpoint of log {checkpoint.origin!a}, not this store's {log.name!a}"
        )
    if checkpoint.extensions:
        raise _refused(source, "the checkpoint has extension lines; this log signs none")
    try:
        verify(note, [log])
    except NoteError as e:
        raise _refused(
            source, f"a checkpoint this store's key did not sign ({e}; key {witness_id(log)})"
        ) from None
    contradicted = against_tree(checkpoint, tree)
    if contradicted is not None:
        raise ForkError(
            f"{source}: the log's key signed size {checkpoint.size} root "
            f"{base64.b64encode(checkpoint.root_hash).decode()}, and the store disagrees: "
            f"{contradicted[1]}"
        )
    if not witnesses:
        raise _refused(source, f"no witness is configured ({VARIABLE})")
    found = []
    for witness in witnesses:
        for signature in (s for s in note.signatures if witness.matches(s)):
            try:  # each line on its own: a witness may have cosigned it twice
                at = verify_cosignature(Note(note.text, (signature,)), witness)
            except NoteError as e:
                raise _refused(source, str(e), bad_signature=True) from None
            if at is not None:
                line = signature.line().removesuffix("\n")
                found.append(Cosignature(checkpoint, witness_id(witness), line, at))
    if not found:
        names = ", ".join(f"{s.name} ({s.key_id.hex()})" for s in note.signatures)
        raise _refused(
            source,
            f"no cosignature by a configured witness ({VARIABLE}); its lines are by {names}",
        )
    return found


def cosigned_note(
    signed: Note, lines: Sequence[Cosignature], witnesses: Sequence[Verifier]
) -> Note:
    """The log-signed checkpoint note with one stored cosignature line per configured witness
    (its latest), each verified again here: the table is the store's, not evidence."""
    latest: dict[str, Cosignature] = {}
    for c in lines:
        if c.witness not in latest or c.time > latest[c.witness].time:
            latest[c.witness] = c
    by_id = {witness_id(w): w for w in witnesses if w.signature_type == COSIGNATURE_V1}
    added = []
    for who, c in sorted(latest.items()):
        witness = by_id.get(who)
        if witness is None:
            continue
        one = Note(signed.text, (c.signature,))
        try:
            if verify_cosignature(one, witness) is None:
                continue
        except NoteError as e:
            raise CosignatureError(
                f"the stored cosignature of {witness.name} on size {c.checkpoint.size} does not "
                f"verify ({e}): the cosignature table was changed"
            ) from None
        added.append(c.signature)
    return signed.with_signatures(added)
