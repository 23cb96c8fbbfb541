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
