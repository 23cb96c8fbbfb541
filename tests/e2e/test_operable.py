"""Every long-running process answers its health endpoints and `/metrics` while the pipeline
runs, and the figures move: `backcheck relay`, `backcheck worker`, `backcheck ingest` (each with
`--health-port`) and `backcheck serve`, as processes of their own on one store and the Tansu
broker, scraped as a monitoring system would."""

from __future__ import annotations

import re
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.intake import send_command
from infra.kafka.topics import dead_letter_topic
from tests.kafka import (
    BACKCHECK,
    GROUP_SETTINGS,
    Broker,
    Processes,
    _free_port,
    relay_command,
    store_env,
    topic_name,
    wait_for,
    worker_command,
)
from tests.scrape import get, metric, ready

pytestmark = pytest.mark.kafka
PARTITIONS = 2


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[tuple[Processes, Settings]]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    subprocess.run([BACKCHECK, "demo"], env=store_env(settings), check=True, capture_output=True)
    running = Processes(store_env(settings), tmp_path)
    yield running, settings
    running.stop()


def head(settings: Settings) -> int:
    app = build_app(settings)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


def test_every_process_answers_health_and_metrics_and_the_figures_move(
    kafka_broker: Broker, processes: tuple[Processes, Settings]
) -> None:
    running, settings = processes
    bootstrap, events = kafka_broker.bootstrap, topic_name("backcheck.events")
    commands = topic_name("backcheck.commands")
    ports = {name: _free_port() for name in ("relay", "worker", "ingest", "serve")}
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    health = {name: ("--health-port", str(port)) for name, port in ports.items()}
    running.start(relay_command(bootstrap, events, PARTITIONS, *health["relay"]), "relay")
    worker = worker_command(bootstrap, events, f"views-{uuid.uuid4().hex[:6]}", PARTITIONS)
    running.start([*worker, *health["worker"]], "worker")
    group_settings = (f"--{k[:-3].replace('_', '-')}-ms={v}" for k, v in GROUP_SETTINGS.items())
    dlq = dead_letter_topic(commands)
    ingest = [BACKCHECK, "ingest", "--bootstrap-servers", bootstrap, "--topic", commands]
    ingest += ["--dlq-topic", dlq, "--accept-unsigned"]  # malformed ones are counted here
    ingest += ["--partitions", str(PARTITIONS), "--group", f"in-{uuid.uuid4().hex[:6]}"]
    running.start([*ingest, *group_settings, *health["ingest"]], "ingest")

    # liveness and readiness of each daemon: the store answers, the broker answers; those
    # that open sealed values hold the store's master key
    for name in ("relay", "worker", "ingest"):
        wait_for(lambda n=name: get(f"{base[n]}/healthz")[0] == 200, 60, f"{name} /healthz")
        wait_for(lambda n=name: ready(base[n])[0] == 200, 60, f"{name} ready", running)
        checks = ready(base[name])[1]["checks"]
        assert checks["store"] == "ok", (name, checks)
        assert checks["broker"] == "ok", (name, checks)
        assert checks.get("master_key") == (None if name == "relay" else "ok"), (name, checks)

    # the relay publishes the demo's events: its counter reaches the head, its lag 0
    first = head(settings)
    relayed = {"topic": events}
    wait_for(
        lambda: metric(base["relay"], "backcheck_relay_events_total", **relayed) == first,
        60,
        "the relay's count to reach the head",
        running,
    )
    assert metric(base["relay"], "backcheck_relay_lag_events", **relayed) == 0
    # the worker's views reach what the relay delivered, partition by partition
    wait_for(
        lambda: metric(base["worker"], "backcheck_view_position", max, topic=events) == first,
        90,
        "the worker's views to hold every event",
        running,
    )
    assert metric(base["worker"], "backcheck_view_lag_events", topic=events) == 0

    # the HTTP server runs the demo story again: new events, so the relay's figure moves
    serve = [BACKCHECK, "serve", "--demo", "--port", str(ports["serve"])]
    running.start(serve, "serve")
    wait_for(lambda: get(f"{base['serve']}/healthz")[0] == 200, 90, "serve /healthz", running)
    assert ready(base["serve"]) == (
        200,
        {"ready": True, "checks": {"store": "ok", "master_key": "ok"}},
    )
    second = head(settings)
    assert second > first
    wait_for(
        lambda: metric(base["relay"], "backcheck_relay_events_total", **relayed) == second,
        60,
        "the relay's count to move with the new events",
        running,
    )
    wait_for(
        lambda: metric(base["worker"], "backcheck_view_position", max, topic=events) == second,
        90,
        "the worker's positions to move",
        running,
    )
    # the story's reads were decided in the server, each counted by outcome and policy
    assert metric(base["serve"], "backcheck_read_decisions_total") > 0
    assert metric(base["serve"], "backcheck_read_decisions_total", outcome="refused") > 0
    assert metric(base["serve"], "backcheck_checkpoint_age_seconds") == -1  # none kept yet

    # the intake: a command that is not JSON is dead-lettered, counted by its reason
    before = metric(base["ingest"], "backcheck_dead_letters_total", reason="malformed")
    for n in range(2):
        send_command(bootstrap, commands, "register-candidate", f"bad-{n}", "ats", b"{")
    wait_for(
        lambda: (
            metric(base["ingest"], "backcheck_dead_letters_total", reason="malformed") == before + 2
        ),
        60,
        "the intake's malformed dead letters to be counted",
        running,
    )
    assert metric(base["ingest"], "backcheck_dead_letters_total", topic=dlq) == before + 2
    assert metric(base["ingest"], "backcheck_commands_total", outcome="dead-lettered") == 2

    # the daemons log JSON lines, their output being no terminal
    running.check_alive()
    outputs = running.stop()
    assert any(re.search(r'^\{"time": .*"level": ', o, re.MULTILINE) for o in outputs)


def test_a_health_port_already_taken_is_one_line_and_exit_69(
    kafka_broker: Broker, processes: tuple[Processes, Settings]
) -> None:
    _, settings = processes
    with socket.create_server(("", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            relay_command(kafka_broker.bootstrap, topic_name(), 1, "--health-port", str(port)),
            env=store_env(settings),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 69, done.stderr
    assert f"cannot serve health on 127.0.0.1:{port}" in done.stderr  # this machine alone
    assert "Traceback" not in done.stderr
