"""What a new user met trying the command line (issue 16's papercuts), each as it should be:
a version to ask for, `audit keygen` after the demo, `audit verify` holding the store to the
checkpoints it keeps, `audit check --json` answering on a clean store, whole lines when piped."""

from __future__ import annotations

import inspect
import json
import os
import sqlite3
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
import typer

from domain.classification import CATEGORIES
from tests.e2e.test_cli import BACKCHECK, run


def register(store: dict[str, str], name: str = "Zhou Min") -> str:
    done = run(store, "do", "register-candidate", json.dumps({"name": name, "actor": "hr"}))
    assert done.returncode == 0, done.stderr
    candidate_id: str = json.loads(done.stdout)["candidate_id"]
    return candidate_id


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    return {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}


def keys(store: dict[str, str]) -> Path:
    return Path(store["BACKCHECK_DATA_DIR"], "keys")


def test_the_version_comes_from_the_package_and_exits_0() -> None:
    result = run({}, "--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"backcheck {version('backcheck')}\n"


def test_keygen_after_the_demo_keeps_the_demos_key_pair_and_says_where(
    store: dict[str, str],
) -> None:
    assert run(store, "demo").returncode == 0
    private = keys(store) / "checkpoint-signing.key"
    before = private.read_bytes()  # the demo signed an erasure receipt with it

    result = run(store, "audit", "keygen")

    assert result.returncode == 0, result.stderr
    assert "exists already" in result.stdout
    assert f"private key: {private}" in result.stdout
    assert f"public key:  {keys(store) / 'checkpoint-signing.pub'}" in result.stdout
    assert private.read_bytes() == before


def test_keygen_force_replaces_the_pair_and_keeps_the_old_public_key_aside(
    store: dict[str, str],
) -> None:
    assert run(store, "audit", "keygen").returncode == 0
    public = keys(store) / "checkpoint-signing.pub"
    old_private, old_public = (
        (keys(store) / "checkpoint-signing.key").read_bytes(),
        public.read_bytes(),
    )

    result = run(store, "audit", "keygen", "--force")

    assert result.returncode == 0, result.stderr
    assert (keys(store) / "checkpoint-signing.key").read_bytes() != old_private
    assert public.read_bytes() != old_public
    (aside,) = keys(store).glob("checkpoint-signing-*.pub")
    assert aside.read_bytes() == old_public
    assert str(aside) in result.stdout
    assert (keys(store) / "checkpoint-signing.key").stat().st_mode & 0o777 == 0o600


def cut_short(store: dict[str, str]) -> None:
    """Deletes the last event, its link and its tree leaf with the nodes it completed, as
    someone with the database file could: the store then agrees with itself."""
    with sqlite3.connect(Path(store["BACKCHECK_DATA_DIR"], "backcheck.sqlite")) as conn:
        for table in ("stored_events", "stored_chain", "stored_tree"):
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)
            ).fetchall():
                conn.execute(f"DROP TRIGGER {name}")
        conn.execute(
            "DELETE FROM stored_events WHERE rowid = (SELECT MAX(rowid) FROM stored_events)"
        )
        conn.execute(
            "DELETE FROM stored_chain WHERE position = (SELECT MAX(position) FROM stored_chain)"
        )
        conn.execute("DELETE FROM stored_tree WHERE leaf = (SELECT MAX(leaf) FROM stored_tree)")


def test_verify_holds_the_store_to_the_checkpoints_it_keeps_without_being_told(
    store: dict[str, str],
) -> None:
    register(store)
    register(store, "Liu Yang")
    assert run(store, "audit", "keygen").returncode == 0
    assert run(store, "audit", "checkpoint").returncode == 0
    intact = run(store, "audit", "verify", "--json")
    cut_short(store)  # the chain alone cannot tell its last record is gone; the checkpoint can

    result = run(store, "audit", "verify")

    assert intact.returncode == 0, intact.stderr
    assert json.loads(intact.stdout)["checkpoints"] == 1
    assert result.returncode == 1
    assert "TAMPERED" in result.stderr
    assert "checkpoint" in result.stderr


