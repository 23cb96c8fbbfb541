"""`backcheck audit collect-cosignatures`: the witnesses' cosigned checkpoints read back from
`backcheck.checkpoint-cosignatures.v1` into the store's cosignature table.

Each message is checked as any cosignature is (infra/audit/cosignatures.py) and its lines of
configured witnesses kept; one refused (not a checkpoint this store's key signed, no configured
witness, a cosignature that does not verify) is logged with its place and reason, counted, and
passed. A checkpoint the log's key signed that the stored tree contradicts is a fork: the
collection stops there (ForkError, exit 65) and reads that message again next time.

Where it got to on each partition (the next offset) is kept beside the store as the relay's
place is (infra/kafka/relay_store.py's RelayState, named `cosignatures:TOPIC`), saved after each
batch, so each message is judged once; one read again after a crash is held already.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.audit.cosignature_store import CosignatureStore
from infra.audit.cosignatures import CosignatureError, accept
from infra.audit.log_checkpoint import ForkError
from infra.audit.log_tree import LogTree
from infra.audit.notes import NoteError, Verifier, parse_note
from infra.audit.sources import RecordSource
from infra.kafka.checkpoints import COSIGNATURES_TOPIC, CosignedCheckpoint
from infra.kafka.relay_store import RelayState

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

    from infra.kafka.topics import ensure_topics, kafka_consumer

    ensure_topics(bootstrap, 1, topic)
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
            for record in records:
                until = time.monotonic() + quiet
                _one(record, store, source, log_key, witnesses, clock, done)
                offsets[record.partition] = record.offset + 1
            if records:
                state.save(done.read, offsets)
    finally:
        consumer.close()
    return done


def _one(
    record: Any,
    store: CosignatureStore,
    source: RecordSource,
    log_key: Verifier,
    witnesses: list[Verifier],
    clock: Callable[[], datetime],
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
    except ForkError:
        raise  # (a ValueError too) the store's data disagrees with its own key: stop
    except CosignatureError as e:
        _refuse(done, str(e))
        return
    except ValueError as e:  # not JSON, not the schema, not a note
        _refuse(done, f"{where}: refused: malformed ({' '.join(str(e).split())[:300]})")
        return
    new = store.add(found, where, clock())
    done.new += new
    done.held += len(found) - new
    log.info("%s: %d cosignature(s) kept, %d held already", where, new, len(found) - new)


def _refuse(done: Collected, reason: str) -> None:
    done.refused.append(reason)
    log.warning("%s", reason)
