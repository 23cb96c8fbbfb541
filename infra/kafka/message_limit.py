"""How large a message the broker takes, and which events are larger.

An event's stored state is its message's value; the key, the CloudEvents headers and the
record's framing take under `MESSAGE_OVERHEAD` bytes more. Writes keep every event below
BACKCHECK_MAX_EVENT_BYTES (900,000 by default, under Kafka's default limit of 1 MiB), but an
event stored before that bound, or a broker that takes less, can still meet the relay with an
event too large to publish: the relay dead-letters it instead (`infra/kafka/relay.py`).
"""

from __future__ import annotations

from collections.abc import Callable

from infra.kafka.cloudevent import OutgoingEvent
from infra.kafka.topics import message_size_limit

KAFKA_MESSAGE_BYTES = 1_048_588  # Kafka's default message.max.bytes and max.message.bytes
MESSAGE_OVERHEAD = 1024


def message_bytes(message: OutgoingEvent) -> int:
    """The message's size as Kafka counts it against its limit: a record batch holding it."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(
        message.key, message.value, message.headers
    )
    return size


class MessageLimit:
    """The largest message the broker takes on a topic: `given`, else what the broker reports,
    else Kafka's default; found out once, and said (`on_notice`) when the broker does not
    report it, or when `max_event_bytes` lets the store take events larger than that."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        max_event_bytes: int,
        given: int | None = None,
        on_notice: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.max_event_bytes = max_event_bytes
        self.on_notice = on_notice
        self._bytes = given
        self._found = False
        self._roomy = 0  # a message whose value is no larger surely fits

    def bytes(self) -> int:
        if self._found and self._bytes is not None:
            return self._bytes
        where = "--max-message-bytes"
        if self._bytes is None:
            reported = message_size_limit(self.bootstrap, self.topic)
            if reported is None:
                self._bytes, where = KAFKA_MESSAGE_BYTES, "Kafka's default"
                self.on_notice(
                    f"the broker does not report the largest message it takes (max.message.bytes "
                    f"of {self.topic}); assuming Kafka's default, {KAFKA_MESSAGE_BYTES:,} bytes "
                    "(--max-message-bytes if it takes less)"
                )
            else:
                self._bytes, where = reported
        room = self._bytes - MESSAGE_OVERHEAD
        if self.max_event_bytes > room:
            self.on_notice(
                f"BACKCHECK_MAX_EVENT_BYTES ({self.max_event_bytes:,}) lets the store take events "
                f"larger than {where} allows ({self._bytes:,} bytes a message, {room:,} for the "
                "event): those are dead-lettered, not published; lower BACKCHECK_MAX_EVENT_BYTES "
                f"to {room:,} or raise the broker's limit"
            )
        self._found, self._roomy = True, room
        return self._bytes

    def surely_fits(self, source: str) -> int:
        """The length of a value up to which a message with this source surely fits (its size
        need not be measured)."""
        self.bytes()
        return self._roomy - len(source)

    def too_large(self, message: OutgoingEvent, source: str) -> str | None:
        """Why `message` is larger than the broker takes, or None (measured only when its
        value comes near the limit: the measure costs microseconds)."""
        if len(message.value) <= self.surely_fits(source):
            return None
        limit = self.bytes()
        size = message_bytes(message)
        if size <= limit:
            return None
        return f"{size:,} bytes as a message, above the {limit:,} the broker takes"