def test_verify_given_checkpoints_holds_the_store_to_those_only(store: dict[str, str]) -> None:
    register(store)
    assert run(store, "audit", "keygen").returncode == 0
    assert run(store, "audit", "checkpoint").returncode == 0
    register(store, "Liu Yang")
    assert run(store, "audit", "checkpoint").returncode == 0
    kept = sorted(Path(store["BACKCHECK_DATA_DIR"], "checkpoints").glob("*.note"))

    every = run(store, "audit", "verify", "--json")
    given = run(store, "audit", "verify", "-c", str(kept[0]), "--json")

    assert len(kept) == 2
    assert json.loads(every.stdout)["checkpoints"] == 2
    assert json.loads(given.stdout)["checkpoints"] == 1


def test_verify_holds_kept_checkpoints_of_a_replaced_key_to_the_key_kept_aside(
    store: dict[str, str],
) -> None:
    # (it skipped them, and said so on stderr alone: "0 checkpoint(s) hold"; the replaced
    # key's public half is kept for this: tests/e2e/test_audit_cli.py has it gone)
    register(store)
    assert run(store, "audit", "keygen").returncode == 0
    assert run(store, "audit", "checkpoint").returncode == 0
    assert run(store, "audit", "keygen", "--force").returncode == 0

    human = run(store, "audit", "verify")
    machine = run(store, "audit", "verify", "--json")

    assert human.returncode == 0, human.stderr
    assert "1 checkpoint(s) hold" in human.stdout
    assert human.stderr == ""
    verdict = json.loads(machine.stdout)
    assert (verdict["intact"], verdict["checkpoints"], verdict["unheld"]) == (True, 1, [])
    assert "skipped" not in verdict


def test_check_json_on_a_clean_store_ends_with_a_verdict_line(store: dict[str, str]) -> None:
    register(store)

    result = run(store, "audit", "check", "--json")

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [{"events": 1, "violations": 0}]


def piped(store: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """As `run`, but as a shell pipe sees it: stdout and stderr not terminals, no COLUMNS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env.pop("COLUMNS", None)
    env.update(store)
    return subprocess.run(
        [*BACKCHECK, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_piped_output_keeps_each_line_whole(store: dict[str, str]) -> None:
    unknown = "00000000-0000-0000-0000-000000000001"

    table = piped(store, "categories")
    assert piped(store, "info").returncode == 0  # a store: `show` only reads one
    error = piped(store, "show", unknown)

    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) > 80
    for category in CATEGORIES.values():  # each row on one line: key, tier and what, whole
        assert any(category.key in line and category.description in line for line in lines), (
            category.key
        )
    (said,) = error.stderr.splitlines()
    assert len(said) > 80
    assert said.endswith(f"nothing with id {unknown} in the store")


def _listed(group: typer.Typer, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    """Each command of `group` and its subgroups: the words to run its group's help, and the
    first paragraph of its docstring on one line (what its row in that list should say)."""
    found = []
    for command in group.registered_commands:
        if command.hidden:
            continue
        text = command.help or inspect.getdoc(command.callback) or ""
        found.append((path, " ".join(inspect.cleandoc(text).split("\n\n")[0].split())))
    for sub in group.registered_groups:
        assert isinstance(sub.typer_instance, typer.Typer)
        found += _listed(sub.typer_instance, (*path, str(sub.name)))
    return found


def test_each_command_is_summarised_in_its_groups_help_on_one_unbroken_line() -> None:
    # a docstring wrapped in the source broke its summary mid-sentence in the list
    from infra.cli import app

    expected = _listed(app, ())
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env["COLUMNS"] = "1000"  # wide enough for any summary on one line
    helps = {
        path: subprocess.run(
            [*BACKCHECK, *path, "--help"], env=env, capture_output=True, text=True, timeout=120
        )
        for path in {p for p, _ in expected}
    }
    assert len(expected) > 40
    for path, summary in expected:
        shown = helps[path]
        assert shown.returncode == 0, shown.stderr
        assert any(summary in line for line in shown.stdout.splitlines()), (path, summary)
