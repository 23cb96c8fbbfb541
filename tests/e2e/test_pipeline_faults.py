"""The whole pipeline under random kills, on both backends: writers (forked, SIGKILLed at random
points), the relay and a worker (`backcheck` processes, SIGKILLed at random between rounds)
all die again and again while commands keep coming. Then, with one relay and one worker left to
finish: every acknowledged command is stored once, the chain verifies, the views equal a
rebuild, every event reached Kafka (each position, under one id, however often it was resent),
and the worker's views (the read views, the dashboard) equal the in-process ones.
`FAULT_ROUNDS` (default 8) sets the rounds."""

from __future__ import annotations

import os
import random
from collections import defaultdict
from pathlib import Path

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.relay_store import RelayState
from tests.e2e.test_kafka_pipeline import views_match, workers_views
from tests.faults import Journal, assert_nothing_lost, kill_writers
from tests.kafka import (
    Broker,
    Processes,
    every_record,
    relay_command,
    store_env,
    topic_name,
    wait_for,
    worker_command,
)

pytestmark = pytest.mark.kafka
PARTITIONS = 3
ROUNDS = int(os.environ.get("FAULT_ROUNDS", "8"))


def test_writers_relay_and_worker_killed_at_random_lose_nothing(
    kafka_broker: Broker, settings: Settings, tmp_path: Path
) -> None:
    topic, group = topic_name("backcheck.events"), topic_name("views")
    bootstrap = kafka_broker.bootstrap
    build_app(settings).close()  # the schema made once, before the writers race to it
    journals = tmp_path / "journals"
    journals.mkdir()
    processes = Processes(store_env(settings), tmp_path)
    rng = random.Random(ROUNDS)
    relay = relay_command(bootstrap, topic, PARTITIONS, "--batch", "5")
    worker = worker_command(bootstrap, topic, group, PARTITIONS)
    killed: dict[str, int] = defaultdict(int)
    try:
        for _ in range(ROUNDS):
            for name, command in (("relay", relay), ("worker", worker)):
                if name not in processes.running:
                    processes.start(command, name)
            killed["writer"] += kill_writers(settings, journals, kills=3)
            victim = rng.choice(["relay", "worker"])
            processes.kill(victim)  # SIGKILL, wherever it was
            killed[victim] += 1
        for name, command in (("relay", relay), ("worker", worker)):
            if name not in processes.running:
                processes.start(command, name)
        app = build_app(settings)
        state = RelayState(app, settings, f"relay:{topic}")
        streams = workers_views(app, settings)  # the read views', the dashboard's
        try:
            head = app.recorder.max_notification_id() or 0
            wait_for(lambda: state.load()[0] == head, 120, "the relay to reach the head", processes)
            wait_for(lambda: views_match(settings, streams), 180, "equal views", processes)
            assert_nothing_lost(app, settings, Journal.read(journals))
            ids = {
                position: f"{e.originator_id}:{e.originator_version}"
                for position, e in app.replay()
            }
        finally:
            state.close()
            app.close()
    finally:
        processes.stop()

    assert killed["writer"] == 3 * ROUNDS
    assert killed["relay"] + killed["worker"] == ROUNDS
    sent: dict[int, set[str]] = defaultdict(set)
    for record in every_record(bootstrap, topic):
        headers = dict(record.headers)
        sent[int(headers["ce_position"])].add(headers["ce_id"].decode())
    assert sorted(sent) == sorted(ids), "an event never reached Kafka, or one came from nowhere"
    assert all(sent[p] == {ids[p]} for p in ids), "a position was sent under another id"
