"""Projection workers against a real broker: two `backcheck worker` processes in one consumer
group share the partitions and build the same views as the in-process runners (the read views
and the dashboard), row for row; a message that is not the relay's goes to the events
dead-letter topic with its reason."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from infra.kafka.projection import Record
from infra.kafka.topics import dead_letter_topic, ensure_topics
from infra.kafka.worker import worker_store, worker_views
from infra.views.kept import KEPT
from infra.views.runner import ViewRunner
from infra.views.store import Dumped
from projections.dashboard import CASE_VIEW, DASHBOARD_VIEW
from services.application import Backcheck
from tests.conftest import FakeClock
from tests.integration.test_stream_projection import PARTITIONS, messages
from tests.kafka import (
    BACKCHECK,
    GROUP_SETTINGS,
    Broker,
    Processes,
    last_assignment,
    store_env,
    topic_name,
    wait_for,
    worker_command,
)

pytestmark = pytest.mark.kafka


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    running = Processes(store_env(settings), tmp_path)
    yield running
    running.stop()


def publish(bootstrap: str, topic: str, app: Backcheck, records: list[Record] | None = None) -> int:
    """The store's events as the relay sends them, each to its candidate's partition."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    records = messages(app) if records is None else records
    for record in records:
        producer.send(
            topic,
            value=record.value,
            partition=record.partition,
            headers=list(record.headers.items()),
        )
    producer.flush(timeout=30)
    producer.close()
    return len(records)


def test_two_workers_share_the_partitions_and_build_the_in_process_views(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings, workers: Processes
) -> None:
    topic, group = topic_name("backcheck.events"), topic_name("views")
    ensure_topics(kafka_broker.bootstrap, PARTITIONS, topic, dead_letter_topic(topic))
    runners = [model for model in demo_app.kept_views if isinstance(model, ViewRunner)]
    for runner in runners:
        runner.catch_up()
    expected = [runner.store.dump() for runner in runners]  # the read views, the dashboard
    stores = [worker_store(kept, demo_app, settings) for kept in KEPT]

    def dumps() -> list[list[Dumped]]:
        return [store.dump() for store in stores]

    for _ in range(2):
        workers.start(worker_command(kafka_broker.bootstrap, topic, group, PARTITIONS))
    time.sleep(2 * GROUP_SETTINGS["session_timeout_ms"] / 1000)  # both in the group
    sent = publish(kafka_broker.bootstrap, topic, demo_app)
    wait_for(lambda: dumps() == expected, 90, "the workers' views to equal the runners'", workers)
    outputs = workers.stop()

    assert sent == demo_app.recorder.max_notification_id()
    assert dumps() == expected
    assert {view for view, *_ in dumps()[1]} == {DASHBOARD_VIEW, CASE_VIEW}
    applied = [int(out.split("applied ")[1].split()[0]) for out in outputs if "applied " in out]
    assert len(applied) == 2, outputs
    assert sum(applied) == sent  # each event applied by exactly one worker
    assignments = [last_assignment(out) for out in outputs]
    assert all(assignments), f"a worker had no partition: {outputs}"
    assert sorted(p for mine in assignments for p in mine) == list(range(PARTITIONS))

    status = json.loads(
        subprocess.run(
            [BACKCHECK, "views", "status", "--stream", "--json"],
            env=workers.env,
            capture_output=True,
            check=True,
        ).stdout
    )
    last = {}  # the last log position relayed to each partition
    for record in messages(demo_app):
        last[f"{topic}/{record.partition}"] = int(record.headers["ce_position"])
    assert status["head"] == sent
    assert list(status["kept"]) == [kept.name for kept in KEPT]
    for runner, kept in zip(runners, status["kept"].values(), strict=True):
        assert kept["partitions"] == last  # each partition's position, in each store
        assert kept["rows"] == runner.store.counts()


