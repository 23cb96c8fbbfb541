"""Reading the command topic's dead letters, and sending one back (`backcheck dlq`).

A dead letter is named by where it lies on its topic, `PARTITION@OFFSET` (the dead-letter
topic has as many partitions as the command topic, and an offset alone names nothing across
them); on a topic of one partition the offset alone will do. A page of letters is read in
that order, partition by partition, from a letter on (`--from`), at most `limit` of them, so
a listing is bounded however many letters there are, and the next page starts where it ended.

Reading stops when the partition has nothing more: at its end offset, and after a short wait
beyond it (Tansu, the test broker, reports the first offset of the last batch + 1, short of
the true end when that batch holds several messages; tests/kafka.py `every_record`).

A letter goes back as it came (key, value, and the original headers in order, the dead
letter's own `dlq_*` headers left behind) with `backcheck_redriven_from` naming the letter
(its `identity`), so the intake applies it as the sender's command (its `ce_source` +
`ce_id`; a refused command left no receipt) and anyone reading the topic can tell it was sent
again.

A place is not a letter's identity for ever: a dead-letter topic deleted and made again (or a
broker that lost its data) starts its offsets again, and a new letter lies where an old one
lay. Its redrives are recorded under the place and a fingerprint of the letter itself
(`identity`), so an old letter's redrive is never taken for a new one's.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.redrive import LetterKey
from infra.kafka.cloudevent import (
    DEAD_LETTER_HEADERS,
    DeadLetter,
    Headers,
    command_correlation,
    dead_letter_of,
)
from infra.kafka.topics import (
    BrokerUnavailableError,
    MissingTopicError,
    close_producer,
    kafka_consumer,
    kafka_producer,
    missing_topics,
)

REDRIVEN_FROM = "backcheck_redriven_from"
MAX_PAGE = 1000  # letters in one listing
_QUIET = 0.5  # seconds without a message past the reported end: the partition's end


class DeadLetterNotFoundError(LookupError):
    """No dead letter where the operator pointed."""


class LetterWithoutValueError(LookupError):
    """A letter that holds no command to send back (its value was too large to keep)."""


class LetterReferenceError(ValueError):
    """Not PARTITION@OFFSET (or OFFSET on a one-partition topic)."""


def letter_named(text: str) -> tuple[int | None, int]:
    """(partition, offset) from `P@O`, (None, offset) from `O` alone: a name checked before
    any broker is asked, which the topic's partitions are needed for only to complete."""
    head, at, tail = text.strip().partition("@")
    try:
        partition, offset = (int(head), int(tail)) if at else (None, int(head))
    except ValueError:
        raise LetterReferenceError(
            f"{text!r} is not PARTITION@OFFSET (e.g. 2@17; as `backcheck dlq list` shows it)"
        ) from None
    if (partition or 0) < 0 or offset < 0:
        raise LetterReferenceError(f"{text!r}: partitions and offsets are not negative")
    return partition, offset


def parse_letter(text: str, partitions: list[int]) -> tuple[int, int]:
    """(partition, offset) from `P@O`, or from `O` when the topic has one partition."""
    partition, offset = letter_named(text)
    if partition is not None:
        return partition, offset
    if len(partitions) != 1:
        raise LetterReferenceError(
            f"{text!r}: the topic has {len(partitions)} partitions; name a letter as "
            "PARTITION@OFFSET (as `backcheck dlq list` shows it)"
        )
    return partitions[0], offset


@dataclass(frozen=True)
class Letter:
    """One dead letter as the broker holds it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int

    @property
    def ref(self) -> str:
        return f"{self.partition}@{self.offset}"

    @property
    def place(self) -> str:
        """Where it lies, as a command's channel is written: topic/partition@offset."""
        return f"{self.topic}/{self.partition}@{self.offset}"

    @property
    def identity(self) -> str:
        """Its place and a fingerprint of the letter (when it was written, its key, value and
        headers): what its redrives are recorded under (services/redrives.py)."""
        digest = hashlib.sha256()
        parts = (str(self.timestamp_ms).encode(), self.key or b"", self.value or b"")
        for part in (*parts, *(n.encode() + b"=" + v for n, v in self.headers)):
            digest.update(b"%d:%s," % (len(part), part))
        return f"{self.place}#{digest.hexdigest()[:16]}"

    @property
    def redrives(self) -> LetterKey:
        """How its redrives are found (recorded under its identity, or before fingerprints,
        under its place for the same command)."""
        command = self.command
        return LetterKey(
            self.identity, self.place, command.get("ce_source", ""), command.get("ce_id", "")
        )

    @property
    def command(self) -> dict[str, str]:
        """The command's ce_id, ce_source and ce_type, as far as they can be read."""
        return command_correlation(self.headers)

    def why(self) -> DeadLetter | None:
        """Its reason, error and origin; None if its dlq_* headers are not the intake's."""
        try:
            return dead_letter_of(self.headers)
        except (KeyError, ValueError):
            return None

    def original_headers(self) -> Headers:
        """The headers the command came with, in order, without the dead letter's own."""
        return [(n, v) for n, v in self.headers if n not in DEAD_LETTER_HEADERS]

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)


