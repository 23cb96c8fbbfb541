"""`backcheck audit collect-cosignatures`: the witnesses' cosigned checkpoints read back from
`backcheck.checkpoint-cosignatures.v1` into the store's cosignature table.

Each message is checked as any cosignature is (infra/audit/cosignatures.py) and its lines of
configured witnesses kept. One refused goes to `backcheck.checkpoint-cosignatures.dlq.v1` with
its reason (`malformed`; `refused`: not a checkpoint this store's key signed, or no configured
witness on it; `bad-signature`: a configured witness's line that does not verify), is logged
with its place, counted, and passed. A checkpoint the log's key signed that the stored tree
contradicts is a fork: dead-lettered with reason `fork`, and the collection stops there
(ForkError, exit 65) after passing it.

Where it got to on each partition (the next offset) is kept beside the store as the relay's
place is (infra/kafka/relay_store.py's RelayState, named `cosignatures:TOPIC`), saved after each
batch, so each message is judged once; one read again after a crash is held already.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from infra.audit.cosignature_store import CosignatureStore
from infra.audit.cosignatures import CosignatureError, accept, configured
from infra.audit.log_checkpoint import ForkError
from infra.audit.log_tree import LogTree
from infra.audit.notes import NoteError, Verifier, parse_note
from infra.audit.sources import RecordSource, open_source
from infra.config import Settings
from infra.kafka.checkpoints import COSIGNATURES_TOPIC, CosignedCheckpoint
from infra.kafka.cloudevent import DeadLetter, DeadLetterReason, dead_letter_headers
from infra.kafka.relay_store import RelayState
from infra.kafka.topics import BrokerUnavailableError, close_producer, dead_letter_topic
from infra.ops import metrics

log = logging.getLogger("backcheck.cosignatures")


@dataclass
class Collected:
    new: int = 0  # cosignature lines kept
    held: int = 0  # lines kept before
    refused: list[str] = field(default_factory=list)  # one line each: where, why
    read: int = 0  # messages


def collect(
    state: RelayState,
    store: CosignatureStore,
    source: RecordSource,
    log_key: Verifier,
    witnesses: list[Verifier],
    bootstrap: str,
    clock: Callable[[], datetime],
    *,
    topic: str = COSIGNATURES_TOPIC,
    quiet: float = 2.0,
) -> Collected:
    """Reads the topic from where the last collection stopped until nothing more arrives for
    `quiet` seconds (the broker's end offsets are not trusted: Tansu's fall short)."""
    from kafka import TopicPartition

    from infra.kafka.topics import kafka_consumer

    letters = DeadLetters(bootstrap, topic, clock)
    _, offsets = state.load()
    consumer = kafka_consumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    done = Collected()
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, offsets.get(tp.partition, 0))
        until = time.monotonic() + quiet
        while time.monotonic() < until:
            batches = consumer.poll(timeout_ms=200)
            records = sorted(
                (r for rs in batches.values() for r in rs), key=lambda r: (r.partition, r.offset)
            )
            try:
                for record in records:
                    until = time.monotonic() + quiet
                    try:
                        _one(record, store, source, log_key, witnesses, letters, done)
                    except ForkError:
                        offsets[record.partition] = record.offset + 1  # dead-lettered: passed
                        raise
                    offsets[record.partition] = record.offset + 1
            finally:
                if records:
                    state.save(0, offsets)  # (the relay's position: unused here)
    finally:
        consumer.close()
        letters.close()
    return done


class DeadLetters:
    """The cosignatures topic's dead letters, each waited for (as the witness's are)."""

    def __init__(self, bootstrap: str, topic: str, clock: Callable[[], datetime]) -> None:
        from infra.kafka.topics import ensure_topics, kafka_producer

        self.topic, self.clock = dead_letter_topic(topic), clock
        self.bootstrap = bootstrap
        ensure_topics(bootstrap, 1, topic, self.topic)
        self.producer = kafka_producer(bootstrap_servers=bootstrap.split(","), acks="all")

    def send(self, record: Any, reason: DeadLetterReason, error: str) -> None:
        from kafka.errors import KafkaError

        letter = DeadLetter(
            reason, error[:2000], record.topic, record.partition, record.offset, self.clock()
        )
        original = [(name, bytes(value or b"")) for name, value in record.headers or ()]
        try:
            self.producer.send(
                self.topic, key=record.key, value=record.value,
                headers=dead_letter_headers(original, letter),
            ).get(timeout=30)  # fmt: skip
        except KafkaError as e:
            raise BrokerUnavailableError(
                f"the broker at {self.bootstrap} did not take a dead letter for {self.topic} "
                f"({type(e).__name__}: {e})"
            ) from None
        metrics.dead_letter(self.topic, reason.value)

    def close(self) -> None:
        close_producer(self.producer, 10)


def _one(
    record: Any,
    store: CosignatureStore,
    source: RecordSource,
    log_key: Verifier,
    witnesses: list[Verifier],
    letters: DeadLetters,
    done: Collected,
) -> None:
    where = f"{record.topic}/{record.partition}@{record.offset}"
    done.read += 1
    try:
        if record.value is None:
            raise NoteError("the message has no value")
        message = CosignedCheckpoint.model_validate_json(record.value)
        note = parse_note(message.checkpoint)
        found = accept(note, where, log_key, witnesses, LogTree(source))
    except ForkError as e:  # (a ValueError too) the store disagrees with its own key: stop
        letters.send(record, DeadLetterReason.FORK, str(e))
        raise
    except CosignatureError as e:
        reason = DeadLetterReason.BAD_SIGNATURE if e.bad_signature else DeadLetterReason.REFUSED
        _refuse(done, str(e), letters, record, reason)
        return
    except ValueError as e:  # not JSON, not the schema, not a note
        why = f"{where}: refused: malformed ({' '.join(str(e).split())[:300]})"
        _refuse(done, why, letters, record, DeadLetterReason.MALFORMED)
        return
    new = store.add(found, where, letters.clock())
    done.new += new
    done.held += len(found) - new
    log.info("%s: %d cosignature(s) kept, %d held already", where, new, len(found) - new)


def _refuse(
    done: Collected, why: str, letters: DeadLetters, record: Any, reason: DeadLetterReason
) -> None:
    letters.send(record, reason, why)
    done.refused.append(why)
    log.warning("%s", why)


def collect_into_store(
    app: Application[UUID], settings: Settings, bootstrap: str | None = None, quiet: float = 2.0
) -> Collected:
    """`audit collect-cosignatures`, and the scheduler's checkpoint duty with
    --publish-checkpoints when witnesses are configured: the store's log key and configured
    witnesses, its cosignature table and tree, the collector's place beside the store."""
    from infra.audit.log_checkpoint import signer

    log_key = signer(settings).verifier
    witnesses = configured(settings.witness_keys)
    state = RelayState(app, settings, f"cosignatures:{COSIGNATURES_TOPIC}")
    try:
        with CosignatureStore(settings) as store, open_source(settings) as source:
            return collect(
                state,
                store,
                source,
                log_key,
                witnesses,
                bootstrap or settings.kafka_bootstrap,
                lambda: datetime.now(UTC),
                quiet=quiet,
            )
    finally:
        state.close()