def test_a_message_that_is_not_the_relays_goes_to_the_dead_letter_topic(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings, workers: Processes
) -> None:
    topic, group = topic_name("backcheck.events"), topic_name("views")
    dead = dead_letter_topic(topic)
    ensure_topics(kafka_broker.bootstrap, PARTITIONS, topic, dead)
    assert isinstance(demo_app.views, ViewRunner)
    demo_app.views.catch_up()
    stream = worker_views(demo_app, settings)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    producer.send(topic, value=b"not an event", partition=0, headers=[("ce_id", b"x:1")])
    producer.flush(timeout=10)
    producer.close()
    before = datetime.now(UTC).replace(microsecond=0)

    workers.start(worker_command(kafka_broker.bootstrap, topic, group, PARTITIONS))
    sent = publish(kafka_broker.bootstrap, topic, demo_app)  # good messages after the bad one
    wait_for(
        lambda: stream.dump() == demo_app.views.store.dump(),  # type: ignore[union-attr]
        90,
        "the good messages to be applied",
        workers,
    )
    workers.stop()

    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(dead, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    found = []
    deadline = time.monotonic() + 10
    while not found and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            found += records
    consumer.close()
    assert sent > 0
    assert len(found) == 1
    headers = dict(found[0].headers)
    assert found[0].value == b"not an event"  # the original bytes
    assert headers["dlq_reason"] == b"malformed"
    assert headers["dlq_error"] == b"partition 0 offset 0: no ce_position header"
    assert (headers["dlq_topic"], headers["dlq_partition"]) == (topic.encode(), b"0")
    assert datetime.fromisoformat(headers["dlq_time"].decode()) >= before  # as the intake's


def test_a_message_of_no_known_event_type_is_dead_lettered_and_its_partition_goes_on(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings, workers: Processes
) -> None:
    """A relay-shaped message whose ce_type names something else than an event of the domain
    (here a function of the standard library) is dead-lettered with the reason, never looked
    up by importing it; the group's offset moves past it and the events after it are applied."""
    topic, group = topic_name("backcheck.events"), topic_name("views")
    dead = dead_letter_topic(topic)
    ensure_topics(kafka_broker.bootstrap, PARTITIONS, topic, dead)
    assert isinstance(demo_app.views, ViewRunner)
    demo_app.views.catch_up()
    stream = worker_views(demo_app, settings)
    first = next(r for r in messages(demo_app) if r.partition == 0)
    poison = Record(0, 0, first.value, {**first.headers, "ce_type": b"os:system"})
    publish(kafka_broker.bootstrap, topic, demo_app, [poison])

    workers.start(worker_command(kafka_broker.bootstrap, topic, group, PARTITIONS))
    sent = publish(kafka_broker.bootstrap, topic, demo_app)  # the good messages after it
    wait_for(
        lambda: stream.dump() == demo_app.views.store.dump(),  # type: ignore[union-attr]
        90,
        "the messages after it to be applied",
        workers,
    )
    workers.stop()

    found = dead_letters(kafka_broker.bootstrap, dead)
    assert sent > 0
    assert len(found) == 1
    headers = dict(found[0].headers)
    assert found[0].value == first.value
    assert headers["ce_type"] == b"os:system"
    assert headers["dlq_reason"] == b"unknown-type"
    assert headers["dlq_error"] == (
        b"partition 0 offset 0: ce_type 'os:system' is no event type of backcheck's domain"
    )
    committer = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap, group_id=group, enable_auto_commit=False
    )
    committed = committer.committed(TopicPartition(topic, 0))
    committer.close()
    assert committed is not None
    assert committed > 0  # committed past it


