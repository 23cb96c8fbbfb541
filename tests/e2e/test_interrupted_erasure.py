"""Issue 17, defect 8: an erasure or a retention run cut off by a crash after recording its
event but before destroying the keys is finished by running it again (exit 0, saying so),
and `audit check` lists it until then.

The crash is real: the `backcheck` command itself runs, in a process of its own, and is
killed (SIGKILL, nothing cleaned up) the moment it starts to destroy a key, after the event
is committed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from uuid import UUID

from infra.bootstrap import build_app
from infra.config import Settings
from tests import story as s
from tests.e2e.test_cli import run
from tests.keys import key_rows

# `backcheck ARGS...`, killed when it destroys its KILL_AT-th key (counting from 1)
KILLED_AT_DESTROY = """
import os, signal, sys
from infra.privacy.keystore import SQLKeyStore

real, calls = SQLKeyStore.destroy, [0]

def destroy(self, *args, **kwargs):
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *args, **kwargs)

SQLKeyStore.destroy = destroy
sys.argv[0] = "backcheck"
from infra.cli import main
main()
"""


def env_of(settings: Settings, **more: str) -> dict[str, str]:
    return {
        "BACKCHECK_DATABASE_URL": str(settings.database_url),
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
        **more,
    }


def killed(env: dict[str, str], kill_at: int, *args: str) -> None:
    """`backcheck ARGS` run until it destroys its `kill_at`-th key, and killed there."""
    outside = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    crashed = subprocess.run(
        [sys.executable, "-c", KILLED_AT_DESTROY, *args],
        env=outside | env | {"KILL_AT": str(kill_at)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr


def registered(settings: Settings, *names: str) -> list[UUID]:
    app = build_app(settings)
    try:
        return [s.register(app, name) for name in names]
    finally:
        app.close()


def unfinished(env: dict[str, str]) -> list[dict[str, str]]:
    """What `audit check --json` lists (exit 1 when anything)."""
    checked = run(env, "audit", "check", "--json")
    *rows, summary = [json.loads(line) for line in checked.stdout.splitlines()]
    assert checked.returncode == (1 if rows else 0), checked.stderr
    assert summary["violations"] == len(rows)
    return rows


def test_an_erasure_cut_off_before_its_keys_were_destroyed_is_finished_by_running_it_again(
    settings: Settings,
) -> None:
    (candidate_id,) = registered(settings, "Li Lei")
    env = env_of(settings)
    erase = ("subject", "erase", str(candidate_id), "--reason", "candidate request")

    killed(env, 1, *erase)

    assert {key for subject, key in key_rows(settings) if subject == candidate_id} == {
        "user.name",
        "user.contact.email",
    }  # a key per category
    (listed,) = unfinished(env)
    assert listed["rule"] == "erasure recorded but not finished"
    assert listed["candidate_id"] == str(candidate_id)
    assert "run `backcheck subject erase" in listed["detail"]

    again = run(env, *erase)

    assert again.returncode == 0, again.stderr
    assert f"erasure of {candidate_id} was recorded at" in again.stdout
    assert "but not finished; finished now: 2 data key(s) destroyed" in again.stdout
    assert key_rows(settings) == set()
    assert unfinished(env) == []
    assert run(env, "audit", "verify").returncode == 0
    erasures = [
        e
        for e in map(json.loads, run(env, "events", "--json").stdout.splitlines())
        if e["event"] == "Erased"
    ]
    assert len(erasures) == 1  # recorded once: finishing it recorded nothing more
    finished = run(env, *erase, "--json")
    assert finished.returncode == 3  # a finished erasure is refused as before
    assert "already erased" in json.loads(finished.stdout)["detail"]


def test_a_retention_run_cut_off_midway_is_finished_by_the_next_run(settings: Settings) -> None:
    candidates = registered(settings, "Li Lei", "Han Mei", "Zhou Min")
    every_tier = "secret=0,consent_required=0,confidential=0,general=0"
    env = env_of(settings, BACKCHECK_RETENTION_DAYS=every_tier)

    killed(env, 2, "retention", "run")  # the first shredded, the second recorded only

    held = {subject for subject, _ in key_rows(settings)}
    assert len(held) == 2
    (listed,) = unfinished(env)
    assert listed["rule"] == "retention recorded but not finished"
    cut_off = UUID(listed["candidate_id"])
    assert cut_off in held
    assert "general" in listed["detail"]
    assert "`backcheck retention run`" in listed["detail"]

    again = run(env, "retention", "run", "--json")

    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert [(UUID(f["candidate_id"]), f["tier"]) for f in result["finished"]] == [
        (cut_off, "general")
    ]
    (rest,) = held - {cut_off}
    assert [UUID(i["candidate_id"]) for i in result["shredded"]] == [rest]
    assert key_rows(settings) == set()
    assert unfinished(env) == []
    assert run(env, "audit", "verify").returncode == 0
    assert held <= set(candidates)


def test_a_retention_run_says_what_it_finished(settings: Settings) -> None:
    registered(settings, "Li Lei")
    env = env_of(settings, BACKCHECK_RETENTION_DAYS="general=0")
    killed(env, 1, "retention", "run")

    dry = run(env, "retention", "run", "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert "was recorded at" in dry.stdout
    assert "not finished; finishing it is due" in dry.stdout
    assert len(unfinished(env)) == 1  # a dry run changes nothing
    again = run(env, "retention", "run")
    assert again.returncode == 0, again.stderr
    assert "not finished; finished now" in again.stdout
    assert unfinished(env) == []
