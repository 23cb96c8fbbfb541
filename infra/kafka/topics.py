"""The Kafka topics backcheck uses, and creating them.

Topics are versioned (design §4): `backcheck.events.v1` carries every stored event (the relay
publishes, projection workers consume), `backcheck.commands.v1` commands from internal
services; each has a dead-letter topic where what could not be used goes, with its reason.
`backcheck.command-outcomes.v1` answers each command (accepted or refused), keyed as the
command was; the intake creates it with the command topic and its dead letters.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
from typing import Any

from infra.config import KafkaSecurity, Settings
from infra.kafka.refusal import KafkaRefusedError, refusal

EVENTS_TOPIC = "backcheck.events.v1"
COMMANDS_TOPIC = "backcheck.commands.v1"
OUTCOMES_TOPIC = "backcheck.command-outcomes.v1"

_log = logging.getLogger(__name__)
MAX_ERROR_SHOWN = 500  # characters of an error's text in a line that says it


# A topic is made only by `ensure_topics`, with the partitions configured. A client that
# asks about a missing topic must not have the broker create it with *its* default count
# (Apache Kafka's num.partitions, 1; Tansu's 4): the relay would spread the log over
# partitions the workers were not reading.
_NO_AUTO_CREATE: dict[str, bool] = {"allow_auto_create_topics": False}


@functools.cache
def broker_security() -> KafkaSecurity:
    """TLS and SASL for every Kafka client this process makes: the settings', read once."""
    return Settings.load().kafka_security


def secured(config: dict[str, Any]) -> dict[str, Any]:
    """A kafka-python client's settings with the broker's TLS and SASL settings added."""
    return {**broker_security().client_settings(), **config}


def unanswered(bootstrap: str, error: Exception | None = None) -> Exception:
    """What a client that could not bootstrap (`error`: kafka-python's) met: a broker that
    refuses it (its TLS, its credentials: `KafkaRefusedError`, for good), or none answering
    (`BrokerUnavailableError`, waited for), said with how it was asked."""
    from kafka.errors import AuthorizationError, SaslAuthenticationFailedError

    security = broker_security()
    if isinstance(error, SaslAuthenticationFailedError | AuthorizationError):
        return KafkaRefusedError(
            f"the Kafka broker at {bootstrap} refused {security.describe()}: {error}; check "
            "BACKCHECK_KAFKA_SASL_USERNAME and BACKCHECK_KAFKA_SASL_PASSWORD"
        )
    refused = refusal(bootstrap, security)
    if refused is not None:
        return refused
    if security.protocol == "PLAINTEXT":
        return BrokerUnavailableError(f"no Kafka broker answered at {bootstrap}")
    return BrokerUnavailableError(
        f"no Kafka broker answered at {bootstrap} over {security.describe()}: a broker that "
        "refuses the credentials can look the same; check them"
    )


def kafka_producer(**config: Any) -> Any:
    """A kafka-python producer that never asks the broker to create a topic."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**secured(config), **_NO_AUTO_CREATE)
    _no_auto_create(producer._metadata)
    return producer


def close_producer(producer: Any, timeout: float) -> None:
    """Closes a kafka-python producer within `timeout` seconds, dropping what it has not sent by
    then. (kafka-python 3's `close(timeout)` raises instead when records are still unsent, and
    its `__del__` raises again at exit: the producer is closed without them here.)"""
    from kafka.errors import KafkaTimeoutError

    try:
        producer.close(timeout=timeout)
    except KafkaTimeoutError:
        producer._sender.force_close()
        producer._closed = True


def kafka_consumer(**config: Any) -> Any:
    """A kafka-python consumer that never asks the broker to create a topic."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(**secured(config), **_NO_AUTO_CREATE)
    _no_auto_create(consumer._client.cluster)
    return consumer


def _no_auto_create(cluster: Any) -> None:
    """kafka-python 3.0 takes `allow_auto_create_topics` but does not hand it on to the
    cluster metadata that builds its metadata requests, which then ask for creation anyway."""
    cluster.config["allow_auto_create_topics"] = False


def refuse_topic_auto_creation() -> None:
    """The same for aiokafka (faust's client), which has no setting for it: every metadata
    request of this process asks the broker not to create the topics it names."""
    from aiokafka import client
    from aiokafka.protocol.metadata import MetadataRequest

    if getattr(client.MetadataRequest, "backcheck_no_auto_create", False):
        return

    class MetadataRequestNoAutoCreate(MetadataRequest):  # type: ignore[misc]  # (untyped base)
        backcheck_no_auto_create = True

        def __init__(self, topics: list[str] | None = None, allow: bool | None = False) -> None:
            super().__init__(topics, allow_auto_topic_creation=allow)

    client.MetadataRequest = MetadataRequestNoAutoCreate


def topic_is_empty(bootstrap: str, topic: str) -> bool:
    """Whether no message was ever kept on any partition of `topic` (every end offset 0)."""
    from kafka import TopicPartition

    consumer = kafka_consumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    try:
        numbers = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, n) for n in numbers])
        return all(offset == 0 for offset in ends.values())
    finally:
        consumer.close()


class BrokerUnavailableError(RuntimeError):
    """No Kafka broker answered at the bootstrap servers."""


