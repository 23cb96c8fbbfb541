"""`backcheck audit witness` on Kafka: follows the checkpoints topic from where its state
says, judges each message (infra/audit/witness.py), cosigns what extends the checkpoint it
holds and publishes the cosigned note on the cosignatures topic.

What it cannot use goes to `backcheck.checkpoints.dlq.v1` with its reason (`malformed`,
`bad-signature`, `unproven`) and it goes on. A fork or a rollback is an alarm: the message to
the dead-letter topic with reason `fork` or `rollback`, `backcheck_witness_alarms_total` moved,
one error line, the ALARM file written in its state directory, and `follow` returns the
judgement (the command then exits 1) without cosigning it or anything after it.

The message's place is recorded in the state (next offset per partition) only after it is
dealt with (cosigned and published, or dead-lettered); a witness killed or cut off from the
broker in between reads it again and judges it against the checkpoint it held before, so it
cosigns it again (a second cosignature of the same checkpoint, with a later time: harmless).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from infra.audit.notes import Note
from infra.audit.witness import Finding, Judgement, Witness
from infra.kafka.checkpoints import (
    CHECKPOINTS_TOPIC,
    COSIGNATURES_TOPIC,
    COSIGNED_TYPE,
    CosignedCheckpoint,
    decode,
    headers,
)
from infra.kafka.cloudevent import DeadLetter, DeadLetterReason, dead_letter_headers
from infra.kafka.topics import (
    BrokerUnavailableError,
    close_producer,
    dead_letter_topic,
    ensure_topics,
    kafka_consumer,
    kafka_producer,
)
from infra.ops import metrics

log = logging.getLogger("backcheck.witness")

_REASONS = {
    Finding.UNPROVEN: DeadLetterReason.UNPROVEN,
    Finding.BAD_SIGNATURE: DeadLetterReason.BAD_SIGNATURE,
    Finding.FORK: DeadLetterReason.FORK,
    Finding.ROLLBACK: DeadLetterReason.ROLLBACK,
}


class WitnessFollower:
    def __init__(
        self,
        witness: Witness,
        bootstrap: str,
        clock: Callable[[], datetime],
        topic: str = CHECKPOINTS_TOPIC,
        cosignatures: str = COSIGNATURES_TOPIC,
    ) -> None:
        self.witness, self.bootstrap, self.clock = witness, bootstrap, clock
        self.topic, self.cosignatures = topic, cosignatures
        self.dead_letters = dead_letter_topic(topic)
        ensure_topics(bootstrap, 1, topic, self.dead_letters, cosignatures)
        servers = bootstrap.split(",")
        self.consumer = kafka_consumer(bootstrap_servers=servers, enable_auto_commit=False)
        self.producer = kafka_producer(bootstrap_servers=servers, acks="all")
        self._assigned = False

    def close(self) -> None:
        self.consumer.close()
        close_producer(self.producer, 10)

    def _assign(self) -> bool:
        from kafka import TopicPartition

        numbers = sorted(self.consumer.partitions_for_topic(self.topic) or ())
        if not numbers:
            return False
        partitions = [TopicPartition(self.topic, p) for p in numbers]
        self.consumer.assign(partitions)
        for tp in partitions:
            self.consumer.seek(tp, self.witness.offsets.get(tp.partition, 0))
        self._assigned = True
        return True

    def follow(self, stop: Callable[[], bool]) -> Judgement | None:
        """Until `stop()`: None. On a fork or a rollback: its judgement, at once."""
        while not stop():
            if not self._assigned and not self._assign():
                continue
            batches = self.consumer.poll(timeout_ms=500)
            for record in sorted(
                (r for records in batches.values() for r in records),
                key=lambda r: (r.partition, r.offset),
            ):
                judgement = self.handle(record)
                if judgement is not None and judgement.alarm:
                    return judgement
        return None

    def handle(self, record: Any) -> Judgement | None:
        where = f"{record.topic}/{record.partition}@{record.offset}"
        try:
            published = decode(record.value)
        except ValueError as e:
            error = " ".join(str(e).split())[:500]
            self._dead_letter(record, DeadLetterReason.MALFORMED, f"malformed: {error}")
            metrics.witnessed("malformed")
            log.warning("%s: malformed checkpoint message, set aside: %s", where, error)
            self.witness.passed(record.partition, record.offset)
            return None
        judgement = self.witness.judge(published.note, published.old_size, published.proof)
        size = judgement.checkpoint.size if judgement.checkpoint else None
        if judgement.finding is not Finding.BAD_SIGNATURE:
            self.witness.reached(judgement.checkpoint)
        if judgement.alarm:
            self._dead_letter(record, _REASONS[judgement.finding], judgement.detail)
            metrics.witnessed(judgement.finding.value, alarm=True)
            log.error("ALARM %s: %s; nothing more is cosigned", where, judgement.detail)
            self.witness.raise_alarm(judgement, where, self.clock())
            self.witness.passed(record.partition, record.offset)
            return judgement
        if judgement.finding in _REASONS:  # unproven, bad signature: set aside, go on
            self._dead_letter(record, _REASONS[judgement.finding], judgement.detail)
            metrics.witnessed(judgement.finding.value)
            log.warning("%s: not cosigned: %s", where, judgement.detail)
        elif judgement.finding is Finding.ACCEPTED:
            cosigned = self.witness.accept(published.note, self.clock())
            self._publish(cosigned, record)
            metrics.witnessed(judgement.finding.value, size)
            log.info("%s: cosigned %s", where, judgement.detail)
        else:  # HELD: what it cosigned before is sent again (the trusted one: cosigned now)
            kept = self.witness.cosigned(size or 0)
            if kept is None:
                kept = self.witness.accept(published.note, self.clock())
            self._publish(kept, record)
            metrics.witnessed(judgement.finding.value, size)
        self.witness.passed(record.partition, record.offset)
        return judgement

    def _send(self, topic: str, key: bytes | None, value: bytes, headers: list[Any]) -> None:
        """Sends and waits for the broker's acknowledgement; a broker gone meanwhile ends the
        witness (exit 69) before its state moves past the message, which it reads again."""
        from kafka.errors import KafkaError

        try:
            self.producer.send(topic, key=key, value=value, headers=headers).get(timeout=30)
        except KafkaError as e:
            raise BrokerUnavailableError(
                f"the broker at {self.bootstrap} did not take a message for {topic} "
                f"({type(e).__name__}: {e})"
            ) from None

    def _publish(self, cosigned: Note, record: Any) -> None:
        value = CosignedCheckpoint(checkpoint=str(cosigned), witness=self.witness.key.verifier.vkey)
        checkpoint = self.witness.held_checkpoint
        ce_id = f"{record.key.decode(errors='replace')[:300] if record.key else ''}/" + (
            f"{checkpoint.size}/{self.witness.key.name}" if checkpoint else ""
        )
        self._send(
            self.cosignatures,
            record.key,
            value.model_dump_json().encode(),
            headers(COSIGNED_TYPE, ce_id, self.clock()),
        )

    def _dead_letter(self, record: Any, reason: DeadLetterReason, error: str) -> None:
        letter = DeadLetter(
            reason, error, record.topic, record.partition, record.offset, self.clock()
        )
        original = [(name, bytes(value or b"")) for name, value in record.headers or ()]
        self._send(
            self.dead_letters, record.key, record.value, dead_letter_headers(original, letter)
        )
        metrics.dead_letter(self.dead_letters, reason.value)
