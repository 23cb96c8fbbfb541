"""Evidence export: one data subject's history handed over with the proofs that it is whole
and unchanged (an evidence bundle), for a court, a regulator or the compliance archive.

The bundle carries the subject's personal data, so handing it over is a disclosure like any
other: it is recorded first. Making the bundle (the chain proofs, the signed checkpoint) is
the tamper-evidence adapter's work, reached through the `EvidenceBundler` port; what becomes
of the bytes (a file, an HTTP response) is the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from services.application import Backcheck
from services.dto import Actor, Command, RecordDisclosure, Result, Text

CHANNEL = "evidence bundle"


@dataclass(frozen=True)
class Bundle:
    """A bundle as the bundler made it: the bytes to hand over, and the checkpoint signed for
    it (its position and the signed document), which the store keeps too."""

    data: bytes
    checkpoint_position: int
    checkpoint: str


@dataclass(frozen=True)
class BundleRequest:
    """What a bundle holds: the subject's stored records at `positions`, proven up to a
    checkpoint of the chain head signed `at`, with `timeline` for a person to read."""

    subject: UUID
    positions: Sequence[int]
    timeline: list[dict[str, Any]]
    at: datetime


class EvidenceBundler(Protocol):
    """Makes evidence bundles: the tamper-evidence adapter, with the store's signing key."""

    def bundle(self, request: BundleRequest) -> Bundle: ...


class ExportEvidence(Command):
    candidate_id: UUID
    recipient: Text
    purpose: Text
    actor: Actor


class ExportedEvidence(Result):
    candidate_id: UUID
    disclosure_id: UUID
    events: int
    checkpoint_position: int
    checkpoint: str  # the signed checkpoint (a C2SP note), for the store's own archive
    bundle: bytes


class EvidenceExport:
    """Exports evidence bundles from one application, made by one bundler."""

    def __init__(self, app: Backcheck, bundler: EvidenceBundler) -> None:
        self.app = app
        self.bundler = bundler

    def export(self, cmd: ExportEvidence) -> ExportedEvidence:
        """An evidence bundle is personal data leaving: the disclosure (DataDisclosed, with
        every category the subject's data carries) is recorded before the bundle exists, and
        if it cannot be recorded no bundle is made. The bundle then proves the subject's
        events up to a checkpoint signed after that record, so it proves its own disclosure."""
        disclosure_id = self.app.record_disclosure(
            RecordDisclosure(
                candidate_id=cmd.candidate_id,
                recipient=cmd.recipient,
                purpose=cmd.purpose,
                channel=CHANNEL,
                actor=cmd.actor,
            )
        )
        entries = list(self.app.timeline(cmd.candidate_id))  # one replay: positions and timeline
        made = self.bundler.bundle(
            BundleRequest(
                subject=cmd.candidate_id,
                positions=[e.position for e in entries],
                timeline=[e.model_dump(mode="json") for e in entries],
                at=self.app.now(),
            )
        )
        return ExportedEvidence(
            candidate_id=cmd.candidate_id,
            disclosure_id=disclosure_id,
            events=len(entries),
            checkpoint_position=made.checkpoint_position,
            checkpoint=made.checkpoint,
            bundle=made.data,
        )
