"""The HTTP evidence export (infra/http/compliance.py) hands out a v2 bundle and keeps its
checkpoint note with the store's others; the independent verifier's functions accept it."""

from __future__ import annotations

from pathlib import Path

from infra.audit import verify_bundle
from infra.audit.checkpoint import load_public_key
from infra.audit.log_checkpoint import vkey
from infra.audit.trail import key_pair
from infra.bootstrap import build_app
from infra.config import Settings
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
