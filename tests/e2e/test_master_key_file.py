"""The master key file as a user gets it wrong (issue 17, defects 1 and 13): a write command
started with another store's key is refused in one line with its own exit code, and the store
is left as it was; a key file others may read is refused with the chmod that fixes it; a key
that cannot be read, its file or the `keys/` directory holding it, is the same configuration
error."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL
from tests.e2e.test_cli import BACKCHECK, run

EX_CONFIG = 78  # every key fault: the master key is not this store's

REGISTER = json.dumps({"name": "Li Lei", "email": "li@example.cn", "actor": "hr:li.na"})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """A store with one candidate in it, on each backend; its key where backcheck made it."""
    env = {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}
    if request.param == "postgres":
        env["BACKCHECK_DATABASE_URL"] = f"{PG_URL}?schema={request.getfixturevalue('pg_schema')}"
    made = run(env, "do", "register-candidate", REGISTER.replace("Li Lei", "Zhou Min"))
    assert made.returncode == 0, made.stderr
    return env


def key_rows(env: dict[str, str]) -> list[tuple[str, str, bytes]]:
    query = "SELECT subject, tier, wrapped FROM backcheck_keys ORDER BY subject, tier"
    if "BACKCHECK_DATABASE_URL" not in env:
        with sqlite3.connect(Path(env["BACKCHECK_DATA_DIR"], "backcheck.sqlite")) as conn:
            return [(s, t, bytes(w)) for s, t, w in conn.execute(query)]
    import psycopg

    schema = env["BACKCHECK_DATABASE_URL"].rpartition("schema=")[2]
    with psycopg.connect(PG_URL, options=f"-c search_path={schema}") as conn:
        return [(s, t, bytes(w)) for s, t, w in conn.execute(query)]


def events(env: dict[str, str]) -> int:
    """How many events the store holds (`info`: `events` would record reads of them)."""
    listed = run(env, "info")
    assert listed.returncode == 0, listed.stderr
    return int(listed.stdout.rpartition("events: ")[2].split()[0])


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refusal is, with no traceback."""
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_write_with_another_key_file_is_refused_and_the_store_is_unchanged(
    store: dict[str, str], tmp_path: Path
) -> None:
    other = tmp_path / "other.key"
    other.write_bytes(bytes(range(32)).hex().encode() + b"\n")
    other.chmod(0o600)
    before = (events(store), key_rows(store))

    result = run(
        {**store, "BACKCHECK_MASTER_KEY_FILE": str(other)}, "do", "register-candidate", REGISTER
    )

    line = refused(result)
    assert result.returncode == EX_CONFIG
    assert f"the key in {other} is not this store's master key" in line
    assert (events(store), key_rows(store)) == before
    for command in (("audit", "check"), ("views", "rebuild")):  # the store still works
        after = run(store, *command)
        assert after.returncode == 0, after.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("events",),
        ("views", "rebuild"),
        ("audit", "check"),
        ("relay", "--once"),
        ("worker",),
        ("ingest",),
    ],
    ids=" ".join,
)
def test_every_way_into_the_store_refuses_another_key(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}
    assert run(env, "do", "register-candidate", REGISTER).returncode == 0
    other = tmp_path / "other.key"
    other.write_bytes(bytes(range(32)).hex().encode() + b"\n")
    other.chmod(0o600)
    wrong = {
        **env,
        "BACKCHECK_MASTER_KEY_FILE": str(other),
        "BACKCHECK_KAFKA_BOOTSTRAP": "127.0.0.1:1",
    }

    result = run(wrong, *command)

    assert result.returncode == EX_CONFIG, result.stderr
    assert "is not this store's master key" in refused(result)


