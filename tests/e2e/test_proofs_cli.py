"""`audit prove` and `audit consistency` on a real store: proofs that verify by RFC 9162's
algorithms against the signed checkpoint notes, and bad input refused in one line with its
exit code."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from infra.audit import merkle
from infra.audit.notes import parse_checkpoint, parse_note
from tests.e2e.test_cli import run

EX_DATAERR = 65


@pytest.fixture
def officer(tmp_path: Path) -> dict[str, str]:
    env = {"BACKCHECK_DATA_DIR": str(tmp_path / "data"), "BACKCHECK_LOG_ORIGIN": "example.org/bc"}
    assert run(env, "audit", "keygen").returncode == 0
    assert run(env, "demo").returncode == 0
    return env


def checkpoint(env: dict[str, str], out: Path) -> Path:
    signed = run(env, "audit", "checkpoint", "--out", str(out))
    assert signed.returncode == 0, signed.stderr
    return out


def test_prove_and_consistency_print_proofs_that_verify(
    officer: dict[str, str], tmp_path: Path
) -> None:
    old = checkpoint(officer, tmp_path / "old.note")
    events = json.loads(run(officer, "events", "--json", "--limit", "1").stdout)
    first = events["data"]["candidate_id"]
    assert (
        run(officer, "audit", "export", "--subject", first, "--out", str(tmp_path / "b")).returncode
        == 0
    )
    new = checkpoint(officer, tmp_path / "new.note")

    proved = run(officer, "audit", "prove", "--position", "3", "--checkpoint", str(new), "--json")
    by_event = run(officer, "audit", "prove", "--event", f"{first}:1", "--json")  # a fresh one
    linked = run(officer, "audit", "consistency", str(old), str(new), "--json")
    human = run(officer, "audit", "consistency", str(old), str(new))

    assert proved.returncode == 0, proved.stderr
    found = json.loads(proved.stdout)
    head = parse_checkpoint(parse_note(new.read_bytes()).text)
    path = [base64.b64decode(h) for h in found["inclusion_proof"]]
    leaf = base64.b64decode(found["leaf_hash"])
    assert (found["tree_size"], found["leaf_index"], found["origin"]) == (
        head.size,
        2,
        "example.org/bc",
    )
    assert merkle.verify_inclusion(2, head.size, leaf, path, head.root_hash)
    assert len(path) <= (head.size - 1).bit_length()
    assert by_event.returncode == 0, by_event.stderr
    assert json.loads(by_event.stdout)["position"] == events["position"]
    assert linked.returncode == 0, linked.stderr
    chain = json.loads(linked.stdout)
    base = parse_checkpoint(parse_note(old.read_bytes()).text)
    assert (chain["old_size"], chain["new_size"]) == (base.size, head.size)
    assert base.size < head.size
    proof = [base64.b64decode(h) for h in chain["consistency_proof"]]
    assert merkle.verify_consistency(base.size, head.size, base.root_hash, head.root_hash, proof)
    assert human.returncode == 0
    assert "is a prefix of" in human.stdout


def test_bad_input_is_one_line_with_its_exit_code(officer: dict[str, str], tmp_path: Path) -> None:
    old = checkpoint(officer, tmp_path / "old.note")
    assert (
        run(
            officer,
            "audit",
            "export",
            "--subject",
            json.loads(run(officer, "events", "--json", "--limit", "1").stdout)["data"][
                "candidate_id"
            ],
            "--out",
            str(tmp_path / "b"),
        ).returncode
        == 0
    )
    new = checkpoint(officer, tmp_path / "new.note")
    head = parse_checkpoint(parse_note(old.read_bytes()).text)
    forked = tmp_path / "forked.note"
    other = {**officer, "BACKCHECK_SIGNING_KEY": str(tmp_path / "k" / "checkpoint-signing.key")}
    assert run(other, "audit", "keygen", "--out", str(tmp_path / "k")).returncode == 0
    stranger = checkpoint(other, tmp_path / "stranger.note")
    # the same key, a root the store does not have: a fork
    from infra.audit.checkpoint import load_private_key
    from infra.audit.notes import Checkpoint, Signer, sign

    key = load_private_key(Path(officer["BACKCHECK_DATA_DIR"], "keys", "checkpoint-signing.key"))
    forked.write_text(
        str(sign(Checkpoint(head.origin, head.size, b"\x01" * 32).text(), Signer(head.origin, key)))
    )

    cases = {
        "unknown event": (
            run(officer, "audit", "prove", "--event", "00000000-0000-4000-8000-000000000000"),
            4,
            "no event",
        ),
        "not an event id": (run(officer, "audit", "prove", "--event", "nope"), 2, "AGGREGATE_ID"),
        "beyond": (
            run(
                officer,
                "audit",
                "prove",
                "--position",
                str(head.size + 1),
                "--checkpoint",
                str(old),
            ),
            4,
            "beyond the checkpoint",
        ),
        "unknown key": (
            run(officer, "audit", "prove", "--position", "1", "--checkpoint", str(stranger)),
            2,
            "not by the trusted key",
        ),
        "reversed": (
            run(officer, "audit", "consistency", str(new), str(old)),
            2,
            "is newer than NEW",
        ),
        "forked": (
            run(officer, "audit", "consistency", str(forked), str(new)),
            EX_DATAERR,
            "forked.note",
        ),
        "neither": (run(officer, "audit", "prove"), 2, "one of --event"),
    }
    for name, (result, code, words) in cases.items():
        assert result.returncode == code, (name, result.stderr)
        assert words in result.stderr, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (name, result.stderr)
        assert "Traceback" not in result.stderr


def test_proofs_need_no_master_key(officer: dict[str, str], tmp_path: Path) -> None:
    """A proof reads the records and the tree, never a personal value: a copy of the store
    without its master key (given to an auditor) proves as the original does."""
    old = checkpoint(officer, tmp_path / "old.note")
    new = checkpoint(officer, tmp_path / "new.note")
    master = Path(officer["BACKCHECK_DATA_DIR"], "keys", "master.key")
    master.rename(tmp_path / "master.key.elsewhere")

    proved = run(officer, "audit", "prove", "--position", "3", "--checkpoint", str(new))
    linked = run(officer, "audit", "consistency", str(old), str(new))

    assert proved.returncode == 0, proved.stderr
    assert "the proof verifies" in proved.stdout
    assert linked.returncode == 0, linked.stderr
    assert not master.exists()  # none was made in its place
