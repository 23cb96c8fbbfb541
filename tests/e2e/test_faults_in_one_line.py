"""Every way in that used to end in a Python traceback (issue 17, defect 12) is told in one
line naming the problem, with its documented exit code (README: exit codes): a payload file
that is missing, a directory or endless; a directory or a file where the other is expected; a
key file of garbage; a store that is locked, full, or a PostgreSQL server that went away.
With `do --json` the problem comes as one JSON object on stdout instead.

No test here needs to say "and no traceback": the conftest fails any test whose process
printed one (tests/tracebacks.py); the first test shows that it does."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from infra.problem import EX_CANTCREAT, EX_CONFIG, EX_IOERR, EX_TEMPFAIL, EX_UNAVAILABLE
from tests.conftest import PG_URL, require_postgres
from tests.e2e.test_cli import BACKCHECK
from tests.tracebacks import TracebackInOutputError

CANDIDATE = json.dumps({"name": "Zhou Min", "actor": "hr:li"})
ONE_MIB = "more than 1,048,576 bytes; a command is at most 1 MiB"


def run(
    env: dict[str, str], *args: str, stdin: IO[bytes] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    return subprocess.run(
        [*BACKCHECK, *args],
        env=clean | env,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The one line a failed command said, once its exit code is the documented one."""
    assert result.returncode == code, result.stderr
    (line,) = result.stderr.splitlines()
    return line


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    return {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A directory and a binary file (its owner's alone, as a key file must be)."""
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "binary").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "binary").chmod(0o600)
    return tmp_path


def test_a_traceback_from_any_process_fails_the_test() -> None:
    with pytest.raises(TracebackInOutputError, match="ZeroDivisionError"):
        subprocess.run([sys.executable, "-c", "1/0"], capture_output=True)


@pytest.mark.parametrize("command", ["do", "send-command"])
@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("@{tmp}/no-such.json", "PAYLOAD @{tmp}/no-such.json: no such file"),
        ("@{tmp}/a-directory", "PAYLOAD @{tmp}/a-directory: a directory, not a file"),
        ("@/dev/zero", f"PAYLOAD @/dev/zero: {ONE_MIB}"),
    ],
    ids=["missing", "a-directory", "endless"],
)
def test_a_payload_file_that_cannot_be_read_is_invalid_input(
    store: dict[str, str], files: Path, command: str, given: str, said: str
) -> None:
    result = run(store, command, "register-candidate", given.format(tmp=files))

    assert one_line(result, 2) == f"Invalid input (input): {said.format(tmp=files)}"


def test_an_endless_stdin_is_read_no_further_than_the_bound(store: dict[str, str]) -> None:
    with open("/dev/zero", "rb") as zeros:
        result = run(store, "do", "register-candidate", "-", stdin=zeros)

    assert one_line(result, 2) == f"Invalid input (input): PAYLOAD (stdin): {ONE_MIB}"


def test_a_payload_that_is_not_text_is_invalid_json(store: dict[str, str], files: Path) -> None:
    result = run(store, "do", "register-candidate", f"@{files}/binary")

    assert one_line(result, 2).startswith("Invalid input (input): PAYLOAD: not valid JSON: ")


@pytest.mark.parametrize("command", ["do", "send-command"])
@pytest.mark.parametrize(
    ("payload", "said"),
    [
        ("{bad", "PAYLOAD: not valid JSON: unexpected character"),
        ("[1]", "PAYLOAD: the command must be a JSON object"),
    ],
    ids=["not-json", "not-an-object"],
)
def test_a_command_that_is_not_a_json_object_is_refused_before_any_broker_is_asked(
    store: dict[str, str], command: str, payload: str, said: str
) -> None:
    with socket.socket() as closed:  # a port no broker answers on: exit 69 if it were asked
        closed.bind(("127.0.0.1", 0))
        bootstrap = f"127.0.0.1:{closed.getsockname()[1]}"
    env = store | {"BACKCHECK_KAFKA_BOOTSTRAP": bootstrap}

    line = one_line(run(env, command, "register-candidate", payload), 2)

    assert line.startswith(f"Invalid input (input): {said}")


