"""Where a service team finds the contract: `backcheck contract` writes the AsyncAPI document
and checks the fingerprints; the HTTP server serves the same document to anyone (it holds no
data), and says so in its own OpenAPI document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.contract.asyncapi import asyncapi_document
from infra.problem import EX_CANTCREAT
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


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The one line a failed `backcheck contract` said, once its exit code is `code`."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    return line


@pytest.mark.parametrize(
    ("option", "path", "said"),
    [
        ("--output", "/proc/asyncapi.json", "cannot write in /proc: "),
        ("--record-fingerprints", "/proc/fingerprints.json", "cannot write in /proc: "),
        ("--output", "{tmp}/a-file/asyncapi.json", "{tmp}/a-file is not a directory"),
        ("--record-fingerprints", "{tmp}/a-file/f.json", "{tmp}/a-file is not a directory"),
    ],
    ids=["output-in-proc", "record-in-proc", "output-under-a-file", "record-under-a-file"],
)
def test_a_file_the_contract_cannot_write_is_one_line_naming_it_exit_73(
    tmp_path: Path, option: str, path: str, said: str
) -> None:
    (tmp_path / "a-file").write_text("")
    given = path.format(tmp=tmp_path)

    line = one_line(run("contract", option, given), EX_CANTCREAT)

    assert line.startswith("not written: ")
    assert said.format(tmp=tmp_path) in line


def test_an_unwritable_output_records_no_fingerprint(tmp_path: Path) -> None:
    recorded = tmp_path / "fingerprints.json"

    result = run(
        "contract", "--output", "/proc/asyncapi.json", "--record-fingerprints", str(recorded)
    )

    assert "cannot write in /proc" in one_line(result, EX_CANTCREAT)
    assert not recorded.exists()


def test_the_directories_an_output_needs_are_made(tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "asyncapi.json"

    written = run("contract", "--output", str(out))

    assert (written.returncode, written.stderr) == (0, f"AsyncAPI document written to {out}\n")
    assert json.loads(out.read_text()) == json.loads(json.dumps(asyncapi_document()))


@pytest.mark.parametrize("option", ["--check-fingerprints", "--record-fingerprints"])
@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("{bad", "not JSON (Expecting property name"),
        ('["a list"]', "not a JSON object of message names to fingerprints"),
    ],
    ids=["not-json", "not-an-object"],
)
def test_a_fingerprints_file_that_is_not_fingerprints_is_invalid_input(
    tmp_path: Path, option: str, content: str, said: str
) -> None:
    given = tmp_path / "fingerprints.json"
    given.write_text(content)

    line = one_line(run("contract", option, str(given)), 2)

    assert line.startswith(f"Invalid input (input): {option} {given}: {said}")
    assert given.read_text() == content


def test_a_missing_fingerprints_file_to_check_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such.json"

    line = one_line(run("contract", "--check-fingerprints", str(missing)), 2)

    assert line == f"Invalid input (input): --check-fingerprints {missing}: no such file"


def test_the_server_serves_the_document_without_a_token(api: Served) -> None:
    r = api.client.get("/v1/contract/asyncapi.json")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == json.loads(json.dumps(asyncapi_document()))

    operation = api.client.get("/openapi.json").json()["paths"]["/v1/contract/asyncapi.json"]
    assert "security" not in operation["get"]
    assert "no data" in operation["get"]["description"]
