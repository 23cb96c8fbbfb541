"""The command line's looks at a subject's history are recorded reads, as over HTTP: `audit
timeline`, `audit as-of --subject`, `events --subject` and `show` each record one read of
the candidate by the operator (authenticated as `operator`) before they print anything, and
the candidate's access log shows it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.e2e.test_cli import run


def stored(store: dict[str, str]) -> int:
    info = run(store, "info")
    assert info.returncode == 0, info.stderr
    found = re.search(r"events: (\d+)", info.stdout)
    assert found, info.stdout
    return int(found.group(1))


def test_each_history_command_records_a_read_by_the_operator(tmp_path: Path) -> None:
    store = {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}
    made = run(store, "do", "register-candidate", '{"name": "Zhou Min", "actor": "hr:li"}')
    assert made.returncode == 0, made.stderr
    candidate = json.loads(made.stdout)["candidate_id"]
    commands = {
        "timeline": ("audit", "timeline", "--subject", candidate),
        "case as of": ("audit", "as-of", "2999-01-01T00:00:00+00:00", "--subject", candidate),
        "events": ("events", "--subject", candidate),
        "state": ("show", candidate),
    }
    for view, command in commands.items():
        before = stored(store)

        shown = run(store, *command)

        assert shown.returncode == 0, (view, shown.stderr)
        assert stored(store) == before + 1, view
    log = run(
        store,
        *("subject", "access-log", candidate, "--as", "compliance:wu.min"),
        *("--role", "compliance", "--purpose", "audit", "--json"),
    )
    entries = json.loads(log.stdout)["entries"]
    assert [(e["view"], e["principal"], e["authentication"]) for e in entries[:4]] == [
        (view, "operator", "operator") for view in commands
    ]
    assert {e["purpose"] for e in entries[:4]} == {"audit on the store's own machine"}
