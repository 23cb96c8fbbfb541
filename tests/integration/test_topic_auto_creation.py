"""Topics are made only by `ensure_topics`, with the partitions configured: no client of ours
asks the broker to create a topic it merely names (Apache Kafka's auto.create.topics.enable
would make it with the broker's `num.partitions`, 1 by default), and `send-command` refuses a
missing command topic rather than let one be made."""

from __future__ import annotations

import subprocess

import pytest

from infra.kafka.relay_pages import producer_settings
from infra.kafka.topics import (
    kafka_consumer,
    kafka_producer,
    missing_topics,
    refuse_topic_auto_creation,
)
from tests.kafka import BACKCHECK, Broker, topic_name


@pytest.mark.kafka
def test_the_relays_clients_ask_the_broker_not_to_create_topics(kafka_broker: Broker) -> None:
    producer = kafka_producer(**producer_settings(kafka_broker.bootstrap))
    consumer = kafka_consumer(bootstrap_servers=kafka_broker.bootstrap)
    try:
        for metadata in (producer._metadata, consumer._client.cluster):
            metadata.add_topic("backcheck.events.v1")  # what a client asks about
            request = metadata.metadata_request()
            assert request.allow_auto_topic_creation is False
    finally:
        producer.close()
        consumer.close()


def test_the_workers_client_asks_the_broker_not_to_create_topics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiokafka import client
    from aiokafka.protocol.metadata import MetadataRequest_v5

    monkeypatch.setattr(client, "MetadataRequest", client.MetadataRequest)  # undone after
    as_it_comes = client.MetadataRequest(["backcheck.events.v1"]).build(MetadataRequest_v5)
    assert as_it_comes.allow_auto_topic_creation is True

    refuse_topic_auto_creation()  # as `backcheck worker` and `backcheck ingest` do
    refuse_topic_auto_creation()  # twice is once
    asked = client.MetadataRequest(["backcheck.events.v1"]).build(MetadataRequest_v5)
    assert asked.allow_auto_topic_creation is False
    assert asked.topics == ["backcheck.events.v1"]


def send_command(bootstrap: str, topic: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(BACKCHECK, "send-command", "register-candidate", "{}", "--topic", topic),
            *("--bootstrap-servers", bootstrap),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.kafka
def test_send_command_to_a_missing_topic_is_refused_and_creates_nothing(
    kafka_broker: Broker,
) -> None:
    topic = topic_name("backcheck.commands")
    sent = send_command(kafka_broker.bootstrap, topic)
    assert sent.returncode == 69, sent.stderr
    assert f"no topic {topic}" in " ".join(sent.stderr.split())
    assert missing_topics(kafka_broker.bootstrap, topic) == {topic}


@pytest.mark.kafka
def test_send_command_to_a_missing_topic_names_the_command_that_makes_it(
    kafka_broker: Broker,
) -> None:
    refused = send_command(kafka_broker.bootstrap, topic_name("backcheck.commands"))

    said = " ".join(refused.stderr.split())
    assert "`backcheck ingest` creates it" in said, said
    assert "backcheck intake" not in said  # no such command
