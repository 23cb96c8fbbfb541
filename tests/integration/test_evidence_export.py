"""Exporting evidence (services/evidence.py): the bundle carries a subject's personal data, so
the disclosure is recorded before the bundle exists, and the bundle proves that record too."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from domain.errors import NotFoundError
from infra.audit.checkpoint import CheckpointError, load_public_key
from infra.audit.evidence_v2 import read_bundle
from infra.audit.trail import evidence_export, key_pair
from infra.bootstrap import build_app
from infra.config import Settings
from services.application import Backcheck
from services.dto import RegisterCandidate
from services.evidence import Bundle, BundleRequest, EvidenceExport, ExportEvidence
from tests.conftest import FakeClock


@dataclass
class RecordingBundler:
    """A bundler that notes what the store held when it was asked for a bundle."""

    app: Backcheck
    asked: list[tuple[UUID, list[int], datetime]] = field(default_factory=list)
    disclosed_by_then: list[int] = field(default_factory=list)

    def bundle(self, request: BundleRequest) -> Bundle:
        self.asked.append((request.subject, list(request.positions), request.at))
        self.disclosed_by_then = [
            e.position
            for e in self.app.iter_events(request.subject)
            if (e.aggregate, e.event) == ("DataDisclosure", "DataDisclosed")
        ]
        return Bundle(b"bundle\n", request.positions[-1], '{"type": "checkpoint"}')


def export(subject: UUID) -> ExportEvidence:
    return ExportEvidence(
        candidate_id=subject, recipient="court", purpose="proceedings", actor="compliance:zhou"
    )


def registered(app: Backcheck) -> UUID:
    return app.register_candidate(RegisterCandidate(name="Zhou Min", actor="hr:li")).candidate_id


def test_the_disclosure_is_recorded_before_the_bundle_is_made_and_is_in_it(
    sqlite_app: Backcheck, clock: FakeClock
) -> None:
    subject = registered(sqlite_app)
    bundler = RecordingBundler(sqlite_app)

    exported = EvidenceExport(sqlite_app, bundler).export(export(subject))

    ((asked_for, positions, at),) = bundler.asked
    (disclosed,) = bundler.disclosed_by_then  # already stored when the bundler was asked
    assert asked_for == subject
    assert disclosed == positions[-1]  # the bundle proves its own disclosure
    assert at == clock()
    assert (exported.events, exported.checkpoint_position) == (2, disclosed)
    assert exported.bundle == b"bundle\n"


def test_without_a_subject_nothing_is_recorded_and_no_bundle_is_made(
    sqlite_app: Backcheck,
) -> None:
    bundler = RecordingBundler(sqlite_app)
    before = sqlite_app.recorder.max_notification_id()

    with pytest.raises(NotFoundError):
        EvidenceExport(sqlite_app, bundler).export(export(uuid4()))

    assert bundler.asked == []
    assert sqlite_app.recorder.max_notification_id() == before


def test_the_store_key_bundle_verifies_offline(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=tmp_path)
    key_pair(settings.signing_key_path.parent)
    app = build_app(settings)
    subject = registered(app)

    exported = evidence_export(app, settings).export(export(subject))
    app.close()

    verdict = read_bundle(exported.bundle, load_public_key(settings.verify_key_path), "unused")
    assert verdict.intact, verdict.problems
    assert (verdict.subject, verdict.events) == (str(subject), 2)
    assert verdict.checkpoint_position == exported.checkpoint_position == 2


def test_with_no_usable_key_nothing_is_recorded_as_disclosed(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 's.sqlite'}",
        data_dir=tmp_path,
        signing_key=tmp_path / "nowhere" / "k.key",
    )
    app = build_app(settings)
    subject = registered(app)

    with pytest.raises(CheckpointError, match="no signing key"):
        evidence_export(app, settings).export(export(subject))

    assert app.recorder.max_notification_id() == 1
    app.close()
