"""A witness's judgement on checkpoints of the reference tree (tests/proofs.py), its state
written and read back, and the `audit witness` commands refusing unusable input in one line."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.audit.checkpoint import CheckpointError
from infra.audit.notes import COSIGNATURE_V1, Signer, verify_cosignature
from infra.audit.witness import ALARM, Finding, Witness
from tests.kafka import BACKCHECK
from tests.proofs import ORIGIN, Log, consistency

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def a_log(records: int) -> Log:
    log = Log()
    for n in range(records):
        log.append(uuid.uuid4(), "t", f"record {n}".encode())
    return log


@pytest.fixture
def log() -> Log:
    return a_log(20)


@pytest.fixture
def witness(tmp_path: Path, log: Log) -> Witness:
    key = Signer("witness.test/w", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    return Witness(tmp_path / "w", log.key.verifier, key)


def proof(log: Log, old: int, new: int) -> list[bytes]:
    return consistency(old, log.digests(new))


def test_it_takes_the_first_on_trust_then_only_what_extends_it(witness: Witness, log: Log) -> None:
    first = log.checkpoint(5, cosigners=0)
    assert witness.judge(first, 0, []).finding is Finding.ACCEPTED
    cosigned = witness.accept(first, NOW)
    assert verify_cosignature(cosigned, witness.key.verifier) == int(NOW.timestamp())
    witness.passed(0, 0)
    later = log.checkpoint(13, cosigners=0)
    assert witness.judge(later, 5, proof(log, 5, 13)).finding is Finding.ACCEPTED
    assert witness.judge(later, 4, proof(log, 4, 13)).finding is Finding.UNPROVEN
    assert witness.judge(first, 0, []).finding is Finding.HELD
    wrong = witness.judge(later, 5, proof(log, 6, 13))
    assert wrong.finding is Finding.FORK
    assert (
        wrong.detail
        == "fork: the consistency proof from the held size 5 to size 13 does not verify"
    )


def test_a_rollback_and_a_fork_of_the_same_size_are_alarms(witness: Witness, log: Log) -> None:
    witness.accept(log.checkpoint(10, cosigners=0), NOW)
    back = witness.judge(log.checkpoint(9, cosigners=0), 0, [])
    assert (back.finding, back.alarm) == (Finding.ROLLBACK, True)
    assert back.detail == "rollback: size 9 is smaller than the size 10 held"
    forked = log.forked(3).checkpoint(10, cosigners=0)
    same = witness.judge(forked, 10, [])
    assert (same.finding, same.alarm) == (Finding.FORK, True)
    longer = log.forked(3)
    grown = witness.judge(longer.checkpoint(15, cosigners=0), 10, proof(longer, 10, 15))
    assert grown.finding is Finding.FORK


def test_another_key_or_another_origin_is_refused(witness: Witness, log: Log) -> None:
    stranger = Signer(ORIGIN, Ed25519PrivateKey.generate())
    judged = witness.judge(log.checkpoint(4, cosigners=0, key=stranger), 0, [])
    assert judged.finding is Finding.BAD_SIGNATURE
    assert judged.detail == "checkpoint refused: no trusted key signed the note"
    other = Signer("elsewhere.example/log", log.key.private_key)
    from infra.audit.notes import Checkpoint, sign

    note = sign(Checkpoint("elsewhere.example/log", 4, b"\0" * 32).text(), other)
    assert witness.judge(note, 0, []).finding is Finding.BAD_SIGNATURE


def test_its_state_is_read_back_and_an_alarm_stops_cosigning(
    tmp_path: Path, witness: Witness, log: Log
) -> None:
    witness.accept(log.checkpoint(7, cosigners=0), NOW)
    witness.passed(0, 3)
    again = Witness(witness.directory, log.key.verifier, witness.key)
    assert again.held_checkpoint == witness.held_checkpoint
    assert again.offsets == {0: 4}
    judged = again.judge(log.checkpoint(6, cosigners=0), 0, [])
    again.raise_alarm(judged, "topic/0@4", NOW)
    assert json.loads((again.directory / ALARM).read_text())["finding"] == "rollback"
    assert again.alarm_raised() is not None
    with pytest.raises(CheckpointError, match="raised an alarm"):
        again.accept(log.checkpoint(8, cosigners=0), NOW)
    (again.directory / "state.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a witness state"):
        Witness(witness.directory, log.key.verifier, witness.key)


def test_the_commands_refuse_unusable_keys_in_one_line(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BACKCHECK, "audit", *args], capture_output=True, text=True)

    key = tmp_path / "w.key"
    made = run("witness-keygen", "--out", str(key), "--name", "w.test/1")
    assert made.returncode == 0, made.stderr
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    vkey = made.stdout.strip().splitlines()[-1]
    assert vkey.startswith("w.test/1+")
    again = run("witness-keygen", "--out", str(key), "--name", "w.test/1")
    assert (again.returncode, again.stderr.count("\n")) == (2, 1)
    assert "exists already" in again.stderr
    base = ["witness", "--key", str(key), "--state", str(tmp_path / "s")]
    missing = run(*base, "--log-key", str(tmp_path / "log.vkey"))
    assert missing.returncode == 2
    assert "no vkey, and no file of one can be read there" in missing.stderr
    as_log = run(*base, "--log-key", vkey)  # a cosigner key is not the log's note key
    assert as_log.returncode == 2
    assert "must be the log's note key" in as_log.stderr
    (tmp_path / "bad.key").write_text("PRIVATE+KEY+x+00+AAAA\n")
    bad = run("witness", "--key", str(tmp_path / "bad.key"), "--state", "s", "--log-key", vkey)
    assert bad.returncode == 2
    assert "not a witness key" in bad.stderr
    for done in (again, missing, as_log, bad):
        assert "Traceback" not in done.stderr


def test_a_trusted_checkpoint_is_held_and_what_comes_before_it_set_aside_until_reached(
    tmp_path: Path, witness: Witness, log: Log
) -> None:
    trusted = log.checkpoint(10, cosigners=0)
    assert witness.trust(trusted, "trusted.note") is None
    witness.passed(0, 0)  # the state, floor and all, written and read back
    again = Witness(witness.directory, witness.log, witness.key)
    assert again.floor == 10
    held = again.held_checkpoint
    assert held is not None
    assert held.size == 10
    older = again.judge(log.checkpoint(4, cosigners=0), 0, [])
    assert (older.finding, older.alarm) == (Finding.UNPROVEN, False)
    assert older.detail.startswith("size 4: before the trusted checkpoint of size 10")
    same = again.judge(trusted, 4, proof(log, 4, 10))
    assert same.finding is Finding.HELD
    again.reached(same.checkpoint)
    assert again.floor is None
    late = again.judge(log.checkpoint(4, cosigners=0), 0, [])
    assert (late.finding, late.alarm) == (Finding.ROLLBACK, True)
    assert again.judge(log.checkpoint(15, cosigners=0), 10, proof(log, 10, 15)).finding is (
        Finding.ACCEPTED
    )


def test_a_trusted_checkpoint_the_held_one_contradicts_is_a_fork_and_an_older_state_refused(
    witness: Witness, log: Log
) -> None:
    witness.accept(log.checkpoint(10, cosigners=0), NOW)
    forked = witness.trust(log.forked(3).checkpoint(10, cosigners=0), "fork.note")
    assert forked is not None
    assert forked.finding is Finding.FORK
    assert forked.detail.startswith("fork: the trusted checkpoint fork.note of size 10")
    assert witness.trust(log.checkpoint(6, cosigners=0), "older.note") is None  # held since
    with pytest.raises(CheckpointError, match="holds size 10, older than the trusted size 12"):
        witness.trust(log.checkpoint(12, cosigners=0), "newer.note")
    stranger = Log()
    stranger.append(uuid.uuid4(), "t", b"x")
    with pytest.raises(CheckpointError, match=r"--trust other\.note: checkpoint refused"):
        witness.trust(stranger.checkpoint(1, cosigners=0), "other.note")