class MissingTopicError(RuntimeError):
    """The broker has no such topic, and it is not ours to create here."""


class OutcomeTimeoutError(TimeoutError):
    """No answer to a command on the outcomes topic within the time given."""


def dead_letter_topic(topic: str) -> str:
    """backcheck.events.v1 -> backcheck.events.dlq.v1; any other name gets `.dlq` appended."""
    stem, dot, version = topic.rpartition(".")
    if dot and version.startswith("v") and version[1:].isdigit():
        return f"{stem}.dlq.{version}"
    return f"{topic}.dlq"


def reachable(bootstrap: str, timeout: float = 2.0) -> bool:
    """Whether anything accepts connections at one of the bootstrap servers (a quick check
    before the Kafka client's own, which retries for half a minute)."""
    for server in bootstrap.split(","):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def kafka_admin(bootstrap: str) -> Any:
    """An admin client of the broker at `bootstrap`, with its TLS and SASL settings."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import AuthorizationError, KafkaTimeoutError, SaslAuthenticationFailedError

    if not reachable(bootstrap):
        raise BrokerUnavailableError(f"no Kafka broker answered at {bootstrap}")
    try:
        return KafkaAdminClient(
            **secured(
                {
                    "bootstrap_servers": bootstrap.split(","),
                    "client_id": "backcheck-admin",
                    "request_timeout_ms": 10_000,
                }
            )
        )
    except (KafkaTimeoutError, SaslAuthenticationFailedError, AuthorizationError) as e:
        raise unanswered(bootstrap, e) from None


def message_size_limit(bootstrap: str, topic: str) -> tuple[int, str] | None:
    """The largest message the broker takes on `topic`, and where that is set: the topic's
    `max.message.bytes`, else the broker's `message.max.bytes`. None if the broker does not
    say (Tansu reports no configuration) or cannot be asked."""
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    def configured(kind: ConfigResourceType, name: str, key: str) -> int | None:
        found = admin.describe_configs([ConfigResource(kind, name)], config_filter="all")
        entry = found.get(kind.name.lower(), {}).get(name, {}).get(key)
        value = entry.get("value") if isinstance(entry, dict) else entry
        return int(value) if value is not None and str(value).isdigit() else None

    admin = kafka_admin(bootstrap)
    try:
        limit = configured(ConfigResourceType.TOPIC, topic, "max.message.bytes")
        if limit is not None:
            return limit, f"max.message.bytes of {topic}"
        for broker in admin.describe_cluster()["brokers"]:
            number = str(broker["broker_id"])
            limit = configured(ConfigResourceType.BROKER, number, "message.max.bytes")
            if limit is not None:
                return limit, f"message.max.bytes of broker {number}"
        return None
    except (KafkaError, KeyError, ValueError):
        return None
    finally:
        admin.close()


def missing_topics(bootstrap: str, *names: str) -> set[str]:
    """Which of `names` the broker does not have."""
    admin = kafka_admin(bootstrap)
    try:
        return set(names) - set(admin.list_topics())
    finally:
        admin.close()


async def broker_has_topic(client: Any, topic: str) -> bool:
    """Whether the broker has `topic` now, asked through `client` (an aiokafka client) rather
    than read from the metadata it keeps. A producer sends to a topic its metadata still holds
    after the broker lost it, and a broker may take those records into no topic: Tansu
    acknowledges them, nobody can read them, and once the topic is made again they stand in
    the way of its next records (refused with UnknownError). False only when the broker says
    it has no such topic; a broker that does not answer raises aiokafka's error."""
    from aiokafka.errors import UnknownTopicOrPartitionError
    from aiokafka.protocol.metadata import MetadataRequest

    answer = await client.send(
        client.get_random_node(), MetadataRequest([topic], allow_auto_topic_creation=False)
    )
    unknown = UnknownTopicOrPartitionError.errno
    return not any(error == unknown and name == topic for error, name, *_ in answer.topics)


def remade_if_lost(bootstrap: str, partitions: int, topic: str) -> bool:
    """Makes `topic` again, with `partitions` partitions, if the broker no longer has it (a
    broker that lost its data, a topic deleted by hand): whether it did. Asked after a send to
    it failed; a broker that does not answer now is left to the sender's next try."""
    try:
        if topic not in missing_topics(bootstrap, topic):
            return False
        ensure_topics(bootstrap, partitions, topic)
    except Exception as e:  # the broker away: the send is tried again, and this with it
        # said where an operator looks: the sends to the topic keep failing meanwhile
        _log.warning(
            "could not check whether the broker at %s still has the topic %s, or make it "
            "again (%s); tried again at the next send",
            bootstrap,
            topic,
            " ".join(f"{type(e).__name__}: {e}".split())[:MAX_ERROR_SHOWN],
        )
        return False
    return True


def ensure_topics(bootstrap: str, partitions: int, *names: str) -> None:
    """Creates the topics that are missing, with `partitions` partitions each."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = kafka_admin(bootstrap)
    try:
        missing = set(names) - set(admin.list_topics())
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile elsewhere
                admin.create_topics(
                    [
                        NewTopic(name, num_partitions=partitions, replication_factor=1)
                        for name in sorted(missing)
                    ]
                )
    finally:
        admin.close()