def test_a_key_file_others_may_read_is_refused_with_the_chmod_that_fixes_it(
    store: dict[str, str],
) -> None:
    key = Path(store["BACKCHECK_DATA_DIR"], "keys", "master.key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # as backcheck made it
    before = (events(store), key_rows(store))
    key.chmod(0o644)

    result = run(store, "do", "register-candidate", REGISTER)

    line = refused(result)
    assert result.returncode == EX_CONFIG
    assert line.endswith(f"chmod 600 {key}")
    key.chmod(0o600)
    assert (events(store), key_rows(store)) == before


def as_a_user_file_modes_bind(
    env: dict[str, str], *args: str, python: bool = False
) -> subprocess.CompletedProcess[str]:
    """`backcheck` (`python`: the interpreter itself) run as a user the files' modes hold to:
    run by root (as in the project's containers), without root's power to read and search
    whatever the modes say (`setpriv` drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    process it starts)."""
    command = [sys.executable] if python else BACKCHECK
    if os.geteuid() != 0 and not python:
        return run(env, *args)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            if os.environ.get("CI") == "true":  # util-linux is on every Debian: a broken image
                pytest.fail("run as root without setpriv (util-linux) under CI=true")
            pytest.skip("run as root without setpriv (util-linux): file modes bind no process here")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    environment.update(env, COLUMNS="200")
    return subprocess.run(
        [*prefix, *command, *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("unreadable", ["the keys directory", "the key file"])
def test_a_master_key_that_cannot_be_read_is_a_configuration_error_whichever_cannot_be_read(
    store: dict[str, str], unreadable: str
) -> None:
    """A key file this user may not read was a configuration error (exit 78, naming
    BACKCHECK_MASTER_KEY_FILE), but the `keys/` directory holding it, unreadable, was `File
    unusable (file)`, exit 74: a file fault, for the same key out of reach. Both are now the
    one configuration error, for a write, a read and `info`; `audit verify` checks the chain
    without the key in both, saying why."""
    keys = Path(store["BACKCHECK_DATA_DIR"], "keys")
    key = keys / "master.key"
    shut = keys if unreadable == "the keys directory" else key
    mode = stat.S_IMODE(shut.stat().st_mode)
    shut.chmod(0)
    try:
        results = [
            as_a_user_file_modes_bind(store, *line)
            for line in (("do", "register-candidate", REGISTER), ("events",), ("info",))
        ]
        verified = as_a_user_file_modes_bind(store, "audit", "verify")
    finally:
        shut.chmod(mode)

    for result in results:
        assert result.returncode == EX_CONFIG, result.stderr
        assert refused(result) == (
            "Configuration error (config): BACKCHECK_MASTER_KEY_FILE: "
            f"{key} cannot be read: Permission denied"
        )
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("intact: 1 events"), verified.stdout
    assert (
        "the data keys were not held to their values: no master key to unwrap the data keys "
        f"with (BACKCHECK_MASTER_KEY_FILE: {key} cannot be read: Permission denied)"
    ) in verified.stdout
    assert events(store) == 1  # nothing was written


def test_a_master_key_that_cannot_be_made_is_a_configuration_error_naming_its_folder(
    tmp_path: Path,
) -> None:
    """A new store whose `keys/` folder this user may not write: making the key's draft there
    raised PermissionError out of `load_master_key`, past its configuration errors: `File
    unusable (file): …/.master.key.PID: Permission denied`, exit 74, naming a file no one
    asked for. Now one line naming the setting and the folder, exit 78; and a key folder that
    cannot be made (its parent not writable) the same, from the provider itself."""
    data = tmp_path / "data"
    keys = data / "keys"
    keys.mkdir(parents=True)
    keys.chmod(0o500)
    shut = tmp_path / "shut"
    shut.mkdir()
    shut.chmod(0o500)
    made = shut / "keys" / "master.key"
    try:
        result = as_a_user_file_modes_bind({"BACKCHECK_DATA_DIR": str(data)}, "info")
        direct = as_a_user_file_modes_bind(
            {},
            "-c",
            "from pathlib import Path\n"
            "from infra.config import ConfigError\n"
            "from infra.privacy.providers import FileKeyProvider\n"
            "try:\n"
            f"    FileKeyProvider.from_file(Path({str(made)!r}), create=True)\n"
            "except ConfigError as e:\n"
            "    print(e)\n",
            python=True,
        )
    finally:
        keys.chmod(0o700)
        shut.chmod(0o700)

    assert result.returncode == EX_CONFIG, result.stderr
    assert refused(result) == (
        "Configuration error (config): BACKCHECK_MASTER_KEY_FILE: no master key at "
        f"{keys / 'master.key'}, and none can be made in {keys}: Permission denied"
    )
    assert list(keys.iterdir()) == []  # no draft left
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout.strip() == (
        f"BACKCHECK_MASTER_KEY_FILE: no master key at {made}, and none can be made in "
        f"{made.parent}: Permission denied"
    )