def test_do_json_answers_every_error_as_a_problem_object_on_stdout(
    store: dict[str, str], files: Path
) -> None:
    cases = [
        (("register-candidate", f"@{files}/no-such.json"), "input", 2),
        (("no-such-use-case", "{}"), "input", 2),
        (("register-candidate", "{"), "input", 2),
        ((), "input", 2),  # the use case missing: a usage error
        (("register-candidate", "{}", "--no-such-option"), "input", 2),
        (("register-candidate", "{}"), "validation", 2),
    ]
    for args, kind, code in cases:
        result = run(store, "do", *args, "--json")

        assert (result.returncode, result.stderr) == (code, ""), args
        problem = json.loads(result.stdout)
        assert (problem["type"], problem["exit_code"]) == (kind, code), args
        assert problem["detail"], args


def test_a_store_path_that_is_a_directory_is_a_configuration_error(
    files: Path,
) -> None:
    env = {"BACKCHECK_DATABASE_URL": f"sqlite:///{files}/a-directory"}

    line = one_line(run(env, "info"), EX_CONFIG)

    assert line == (
        f"Configuration error (config): BACKCHECK_DATABASE_URL: {files}/a-directory is a "
        "directory; name the store file"
    )


@pytest.mark.parametrize(
    "command",
    [("do", "register-candidate", CANDIDATE), ("info",), ("demo",), ("audit", "keygen")],
    ids=["do", "info", "demo", "audit-keygen"],
)
@pytest.mark.parametrize(
    ("data_dir", "why"),
    [
        ("{tmp}/binary", "a file is in the way"),
        ("{tmp}/binary/data", "a file is in the way"),
        ("/proc/backcheck", "No such file or directory"),  # no directory can be made there
    ],
    ids=["a-file", "under-a-file", "in-proc"],
)
def test_a_data_directory_that_cannot_be_made_is_a_configuration_error(
    files: Path, command: tuple[str, ...], data_dir: str, why: str
) -> None:
    given = data_dir.format(tmp=files)

    line = one_line(run({"BACKCHECK_DATA_DIR": given}, *command), EX_CONFIG)

    assert line == (
        f"Configuration error (config): BACKCHECK_DATA_DIR: cannot make the directory {given} "
        f"for the store's files and keys: {why}"
    )


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("a-directory", "{tmp}/a-directory is a directory; name the master key file"),
        ("binary", "{tmp}/binary: a master key is 64 hex digits (32 bytes)"),
    ],
)
def test_a_master_key_file_that_is_no_key_is_a_configuration_error(
    store: dict[str, str], files: Path, key: str, said: str
) -> None:
    env = store | {"BACKCHECK_MASTER_KEY_FILE": f"{files}/{key}"}

    line = one_line(run(env, "do", "register-candidate", CANDIDATE), EX_CONFIG)

    assert line.endswith(said.format(tmp=files))


def test_a_master_key_file_that_is_a_pipe_is_refused_not_waited_on(
    store: dict[str, str], tmp_path: Path
) -> None:
    pipe = tmp_path / "master.key"
    os.mkfifo(pipe, 0o600)  # nothing will ever write to it: reading it would wait for good
    env = store | {"BACKCHECK_MASTER_KEY_FILE": str(pipe)}

    line = one_line(run(env, "do", "register-candidate", CANDIDATE, timeout=20), EX_CONFIG)

    assert line == (
        f"Configuration error (config): BACKCHECK_MASTER_KEY_FILE: {pipe} is not a regular "
        "file (a pipe or a device); a master key is a file of 64 hex digits"
    )


