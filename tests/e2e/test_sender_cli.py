"""Senders through the operator's CLI: a key pair made once and never overwritten, a service
registered with its key and scope, its key rotated and revoked — and every refusal one line
with its exit code, no traceback."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from domain.principal import sender_key_id
from tests.e2e.test_cli import run


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    return {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}


def keygen(store: dict[str, str], path: Path) -> str:
    made = run(store, "principals", "keygen", str(path))
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def test_keygen_writes_an_owner_only_private_key_and_prints_the_key_id(
    store: dict[str, str], tmp_path: Path
) -> None:
    key_id = keygen(store, tmp_path / "ats.key")

    assert stat.S_IMODE((tmp_path / "ats.key").stat().st_mode) == 0o600
    assert key_id == sender_key_id((tmp_path / "ats.key.pub").read_text().strip())
    again = run(store, "principals", "keygen", str(tmp_path / "ats.key"))
    assert again.returncode != 0
    assert "exists; a key file is never overwritten" in again.stderr
    assert "Traceback" not in again.stderr


def test_a_service_is_registered_rotated_and_revoked_as_a_sender(
    store: dict[str, str], tmp_path: Path
) -> None:
    keygen(store, tmp_path / "a.key")
    new_id = keygen(store, tmp_path / "b.key")
    assert run(store, "principals", "add", "hr:li.na", "--role", "recruiter").returncode == 0
    added = run(
        store,
        *("principals", "add", "svc:ats", "--role", "service", "--kind", "service"),
        *("--public-key", str(tmp_path / "a.key.pub"), "--use-cases", "register-candidate"),
        *("--acts-for", "hr:li.na,self", "--json"),
    )
    assert added.returncode == 0, added.stderr
    sender = json.loads(added.stdout)["sender"]
    assert sender["use_cases"] == ["register-candidate"]
    assert sender["acts_for"] == ["hr:li.na", "self"]

    rotated = run(
        store,
        *("principals", "sender-key", "svc:ats", "--public-key", str(tmp_path / "b.key.pub")),
        *("--use-cases", "register-candidate,request-consent", "--acts-for", "self"),
    )
    assert rotated.returncode == 0, rotated.stderr
    assert f"sender key {new_id} (ce_keyid)" in rotated.stderr
    revoked = run(store, "principals", "revoke-sender-key", "svc:ats", "--reason", "leaked")
    assert revoked.returncode == 0, revoked.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--use-cases", "read-profile", "--acts-for", "self"), "is not accepted from services"),
        (("--use-cases", "register-candidate", "--acts-for", "Not Valid"), "acts_for"),
        (("--use-cases", "register-candidate"), "--acts-for"),
    ],
)
def test_a_sender_outside_what_may_be_registered_is_refused_in_one_line(
    store: dict[str, str], tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    keygen(store, tmp_path / "a.key")

    refused = run(
        store,
        *("principals", "add", "svc:ats", "--role", "service", "--kind", "service"),
        *("--public-key", str(tmp_path / "a.key.pub"), *args),
    )

    assert refused.returncode != 0
    assert said in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "svc:ats" not in run(store, "principals", "list").stdout


def test_a_sender_acts_for_registered_principals_only_and_a_refusal_writes_nothing(
    store: dict[str, str], tmp_path: Path
) -> None:
    keygen(store, tmp_path / "a.key")
    add = ("principals", "add", "svc:ats", "--role", "service", "--kind", "service")
    scope = ("--public-key", str(tmp_path / "a.key.pub"), "--use-cases", "register-candidate")

    refused = run(store, *add, *scope, "--acts-for", "hr:nobody,self")

    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "Invalid input (InvalidPrincipal): field 'acts_for': 'hr:nobody' is no registered "
        "principal; a sender acts for principals registered first (`backcheck principals "
        "list`), or for self"
    ]
    assert "svc:ats" not in run(store, "principals", "list").stdout

    assert run(store, *add, *scope, "--acts-for", "self").returncode == 0
    before = json.loads(run(store, "principals", "list", "--json").stdout)
    rotated = run(store, "principals", "sender-key", "svc:ats", *scope, "--acts-for", "hr:nobody")

    assert rotated.returncode == 2
    assert "field 'acts_for': 'hr:nobody' is no registered principal" in rotated.stderr
    assert json.loads(run(store, "principals", "list", "--json").stdout) == before


def test_a_signing_key_that_cannot_be_read_is_one_line(store: dict[str, str]) -> None:
    sent = run(store, "send-command", "register-candidate", "{}", "--signing-key", "/nonexistent")

    assert sent.returncode == 2
    assert "cannot read the private key /nonexistent" in sent.stderr
    assert "Traceback" not in sent.stderr
