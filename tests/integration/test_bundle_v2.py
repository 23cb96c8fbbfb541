"""Evidence bundles v2 as `audit export` makes them (infra/audit/evidence_v2.py): the
independent verifier, run as a script from a directory of its own, accepts a real exported
bundle and refuses a tampered one; a subject's 40 events spread over a large store make a
bundle of O(40 · log n) hashes, under 64 KB."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from infra.audit import verify_bundle
from infra.audit.checkpoint import load_private_key
from infra.audit.evidence_v2 import make_bundle
from infra.audit.log_checkpoint import signer, vkey
from infra.audit.notes import parse_checkpoint, parse_note
from infra.audit.sources import SQLiteSource, open_source
from infra.audit.trail import evidence_export, file_evidence, key_pair, sign_head
from infra.bootstrap import build_app
from infra.config import Settings
from services.dto import ClaimIn, PersonalFieldIn, RegisterCandidate, SubmitClaims
from services.evidence import BundleRequest, ExportEvidence
from tests.bundles import spread_store


def run_verifier(
    tmp_path: Path, bundle: Path, key: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """verify_bundle.py copied alone into a directory, run by a bare interpreter: nothing of
    the project is importable there."""
    alone = tmp_path / "verifier"
    alone.mkdir(exist_ok=True)
    script = Path(shutil.copy(verify_bundle.__file__, alone / "verify_bundle.py"))
    return subprocess.run(
        [sys.executable, "-I", str(script), str(bundle), "--key", key, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=alone,
    )


@pytest.fixture
def store(settings: Settings) -> Settings:
    """The store on each backend (conftest's `settings`), the log named by an origin."""
    settings = settings.model_copy(update={"log_origin": "example.com/backcheck"})
    key_pair(settings.keys_dir, origin=settings.origin)
    return settings


def exported(settings: Settings, tmp_path: Path, *, consistency: bool) -> tuple[UUID, Path, Path]:
    app = build_app(settings)
    subject = app.register_candidate(RegisterCandidate(name="Zhou Min", actor="hr:li")).candidate_id
    for n in range(5):
        app.register_candidate(RegisterCandidate(name=f"Other {n}", actor="hr:li"))
    _, previous = sign_head(settings)  # a checkpoint published before the export
    result = evidence_export(app, settings, consistency=consistency).export(
        ExportEvidence(
            candidate_id=subject, recipient="court", purpose="case", actor="compliance:z"
        )
    )
    app.close()
    return subject, file_evidence(settings, result, tmp_path / "evidence.bundle"), previous


def test_the_independent_verifier_accepts_an_exported_bundle_and_refuses_a_tampered_one(
    store: Settings, tmp_path: Path
) -> None:
    subject, bundle, previous = exported(store, tmp_path, consistency=True)
    public = vkey(store, load_private_key(store.signing_key_path).public_key())
    old = parse_checkpoint(parse_note(previous.read_bytes()).text)

    good = run_verifier(tmp_path, bundle, public, "--previous", str(previous))
    body = json.loads(bundle.read_bytes().split(b"\n")[1])
    tampered = tmp_path / "tampered.bundle"
    tampered.write_bytes(bundle.read_bytes().replace(b'"version":1', b'"version":2', 1))
    bad = run_verifier(tmp_path, tampered, public)

    assert good.returncode == 0, good.stderr
    assert f"valid: 2 record(s) of subject {subject}" in good.stdout
    assert "consistent with 1 previous checkpoint(s)" in good.stdout
    assert len(body["records"]) == 2  # registered, then disclosed
    assert [c["old_size"] for c in body["consistency"]] == [old.size]
    assert bad.returncode == 1
    assert bad.stderr.startswith("invalid: record 0 (position 1, leaf 0)")


def test_audit_verify_reads_a_v2_bundle_by_the_same_algorithm(
    store: Settings, tmp_path: Path
) -> None:
    from infra.audit.trail import verify_bundle_file

    subject, bundle, _ = exported(store, tmp_path, consistency=False)
    with open_source(store) as source:
        size = source.count()
    verdict = verify_bundle_file(bundle, store.verify_key_path, store)
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x01
    bundle.write_bytes(bytes(data))
    broken = verify_bundle_file(bundle, store.verify_key_path, store)

    assert verdict.intact, verdict.problems
    assert (verdict.subject, verdict.events, verdict.checkpoint_position) == (str(subject), 2, size)
    assert not broken.intact


def test_a_bundle_over_one_mib_is_exported_and_verifies(store: Settings, tmp_path: Path) -> None:
    # a bundle is a note, but not a checkpoint: its bound is 64 MiB, not a checkpoint's 1 MiB
    app = build_app(store)
    subject = app.register_candidate(RegisterCandidate(name="Zhou Min", actor="hr:li")).candidate_id
    fields = [
        PersonalFieldIn(name=f"note_{n}", category="user.employment.experience", value="x" * 2000)
        for n in range(8)
    ]
    for _ in range(50):  # 50 claims of 8 values of 2,000 characters, sealed: over 1 MiB
        app.submit_claims(
            SubmitClaims(
                candidate_id=subject,
                claims=[ClaimIn(kind="employment", fields=fields)],
                actor="hr:li",
            )
        )
    result = evidence_export(app, store, consistency=False).export(
        ExportEvidence(
            candidate_id=subject, recipient="court", purpose="case", actor="compliance:z"
        )
    )
    app.close()
    bundle = file_evidence(store, result, tmp_path / "evidence.bundle")
    public = vkey(store, load_private_key(store.signing_key_path).public_key())

    verified = run_verifier(tmp_path, bundle, public)

    assert bundle.stat().st_size > 1 << 20
    assert verified.returncode == 0, verified.stderr
    assert f"valid: 52 record(s) of subject {subject}" in verified.stdout
    from infra.audit.trail import verify_bundle_file

    assert verify_bundle_file(bundle, store.verify_key_path, store).intact


@pytest.mark.parametrize("n", [10_000, 100_000])
def test_forty_events_spread_over_a_large_store_make_a_bundle_under_64_kb(
    tmp_path: Path, n: int
) -> None:
    store = Settings(data_dir=tmp_path / "data", log_origin="example.com/backcheck")
    key_pair(store.keys_dir, origin=store.origin)
    subject = uuid4()
    big = tmp_path / f"big-{n}.sqlite"
    positions = spread_store(big, n, subject)
    request = BundleRequest(subject, positions, [], datetime.now(UTC))
    with SQLiteSource(str(big)) as source:
        made = make_bundle(source, request, signer(store))
    bundle = tmp_path / "big.bundle"
    bundle.write_bytes(made.data)
    body = json.loads(made.data.split(b"\n")[1])
    depth = math.ceil(math.log2(n))

    assert len(positions) == 40
    assert positions[-1] - positions[0] > n * 9 // 10  # spread over the whole log
    for record in body["records"]:  # each proof: the RFC's length, at most ⌈log2 n⌉ hashes
        expected = verify_bundle.inclusion_proof_length(record["leaf_index"], n)
        assert len(record["inclusion_proof"]) == expected <= depth
    assert 32 * len(body["proof_hashes"]) <= 40 * 32 * depth
    assert len(made.data) < 64 * 1024
    verified = run_verifier(tmp_path, bundle, vkey(store, signer(store).private_key.public_key()))
    assert verified.returncode == 0, verified.stderr


def test_a_file_that_is_no_bundle_is_unusable_input_not_an_invalid_bundle(
    store: Settings, tmp_path: Path
) -> None:
    from infra.audit.evidence import BundleError
    from infra.audit.trail import verify_bundle_file

    passwd = tmp_path / "passwd"
    passwd.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    v1_looking = tmp_path / "old.bundle"
    v1_looking.write_bytes(b'{"anchor":{},"type":"backcheck.evidence.v1"}\n{}\n')

    with pytest.raises(BundleError, match=f"{passwd}: not an evidence bundle"):
        verify_bundle_file(passwd, store.verify_key_path, store)
    judged = verify_bundle_file(v1_looking, store.verify_key_path, store)  # a bundle: judged
    assert not judged.intact
