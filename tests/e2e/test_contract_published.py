"""Where a service team finds the contract: `backcheck contract` writes the AsyncAPI document
and checks the fingerprints; the HTTP server serves the same document to anyone (it holds no
data), and says so in its own OpenAPI document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra.contract.asyncapi import asyncapi_document
from tests.http import Served

ROOT = Path(__file__).resolve().parents[2]
BACKCHECK = [sys.executable, "-m", "infra.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    return subprocess.run(
        [*BACKCHECK, *args], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_backcheck_contract_writes_the_document_and_checks_the_fingerprints(
    tmp_path: Path,
) -> None:
    out = tmp_path / "asyncapi.json"
    written = run("contract", "--output", str(out))
    assert written.returncode == 0, written.stderr
    assert json.loads(out.read_text()) == json.loads(json.dumps(asyncapi_document()))

    checked = run("contract", "--check-fingerprints", "docs/contract/fingerprints.json")
    assert (checked.returncode, checked.stderr) == (0, "")

    stale = tmp_path / "fingerprints.json"
    stale.write_text(json.dumps({"backcheck.commands.v1/register-candidate": "0" * 64}))
    refused = run("contract", "--record-fingerprints", str(stale))
    assert refused.returncode == 1
    assert "backcheck.commands.v1/register-candidate: its schema changed" in refused.stderr
    assert json.loads(stale.read_text()) == {"backcheck.commands.v1/register-candidate": "0" * 64}
    missing = run("contract", "--check-fingerprints", str(stale))
    assert missing.returncode == 1
    assert "no fingerprint recorded; record it with `backcheck contract" in missing.stderr


def test_the_server_serves_the_document_without_a_token(api: Served) -> None:
    r = api.client.get("/v1/contract/asyncapi.json")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == json.loads(json.dumps(asyncapi_document()))

    operation = api.client.get("/openapi.json").json()["paths"]["/v1/contract/asyncapi.json"]
    assert "security" not in operation["get"]
    assert "no data" in operation["get"]["description"]
