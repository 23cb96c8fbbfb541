"""What the relay (infra/kafka/relay.py) sends a page of events with: the producer's settings
(which the benchmark's raw baseline uses too), a stored event as its message, and a page in
flight, whose acknowledgements it watches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Notification

from infra.kafka.cloudevent import SOURCE, OutgoingEvent, outgoing_event
from infra.kafka.event_types import published
from infra.kafka.message_limit import KAFKA_MESSAGE_BYTES

LOOK_EVERY = 100  # messages sent between looks at which earlier ones the broker has answered


@dataclass
class Page:
    start: int
    end: int
    last: dict[int, int]  # the last position sent to each partition, this page included
    futures: list[Any]  # of its messages not yet seen answered: published, or dead letters
    count: int = 0  # its messages: events published, and (`dead` of them) dead letters
    dead: int = 0
    refusal: BaseException | None = None  # the first refusal seen among them

    def all_answered(self) -> bool:
        """Whether the broker has answered every message of the page (acknowledged or
        refused). The futures seen answered are let go, a refusal kept: each is looked at
        about once, and none outlives its answer for long (kept until the page is settled,
        they would be most of what the garbage collector has to look at)."""
        futures = self.futures
        answered = 0
        for future in futures:
            if not future.is_done:
                break
            if future.exception is not None and self.refusal is None:
                self.refusal = future.exception
            answered += 1
        del futures[:answered]
        return not futures


def message_of(notification: Notification, source: str = SOURCE) -> OutgoingEvent:
    """The Kafka message of one stored event, without `ce_prevposition` (its partition decides
    it): its public type, its state in the current version (`infra/kafka/event_types.py`)."""
    ce_type, state = published(notification.topic, notification.state)
    return outgoing_event(
        notification.id,
        str(notification.originator_id),
        notification.originator_version,
        ce_type,
        state,
        source,
    )


def producer_settings(
    bootstrap: str, delivery_timeout: float = 30.0, max_message_bytes: int = KAFKA_MESSAGE_BYTES
) -> dict[str, Any]:
    """The producer the relay uses (and the benchmark's raw baseline with it): a page not
    acknowledged within `delivery_timeout` seconds fails, and is sent again."""
    delivery_ms = int(delivery_timeout * 1000)
    return {
        "bootstrap_servers": bootstrap.split(","),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_in_flight_requests_per_connection": 5,
        "request_timeout_ms": min(10_000, delivery_ms // 2),
        "delivery_timeout_ms": delivery_ms,
        "max_request_size": max_message_bytes,
        "client_id": "backcheck-relay",
    }