def test_key_checkpoint_and_bundle_paths_that_are_directories_are_told(
    store: dict[str, str], files: Path
) -> None:
    directory = f"{files}/a-directory"
    assert run(store, "audit", "keygen").returncode == 0

    signing = run(store | {"BACKCHECK_SIGNING_KEY": directory}, "audit", "checkpoint")
    checkpoint = run(store, "audit", "verify", "-c", directory)
    bundle = run(store, "audit", "verify", "--bundle", directory)
    key_dir = run(store, "audit", "keygen", "--out", f"{files}/binary")

    unusable = "Checkpoint or key unusable (checkpoint)"
    assert one_line(signing, 2) == (
        f"{unusable}: {directory}: the signing key cannot be read: Is a directory"
    )
    assert one_line(checkpoint, 2) == (
        f"{unusable}: {directory}: the checkpoint cannot be read: Is a directory"
    )
    assert "Is a directory" in one_line(bundle, 2)
    assert one_line(key_dir, EX_CANTCREAT) == (
        f"not written: cannot write in {files}/binary: {files}/binary is not a directory"
    )


def test_a_store_locked_by_another_process_is_busy(store: dict[str, str], tmp_path: Path) -> None:
    assert run(store, "do", "register-candidate", CANDIDATE).returncode == 0
    holder = sqlite3.connect(tmp_path / "data" / "backcheck.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a backup tool, a sqlite3 shell left open
    try:
        result = run(store, "do", "register-candidate", CANDIDATE)
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    line = one_line(result, EX_TEMPFAIL)
    assert line.startswith("Store busy (store-busy): another process holds the store's lock")
    assert line.endswith("nothing was recorded: try again when it is done")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB file system of its own (tmpfs: needs root, as in the project's containers)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        why = f"cannot mount a tmpfs to fill (not root?): {made.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true requires the full-disk test to run: {why}")
        pytest.skip(why)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def fill(disk: Path, leave_kb: int) -> None:
    free_kb = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize // 1024
    with (disk / "filler").open("wb") as filler:
        filler.write(b"\0" * max(0, free_kb - leave_kb) * 1024)


def test_a_full_disk_is_told_in_one_line_and_the_store_still_opens(tiny_disk: Path) -> None:
    env = {"BACKCHECK_DATA_DIR": str(tiny_disk / "data")}
    assert run(env, "do", "register-candidate", CANDIDATE).returncode == 0
    fill(tiny_disk, leave_kb=100)
    big = json.dumps({"name": "Z" * 1900, "actor": "hr:li"})

    results = [run(env, "do", "register-candidate", big) for _ in range(8)]

    refused = [r for r in results if r.returncode != 0]
    assert refused, [r.stderr for r in results]  # the disk did fill up
    for result in refused:
        assert one_line(result, EX_IOERR).startswith(("Store full", "Store unusable")), (
            result.stderr
        )
    for result in results:  # a write that was recorded may warn of its views, in one line
        assert len(result.stderr.splitlines()) <= 1, result.stderr
    (tiny_disk / "filler").unlink()
    recorded = sum(r.returncode == 0 for r in results)
    listed = run(env, "events", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 1 + recorded
    assert run(env, "audit", "verify").returncode == 0


@pytest.mark.parametrize(
    "line",
    [("audit", "verify"), ("audit", "check"), ("events",), ("do", "register-candidate", CANDIDATE)],
    ids=lambda line: " ".join(line[:2]),
)
@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_a_store_that_cannot_be_opened_here_is_unusable_naming_it_not_damaged(
    tiny_disk: Path, fault: str, line: tuple[str, ...]
) -> None:
    """A store on a read-only file system, or a full disk, cannot be read either (SQLite
    makes its -shm file beside a WAL store to read it). The commands that only read used to
    call it `not-a-store`, exit 65, 'restore the file from a backup', for a store that is
    whole; the others said 'the store could not be read or written' naming no file."""
    data = tiny_disk / "data"
    env = {"BACKCHECK_DATA_DIR": str(data)}
    assert run(env, "do", "register-candidate", CANDIDATE).returncode == 0
    if fault == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
        why = f"its directory {data} cannot be written (read-only, or not this user's)"
    else:
        fill(tiny_disk, leave_kb=0)
        why = f"the disk holding {data} is full"

    said = one_line(run(env, *line), EX_IOERR)

    store = data / "backcheck.sqlite"
    assert said.startswith(
        f"Store unusable (store-io): the store could not be read or written ({store}: "
    ), said
    assert why in said, said
    if fault == "read-only":
        subprocess.run(["mount", "-o", "remount,rw", str(tiny_disk)], check=True)
    else:
        (tiny_disk / "filler").unlink()
    assert run(env, "audit", "verify").returncode == 0


class Gatekeeper:
    """A TCP proxy to the PostgreSQL server that lets the first connections through (the
    command's check that the server answers) and closes every later one at once: a server
    that goes away between the check and the work."""

    def __init__(self, target: tuple[str, int], allow: int) -> None:
        self.target, self.allow = target, allow
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.allow <= 0:
                client.close()
                continue
            self.allow -= 1
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            source.close()
            sink.close()

    def close(self) -> None:
        self.server.close()


@pytest.mark.postgres
def test_a_postgresql_server_that_goes_away_is_unreachable(pg_schema: str, tmp_path: Path) -> None:
    require_postgres()
    from urllib.parse import urlsplit

    url = urlsplit(PG_URL)
    proxy = Gatekeeper((url.hostname or "127.0.0.1", url.port or 5432), allow=1)
    try:
        env = {
            "BACKCHECK_DATABASE_URL": (
                f"postgresql://{url.username}@127.0.0.1:{proxy.port}{url.path}?schema={pg_schema}"
            ),
            "BACKCHECK_DATA_DIR": str(tmp_path),
            "POSTGRES_CONNECT_TIMEOUT": "2",  # the library's wait for a connection
        }
        result = run(env, "do", "register-candidate", CANDIDATE)
    finally:
        proxy.close()

    line = one_line(result, EX_UNAVAILABLE)
    assert line.startswith("Store unreachable (store-unreachable): PostgreSQL stopped answering")


SOMEONE = "00000000-0000-4000-8000-000000000001"
AS_CANDIDATE = ("--as", f"candidate:{SOMEONE}", "--role", "candidate", "--purpose", "mine")


@pytest.mark.parametrize(
    "line",
    [
        ("audit", "verify"),
        ("store", "migrate", "--to", "sqlite:///new.sqlite"),
        # what only reads the store (or rebuilds what is made from it) makes none
        ("audit", "check"),
        ("audit", "as-of", "2026-12-01T00:00:00+00:00"),
        ("audit", "timeline", "--subject", SOMEONE),
        ("audit", "export", "--subject", SOMEONE, "--out", "{tmp}/evidence.bundle"),
        ("audit", "tree-backfill"),
        ("audit", "prove", "--position", "1"),
        ("events",),
        ("show", SOMEONE),
        ("views", "status"),
        ("views", "rebuild"),
        ("dashboard",),
        ("read", "profile", SOMEONE, *AS_CANDIDATE),
        ("subject", "access-log", SOMEONE, *AS_CANDIDATE),
        ("subject", "export", SOMEONE, "--out", "{tmp}/package.json"),
        ("principals", "list"),
        ("duty-runs",),
    ],
    ids=lambda line: " ".join(word for word in line[:2] if not word.startswith("0")),
)
def test_a_command_that_reads_a_store_that_is_not_there_says_where_it_looked(
    store: dict[str, str], tmp_path: Path, line: tuple[str, ...]
) -> None:
    where = Path(store["BACKCHECK_DATA_DIR"], "backcheck.sqlite")

    said = one_line(run(store, *(word.format(tmp=tmp_path) for word in line)), EX_IOERR)

    assert said == (
        f"File unusable (file): {where}: no store there (BACKCHECK_DATABASE_URL, else "
        "DATA_DIR/backcheck.sqlite)"
    )
    assert not where.exists()
    assert not where.parent.exists(), "nothing is made for a store that is not there"
