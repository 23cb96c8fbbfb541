"""`backcheck relay` as an operator runs it: --once output and position, nothing twice, the
exit codes for no broker (69) and for a relay already running on the store and topic (75), an
event larger than the broker takes dead-lettered and said."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.relay_store import RelayState
from infra.kafka.topics import dead_letter_topic
from tests.kafka import (
    BACKCHECK,
    Broker,
    Processes,
    read_topic,
    relay_command,
    store_env,
    topic_name,
    wait_for,
)

pytestmark = pytest.mark.kafka

REGISTER = {"name": "Zhou Min", "email": "zhou@example.cn", "actor": "hr:li"}


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_relay_once_then_again_then_without_a_broker_then_beside_another(
    kafka_broker: Broker, tmp_path: Path
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=tmp_path)
    env = store_env(settings)
    subprocess.run([BACKCHECK, "demo"], env=env, check=True, capture_output=True)
    app = build_app(settings)
    head = app.recorder.max_notification_id()
    app.close()
    topic = topic_name("backcheck.events")

    first = run([*relay_command(kafka_broker.bootstrap, topic, 3), "--once"], env)
    again = run([*relay_command(kafka_broker.bootstrap, topic, 3), "--once"], env)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{s.getsockname()[1]}"
    unreachable = run([*relay_command(nobody, topic, 3), "--once"], env)

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"published {head} events to {topic}; position {head}"
    assert again.stdout.strip() == f"published 0 events to {topic}; position {head}"
    assert unreachable.returncode == 69
    assert f"no Kafka broker answered at {nobody}" in " ".join(unreachable.stderr.split())

    following = Processes(env, tmp_path)
    try:
        name = following.start(relay_command(kafka_broker.bootstrap, topic, 3), "relay")
        wait_for(lambda: "from position" in following.output(name), 30, "the relay", following)
        second = run([*relay_command(kafka_broker.bootstrap, topic, 3), "--once"], env)
    finally:
        following.stop()
    assert second.returncode == 75
    assert "another relay already publishes the events of SQLite" in " ".join(second.stderr.split())


def test_a_following_relay_waits_out_a_broker_outage_and_loses_nothing(
    own_kafka_broker: Broker, tmp_path: Path
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=tmp_path)
    env = store_env(settings)
    subprocess.run([BACKCHECK, "demo"], env=env, check=True, capture_output=True)
    topic = topic_name("backcheck.events")
    app = build_app(settings)
    state = RelayState(app, settings, f"relay:{topic}")
    following = Processes(env, tmp_path)
    try:
        name = following.start(relay_command(own_kafka_broker.bootstrap, topic, 3), "relay")
        first = app.recorder.max_notification_id() or 0
        wait_for(lambda: state.load()[0] == first, 30, "the first story relayed", following)
        own_kafka_broker.stop()
        subprocess.run([BACKCHECK, "demo"], env=env, check=True, capture_output=True)
        own_kafka_broker.start()  # empty: Tansu keeps nothing
        head = app.recorder.max_notification_id() or 0
        wait_for(lambda: state.load()[0] == head, 120, "the relay to catch up", following)
        received = read_topic(own_kafka_broker.bootstrap, topic, expect=head)
        log = following.output(name)
    finally:
        following.stop()
        state.close()
        app.close()

    assert sorted(int(dict(r.headers)["ce_position"]) for r in received) == list(
        range(1, head + 1)
    )  # the new broker has the whole log, once: the lost topic was published again
    assert "waiting for the broker" in log
    assert "the broker has lost them; publishing the log again from the start" in " ".join(
        log.split()
    )


def test_an_event_larger_than_max_message_bytes_is_dead_lettered_and_said(
    kafka_broker: Broker, tmp_path: Path
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=tmp_path)
    env = store_env(settings)
    registered = run([BACKCHECK, "do", "register-candidate", json.dumps(REGISTER)], env)
    assert registered.returncode == 0, registered.stderr
    candidate = json.loads(registered.stdout)["candidate_id"]
    claims = [
        {
            "kind": "education",
            "fields": [{"name": "school", "category": "user.education", "value": "x" * 1_500}],
        }
        for _ in range(20)
    ]
    document = {"candidate_id": candidate, "claims": claims, "actor": "candidate"}
    submitted = run([BACKCHECK, "do", "submit-claims", json.dumps(document)], env)
    assert submitted.returncode == 0, submitted.stderr
    topic = topic_name("backcheck.events")
    dead = dead_letter_topic(topic)

    done = run(
        [
            *relay_command(kafka_broker.bootstrap, topic, 3),
            "--once",
            "--max-message-bytes",
            "20000",
        ],
        env,
    )

    assert done.returncode == 0, done.stderr
    app = build_app(settings)
    head = app.recorder.max_notification_id() or 0
    app.close()
    assert done.stdout.strip() == (
        f"published {head - 1} events to {topic}; position {head}; "
        f"1 too large, dead-lettered to {dead}"
    )
    said = " ".join(done.stderr.split())
    assert (
        "BACKCHECK_MAX_EVENT_BYTES (900,000) lets the store take events larger than "
        "--max-message-bytes allows (20,000 bytes a message, 18,976 for the event)"
    ) in said
    assert f"dead-lettered to {dead}: event {candidate}:" in said
    assert "Traceback" not in done.stderr
    letters = read_topic(kafka_broker.bootstrap, dead, expect=1)
    assert [dict(r.headers)["dlq_reason"] for r in letters] == [b"too-large"]