def _letter(record: Any) -> Letter:
    return Letter(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        tuple((name, bytes(value or b"")) for name, value in record.headers or ()),
        record.timestamp,
    )


class DeadLetters:
    """The letters of one dead-letter topic. Opening it checks the broker and the topic."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        if topic in missing_topics(bootstrap, topic):  # BrokerUnavailableError if none answers
            raise MissingTopicError(
                f"no topic {topic} on {bootstrap}: `backcheck ingest` creates it when it starts"
            )
        self.bootstrap, self.topic = bootstrap, topic
        self._partition: Any = functools.partial(TopicPartition, topic)
        try:
            self._consumer = kafka_consumer(
                bootstrap_servers=bootstrap.split(","),
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                request_timeout_ms=15_000,
            )
            self.partitions = sorted(self._consumer.partitions_for_topic(topic) or ())
        except KafkaError as e:
            raise BrokerUnavailableError(f"no Kafka broker answered at {bootstrap} ({e})") from None

    def close(self) -> None:
        self._consumer.close()

    def _read(self, partition: int, offset: int, limit: int) -> Iterator[Letter]:
        """Up to `limit` letters of `partition` from `offset` on, in order."""
        tp = self._partition(partition)
        self._consumer.assign([tp])
        self._consumer.seek(tp, offset)
        end = self._consumer.end_offsets([tp])[tp]
        given = 0
        quiet_until = time.monotonic() + _QUIET
        while given < limit:
            records = self._consumer.poll(timeout_ms=200, max_records=limit - given).get(tp, [])
            for record in records:
                yield _letter(record)
                given += 1
            if records:
                quiet_until = time.monotonic() + _QUIET
            elif self._consumer.position(tp) >= end and time.monotonic() > quiet_until:
                return
            elif time.monotonic() > quiet_until + 10 * _QUIET:
                return  # below the end offset, and nothing comes: the broker holds no more

    def page(self, start: tuple[int, int] | None, limit: int) -> tuple[list[Letter], str | None]:
        """At most `limit` letters from `start` (partition, offset) on, by partition then
        offset; and the letter the next page starts at (None: this was the last)."""
        first_partition, first_offset = start or (self.partitions[0] if self.partitions else 0, 0)
        found: list[Letter] = []
        for partition in self.partitions:
            if partition < first_partition:
                continue
            offset = first_offset if partition == first_partition else 0
            for letter in self._read(partition, offset, limit + 1 - len(found)):
                found.append(letter)
            if len(found) > limit:
                following = found.pop()
                return found, following.ref
        return found, None

    def one(self, partition: int, offset: int) -> Letter:
        """The letter at partition@offset, or DeadLetterNotFoundError."""
        if partition in self.partitions:
            for letter in self._read(partition, offset, 1):
                if letter.offset == offset:
                    return letter
        raise DeadLetterNotFoundError(
            f"no dead letter at {partition}@{offset} on {self.topic} (partitions "
            f"{', '.join(map(str, self.partitions))}; `backcheck dlq list` shows them)"
        )


class CommandTopic:
    """The command topic, to send letters back to. Opening it checks the broker and the topic."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka.errors import KafkaError

        if topic in missing_topics(bootstrap, topic):  # BrokerUnavailableError if none answers
            raise MissingTopicError(f"no topic {topic} on {bootstrap}")
        self.bootstrap, self.topic = bootstrap, topic
        try:
            self._producer = kafka_producer(
                bootstrap_servers=bootstrap.split(","), acks="all", enable_idempotence=True
            )
        except KafkaError as e:
            raise BrokerUnavailableError(f"no Kafka broker answered at {bootstrap} ({e})") from None

    def send_back(self, letter: Letter) -> tuple[int, int]:
        """Sends the letter back as it came, `backcheck_redriven_from` added, and waits for
        the broker's acknowledgement: (partition, offset) where it went."""
        from kafka.errors import KafkaError

        headers = [*letter.original_headers(), (REDRIVEN_FROM, letter.identity.encode())]
        try:
            sent = self._producer.send(
                self.topic, key=letter.key, value=letter.value, headers=headers
            )
            metadata = sent.get(timeout=30)
        except KafkaError as e:
            raise BrokerUnavailableError(
                f"the broker at {self.bootstrap} did not take {letter.ref} back "
                f"({type(e).__name__}: {e})"
            ) from None
        return metadata.partition, metadata.offset

    def close(self) -> None:
        close_producer(self._producer, 10)
