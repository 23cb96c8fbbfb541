"""Issue 17, defect 7, as the commands report it: a data key row deleted in the database (no
erasure recorded) makes a read fail in one line with its own exit code, recorded as failed,
never a value shown as "erased"; `audit verify` and `audit check` name the subject and tier."""

from __future__ import annotations

import json
from uuid import UUID

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from tests import story as s
from tests.e2e.test_cli import run
from tests.keys import delete_keys

EX_DATAERR = 65


def env_of(settings: Settings) -> dict[str, str]:
    return {
        "BACKCHECK_DATABASE_URL": str(settings.database_url),
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
    }


@pytest.fixture
def tampered(settings: Settings) -> tuple[dict[str, str], UUID]:
    """A consented candidate whose name's data key row was then deleted in the database."""
    app = build_app(settings)
    try:
        candidate_id = s.consented_candidate(app).candidate_id
    finally:
        app.close()
    delete_keys(settings, candidate_id, "user.name")
    return env_of(settings), candidate_id


def test_a_read_fails_in_one_line_and_the_attempt_is_recorded(
    tampered: tuple[dict[str, str], UUID],
) -> None:
    env, candidate_id = tampered
    read = ("read", "profile", str(candidate_id), "--as", s.RECRUITER, "--role", "recruiter")

    result = run(env, *read, "--purpose", s.PURPOSE)
    machine = run(env, *read, "--purpose", s.PURPOSE, "--json")

    assert result.returncode == EX_DATAERR
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert f"user.name (general) data key of candidate {candidate_id} is gone" in line
    assert "⟨erased⟩" not in result.stdout + result.stderr
    assert machine.returncode == EX_DATAERR
    assert json.loads(machine.stdout)["type"] == "data-key-missing"
    log = run(
        env,
        *("subject", "access-log", str(candidate_id), "--as", "compliance:zhou"),
        *("--role", "compliance", "--purpose", "audit", "--json"),
    )
    assert log.returncode == 0, log.stderr
    entries = json.loads(log.stdout)["entries"]
    assert [(e["principal"], e["outcome"], e["returned"]) for e in entries][:2] == [
        (s.RECRUITER, "failed", []),
        (s.RECRUITER, "failed", []),
    ]


def test_verify_and_check_name_the_missing_key(tampered: tuple[dict[str, str], UUID]) -> None:
    env, candidate_id = tampered

    verified = run(env, "audit", "verify")
    checked = run(env, "audit", "check", "--json")

    assert verified.returncode == 1
    assert "TAMPERED" in verified.stderr
    assert "key missing" in verified.stderr
    assert f"user.name (general) data key of candidate {candidate_id}" in verified.stderr
    assert checked.returncode == 1
    *rows, summary = [json.loads(line) for line in checked.stdout.splitlines()]
    (row,) = rows
    assert row["candidate_id"] == str(candidate_id)
    assert row["rule"] == "data key missing without a recorded erasure"
    assert "general" in row["detail"]
    assert summary["violations"] == 1
    assert "Traceback" not in verified.stderr + checked.stderr