def dead_letters(bootstrap: str, dead: str) -> list[Any]:
    """What the dead-letter topic holds (read until a message arrives, or 10 s)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(dead, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    found: list[Any] = []
    deadline = time.monotonic() + 10
    while not found and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            found += records
    consumer.close()
    return found


def test_a_worker_writes_no_escape_codes_where_its_output_is_no_terminal(
    kafka_broker: Broker, settings: Settings, workers: Processes, tmp_path: Path
) -> None:
    topic = topic_name("backcheck.events")
    ensure_topics(kafka_broker.bootstrap, PARTITIONS, topic, dead_letter_topic(topic))
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    producer.send(topic, value=b"not an event", partition=0)  # logged as an error
    producer.flush(timeout=10)
    producer.close()
    command = worker_command(kafka_broker.bootstrap, topic, topic_name("views"), PARTITIONS)
    to_file = workers.start(command, "to-file")  # standard output and error to a file
    log = tmp_path / "stderr-only.log"
    terminal, other_end = pty.openpty()
    with log.open("wb") as stderr:  # standard output on a terminal, standard error to a file
        on_tty = subprocess.Popen(
            worker_command(kafka_broker.bootstrap, topic, topic_name("views"), PARTITIONS),
            env=workers.env,
            stdout=other_end,
            stderr=stderr,
        )
    try:
        wait_for(
            lambda: (
                "dead-lettered" in workers.output(to_file) and "dead-lettered" in log.read_text()
            ),
            90,
            "both workers to log the message they dead-lettered",
            workers,
        )
    finally:
        on_tty.terminate()
        on_tty.wait(timeout=30)
        os.close(terminal)
        os.close(other_end)
    outputs = workers.stop()

    for output in (*outputs, log.read_text()):
        assert "dead-lettered: partition 0 offset 0" in output
        assert "\x1b" not in output, repr(output)


def test_a_worker_without_a_broker_says_so_and_exits_69(tmp_path: Path) -> None:
    env = os.environ | {
        "BACKCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite'}",
        "BACKCHECK_DATA_DIR": str(tmp_path),
    }
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{s.getsockname()[1]}"
    done = subprocess.run(
        worker_command(nobody, "backcheck.events.v1", "views", PARTITIONS),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 69, done.stderr
    assert f"Kafka unavailable: no Kafka broker answered at {nobody}" in " ".join(
        done.stderr.split()
    )


def test_a_worker_holds_back_what_follows_a_lost_message_until_it_comes(
    kafka_broker: Broker, tmp_path: Path, clock: FakeClock
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=tmp_path)
    demo_app = build_app(settings, clock=clock)
    tell_story(demo_app)
    workers = Processes(store_env(settings), tmp_path)
    try:
        check_held_back_until_the_lost_message_comes(kafka_broker, demo_app, settings, workers)
    finally:
        workers.stop()
        demo_app.close()


def check_held_back_until_the_lost_message_comes(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings, workers: Processes
) -> None:
    topic, group = topic_name("backcheck.events"), topic_name("views")
    ensure_topics(kafka_broker.bootstrap, PARTITIONS, topic, dead_letter_topic(topic))
    assert isinstance(demo_app.views, ViewRunner)
    demo_app.views.catch_up()
    stream = worker_views(demo_app, settings)
    records = messages(demo_app)
    first = [r for r in records if r.partition == records[0].partition]
    lost = first[3]
    held_at = int(first[2].headers["ce_position"])
    tracked = f"{topic}/{lost.partition}"

    workers.start(worker_command(kafka_broker.bootstrap, topic, group, PARTITIONS))
    publish(kafka_broker.bootstrap, topic, demo_app, [r for r in records if r is not lost])
    wait_for(lambda: stream.progress().get(tracked) == held_at, 60, "the gap", workers)
    time.sleep(2)  # held there: nothing past the gap is applied
    assert stream.progress()[tracked] == held_at
    publish(kafka_broker.bootstrap, topic, demo_app, [lost])  # late, at the partition's end
    wait_for(
        lambda: stream.dump() == demo_app.views.store.dump(),  # type: ignore[union-attr]
        60,
        "the held-back events to be applied in order",
        workers,
    )
    output = workers.stop()[0]
    assert f"gap: partition {lost.partition} offset 3: position" in output


def test_a_worker_resuming_past_what_its_views_hold_reads_the_partition_again(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings, workers: Processes
) -> None:
    """A consumer that starts at an offset beyond its views (the group's committed offsets
    outlived the views, or a broker that lost the topic was refilled while the worker was
    away) holds back at the gap and reads the partition again from its start. Batches of 5
    keep messages past the gap in flight meanwhile: they must not stop the re-read."""
    topic, group = topic_name("backcheck.events"), topic_name("views")
    ensure_topics(kafka_broker.bootstrap, PARTITIONS, topic, dead_letter_topic(topic))
    assert isinstance(demo_app.views, ViewRunner)
    demo_app.views.catch_up()
    stream = worker_views(demo_app, settings)
    publish(kafka_broker.bootstrap, topic, demo_app)
    records = messages(demo_app)
    ahead = {p: sum(r.partition == p for r in records) // 2 for p in range(PARTITIONS)}
    assert sum(1 for offset in ahead.values() if offset) >= 2, ahead
    committer = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap, group_id=group, enable_auto_commit=False
    )
    committer.commit(
        {TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in ahead.items()}
    )
    committer.close()

    workers.start(worker_command(kafka_broker.bootstrap, topic, group, PARTITIONS, batch=5))
    wait_for(
        lambda: stream.dump() == demo_app.views.store.dump(),  # type: ignore[union-attr]
        60,
        "the worker to read the partitions again from their start",
        workers,
    )
    output = workers.stop()[0]
    for partition in (p for p, offset in ahead.items() if offset):
        assert f"reading partition {partition} again from its start" in output, output
        assert f"partition {partition}: gap filled" in output, output
