"""A PostgreSQL store that cannot be used is said at once, in one line, with its exit code:
69 when nothing answers there (try again later), 78 when the server refuses the database or
the user (change the setting). Not a 30-second wait and a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import PG_URL, require_postgres

BACKCHECK = [sys.executable, "-m", "infra.cli"]
SOON = 10.0  # seconds


def info(url: str, data_dir: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env |= {"BACKCHECK_DATABASE_URL": url, "BACKCHECK_DATA_DIR": str(data_dir)}
    env["COLUMNS"] = "200"
    started = time.monotonic()
    result = subprocess.run(
        [*BACKCHECK, "info"], env=env, capture_output=True, text=True, timeout=60
    )
    return result, time.monotonic() - started


def on_our_server(database: str = "", user: str = "") -> str:
    url = urlsplit(PG_URL)
    netloc = f"{user or url.username}@{url.hostname}:{url.port or 5432}"
    return f"postgresql://{netloc}/{database or url.path.lstrip('/')}"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://postgres@127.0.0.1:1/x", id="a port nobody listens on"),
        pytest.param("postgresql://postgres@backcheck-db.invalid:5432/x", id="a host unknown"),
    ],
)
def test_a_store_that_does_not_answer_is_said_at_once_with_exit_69(
    url: str, tmp_path: Path
) -> None:
    result, took = info(url, tmp_path)

    assert took < SOON, result.stderr
    assert result.returncode == 69, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Store unreachable (store-unreachable): PostgreSQL "), line
    assert "does not answer" in line
    assert result.stdout == ""


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("database", "user", "reason"),
    [
        ("backcheck_no_such_db", "", 'database "backcheck_no_such_db" does not exist'),
        ("", "backcheck_no_such_user", 'role "backcheck_no_such_user" does not exist'),
    ],
    ids=["a database that does not exist", "a user that does not exist"],
)
def test_a_server_that_refuses_the_database_or_user_is_a_setting_to_fix_exit_78(
    database: str, user: str, reason: str, tmp_path: Path
) -> None:
    require_postgres()

    result, took = info(on_our_server(database, user), tmp_path)

    assert took < SOON, result.stderr
    assert result.returncode == 78, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Store misconfigured (store-misconfigured): BACKCHECK_DATABASE_URL: ")
    assert reason in line
    assert result.stdout == ""


def backcheck(url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env |= {"BACKCHECK_DATABASE_URL": url, "BACKCHECK_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    return subprocess.run([*BACKCHECK, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://postgres@127.0.0.1:5432x/test", id="a port that is no number"),
        pytest.param("postgresql://postgres@127.0.0.1:99999/test", id="a port out of range"),
        pytest.param("postgresql://postgres@[::1/test", id="an IPv6 host unclosed"),
        pytest.param("postgresql://hr:s3cr/et@db:5432/test", id="a / in a password"),
    ],
)
@pytest.mark.parametrize("command", [("info",), ("config", "show"), ("audit", "verify")])
def test_a_database_url_whose_host_or_port_cannot_be_read_is_a_setting_to_fix_exit_78(
    url: str, command: tuple[str, ...], tmp_path: Path
) -> None:
    """It was urllib's ValueError, a traceback, on every command naming the store, `config
    show` included; and the value it quoted may be part of a password, so none is quoted."""
    result = backcheck(url, tmp_path, *command)

    assert result.returncode == 78, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        "Configuration error (config): BACKCHECK_DATABASE_URL: its host or port cannot be "
        "read: a port is a number from 0 to 65535, an IPv6 host is written in [ ], and a / : @ "
        "in a password is percent-encoded (e.g. postgresql://USER:PASSWORD@HOST:5432/DB)"
    )
    assert "s3cr" not in result.stderr + result.stdout


@pytest.mark.postgres
@pytest.mark.parametrize(
    "command",
    [
        ("audit", "verify"),
        ("store", "migrate", "--to", "sqlite:///{tmp}/copy.sqlite", "--to-data-dir", "{tmp}/new"),
    ],
    ids=["audit verify", "store migrate"],
)
def test_a_schema_that_holds_no_store_is_told_by_the_commands_that_read_its_records(
    pg_schema: str, command: tuple[str, ...], tmp_path: Path
) -> None:
    """`audit verify` and `store migrate` read the tables straight, never make them: on a
    schema without the store (or no schema at all) they ended in psycopg's UndefinedTable,
    a traceback with exit 1, which `audit verify` documents as "tampered"."""
    line = [word.format(tmp=tmp_path) for word in command]
    url = urlsplit(PG_URL)
    where = f"PostgreSQL {url.hostname}:{url.port or 5432}{url.path}"
    empty = backcheck(f"{on_our_server()}?schema={pg_schema}", tmp_path, *line)
    missing = backcheck(f"{on_our_server()}?schema={pg_schema}_gone", tmp_path, *line)

    assert empty.returncode == 78, empty.stderr
    assert empty.stderr.strip().splitlines() == [
        f"Store misconfigured (store-misconfigured): BACKCHECK_DATABASE_URL: {where} "
        f"holds no store in schema '{pg_schema}' (no table "
        "backcheck_events): name the schema the store is in; a command that writes (e.g. "
        "`backcheck info`) makes a new store there"
    ]
    assert missing.returncode == 78, missing.stderr
    (said,) = missing.stderr.strip().splitlines()
    assert f"has no schema '{pg_schema}_gone'" in said
    assert not (tmp_path / "copy.sqlite").exists()
    assert not (tmp_path / "new").exists()
