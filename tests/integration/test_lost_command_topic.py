"""A command topic the broker lost (or made anew) is read from its start: before, an intake
went on from where it had been in the old topic, and the commands sent to the new one below
that offset were never applied, answered or dead-lettered, with one line from the Kafka
client about a commit (infra/kafka/command_topic.py)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from infra.config import Settings
from infra.kafka import command_topic
from infra.kafka.command_topic import EX_TEMPFAIL, CommandTopic
from tests.commands import body, headers, register
from tests.kafka import BACKCHECK, GROUP_SETTINGS, Broker, every_record, topic_name

pytestmark = pytest.mark.kafka


def _admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap)


def _topics(bootstrap: str) -> dict[str, int]:
    admin = _admin(bootstrap)
    try:
        return {t["name"]: len(t["partitions"]) for t in admin.describe_topics()}
    finally:
        admin.close()


def _send(bootstrap: str, topic: str, command_id: str, candidate: UUID, key: UUID) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(
            topic,
            key=str(key).encode(),
            value=body(register(candidate)),
            headers=headers("register-candidate", command_id),
        )
        producer.flush(timeout=30)
    finally:
        producer.close()


def _answers(bootstrap: str, outcomes: str) -> list[tuple[str, str]]:
    if outcomes not in _topics(bootstrap):
        return []
    return [
        (json.loads(r.value)["command"]["id"], json.loads(r.value)["outcome"])
        for r in every_record(bootstrap, outcomes, quiet=1.0)
    ]


def _answered(bootstrap: str, outcomes: str, command_id: str, log: Path) -> list[str]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        got = [outcome for cid, outcome in _answers(bootstrap, outcomes) if cid == command_id]
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"{command_id} was not answered in 90 s:\n{log.read_text()}")


def test_a_command_topic_the_broker_lost_stops_the_intake_and_is_read_from_its_start(
    kafka_broker: Broker, settings: Settings, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    commands = topic_name("backcheck.commands")
    outcomes = topic_name("backcheck.command-outcomes")
    env = {
        **os.environ,
        "BACKCHECK_DATABASE_URL": str(settings.database_url),
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
        "BACKCHECK_KAFKA_PARTITIONS": "2",
    }
    command = [
        BACKCHECK,
        "ingest",
        *("--bootstrap-servers", bootstrap, "--topic", commands),
        *("--dlq-topic", topic_name("backcheck.commands.dlq"), "--outcomes-topic", outcomes),
        *("--group", f"intake-{uuid4().hex[:8]}", "--topic-check-ms=500"),
        "--accept-unsigned",  # what is tested is the topic, not the senders
        *(f"--{name[:-3].replace('_', '-')}-ms={value}" for name, value in GROUP_SETTINGS.items()),
    ]
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    key = uuid4()  # both commands on one partition: the second at an offset the first passed
    with first.open("ab") as out:
        intake = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while commands not in _topics(bootstrap):
            assert intake.poll() is None, first.read_text()
            assert time.monotonic() < deadline, first.read_text()
            time.sleep(0.25)
        _send(bootstrap, commands, "before", uuid4(), key)
        assert _answered(bootstrap, outcomes, "before", first) == ["accepted"]

        # when: the broker loses the command topic
        admin = _admin(bootstrap)
        try:
            admin.delete_topics([commands])
        finally:
            admin.close()

        # then: the intake makes it again, as configured, and stops to be started again
        assert intake.wait(timeout=60) == EX_TEMPFAIL, first.read_text()
    finally:
        if intake.poll() is None:
            intake.kill()
            intake.wait()
    said = first.read_text()
    assert (
        f"the command intake stops: the broker had lost the command topic {commands}: made "
        "again with 2 partitions; start it again to read it" in said
    )
    assert _topics(bootstrap)[commands] == 2

    # a command sent to the new topic meanwhile, at offset 0 of the partition where the
    # intake had read to offset 1 of the old one
    _send(bootstrap, commands, "after", uuid4(), key)
    with second.open("ab") as out:
        intake = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert _answered(bootstrap, outcomes, "after", second) == ["accepted"]
    finally:
        intake.terminate()
        intake.wait(timeout=30)
    again = second.read_text()
    assert (
        f"the command topic {commands} was made anew since this intake last read it: reading "
        "it from its start (commands applied before are answered again, not applied twice)" in again
    )
    assert "Traceback" not in said + again


def test_a_command_topic_made_anew_under_its_name_is_told_from_the_one_read(
    kafka_broker: Broker, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    name = topic_name("backcheck.commands")
    admin = _admin(bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    topic = CommandTopic(bootstrap, name, "g", 2, tmp_path / "record.json", settle_wait=1)
    known = topic.settle()
    assert known is not None
    assert topic.changed(known) == (None, known)

    admin = _admin(bootstrap)
    try:
        admin.delete_topics([name])
        deadline = time.monotonic() + 30
        while name in admin.list_topics():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    finally:
        admin.close()

    reason, _ = topic.changed(known)
    assert reason == f"the command topic {name} was made anew (its topic id changed)"
    # the id read last is kept: an intake started now reads the new topic from its start
    assert json.loads((tmp_path / "record.json").read_text()) == {"topic": name, "id": known}


def _lost(bootstrap: str, partitions: int, record: Path) -> tuple[CommandTopic, str]:
    """A command topic the intake settled on, then lost by the broker (deleted)."""
    name = topic_name("backcheck.commands")
    admin = _admin(bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()
    topic = CommandTopic(bootstrap, name, "g", partitions, record, settle_wait=1)
    known = topic.settle()
    assert known is not None
    admin = _admin(bootstrap)
    try:
        admin.delete_topics([name])
        deadline = time.monotonic() + 30
        while name in admin.list_topics():
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        admin.close()
    return topic, known


def test_a_lost_command_topic_the_broker_did_not_make_again_is_not_said_made_again(
    own_kafka_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker stops between the intake finding the topic gone and asking to make it:
    `remade_if_lost` makes nothing (False). The reason the intake stops with said "made
    again" all the same."""
    bootstrap = own_kafka_broker.bootstrap
    topic, known = _lost(bootstrap, 2, tmp_path / "record.json")
    remade = command_topic.remade_if_lost

    def broker_gone_first(*args: Any) -> bool:
        own_kafka_broker.stop()
        return remade(*args)

    monkeypatch.setattr(command_topic, "remade_if_lost", broker_gone_first)

    reason, now = topic.changed(known)

    assert reason == (
        f"the broker had lost the command topic {topic.topic}: not made again, as the broker "
        "did not answer or refused to make it (the line before says which); the intake makes "
        "it when started again"
    )
    assert now is None


def test_a_lost_command_topic_another_client_made_again_is_said_made_by_it(
    kafka_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender's client makes the topic again between the intake finding it gone and asking
    to make it: the intake made nothing, and says who did."""
    bootstrap = kafka_broker.bootstrap
    topic, known = _lost(bootstrap, 2, tmp_path / "record.json")
    remade = command_topic.remade_if_lost

    def made_by_another_first(*args: Any) -> bool:
        admin = _admin(bootstrap)
        try:
            admin.create_topics([NewTopic(topic.topic, num_partitions=1, replication_factor=1)])
        finally:
            admin.close()
        return remade(*args)

    monkeypatch.setattr(command_topic, "remade_if_lost", made_by_another_first)

    reason, _ = topic.changed(known)

    assert reason == (
        f"the broker had lost the command topic {topic.topic}: made again meanwhile by "
        "another client, not by this intake"
    )
    assert _topics(bootstrap)[topic.topic] == 1  # the other client's, with its partitions
