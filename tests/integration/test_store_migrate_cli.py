"""`backcheck store migrate` and `store verify-map` as an operator runs them: the command's
summary, a copy killed midway and run again, and each refusal one line with its exit code."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.audit.checkpoint import load_public_key
from infra.audit.trail import StoreVerification
from infra.bootstrap import build_app
from infra.config import Settings
from infra.store.migration_stores import target_settings
from infra.store.position_map import verify_map
from tests import story as s
from tests.conftest import FakeClock, require_postgres

MARK = "Zq-Migrate-Marker"
BACKCHECK = [sys.executable, "-m", "infra.cli"]


def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)


def test_a_source_store_that_is_down_is_one_line(tmp_path: Path) -> None:
    down = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/test?schema=s", data_dir=tmp_path
    )

    result = run_cli(down, "--to", f"sqlite:///{tmp_path / 'new' / 'x.sqlite'}")

    assert result.returncode == 69, result.stderr
    assert "does not answer" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"BACKCHECK_DATA_DIR": str(settings.data_dir), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    if settings.database_url:
        env["BACKCHECK_DATABASE_URL"] = settings.database_url
    return subprocess.run(
        [*BACKCHECK, "store", "migrate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_copies_and_says_so_in_json(
    settings: Settings, target: Settings, clock: FakeClock
) -> None:
    app = build_app(settings, clock=clock)
    s.register(app)
    app.close()
    to = target.database_url or ""

    result = run_cli(settings, "--to", to, "--to-data-dir", str(target.data_dir), "--json")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["events"], summary["migration_record_position"]) == (1, 1)
    assert summary["values"]["sealed"] == 2
    again = run_cli(settings, "--to", to, "--to-data-dir", str(target.data_dir))
    assert again.returncode == 0, again.stderr
    assert "copied 1 event(s)" in again.stdout
    # the new store, configured as an operator would, verifies with its kept checkpoint
    env = {
        "BACKCHECK_DATABASE_URL": to,
        "BACKCHECK_DATA_DIR": str(target.data_dir),
        "BACKCHECK_MASTER_KEY_FILE": str(settings.master_key_path),
        "BACKCHECK_SIGNING_KEY": str(settings.signing_key_path),
        "PATH": "/usr/bin:/bin",
    }
    verified = subprocess.run(
        [*BACKCHECK, "audit", "verify", "--json"], env=env, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout
    verdict = json.loads(verified.stdout)
    assert (verdict["intact"], verdict["checked"], verdict["checkpoints"]) == (True, 2, 1)
    mapped_ok = subprocess.run(
        [*BACKCHECK, "store", "verify-map", summary["map"], "--store"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert mapped_ok.returncode == 0, mapped_ok.stderr
    assert "intact: 1 positions mapped" in mapped_ok.stdout
    assert "and the store holds every one" in mapped_ok.stdout


def test_a_file_that_is_no_store_is_never_written(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    app = build_app(settings)
    s.register(app)
    app.close()
    (tmp_path / "new").mkdir()
    notes = tmp_path / "new" / "notes.txt"
    notes.write_text("keep me")

    result = run_cli(settings, "--to", f"sqlite:///{notes}")

    assert result.returncode == 73, result.stderr
    assert "exists and is no SQLite store" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert notes.read_text() == "keep me"


@pytest.mark.parametrize(
    ("to", "extra", "code", "said"),
    [
        ("mysql://x/y", [], 78, "--to: 'mysql://x/y' is no store address"),
        (
            "postgresql://postgres@127.0.0.1:1/test?schema=s",
            ["--to-data-dir", "D"],
            69,
            "does not answer",
        ),
        (
            "postgresql://postgres@127.0.0.1:5432/test?schema=s",
            [],
            78,
            "--to-data-dir: a PostgreSQL",
        ),
    ],
)
def test_bad_targets_are_one_line_with_their_exit_code(
    tmp_path: Path, to: str, extra: list[str], code: int, said: str
) -> None:
    settings = sqlite_settings(tmp_path)
    app = build_app(settings)
    s.register(app)
    app.close()
    extra = [str(tmp_path / "d") if e == "D" else e for e in extra]

    result = run_cli(settings, "--to", to, *extra)

    assert result.returncode == code, result.stderr
    assert said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.postgres
def test_a_target_database_that_does_not_exist_is_named_by_its_option(tmp_path: Path) -> None:
    require_postgres()
    settings = sqlite_settings(tmp_path)
    app = build_app(settings)
    s.register(app)
    app.close()
    to = "postgresql://postgres@127.0.0.1:5432/no_such_db_zq?schema=s"

    result = run_cli(settings, "--to", to, "--to-data-dir", str(tmp_path / "new"))

    assert result.returncode == 78, result.stderr
    assert "--to: PostgreSQL 127.0.0.1:5432/no_such_db_zq refused the connection" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_master_key_is_one_line(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    app = build_app(settings)
    s.register(app)
    app.close()
    settings.master_key_path.unlink()

    result = run_cli(settings, "--to", f"sqlite:///{tmp_path / 'new' / 'x.sqlite'}")

    assert result.returncode == 78, result.stderr
    assert "BACKCHECK_MASTER_KEY_FILE: no master key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_migration_killed_midway_goes_on_when_run_again(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    app = build_app(settings)
    for n in range(400):
        s.register(app, f"Candidate {n}")
    app.close()
    new_store = tmp_path / "new" / "store.sqlite"
    env = {"BACKCHECK_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    env["BACKCHECK_DATABASE_URL"] = settings.database_url or ""
    args = [*BACKCHECK, "store", "migrate", "--to", f"sqlite:///{new_store}", "--batch", "2"]

    def copied() -> int:
        if not new_store.exists():
            return 0
        conn = sqlite3.connect(f"file:{new_store}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])
        except sqlite3.OperationalError:  # the tables not made yet
            return 0
        finally:
            conn.close()

    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while copied() < 21 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.kill()  # SIGKILL: no cleanup, no exit handler
    process.communicate()
    cut = copied()
    assert 21 <= cut < 401, "the copy was not cut off midway"

    result = subprocess.run([*args, "--json"], env=env, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["events"] == 400
    assert summary["copied"] == 400 - (cut - 1)
    assert summary["resumed_after"] == cut - 1  # positions of the old store: one per event
    conn = sqlite3.connect(new_store)
    ids = conn.execute("SELECT originator_id, originator_version FROM stored_events").fetchall()
    conn.close()
    assert len(ids) == len(set(ids)) == 401
    target = target_settings(settings, f"sqlite:///{new_store}", None)
    with StoreVerification(target) as verification:
        assert verification.run().intact
    assert verify_map(Path(summary["map"]), load_public_key(settings.verify_key_path)).rows == 400


def test_a_sqlite_target_whose_directory_cannot_be_made_is_named_by_its_option(
    tmp_path: Path,
) -> None:
    """The refusal names `--to`, which put the file there, not BACKCHECK_DATABASE_URL, which
    names the store being migrated (review, fourteenth session)."""
    settings = sqlite_settings(tmp_path)
    app = build_app(settings)
    s.register(app)
    app.close()
    to = "sqlite:////proc/backcheck-no-such-dir/new/store.sqlite"  # nothing can be made there

    result = run_cli(settings, "--to", to)

    assert result.returncode == 78, result.stderr
    assert result.stderr.startswith("Configuration error (config): --to: cannot make the directory")
    assert "BACKCHECK_DATABASE_URL" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
