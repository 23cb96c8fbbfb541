"""The compliance officer's workflow, end to end, as commands on a real store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from infra.audit.notes import parse_checkpoint, parse_note
from tests.e2e.test_cli import demo_ids, run


@pytest.fixture
def officer(tmp_path: Path) -> dict[str, str]:
    """A store with the demo story in it and a checkpoint key."""
    env = {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}
    assert run(env, "audit", "keygen").returncode == 0  # before the demo signs its first receipt
    assert run(env, "demo").returncode == 0
    return env


def test_an_intact_store_verifies_against_its_signed_checkpoint(officer: dict[str, str]) -> None:
    signed = run(officer, "audit", "checkpoint")
    assert signed.returncode == 0, signed.stderr
    checkpoint = next(Path(officer["BACKCHECK_DATA_DIR"], "checkpoints").glob("*.note"))
    signed = parse_checkpoint(parse_note(checkpoint.read_bytes()).text)

    result = run(officer, "audit", "verify", "--checkpoint", str(checkpoint), "--json")

    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["intact"] is True
    assert verdict["checkpoints"] == 1
    assert verdict["checked"] == signed.size  # every record, each a leaf of the signed tree


def test_a_tampered_store_fails_verification_naming_the_first_bad_position(
    officer: dict[str, str],
) -> None:
    db = Path(officer["BACKCHECK_DATA_DIR"], "backcheck.sqlite")
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER stored_events_refuse_update")
        conn.execute("UPDATE stored_events SET state = CAST(state || ' ' AS BLOB) WHERE rowid = 9")

    human = run(officer, "audit", "verify")
    machine = run(officer, "audit", "verify", "--json")

    assert human.returncode == 1
    assert "first bad position 9: changed" in human.stderr
    assert json.loads(machine.stdout)["first_bad_position"] == 9


def test_a_checkpoint_from_another_key_is_refused(officer: dict[str, str], tmp_path: Path) -> None:
    other = {
        **officer,
        "BACKCHECK_SIGNING_KEY": str(tmp_path / "other" / "checkpoint-signing.key"),
    }
    assert run(other, "audit", "keygen", "--out", str(tmp_path / "other")).returncode == 0
    assert run(other, "audit", "checkpoint", "--out", str(tmp_path / "cp.note")).returncode == 0

    result = run(officer, "audit", "verify", "-c", str(tmp_path / "cp.note"))

    # a checkpoint the trusted key did not sign is unusable input (as `audit prove` has it),
    # not a verdict on the store
    assert result.returncode == 2
    assert "not by the trusted key" in result.stderr
    assert str(tmp_path / "cp.note") in result.stderr
    assert "TAMPERED" not in result.stderr


def test_an_evidence_bundle_verifies_offline_and_fails_when_changed(
    officer: dict[str, str], tmp_path: Path
) -> None:
    subject = json.loads(run(officer, "events", "--json", "--limit", "1").stdout)["data"][
        "candidate_id"
    ]
    bundle = tmp_path / "evidence.bundle"
    exported = run(officer, "audit", "export", "--subject", subject, "--out", str(bundle))
    assert exported.returncode == 0, exported.stderr
    # the witness has only the bundle and the public key: no store
    offline = {"BACKCHECK_DATA_DIR": str(tmp_path / "elsewhere")}
    public_key = str(Path(officer["BACKCHECK_DATA_DIR"], "keys", "checkpoint-signing.pub"))

    good = run(offline, "audit", "verify", "--bundle", str(bundle), "--public-key", public_key)
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x01
    bundle.write_bytes(bytes(data))
    bad = run(offline, "audit", "verify", "--bundle", str(bundle), "--public-key", public_key)

    assert good.returncode == 0, good.stderr
    assert subject in good.stdout
    log = run(
        officer,
        "subject",
        "access-log",
        subject,
        "--json",
        "--as",
        "compliance:zhou",
        "--role",
        "compliance",
        "--purpose",
        "evidence check",
    )
    assert log.returncode == 0, log.stderr
    entries = json.loads(log.stdout)["entries"]
    assert "disclosed" in [e["outcome"] for e in entries]  # the export was recorded first
    assert bad.returncode == 1
    assert "NOT VALID" in bad.stderr


def test_a_clean_store_passes_the_compliance_check(officer: dict[str, str]) -> None:
    result = run(officer, "audit", "check")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no violations" in result.stdout


def test_the_timeline_tells_who_did_what_under_which_consent(officer: dict[str, str]) -> None:
    subject = demo_ids(officer)["candidate_id"]

    result = run(officer, "audit", "timeline", "--subject", subject, "--json")

    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    whats = " | ".join(e["what"] for e in entries)
    assert "consent signed" in whats
    assert "disclosed edition 2 to hiring-manager:sun.mei" in whats
    assert {e["who"] for e in entries} >= {"hr:li.na", "reviewer:chen.jie", "candidate"}
    assert "Wang Fang" not in result.stdout


def test_as_of_rebuilds_the_overview_and_names_a_bad_time(officer: dict[str, str]) -> None:
    now = run(officer, "audit", "as-of", "2999-01-01T00:00:00+00:00", "--json")
    before = run(officer, "audit", "as-of", "2000-01-01T00:00:00Z", "--json")
    bad = run(officer, "audit", "as-of", "yesterday-ish")
    naive = run(officer, "audit", "as-of", "2000-01-01T00:00:00")  # which zone's midnight?

    assert now.returncode == 0, now.stderr
    rows = [json.loads(line) for line in now.stdout.splitlines()]
    assert len(rows) == 2  # the demo's two candidates
    assert any("disclosure" in " ".join(r["reports"].values()) for r in rows)
    assert before.returncode == 0
    assert before.stdout == ""  # nothing had happened yet in 2000
    assert bad.returncode == 2
    assert "not an ISO 8601 time" in bad.stderr
    assert naive.returncode == 2
    assert "'2000-01-01T00:00:00' carries no offset: give one, e.g. " in naive.stderr


def test_a_file_that_is_no_bundle_is_unusable_input_exit_2_naming_it(tmp_path: Path) -> None:
    env = {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}
    assert run(env, "audit", "keygen").returncode == 0
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")

    result = run(env, "audit", "verify", "--bundle", str(passwd))

    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"Evidence bundle unusable (bundle): {passwd}: not an evidence bundle (its first line "
        "is neither 'backcheck.evidence.v2' nor a backcheck.evidence.v1 body)\n"
    )


def test_a_checkpoint_file_that_is_not_there_is_named_with_the_usual_prefix(
    officer: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.note"

    result = run(officer, "audit", "verify", "-c", str(missing))

    assert result.returncode == 2
    assert (
        result.stderr == f"Checkpoint or key unusable (checkpoint): no checkpoint file {missing}\n"
    )


@pytest.mark.parametrize("given", ["passwd", "absent.pub"], ids=["not-a-key", "not-there"])
def test_a_public_key_given_that_is_no_key_is_refused_whatever_the_store_holds(
    officer: dict[str, str], tmp_path: Path, given: str
) -> None:
    """`--public-key` names the key to trust: one that is no key is unusable input (exit 2,
    one line naming it) whether or not the store has checkpoints to hold to it (review,
    fourteenth session: with none kept, it verified `intact`, exit 0)."""
    key = tmp_path / given
    if given == "passwd":
        key.write_text("root:x:0:0:root:/root:/bin/bash\n")
    assert not Path(officer["BACKCHECK_DATA_DIR"], "checkpoints").exists()

    none_kept = run(officer, "audit", "verify", "--public-key", str(key))
    none_kept_json = run(officer, "audit", "verify", "--public-key", str(key), "--json")
    assert run(officer, "audit", "checkpoint").returncode == 0
    one_kept = run(officer, "audit", "verify", "--public-key", str(key))

    assert (one_kept.returncode, one_kept.stdout) == (2, "")
    assert one_kept.stderr.startswith("Checkpoint or key unusable (checkpoint): ")
    assert str(key) in one_kept.stderr
    assert (none_kept.returncode, none_kept.stdout, none_kept.stderr) == (
        2,
        "",
        one_kept.stderr,
    )
    assert none_kept_json.returncode == 2
    assert "intact" not in none_kept_json.stdout


def test_the_dashboard_shows_the_checkpoint_note_kept(officer: dict[str, str]) -> None:
    assert run(officer, "audit", "checkpoint").returncode == 0
    kept = next(Path(officer["BACKCHECK_DATA_DIR"], "checkpoints").glob("*.note"))
    size = parse_checkpoint(parse_note(kept.read_bytes()).text).size

    text = run(officer, "dashboard")
    machine = run(officer, "dashboard", "--json")

    assert text.returncode == 0, text.stderr
    assert f"chain: last checkpoint at position {size} ({size} records)" in text.stdout
    chain = json.loads(machine.stdout)["chain"]
    assert (chain["last_checkpoint_position"], chain["last_checkpoint_size"]) == (size, size)


def test_after_keygen_force_the_old_checkpoints_hold_and_without_their_key_it_says_so(
    officer: dict[str, str],
) -> None:
    keys = Path(officer["BACKCHECK_DATA_DIR"], "keys")
    assert run(officer, "audit", "checkpoint").returncode == 0
    assert run(officer, "audit", "keygen", "--force").returncode == 0

    held = run(officer, "audit", "verify")
    (old,) = keys.glob("checkpoint-signing-*.pub")
    old.unlink()
    alone = run(officer, "audit", "verify")
    machine = run(officer, "audit", "verify", "--json")

    assert held.returncode == 0, held.stderr
    assert "1 checkpoint(s) hold" in held.stdout
    assert alone.returncode == 0, alone.stderr
    said = " ".join(alone.stdout.split())
    assert said.startswith("intact, but no checkpoint could be held:")
    assert "0 checkpoint(s) hold" in said
    assert "1 kept checkpoint(s) not held" in said
    assert "a history rewritten with a recomputed chain would not show" in said
    assert "not held: " in said
    verdict = json.loads(machine.stdout)
    assert verdict["checkpoints"] == 0
    assert len(verdict["unheld"]) == 1
    assert "not by the trusted key" in verdict["unheld"][0]["reason"]


def test_a_forged_checkpoint_given_is_unusable_input_not_a_tampered_store(
    officer: dict[str, str], tmp_path: Path
) -> None:
    assert run(officer, "audit", "checkpoint", "--out", str(tmp_path / "cp.note")).returncode == 0
    note = (tmp_path / "cp.note").read_text()
    lines = note.split("\n")
    lines[2] = ("B" if lines[2][0] != "B" else "C") + lines[2][1:]  # one character of the root
    forged = tmp_path / "forged.note"
    forged.write_text("\n".join(lines))

    result = run(officer, "audit", "verify", "-c", str(forged))

    assert result.returncode == 2
    assert result.stderr.startswith(f"Checkpoint or key unusable (checkpoint): {forged}: ")
    assert "does not verify" in result.stderr
    assert "TAMPERED" not in result.stderr


def test_a_tree_node_changed_alone_is_reported_as_the_tree_not_the_records(
    officer: dict[str, str],
) -> None:
    assert run(officer, "audit", "checkpoint").returncode == 0
    db = Path(officer["BACKCHECK_DATA_DIR"], "backcheck.sqlite")
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER stored_tree_refuse_update")
        conn.execute("UPDATE stored_tree SET hash = zeroblob(32) WHERE level = 2 AND leaf = 7")

    result = run(officer, "audit", "verify")

    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert said.startswith("TAMPERED: first bad position 5: tree: tree node level 2 index 1")
    assert "rewritten" not in said
    assert "checkpoint" not in said


def test_a_checkpoint_boundary_is_told_as_such_not_as_the_first_bad_record(
    officer: dict[str, str],
) -> None:
    from datetime import UTC, datetime

    from infra.audit.chain import Head
    from infra.audit.checkpoint import load_private_key, sign
    from infra.audit.sources import SQLiteSource

    data = Path(officer["BACKCHECK_DATA_DIR"])
    key = load_private_key(data / "keys" / "checkpoint-signing.key")
    with SQLiteSource(str(data / "backcheck.sqlite")) as source:
        holds = sign(source.head_before(4), datetime.now(UTC), key)
    differs = sign(Head(9, bytes(32)), datetime.now(UTC), key)  # signed over another history
    (data / "checkpoints").mkdir(exist_ok=True)
    (data / "checkpoints" / "checkpoint-3.json").write_text(holds.to_json())
    (data / "checkpoints" / "checkpoint-9.json").write_text(differs.to_json())

    result = run(officer, "audit", "verify")
    machine = json.loads(run(officer, "audit", "verify", "--json").stdout)

    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert said.startswith(
        "TAMPERED: checkpoint: the history up to the checkpoint at 9 differs from what it signed"
    )
    assert "the checkpoint at 3 holds, so the change lies after position 3" in said
    assert "first bad position" not in said
    assert machine["problems"][0]["after"] == 3
