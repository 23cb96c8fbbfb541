"""Every file and directory backcheck makes is its owner's alone, whatever the caller's umask:
the store, its views, keys, checkpoints and exports hold personal data or what protects it.
A compliance officer's walkthrough found the store and views at mode 644 and `keys/` at 755."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from tests.e2e.test_cli import BACKCHECK


def run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    return subprocess.run(
        [*BACKCHECK, *args],
        env=env | {"BACKCHECK_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        preexec_fn=lambda: os.umask(0o002),  # a group-sharing caller
    )


def test_what_backcheck_makes_no_one_else_may_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    registered = run(
        data, "do", "register-candidate", json.dumps({"name": "Zhou Min", "actor": "hr:li"})
    )
    candidate = json.loads(registered.stdout)["candidate_id"]
    run(data, "audit", "keygen")
    run(data, "audit", "checkpoint")
    run(data, "subject", "export", candidate, "--out", str(tmp_path / "package.json"))

    made = [data, *data.rglob("*"), tmp_path / "package.json"]
    assert {p.name for p in made} >= {"backcheck.sqlite", "backcheck.views.sqlite", "keys"}
    loose = {
        str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in made
        if stat.S_IMODE(p.stat().st_mode) & 0o077
    }
    assert loose == {}
