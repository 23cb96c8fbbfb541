"""Readiness follows the store, and retries retry only what waiting cures.

Real faults, not mocks: PostgreSQL cut away under a running server or relay by a TCP proxy
(`tests/proxy.py`), a worker's retried operation that is a bug, in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from eventsourcing.persistence import OperationalError

from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.relay import RelayFailedError
from infra.kafka.relay_follow import waits_out
from infra.kafka.topics import BrokerUnavailableError
from infra.ops.retry import EX_SOFTWARE, is_transient
from infra.problem import EX_CONFIG
from tests.conftest import PG_URL, require_postgres
from tests.http import Served, served
from tests.kafka import (
    BACKCHECK,
    Broker,
    Processes,
    _free_port,
    relay_command,
    store_env,
    topic_name,
    wait_for,
)
from tests.proxy import Cuttable
from tests.scrape import get, metric, ready

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def proxied(
    pg_schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, Cuttable]]:
    """A PostgreSQL store reached through a proxy the test can cut."""
    require_postgres()
    url = urlsplit(PG_URL)
    proxy = Cuttable((url.hostname or "127.0.0.1", url.port or 5432))
    monkeypatch.setenv("POSTGRES_CONNECT_TIMEOUT", "2")
    settings = Settings(
        database_url=f"postgresql://{url.username}@127.0.0.1:{proxy.port}{url.path}"
        f"?schema={pg_schema}",
        data_dir=tmp_path,
    )
    try:
        yield settings, proxy
    finally:
        if proxy._cut:
            proxy.restore()
        proxy.close()


@pytest.fixture
def api(proxied: tuple[Settings, Cuttable]) -> Iterator[Served]:
    settings, _ = proxied
    app = build_app(settings)
    try:
        with served(app, settings) as running:
            yield running
    finally:
        app.close()


@pytest.mark.postgres
def test_the_server_is_not_ready_while_its_store_is_unreachable_and_ready_again_after(
    api: Served, proxied: tuple[Settings, Cuttable]
) -> None:
    _, proxy = proxied
    answer = api.client.get("/readyz")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "ready": True,
        "checks": {"store": "ok", "breaker": "ok", "master_key": "ok"},
    }

    proxy.cut()
    answer = api.client.get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["ready"] is False
    assert "does not answer" in body["checks"]["store"], body
    assert body["checks"]["master_key"] == "not checked: the store does not answer"
    assert api.client.get("/healthz").status_code == 200  # alive: not to be restarted

    proxy.restore()
    assert api.client.get("/readyz").status_code == 200


@pytest.mark.postgres
@pytest.mark.kafka
def test_a_relay_waits_out_its_store_gone_not_ready_meanwhile_then_relays_again(
    kafka_broker: Broker, proxied: tuple[Settings, Cuttable], tmp_path: Path
) -> None:
    settings, proxy = proxied
    env = store_env(settings) | {"POSTGRES_CONNECT_TIMEOUT": "2"}
    subprocess.run([BACKCHECK, "info"], env=env, check=True, capture_output=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    topic = topic_name("backcheck.events")
    running = Processes(env, tmp_path)
    try:
        running.start(relay_command(kafka_broker.bootstrap, topic, 1, "--health-port", str(port)))
        wait_for(lambda: ready(base)[0] == 200, 60, "the relay ready", running)

        proxy.cut()
        wait_for(lambda: ready(base)[0] == 503, 30, "the relay not ready", running)
        assert "does not answer" in ready(base)[1]["checks"]["store"]
        assert get(f"{base}/healthz")[0] == 200
        wait_for(
            lambda: metric(base, "backcheck_transient_retries_total", operation="relay") > 0,
            60,
            "the relay to wait out its store",
            running,
        )
        running.check_alive()  # waiting, not stopped

        proxy.restore()
        wait_for(lambda: ready(base)[0] == 200, 60, "the relay ready again", running)
        subprocess.run([BACKCHECK, "demo"], env=env, check=True, capture_output=True)
        app = build_app(settings)
        try:
            head = app.recorder.max_notification_id() or 0
        finally:
            app.close()
        wait_for(
            lambda: metric(base, "backcheck_relay_events_total", topic=topic) == head,
            120,
            "the relay to publish what was stored after the outage",
            running,
            explain=lambda: (
                f"head {head}\n"
                + "\n".join(
                    line for line in get(f"{base}/metrics")[1].splitlines() if "backcheck_" in line
                )
            ),
        )
    finally:
        running.stop()


def test_transient_faults_are_the_store_and_the_broker_away_not_bugs() -> None:
    assert is_transient(OperationalError("database is locked"))
    assert is_transient(ConnectionRefusedError(111, "Connection refused"))
    assert is_transient(BrokerUnavailableError("no Kafka broker answered at 127.0.0.1:1"))
    assert is_transient(RelayFailedError("the broker did not acknowledge events 1..2"))
    assert waits_out(RelayFailedError("the broker did not acknowledge events 1..2"))
    for bug in (TypeError("unsupported operand"), KeyError("ce_id"), ValueError("bad")):
        assert not is_transient(bug), bug
        assert not waits_out(bug), bug


_RETRIED_BUG = """
import asyncio, logging
from infra.kafka.streams import until_done
from infra.ops import logs

logs.configure()

async def attempt():
    print("tried", flush=True)
    raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

asyncio.run(until_done(attempt, "applying 3 messages", logging.getLogger("backcheck.intake"),
                       0.01, process="the command intake"))
print("carried on", flush=True)
"""


def test_a_bug_in_retried_work_stops_the_worker_with_one_line_and_exit_70() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_RETRIED_BUG)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == EX_SOFTWARE, done.stderr
    assert done.stdout == "tried\n"  # tried once, not again, and nothing carried on
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert (
        "the command intake stopped: applying 3 messages failed with a bug, not retried "
        "(TypeError: unsupported operand type(s) for +: 'int' and 'str')" in lines[0]
    )
    assert lines[0].startswith('{"time": ')  # a JSON line: standard error is no terminal


_RETRIED_WRONG_KEY = """
import asyncio, logging
from infra.kafka.streams import until_done
from infra.ops import logs
from infra.privacy.keystore import WrongMasterKeyError

logs.configure()

async def attempt():
    print("tried", flush=True)
    raise WrongMasterKeyError(
        "the store was rotated to another master key since",
        setting="BACKCHECK_MASTER_KEY_FILE",
        key="keys/master.key",
    )

asyncio.run(until_done(attempt, "applying 3 messages", logging.getLogger("backcheck.worker"),
                       0.01, process="the projection worker"))
print("carried on", flush=True)
"""


def test_a_known_fault_in_retried_work_stops_the_worker_with_its_own_line_and_code() -> None:
    """After `keys rotate-master`, a worker still holding the old key is refused as README
    says (exit 78, the master key's line), not reported as a bug (70)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_RETRIED_WRONG_KEY)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == EX_CONFIG, done.stderr
    assert done.stdout == "tried\n"
    (line,) = done.stderr.strip().splitlines()
    assert "the projection worker stopped: applying 3 messages failed: Wrong master key" in line
    assert "a bug" not in line
