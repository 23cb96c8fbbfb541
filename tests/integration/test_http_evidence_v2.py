"""The HTTP evidence export (infra/http/compliance.py) hands out a v2 bundle and keeps its
checkpoint note with the store's others; the independent verifier's functions accept it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.audit import verify_bundle
from infra.audit.checkpoint import load_public_key
from infra.audit.cosignature_store import CosignatureStore
from infra.audit.cosignatures import accept
from infra.audit.log_checkpoint import signer, vkey
from infra.audit.log_tree import LogTree
from infra.audit.notes import COSIGNATURE_V1, Signer, cosign
from infra.audit.sources import open_source
from infra.audit.trail import key_pair
from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.checkpoints import make_checkpoint
from services.dto import RegisterCandidate
from tests.http import COMPLIANCE, served


def test_the_http_export_is_a_v2_bundle_with_its_checkpoint_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", log_origin="example.com/backcheck")
    key_pair(settings.keys_dir, origin=settings.origin)
    app = build_app(settings)
    subject = app.register_candidate(RegisterCandidate(name="Zhou Min", actor="hr:li")).candidate_id
    with served(app, settings) as api:
        answer = api.client.post(
            f"/v1/candidates/{subject}/evidence",
            json={"recipient": "court", "purpose": "proceedings"},
            headers=api.as_(COMPLIANCE),
        )
    app.close()

    assert answer.status_code == 200, answer.text
    key = verify_bundle.Key(vkey(settings, load_public_key(settings.verify_key_path)))
    summary = verify_bundle.verify(answer.content, key, [], 0, [])
    assert summary.startswith(f"valid: 2 record(s) of subject {subject}")
    (kept,) = settings.checkpoints_dir.glob("*.note")
    assert kept.read_text() in answer.content.decode().replace("\\n", "\n")


def test_the_http_export_demands_witnesses_when_asked_and_records_nothing_without_them(
    tmp_path: Path,
) -> None:
    witness = Signer("witness.test/w1", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    settings = Settings(
        data_dir=tmp_path / "data",
        log_origin="example.com/backcheck",
        witness_keys=(witness.verifier.vkey,),
    )
    key_pair(settings.keys_dir, origin=settings.origin)
    app = build_app(settings)
    subject = app.register_candidate(RegisterCandidate(name="Zhou Min", actor="hr:li")).candidate_id
    asked = {"recipient": "court", "purpose": "proceedings"}
    with served(app, settings) as api:
        url = f"/v1/candidates/{subject}/evidence?witnesses_required=1"
        early = api.client.post(url, json=asked, headers=api.as_(COMPLIANCE))
        before = len(list(app.timeline(subject)))
        with open_source(settings) as source:  # the witness cosigns the head as it stands
            tree = LogTree(source)
            head = make_checkpoint(tree, signer(settings), None).note
            cosigned = head.with_signatures([cosign(head, witness, 1_700_000_000)])
            found = accept(cosigned, "w1", signer(settings).verifier, [witness.verifier], tree)
        with CosignatureStore(settings) as store:
            store.add(found, "test", datetime.now(UTC))
        answer = api.client.post(url, json=asked, headers=api.as_(COMPLIANCE))
    app.close()

    assert early.status_code == 409, early.text
    assert early.json()["type"].endswith("/not-cosigned")
    assert before == 1  # the refused export recorded no disclosure
    assert answer.status_code == 200, answer.text
    key = verify_bundle.Key(vkey(settings, load_public_key(settings.verify_key_path)))
    witnessed = verify_bundle.Key(witness.verifier.vkey)
    summary = verify_bundle.verify(answer.content, key, [witnessed], 1, [])
    assert summary.startswith(f"valid: 1 record(s) of subject {subject}")
    assert summary.endswith("cosigned by witness.test/w1")


def test_the_http_export_without_witnesses_configured_names_its_query_parameter(
    tmp_path: Path,
) -> None:
    """The refusal named the command line's `--witnesses-required`, which an HTTP caller
    never typed: it names the query parameter `witnesses_required` it sent."""
    settings = Settings(data_dir=tmp_path / "data", log_origin="example.com/backcheck")
    key_pair(settings.keys_dir, origin=settings.origin)
    app = build_app(settings)
    subject = app.register_candidate(RegisterCandidate(name="Zhou Min", actor="hr:li")).candidate_id
    with served(app, settings) as api:
        answer = api.client.post(
            f"/v1/candidates/{subject}/evidence?witnesses_required=1",
            json={"recipient": "court", "purpose": "proceedings"},
            headers=api.as_(COMPLIANCE),
        )
    app.close()

    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith(
        "witnesses_required=1: no witness is configured (BACKCHECK_WITNESS_KEYS is empty)"
    )
    assert detail.endswith("or export without the witnesses_required query parameter")
    assert "--witnesses-required" not in detail
