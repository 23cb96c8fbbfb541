"""A file where the store should be that is not one — not an SQLite database, an empty file,
another program's database — is told in one line, exit 65, naming it, by every command that
only reads the store; and the file is left exactly as it was (no store's tables added to
someone else's database). It used to be a traceback (`file is not a database`, `no such
table: stored_events`) with exit 1, which `audit verify` documents as "tampered"."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.problem import EX_CONFIG, EX_DATAERR
from tests.e2e.test_faults_in_one_line import AS_CANDIDATE, CANDIDATE, SOMEONE, one_line, run


def junk(path: Path) -> None:
    path.write_bytes(b"these are not the droids\n" * 40)


def empty(path: Path) -> None:
    path.write_bytes(b"")


def another_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
        conn.execute("INSERT INTO orders (item) VALUES ('tea')")
    conn.close()


WHY = {
    junk: "not an SQLite database, or a damaged one (file is not a database)",
    empty: "it holds no events table (an empty file, or another database)",
    another_database: "it holds no events table (an empty file, or another database)",
}


@pytest.mark.parametrize("make", [junk, empty, another_database], ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "line",
    [
        ("audit", "verify"),
        ("audit", "check"),
        ("audit", "timeline", "--subject", SOMEONE),
        ("events",),
        ("show", SOMEONE),
        ("views", "status"),
        ("read", "profile", SOMEONE, *AS_CANDIDATE),
        ("subject", "export", SOMEONE, "--out", "{tmp}/package.json"),
    ],
    ids=lambda line: " ".join(word for word in line[:2] if not word.startswith("0")),
)
def test_a_file_that_is_not_a_store_is_told_and_left_as_it_was(
    tmp_path: Path, make: Callable[[Path], None], line: tuple[str, ...]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    where = data / "backcheck.sqlite"
    make(where)
    before = where.read_bytes()

    said = one_line(
        run({"BACKCHECK_DATA_DIR": str(data)}, *(w.format(tmp=tmp_path) for w in line)),
        EX_DATAERR,
    )

    assert said == (
        f"Not a store (not-a-store): {where} is not a backcheck store: {WHY[make]}; check "
        "BACKCHECK_DATABASE_URL, or restore the file from a backup"
    )
    assert where.read_bytes() == before
    assert not (tmp_path / "package.json").exists()


@pytest.mark.parametrize("line", [("audit", "verify"), ("audit", "check"), ("events",)])
def test_a_store_path_that_is_a_directory_is_a_configuration_error(
    tmp_path: Path, line: tuple[str, ...]
) -> None:
    """As README's exit 78 says, for a command that only reads as for one that writes."""
    data = tmp_path / "data"
    (data / "backcheck.sqlite").mkdir(parents=True)

    said = one_line(run({"BACKCHECK_DATA_DIR": str(data)}, *line), EX_CONFIG)

    assert said == (
        "Configuration error (config): BACKCHECK_DATABASE_URL (else DATA_DIR/backcheck.sqlite): "
        f"{data / 'backcheck.sqlite'} is a directory; name the store file"
    )


@pytest.mark.parametrize("name", ["backcheck.views.sqlite", "backcheck.dashboard.sqlite"])
@pytest.mark.parametrize(
    "line",
    [("do", "register-candidate", CANDIDATE), ("views", "status"), ("views", "rebuild")],
    ids=lambda line: " ".join(line[:2]),
)
def test_a_views_file_that_is_not_one_is_named_with_what_to_do(
    tmp_path: Path, name: str, line: tuple[str, ...]
) -> None:
    """It used to say 'the store file cannot be used … restore the file from a backup',
    naming no file: the store itself is whole, and the views are made from its events."""
    data = tmp_path / "data"
    env = {"BACKCHECK_DATA_DIR": str(data)}
    assert run(env, "do", "register-candidate", CANDIDATE).returncode == 0
    views = data / name
    junk(views)

    said = one_line(run(env, *line), EX_DATAERR)

    assert said == (
        f"Not a store (not-a-store): {views}, the store's read views, is not an SQLite "
        "database, or a damaged one (file is not a database); the views are made from the "
        "store's events: move the file aside and run `backcheck views rebuild`"
    )
    views.rename(tmp_path / "aside")  # as it says
    assert run(env, "views", "rebuild").returncode == 0
    assert run(env, "audit", "verify").returncode == 0


def test_a_views_file_that_is_a_directory_is_a_configuration_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"BACKCHECK_DATA_DIR": str(data)}
    assert run(env, "do", "register-candidate", CANDIDATE).returncode == 0
    views = data / "backcheck.views.sqlite"
    views.unlink()
    views.mkdir()

    said = one_line(run(env, "do", "register-candidate", CANDIDATE), EX_CONFIG)

    assert said == (
        "Configuration error (config): BACKCHECK_DATABASE_URL (else DATA_DIR/backcheck.sqlite): "
        f"{views} (the store's read views, kept beside it) is a directory: move it away (the "
        "views are made again from the store's events)"
    )
