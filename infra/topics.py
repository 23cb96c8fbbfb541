"""The Kafka topics backcheck uses, and creating them.

Topics are versioned (design §4): `backcheck.events.v1` carries every stored event (the relay
publishes, projection workers consume), `backcheck.commands.v1` commands from internal
services; each has a dead-letter topic where what could not be used goes, with its reason.
"""

from __future__ import annotations

import contextlib
import socket

EVENTS_TOPIC = "backcheck.events.v1"
COMMANDS_TOPIC = "backcheck.commands.v1"


class BrokerUnavailableError(RuntimeError):
    """No Kafka broker answered at the bootstrap servers."""


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


def ensure_topics(bootstrap: str, partitions: int, *names: str) -> None:
    """Creates the topics that are missing, with `partitions` partitions each."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError

    if not reachable(bootstrap):
        raise BrokerUnavailableError(f"no Kafka broker answered at {bootstrap}")
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap.split(","),
            client_id="backcheck-admin",
            request_timeout_ms=10_000,
        )
    except KafkaTimeoutError:
        raise BrokerUnavailableError(f"no Kafka broker answered at {bootstrap}") from None
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
