"""The test broker itself: it speaks Kafka to kafka-python, and a restart forgets its topics
(in-memory storage), which the outage tests rely on."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaTimeoutError

from infra.kafka.topics import kafka_producer, missing_topics
from tests.kafka import Broker, topic_name

pytestmark = pytest.mark.kafka


def _send(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    for value in values:
        producer.send(topic, value=value, key=b"k", headers=[("ce_id", value)])
    producer.flush(timeout=10)
    producer.close()


def _read(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    ends = consumer.end_offsets(partitions)
    seen: list[tuple[bytes, bytes]] = []
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        for records in consumer.poll(timeout_ms=1000).values():
            seen += [(r.value, dict(r.headers)["ce_id"]) for r in records]
    consumer.close()
    return seen


def test_messages_round_trip_with_headers(kafka_broker: Broker) -> None:
    topic = topic_name()
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.close()
    _send(kafka_broker.bootstrap, topic, [b"one", b"two", b"three"])
    assert _read(kafka_broker.bootstrap, topic) == [(v, v) for v in (b"one", b"two", b"three")]


def test_a_restarted_broker_has_forgotten_its_topics(own_kafka_broker: Broker) -> None:
    topic = topic_name()
    admin = KafkaAdminClient(bootstrap_servers=own_kafka_broker.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    _send(own_kafka_broker.bootstrap, topic, [b"before"])
    own_kafka_broker.stop()
    assert not own_kafka_broker.running
    own_kafka_broker.start()
    admin = KafkaAdminClient(bootstrap_servers=own_kafka_broker.bootstrap)
    assert topic not in admin.list_topics()
    admin.close()


def test_asking_about_a_missing_topic_creates_it_with_the_brokers_default_count(
    kafka_broker: Broker,
) -> None:
    """A client that lets the broker create the topics it asks about (kafka-python's and
    aiokafka's default) has Tansu create a missing one with 4 partitions, whatever count we
    configure: why our clients ask not to (test_topic_auto_creation), and why the workers
    follow the partitions the topic has (test_kafka_pipeline). Asked not to, it does not."""
    bootstrap, asked, not_asked = kafka_broker.bootstrap, topic_name(), topic_name()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        assert producer.partitions_for(asked) == {0, 1, 2, 3}
    finally:
        producer.close()
    producer = kafka_producer(bootstrap_servers=bootstrap, max_block_ms=1000)
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.partitions_for(not_asked)
    finally:
        producer.close()
    assert missing_topics(bootstrap, asked, not_asked) == {not_asked}
