"""Starting the command line (issue 19): asking for help or the version loads no database
driver, policy engine, cipher, Kafka client or web framework, and none of the use cases.

Each case runs the real entry point in a fresh interpreter and reads `sys.modules` after it:
what a module imports at its top is paid by every `backcheck` start, so a heavy import that
creeps back to the top of a command module fails here, naming the command that loaded it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

# What only a command that does its work needs: the store's drivers and library, the policy
# engine, the cipher, Kafka and faust, the HTTP stack, and our own use cases and adapters.
HEAVY = (
    "psycopg",
    "psycopg_pool",
    "sqlite3",
    "eventsourcing",
    "cedarpy",
    "cryptography",
    "kafka",
    "aiokafka",
    "faust",
    "fastapi",
    "starlette",
    "uvicorn",
    "jwt",
    "services",
    "projections",
    "infra.bootstrap",
    "infra.config",
    "infra.problem",
    "infra.store.recorder",
    "infra.access",
    "infra.audit",
    "infra.privacy",
    "infra.views",
    "infra.kafka",
    "infra.demo",
)

# Runs each command line in turn in one interpreter and writes, for each, its exit code and
# the heavy modules it was the first to load. With no command line given, every command's
# and group's --help (walked from the app itself), then --help, --version and version.
_PROBE = """
import json, sys
from infra.cli import main
from infra.cli.common import app
import typer.main

report, heavy, lines = sys.argv[1], tuple(json.loads(sys.argv[2])), json.loads(sys.argv[3])
if not lines:
    def walk(command, path):
        yield [*path, "--help"]
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name])
    lines = list(walk(typer.main.get_command(app), [])) + [["--version"], ["version"]]
seen = set()
found = {}
for line in lines:
    sys.argv = ["backcheck", *line]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    modules = set(sys.modules)
    loaded = {h for h in heavy if h in modules or any(m.startswith(h + ".") for m in modules)}
    found[" ".join(line)] = {"exit": code, "loaded": sorted(loaded - seen)}
    seen |= loaded
with open(report, "w") as out:
    json.dump(found, out)
"""


def probe(tmp_path: Path, *lines: list[str]) -> tuple[dict[str, dict[str, Any]], str]:
    """Each command line's exit code and the heavy modules it loaded first; and the stdout."""
    report = tmp_path / "loaded.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env["BACKCHECK_DATA_DIR"] = str(tmp_path / "data")
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(report), json.dumps(HEAVY), json.dumps(lines)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, dict[str, Any]] = json.loads(report.read_text())
    return found, done.stdout


def test_help_and_the_version_load_no_driver_policy_engine_cipher_or_kafka(
    tmp_path: Path,
) -> None:
    found, stdout = probe(tmp_path, ["--help"], ["--version"], ["version"])

    assert found == {
        "--help": {"exit": 0, "loaded": []},
        "--version": {"exit": 0, "loaded": []},
        "version": {"exit": 0, "loaded": []},
    }
    assert "Usage: backcheck" in stdout
    assert stdout.count(f"backcheck {version('backcheck')}\n") == 2


def test_every_command_and_group_answers_help_without_loading_what_it_runs_on(
    tmp_path: Path,
) -> None:
    found, _ = probe(tmp_path)

    heavy_help = {line: r for line, r in found.items() if r != {"exit": 0, "loaded": []}}
    assert heavy_help == {}
    # the walk reached the groups' own commands, not only the top level
    assert {"serve --help", "audit --help", "audit verify --help", "views rebuild --help"} <= set(
        found
    )


def test_the_probe_sees_what_a_command_that_opens_the_store_loads(tmp_path: Path) -> None:
    """The control: `info` opens the store, so the same probe must name its drivers."""
    found, stdout = probe(tmp_path, ["info"])

    assert found["info"]["exit"] == 0
    assert {"sqlite3", "eventsourcing", "cedarpy", "cryptography"} <= set(found["info"]["loaded"])
    assert "events: 0" in stdout


def test_commands_on_a_sqlite_store_load_no_postgresql_driver(tmp_path: Path) -> None:
    """The PostgreSQL recorder, views, record source and server check are imported only for a
    PostgreSQL store: on SQLite, opening the store, reading it and auditing it load neither
    psycopg nor its pool (about a third of a second of a start on this machine). A command
    that writes brings the views up to date, which fetches their rows' MAC key: that too."""
    register = '{"name": "Li Lei", "actor": "recruiter:wu"}'
    lines = [
        ["do", "register-candidate", register],
        ["info"],
        ["events", "--limit", "1"],
        ["audit", "verify"],
        ["views", "status"],
    ]
    found, _ = probe(tmp_path, *lines)

    assert {line: entry["exit"] for line, entry in found.items()} == {
        " ".join(line): 0 for line in lines
    }
    loaded = {module for entry in found.values() for module in entry["loaded"]}
    assert "sqlite3" in loaded  # the control: the store was opened
    assert not {"psycopg", "psycopg_pool"} & loaded, found
