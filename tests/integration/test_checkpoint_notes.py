"""Checkpoints as C2SP signed notes (infra/audit/log_checkpoint.py): `audit checkpoint` signs
the stored tree's head, `audit verify` holds each kept note to the tree head of its size — and
v1 JSON checkpoints kept before still verify beside them."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import NotFoundError
from infra.audit import checkpoint as v1
from infra.audit import merkle
from infra.audit.checkpoint import CheckpointError
from infra.audit.log_checkpoint import ForkError
from infra.audit.log_tree import LogTree
from infra.audit.merkle import ProofError
from infra.audit.notes import Checkpoint, Signer, parse_checkpoint, parse_note, sign
from infra.audit.proving import consistency, hold, prove
from infra.audit.trail import StoreVerification, key_pair, sign_head
from infra.audit.verification import open_source
from infra.bootstrap import build_app
from infra.config import Settings
from services.dto import RegisterCandidate


@pytest.fixture
def store(settings: Settings) -> Settings:
    """The store on each backend (conftest's `settings`), the log named by an origin."""
    settings = settings.model_copy(update={"log_origin": "example.com/backcheck"})
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


def test_a_note_checkpoint_is_the_tree_head_signed_under_the_origin(store: Settings) -> None:
    signed, path = sign_head(store)

    note = parse_note(path.read_bytes())
    checkpoint = parse_checkpoint(note.text)
    with open_source(store) as source:
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
    assert verdict(store) == (True, [])


def test_a_v1_json_checkpoint_kept_before_still_verifies_beside_notes(store: Settings) -> None:
    key = v1.load_private_key(store.signing_key_path)
    with open_source(store) as source:
        old = v1.sign(source.head(), datetime.now(UTC), key)
    store.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    (store.checkpoints_dir / f"checkpoint-{old.position}.json").write_text(old.to_json())
    sign_head(store)

    with StoreVerification(store) as verification:
        assert len(verification.checkpoints) == 1
        assert len(verification.notes) == 1
        assert verification.run().intact


def test_a_note_whose_root_the_tree_does_not_have_is_a_rewritten_history(
    store: Settings, tmp_path: Path
) -> None:
    signer = Signer(store.origin, v1.load_private_key(store.signing_key_path))
    with open_source(store) as source:
        size = LogTree(source).size
    forged = tmp_path / "forged.note"
    forged.write_text(str(sign(Checkpoint(store.origin, size - 2, b"\x07" * 32).text(), signer)))
    longer = tmp_path / "longer.note"
    head = Checkpoint(store.origin, size + 5, b"\x07" * 32)
    longer.write_text(str(sign(head.text(), signer)))

    intact, problems = verdict(store, [forged, longer])

    assert not intact
    assert any("forged.note" in p and "was rewritten" in p for p in problems), problems
    assert any("longer.note" in p and f"the tree has only {size}" in p for p in problems)


def test_a_note_signed_by_another_key_is_refused_and_a_kept_one_skipped(
    store: Settings, tmp_path: Path
) -> None:
    other = Signer(store.origin, Ed25519PrivateKey.generate())
    with open_source(store) as source:
        head = LogTree(source).tree_head()
    text = str(sign(Checkpoint(store.origin, head.size, head.root).text(), other))
    given = tmp_path / "other.note"
    given.write_text(text)
    store.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    (store.checkpoints_dir / "checkpoint-other.note").write_text(text)

    with pytest.raises(CheckpointError) as refused:  # given: unusable input, not a tampered store
        verdict(store, [given])
    with StoreVerification(store) as kept:
        skipped = kept.skipped
        found = kept.run()

    assert "not by the trusted key example.com/backcheck" in str(refused.value)
    assert str(given) in str(refused.value)
    assert skipped == [store.checkpoints_dir / "checkpoint-other.note"]
    assert found.intact
    assert [u.checkpoint for u in found.unheld] == [str(skipped[0])]


def test_proofs_from_the_stored_tree_against_held_notes_verify_on_each_backend(
    store: Settings,
) -> None:
    first, _ = sign_head(store)
    app = build_app(store)
    app.register_candidate(RegisterCandidate(name="Later", actor="hr:li"))
    app.close()
    second, _ = sign_head(store)
    key = v1.load_public_key(store.verify_key_path)
    signer = Signer(store.origin, v1.load_private_key(store.signing_key_path))
    forged = sign(Checkpoint(store.origin, first.size, b"\x05" * 32).text(), signer)

    with open_source(store) as source:
        tree = LogTree(source)
        old = hold(str(first.note).encode(), "old", key, tree)
        new = hold(str(second.note).encode(), "new", key, tree)
        inclusion = prove(tree, new, second.position)
        linked = consistency(tree, old, new)
        with pytest.raises(NotFoundError, match="beyond the checkpoint old"):
            prove(tree, old, second.position)
        with pytest.raises(ProofError, match="is newer than NEW"):
            consistency(tree, new, old)
        with pytest.raises(ForkError, match="forged"):
            hold(str(forged).encode(), "forged", key, tree)

    assert inclusion["leaf_index"] == second.size - 1
    path = [base64.b64decode(h) for h in inclusion["inclusion_proof"]]
    leaf = base64.b64decode(inclusion["leaf_hash"])
    assert merkle.verify_inclusion(
        second.size - 1, second.size, leaf, path, second.checkpoint.root_hash
    )
    proof = [base64.b64decode(h) for h in linked["consistency_proof"]]
    assert (linked["old_size"], linked["new_size"]) == (first.size, second.size)
    assert merkle.verify_consistency(
        first.size, second.size, first.checkpoint.root_hash, second.checkpoint.root_hash, proof
    )
