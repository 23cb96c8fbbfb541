"""`audit export --out` and `audit checkpoint --out` (issue 17, defects 4 and 10): an existing
file is replaced only with --force; the store's own files, the keys and the kept checkpoints
never; a refused output records nothing (the disclosure is recorded only for a bundle that
can be written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.audit.notes import parse_checkpoint, parse_note
from tests.conftest import PG_URL
from tests.e2e.test_cli import run

EX_CANTCREAT = 73


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def officer(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """A store with the demo story in it and a checkpoint key, on each backend."""
    env = {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}
    if request.param == "postgres":
        env["BACKCHECK_DATABASE_URL"] = f"{PG_URL}?schema={request.getfixturevalue('pg_schema')}"
    assert run(env, "audit", "keygen").returncode == 0
    assert run(env, "demo").returncode == 0
    return env


def subject_of(env: dict[str, str]) -> str:
    first = json.loads(run(env, "events", "--json", "--limit", "1").stdout)
    return str(first["data"]["candidate_id"])


def disclosures(env: dict[str, str]) -> int:
    listed = run(env, "events", "--json")
    assert listed.returncode == 0, listed.stderr
    events = [json.loads(line) for line in listed.stdout.splitlines()]
    return sum(1 for e in events if e["event"] == "DataDisclosed")


def export(
    env: dict[str, str], out: Path, *extra: str, subject: str | None = None
) -> tuple[int, str]:
    subject = subject or subject_of(env)
    result = run(env, "audit", "export", "--subject", subject, "--out", str(out), *extra)
    assert "Traceback" not in result.stderr
    return result.returncode, result.stderr


def verifies(env: dict[str, str]) -> bool:
    return run(env, "audit", "verify").returncode == 0


def test_an_export_to_an_existing_file_is_refused_and_records_nothing(
    officer: dict[str, str], tmp_path: Path
) -> None:
    existing = tmp_path / "evidence.bundle"
    existing.write_text("someone's notes\n")
    before = disclosures(officer)

    code, stderr = export(officer, existing)

    assert code == EX_CANTCREAT
    assert len(stderr.strip().splitlines()) == 1
    assert str(existing) in stderr
    assert "--force to replace it" in stderr
    assert existing.read_text() == "someone's notes\n"
    assert disclosures(officer) == before


def test_an_export_with_force_replaces_the_file_with_a_bundle_that_verifies(
    officer: dict[str, str], tmp_path: Path
) -> None:
    existing = tmp_path / "evidence.bundle"
    existing.write_text("someone's notes\n")
    before = disclosures(officer)

    code, stderr = export(officer, existing, "--force")

    assert code == 0, stderr
    assert disclosures(officer) == before + 1
    public = Path(officer["BACKCHECK_DATA_DIR"], "keys", "checkpoint-signing.pub")
    checked = run(
        officer, "audit", "verify", "--bundle", str(existing), "--public-key", str(public)
    )
    assert checked.returncode == 0, checked.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_a_checkpoint_to_an_existing_file_is_refused_and_replaced_with_force(
    officer: dict[str, str], tmp_path: Path
) -> None:
    existing = tmp_path / "witness.note"
    existing.write_text("the witness's own file\n")

    refused = run(officer, "audit", "checkpoint", "--out", str(existing))
    unchanged = existing.read_text()
    forced = run(officer, "audit", "checkpoint", "--out", str(existing), "--force")

    assert refused.returncode == EX_CANTCREAT
    assert str(existing) in refused.stderr
    assert "--force to replace it" in refused.stderr
    assert unchanged == "the witness's own file\n"
    assert forced.returncode == 0, forced.stderr
    checkpoint = parse_checkpoint(parse_note(existing.read_bytes()).text)
    held = run(officer, "audit", "verify", "-c", str(existing), "--json")
    assert held.returncode == 0, held.stderr
    assert json.loads(held.stdout)["checked"] == checkpoint.size


@pytest.mark.parametrize(
    "protected",
    [
        "backcheck.sqlite",
        "backcheck.views.sqlite",
        "backcheck.sqlite-wal",
        "backcheck.sqlite.writer-lock",
        "keys/master.key",
        "keys/checkpoint-signing.key",
        "keys/checkpoint-signing.pub",
    ],
)
def test_the_stores_own_files_and_keys_are_never_an_output_even_with_force(
    tmp_path: Path, protected: str
) -> None:
    env = {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}
    assert run(env, "audit", "keygen").returncode == 0
    assert run(env, "demo").returncode == 0
    target = Path(env["BACKCHECK_DATA_DIR"], protected)
    # listing the events records reads of those they are about: done before the file is read
    before, subject = disclosures(env), subject_of(env)
    content = target.read_bytes() if target.exists() else None

    code, stderr = export(env, target, subject=subject)
    forced, _ = export(env, target, "--force", subject=subject)
    signed = run(env, "audit", "checkpoint", "--out", str(target), "--force")

    assert code == forced == signed.returncode == EX_CANTCREAT
    assert str(target) in stderr
    assert "never overwritten" in stderr
    assert "never overwritten" in signed.stderr
    assert (target.read_bytes() if target.exists() else None) == content
    assert disclosures(env) == before
    assert verifies(env)


def test_a_kept_checkpoint_is_never_overwritten_and_the_same_note_is_kept_once(
    officer: dict[str, str],
) -> None:
    kept_dir = Path(officer["BACKCHECK_DATA_DIR"], "checkpoints")
    assert run(officer, "audit", "checkpoint").returncode == 0
    (first,) = kept_dir.glob("*.note")
    content = first.read_bytes()

    again = run(officer, "audit", "checkpoint")  # the same head: the same note (Ed25519)
    over = run(officer, "audit", "checkpoint", "--out", str(first), "--force")
    code, _ = export(officer, first, "--force")

    assert again.returncode == 0, again.stderr
    assert over.returncode == code == EX_CANTCREAT
    assert "kept checkpoint" in over.stderr
    assert first.read_bytes() == content
    assert list(kept_dir.glob("*.note")) == [first]  # the same note is kept once
    assert verifies(officer)


def test_an_export_into_a_place_no_file_can_be_made_records_nothing(
    officer: dict[str, str], tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    before = disclosures(officer)

    code, stderr = export(officer, not_a_dir / "evidence.bundle")
    directory = export(officer, tmp_path)

    assert code == EX_CANTCREAT
    assert "cannot write in" in stderr
    assert "not a directory" in stderr
    assert directory[0] == EX_CANTCREAT
    assert "is a directory" in directory[1]
    assert disclosures(officer) == before


def test_a_subject_export_to_an_existing_file_is_refused_and_records_nothing(
    officer: dict[str, str], tmp_path: Path
) -> None:
    """`subject export` writes the access package; an --out it may not write is refused
    before the disclosure is recorded, and with --force the package replaces the file."""
    existing = tmp_path / "package.json"
    existing.write_text("someone's notes\n")
    before = disclosures(officer)
    subject = subject_of(officer)

    refused = run(officer, "subject", "export", subject, "--out", str(existing))
    assert refused.returncode == EX_CANTCREAT, refused.stderr
    assert "Traceback" not in refused.stderr
    assert existing.read_text() == "someone's notes\n"
    assert disclosures(officer) == before

    made = run(officer, "subject", "export", subject, "--out", str(existing), "--force")
    assert made.returncode == 0, made.stderr
    package = json.loads(existing.read_text())
    assert package["candidate_id"] == subject
    assert package["format"] == "backcheck.subject-data.v1"
    assert any(f["value"] for f in package["profile"]["fields"])
    assert package["disclosure_id"] in {e["access_id"] for e in package["access_log"]["entries"]}
    assert disclosures(officer) == before + 1


def test_an_output_in_a_directory_that_does_not_exist_is_refused_and_nothing_is_made(
    officer: dict[str, str], tmp_path: Path
) -> None:
    """A mistyped directory is not made for an output (the file would sit where no one looks):
    `audit export`, `audit checkpoint` and `subject export` each refuse it in one line naming
    it, exit 73, and record nothing."""
    missing = tmp_path / "evidnce"  # meant: evidence/, which exists
    (tmp_path / "evidence").mkdir()
    before = disclosures(officer)
    subject = subject_of(officer)

    for words, out in (
        (["audit", "export", "--subject", subject], missing / "e.bundle"),
        (["audit", "checkpoint"], missing / "cp.note"),
        (["subject", "export", subject], missing / "package.json"),
    ):
        refused = run(officer, *words, "--out", str(out))

        assert refused.returncode == EX_CANTCREAT, (words, refused.stderr)
        assert refused.stderr.splitlines() == [
            f"not written: {out}: no directory {missing} (none is made for an output); make "
            "it first, or name a file in a directory that exists"
        ], words
    assert not missing.exists()
    assert disclosures(officer) == before
    assert list((tmp_path / "evidence").iterdir()) == []
