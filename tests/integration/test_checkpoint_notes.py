"""Checkpoints as C2SP signed notes (infra/audit/log_checkpoint.py): `audit checkpoint` signs
the stored tree's head, `audit verify` holds each kept note to the tree head of its size — and
v1 JSON checkpoints kept before still verify beside them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.audit import checkpoint as v1
from infra.audit.log_tree import LogTree
from infra.audit.notes import Checkpoint, Signer, parse_checkpoint, parse_note, sign
from infra.audit.trail import StoreVerification, key_pair, sign_head
from infra.audit.verification import open_source
from infra.bootstrap import build_app
from infra.config import Settings
from services.dto import RegisterCandidate


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", log_origin="example.com/backcheck")
    key_pair(settings.keys_dir, origin=settings.origin)
    app = build_app(settings)
    for n in range(7):
        app.register_candidate(RegisterCandidate(name=f"Cand {n}", actor="hr:li"))
    app.close()
    return settings


def verdict(settings: Settings, files: list[Path] | None = None) -> tuple[bool, list[str]]:
    with StoreVerification(settings, files) as verification:
        found = verification.run()
    return found.intact, [f"{p.kind}: {p.detail}" for p in found.problems]


def test_a_note_checkpoint_is_the_tree_head_signed_under_the_origin(settings: Settings) -> None:
    signed, path = sign_head(settings)

    note = parse_note(path.read_bytes())
    checkpoint = parse_checkpoint(note.text)
    with open_source(settings) as source:
        head = LogTree(source).tree_head()
        count = source.count()
    assert path.name == f"checkpoint-{count}.note"
    assert (checkpoint.origin, checkpoint.size, checkpoint.root_hash) == (
        "example.com/backcheck",
        count,
        head.root,
    )
    assert [s.name for s in note.signatures] == ["example.com/backcheck"]
    assert signed.position == count  # SQLite: no gaps
    assert verdict(settings) == (True, [])


def test_a_v1_json_checkpoint_kept_before_still_verifies_beside_notes(settings: Settings) -> None:
    key = v1.load_private_key(settings.signing_key_path)
    with open_source(settings) as source:
        old = v1.sign(source.head(), datetime.now(UTC), key)
    settings.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    (settings.checkpoints_dir / f"checkpoint-{old.position}.json").write_text(old.to_json())
    sign_head(settings)

    with StoreVerification(settings) as verification:
        assert len(verification.checkpoints) == 1
        assert len(verification.notes) == 1
        assert verification.run().intact


def test_a_note_whose_root_the_tree_does_not_have_is_a_rewritten_history(
    settings: Settings, tmp_path: Path
) -> None:
    signer = Signer(settings.origin, v1.load_private_key(settings.signing_key_path))
    with open_source(settings) as source:
        size = LogTree(source).size
    forged = tmp_path / "forged.note"
    forged.write_text(str(sign(Checkpoint(settings.origin, size - 2, b"\x07" * 32).text(), signer)))
    longer = tmp_path / "longer.note"
    head = Checkpoint(settings.origin, size + 5, b"\x07" * 32)
    longer.write_text(str(sign(head.text(), signer)))

    intact, problems = verdict(settings, [forged, longer])

    assert not intact
    assert any("forged.note" in p and "was rewritten" in p for p in problems), problems
    assert any("longer.note" in p and f"the tree has only {size}" in p for p in problems)


def test_a_note_signed_by_another_key_is_refused_and_a_kept_one_skipped(
    settings: Settings, tmp_path: Path
) -> None:
    other = Signer(settings.origin, Ed25519PrivateKey.generate())
    with open_source(settings) as source:
        head = LogTree(source).tree_head()
    text = str(sign(Checkpoint(settings.origin, head.size, head.root).text(), other))
    given = tmp_path / "other.note"
    given.write_text(text)
    settings.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    (settings.checkpoints_dir / "checkpoint-other.note").write_text(text)

    intact, problems = verdict(settings, [given])
    with StoreVerification(settings) as kept:
        skipped = kept.skipped

    assert not intact
    assert "not by the trusted key example.com/backcheck" in problems[0]
    assert skipped == [settings.checkpoints_dir / "checkpoint-other.note"]
