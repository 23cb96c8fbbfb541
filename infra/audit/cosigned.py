"""The checkpoint an export with `--witnesses-required K` proves its records in: the newest
one that at least K of the configured witnesses cosigned (cosignature_store.py) and that covers
the subject's records, as a note signed by the log's key again (Ed25519 is deterministic: the
same text and key, the same signature) with each witness's stored cosignature line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infra.audit.cosignature_store import CosignatureStore
from infra.audit.cosignatures import (
    VARIABLE,
    Cosignature,
    CosignatureError,
    NotCosignedError,
    configured,
    cosigned_note,
    witness_id,
)
from infra.audit.log_checkpoint import ForkError, SignedCheckpoint, against_tree
from infra.audit.log_tree import LogTree
from infra.audit.notes import Signer, sign
from infra.audit.sources import open_source
from infra.config import Settings

ADVICE = (
    "publish a checkpoint (`backcheck audit publish-checkpoint`, or the scheduler with "
    "--publish-checkpoints), let the witnesses cosign it, and collect their cosignatures "
    "(`backcheck audit collect-cosignatures`, or `audit add-cosignature FILE`)"
)


@dataclass(frozen=True)
class Asked:
    """How the caller asked for cosignatures, named back in its own transport's terms: the
    command line's option, or the HTTP API's query parameter."""

    name: str
    query: bool = False

    def of(self, required: int) -> str:
        return f"{self.name}={required}" if self.query else f"{self.name} {required}"

    @property
    def without(self) -> str:
        return f"without the {self.name} query parameter" if self.query else f"without {self.name}"


BY_OPTION = Asked("--witnesses-required")  # `backcheck audit export`
BY_QUERY = Asked("witnesses_required", query=True)  # POST /v1/candidates/{id}/evidence


class CosignedCheckpoints:
    """Checkpoints cosigned by at least `required` of the configured witnesses."""

    def __init__(
        self, settings: Settings, signer: Signer, required: int, asked: Asked = BY_OPTION
    ) -> None:
        self.witnesses = configured(settings.witness_keys)
        if not 1 <= required <= len(self.witnesses):
            raise CosignatureError(_not_required(required, len(self.witnesses), asked))
        self.settings, self.signer, self.required = settings, signer, required

    def pick(self, tree: LogTree, need: int) -> SignedCheckpoint:
        """The newest checkpoint of at least `need` leaves cosigned by enough witnesses, as a
        note with their lines; NotCosignedError if there is none, ForkError if the store's
        tree contradicts it."""
        lines = self._lines(tree, need)
        checkpoint = lines[0].checkpoint
        note = cosigned_note(sign(checkpoint.text(), self.signer), lines, self.witnesses)
        if len(note.signatures) - 1 < self.required:
            raise NotCosignedError(
                f"the checkpoint of size {checkpoint.size} holds {len(note.signatures) - 1} "
                f"usable cosignature(s), not {self.required}. To export, {ADVICE}"
            )
        position = tree.source.leaf_position(checkpoint.size - 1) or 0
        return SignedCheckpoint(note, checkpoint, position)

    def _lines(self, tree: LogTree, need: int) -> list[Cosignature]:
        """The stored lines on the checkpoint `pick` takes, which the tree must hold."""
        ids = [witness_id(w) for w in self.witnesses]
        origin = self.signer.name
        with CosignatureStore(self.settings) as store:
            lines = store.newest(origin, ids, self.required, need)
            if not lines:
                best = store.newest(origin, ids, self.required)
        if not lines:
            newest = f"size {best[0].checkpoint.size}" if best else "none"
            raise NotCosignedError(
                f"no checkpoint covering the subject's records (size {need} or more) is "
                f"cosigned by {self.required} of the {len(ids)} configured witness(es); the "
                f"newest that is: {newest}. To export, {ADVICE}"
            )
        checkpoint = lines[0].checkpoint
        found = against_tree(checkpoint, tree)
        if found is not None:
            raise ForkError(f"the cosigned checkpoint of size {checkpoint.size}: {found[1]}")
        return lines

    def check(self, positions: Sequence[int]) -> None:
        """Before an export records its disclosure: a cosigned checkpoint covers every one of
        the subject's records now in the store (else NotCosignedError, nothing recorded)."""
        if not positions:
            return  # the export says there is nothing to export
        with open_source(self.settings) as source:
            tree = LogTree(source)
            self._lines(tree, tree.leaf_index(max(positions)) + 1)  # the lines: checked in pick


def _not_required(required: int, configured: int, by: Asked) -> str:
    """Why `required` cosignatures cannot be asked of `configured` witnesses, and what to do,
    in the terms of the transport they were asked `by`."""
    asked = by.of(required)
    if configured == 0:
        return (
            f"{asked}: no witness is configured ({VARIABLE} is empty), so no checkpoint can "
            f"carry a cosignature; set {VARIABLE} to the witnesses' vkeys, or export "
            f"{by.without}"
        )
    if required < 1:
        return f"{asked}: ask for at least 1 cosignature, or export {by.without}"
    return (
        f"{asked}: only {configured} witness(es) are configured ({VARIABLE}), so no checkpoint "
        f"can carry {required} cosignatures; ask for 1 to {configured}, or configure more"
    )
