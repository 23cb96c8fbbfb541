"""`backcheck scheduler` and `duty-runs` as an operator runs them: real processes on a real
store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from infra.config import Settings
from infra.problem import EX_CONFIG
from tests.e2e.test_cli import BACKCHECK, run

WITHIN = 10.0  # seconds the scheduler may take to stop once asked


def store_env(settings: Settings) -> dict[str, str]:
    env = {"BACKCHECK_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["BACKCHECK_DATABASE_URL"] = settings.database_url
    return env


def lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_two_scheduler_processes_started_together_run_each_duty_once_and_name_the_winner(
    settings: Settings,
) -> None:
    env = store_env(settings)
    assert run(env, "audit", "keygen").returncode == 0
    assert run(env, "info").returncode == 0  # the store and its tables made beforehand
    started = [
        subprocess.Popen(
            [*BACKCHECK, "scheduler", "--once", "--json"],
            env={**run_env(env), "BACKCHECK_SCHEDULER_ID": name},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    outputs = [p.communicate(timeout=120) for p in started]

    assert [p.returncode for p in started] == [0, 0], outputs
    reports = [r for out, _ in outputs for r in lines(out)]
    for duty in ("retention", "consent-expiry", "checkpoint"):
        mine = [r for r in reports if r["duty"] == duty]
        assert sorted(str(r["status"]) for r in mine).count("ran") == 1, reports
        assert len({r["runner"] for r in mine}) == 1, reports  # the others name the winner
    listed = run(env, "duty-runs", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = lines(listed.stdout)
    assert sorted(str(r["duty"]) for r in runs) == ["checkpoint", "consent-expiry", "retention"]
    assert {str(r["outcome"]) for r in runs} == {"succeeded"}
    assert [r["runners"] for r in runs if len(r["runners"]) != 1] == []  # type: ignore[arg-type]


def run_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    return {**env, **extra}


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        (
            "BACKCHECK_SCHEDULE_RETENTION",
            "hourly",
            "BACKCHECK_SCHEDULE_RETENTION: 'hourly' is not every N<unit>",
        ),
        (
            "BACKCHECK_SCHEDULE_CHECKPOINT",
            "every 10s",
            "BACKCHECK_SCHEDULE_CHECKPOINT: 'every 10s' is outside 1m to 31d",
        ),
        ("BACKCHECK_SCHEDULE_LEASE", "30d", "BACKCHECK_SCHEDULE_LEASE: '30d' is outside 1m to 7d"),
    ],
)
def test_a_bad_schedule_setting_is_one_line_naming_it_and_the_config_exit_code(
    tmp_path: Path, variable: str, value: str, said: str
) -> None:
    result = run({"BACKCHECK_DATA_DIR": str(tmp_path), variable: value}, "scheduler", "--once")

    assert result.returncode == EX_CONFIG == 78
    assert result.stderr.count("\n") == 1, result.stderr
    assert said in result.stderr
    assert not (tmp_path / "backcheck.sqlite").exists()  # refused before the store is opened


def test_a_failed_run_makes_once_exit_1_and_is_listed_with_its_error(tmp_path: Path) -> None:
    env = {"BACKCHECK_DATA_DIR": str(tmp_path), "BACKCHECK_SCHEDULE_CHECKPOINT": "every 1h"}
    env["BACKCHECK_SIGNING_KEY"] = str(tmp_path / "elsewhere.key")  # named, but never made

    result = run(env, "scheduler", "--once")

    assert result.returncode == 1, result.stderr
    assert "checkpoint (slot " in result.stdout
    assert "FAILED, attempt 1: CheckpointError: no signing key at " in result.stdout
    listed = run(env, "duty-runs")
    assert "failed" in listed.stdout
    again = run(env, "scheduler", "--once")  # the failed run is not tried again in its slot
    assert "already done by" in again.stdout


def test_the_scheduler_stops_on_sigterm_and_sigint_with_exit_0_and_no_traceback(
    tmp_path: Path,
) -> None:
    env = run_env({"BACKCHECK_DATA_DIR": str(tmp_path)})
    assert run(env, "audit", "keygen").returncode == 0
    for number in (signal.SIGTERM, signal.SIGINT):
        log = tmp_path / f"scheduler-{number.name}.log"
        with log.open("wb") as err:
            process = subprocess.Popen(
                [*BACKCHECK, "scheduler", "--tick", "1"], env=env, stdout=err, stderr=err
            )
        deadline = time.monotonic() + 60
        while "checkpoint (slot" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        started = time.monotonic()
        process.send_signal(number)
        code = process.wait(timeout=WITHIN)

        assert code == 0, log.read_text()
        assert time.monotonic() - started < WITHIN
        assert "Traceback" not in log.read_text()


def test_the_scheduler_serves_health_and_counts_its_runs(tmp_path: Path) -> None:
    import socket

    from tests.scrape import get, metric, ready

    env = run_env({"BACKCHECK_DATA_DIR": str(tmp_path)})
    assert run(env, "audit", "keygen").returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "scheduler.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*BACKCHECK, "scheduler", "--tick", "1", "--health-port", str(port)],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 60
        while metric(base, "backcheck_scheduled_runs_total") < 3 and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        assert get(f"{base}/healthz")[0] == 200
        status, checks = ready(base)
        assert status == 200, checks
        assert metric(base, "backcheck_scheduled_runs_total", status="ran") == 3
        assert metric(base, "backcheck_scheduled_runs_total", duty="checkpoint") == 1
        assert metric(base, "backcheck_checkpoint_age_seconds") >= 0  # the run just wrote one
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=WITHIN)
