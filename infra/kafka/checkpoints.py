"""The checkpoints topic: the log's signed checkpoints published for witnesses, and the
witnesses' cosignatures coming back.

`backcheck.checkpoints.v1` (one partition, keyed by the log's origin): each message is a
CloudEvent in binary mode whose JSON value holds a C2SP signed checkpoint note (origin, tree
size, root hash; signed by the log's key) and the RFC 9162 consistency proof from the size of
the checkpoint published before it on the topic (`old_size`; 0 and no proof for the first).
A witness holding that older checkpoint checks the new one extends it (infra/audit/witness.py).

`backcheck.checkpoint-cosignatures.v1` (one partition, keyed by the origin): each accepted
checkpoint note again, with the witness's `cosignature/v1` line after the log's signature; an
exporter gathers the lines of the witnesses it trusts onto the same note (k of n).

The publisher proves from the largest checkpoint signed by the log's key among the topic's
last 16 messages (what a witness following the topic holds), so any scheduler on any machine
can publish the next one; a checkpoint of the size and root already published is not
published again.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from infra.audit.log_tree import LogTree
from infra.audit.notes import (
    Checkpoint,
    Note,
    NoteError,
    Signer,
    Verifier,
    parse_checkpoint,
    parse_note,
    sign,
    verify,
)
from infra.config import Settings
from infra.files import write_whole
from infra.kafka.cloudevent import CONTENT_TYPE, Headers

CHECKPOINTS_TOPIC = "backcheck.checkpoints.v1"
COSIGNATURES_TOPIC = "backcheck.checkpoint-cosignatures.v1"
CHECKPOINT_TYPE = "backcheck.checkpoint.v1"
COSIGNED_TYPE = "backcheck.checkpoint.cosigned.v1"
SOURCE = "/backcheck"
MAX_PROOF = 64  # hashes: a consistency proof of trees below 2^64 leaves has fewer
MAX_CHECKPOINT_NOTE = 64 * 1024  # a checkpoint with a few dozen cosignatures is well under
_LOOK_BACK = 16  # messages read back from the topic's end to find the last checkpoint
_HASH = r"^[A-Za-z0-9+/]{43}=$"  # base64 of 32 bytes


class CheckpointMessage(BaseModel):
    """The value of a message on the checkpoints topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checkpoint: str = Field(
        max_length=MAX_CHECKPOINT_NOTE,
        description="the checkpoint as a C2SP signed note (c2sp.org/tlog-checkpoint): origin, "
        "tree size, base64 root hash, a blank line, the log key's signature line",
    )
    old_size: int = Field(
        ge=0,
        le=2**64 - 1,
        description="the tree size of the checkpoint published before this one (0: none)",
    )
    consistency_proof: list[Annotated[str, Field(pattern=_HASH)]] = Field(
        max_length=MAX_PROOF,
        description="RFC 9162 §2.1.4 consistency proof from old_size to this checkpoint's "
        "size, each hash base64",
    )


class CosignedCheckpoint(BaseModel):
    """The value of a message on the cosignatures topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checkpoint: str = Field(
        max_length=MAX_CHECKPOINT_NOTE,
        description="the checkpoint note with the log's signature line and then the "
        "witness's cosignature/v1 line (c2sp.org/tlog-cosignature)",
    )
    witness: str = Field(max_length=400, description="the witness's verifier key (vkey), type 0x04")


@dataclass(frozen=True)
class Published:
    note: Note
    old_size: int
    proof: list[bytes]

    @property
    def checkpoint(self) -> Checkpoint:
        return parse_checkpoint(self.note.text)


def log_signer(settings: Settings) -> Signer:
    """The log's note key: the checkpoint key (BACKCHECK_SIGNING_KEY), named by the log's
    origin (BACKCHECK_LOG_ORIGIN, else derived from where the store is: `Settings.origin`),
    as every checkpoint of the log is signed (infra/audit/log_checkpoint.py)."""
    from infra.audit.log_checkpoint import signer

    return signer(settings)


LOG_VKEY = "log.vkey"


def keep_log_vkey(settings: Settings, signer: Signer) -> None:
    """Writes the log's verifier key to KEYS_DIR/log.vkey (public) when it is not there as it
    is: what a witness on the same machines is given (`--log-key FILE`, compose)."""
    path = settings.signing_key_path.parent / LOG_VKEY
    text = signer.verifier.vkey + "\n"
    try:
        if path.read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    write_whole(path, text.encode())  # aside, under a name this call's alone (infra/files.py)


def headers(ce_type: str, ce_id: str, now: datetime) -> Headers:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", ce_id.encode()),
        ("ce_source", SOURCE.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_time", now.astimezone(UTC).isoformat().encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]


def encode(published: Published) -> bytes:
    return (
        CheckpointMessage(
            checkpoint=str(published.note),
            old_size=published.old_size,
            consistency_proof=[base64.b64encode(h).decode() for h in published.proof],
        )
        .model_dump_json()
        .encode()
    )


def decode(value: bytes | None) -> Published:
    """A message's value read back; NoteError or pydantic's ValidationError (a ValueError)
    saying what is wrong."""
    if value is None or len(value) > 2 * MAX_CHECKPOINT_NOTE:
        raise NoteError("the message has no value, or one over 128 KiB")
    message = CheckpointMessage.model_validate_json(value)
    note = parse_note(message.checkpoint)
    parse_checkpoint(note.text)
    proof = [base64.b64decode(h) for h in message.consistency_proof]
    return Published(note, message.old_size, proof)


def make_checkpoint(tree: LogTree, signer: Signer, previous: Checkpoint | None) -> Published:
    """The signed checkpoint of the whole stored tree, with the consistency proof from the
    previous published checkpoint's size (none when there is none, or it is larger than this
    tree: a witness then decides)."""
    head = tree.tree_head()
    note = sign(Checkpoint(signer.name, head.size, head.root).text(), signer)
    if previous is None or previous.size > head.size:
        return Published(note, 0, [])
    return Published(note, previous.size, tree.consistency_proof(previous.size, head.size))


class CheckpointTopic:
    """The checkpoints topic of one broker: the last checkpoint of an origin, and publishing."""

    def __init__(self, bootstrap: str, topic: str = CHECKPOINTS_TOPIC) -> None:
        from infra.kafka.topics import ensure_topics

        self.bootstrap, self.topic = bootstrap, topic
        ensure_topics(bootstrap, 1, topic)

    def last(self, log: Verifier) -> Checkpoint | None:
        """The largest checkpoint signed by the log's key among the topic's last messages
        (a replayed older one, or one signed by another key, is not what witnesses hold)."""
        from kafka import TopicPartition

        from infra.kafka.topics import kafka_consumer

        consumer = kafka_consumer(bootstrap_servers=self.bootstrap.split(","))
        try:
            partitions = [
                TopicPartition(self.topic, p)
                for p in sorted(consumer.partitions_for_topic(self.topic) or ())
            ]
            consumer.assign(partitions)
            ends = consumer.end_offsets(partitions)
            for tp in partitions:
                consumer.seek(tp, max(ends[tp] - _LOOK_BACK, 0))
            found: list[Any] = []
            quiet_until = time.monotonic() + 1.0
            while time.monotonic() < quiet_until:
                for records in consumer.poll(timeout_ms=200).values():
                    found += records
                    quiet_until = time.monotonic() + 1.0
        finally:
            consumer.close()
        best: Checkpoint | None = None
        for record in found:
            try:
                published = decode(record.value)
                verify(published.note, [log])
            except ValueError:
                continue
            checkpoint = published.checkpoint
            if checkpoint.origin == log.name and (best is None or checkpoint.size > best.size):
                best = checkpoint
        return best

    def publish(self, published: Published, now: datetime) -> tuple[int, int]:
        """Sends it and waits for the broker's acknowledgement: (partition, offset)."""
        from infra.kafka.topics import close_producer, kafka_producer

        checkpoint = published.checkpoint
        producer = kafka_producer(bootstrap_servers=self.bootstrap.split(","), acks="all")
        try:
            sent = producer.send(
                self.topic,
                key=checkpoint.origin.encode(),
                value=encode(published),
                headers=headers(CHECKPOINT_TYPE, f"{checkpoint.origin}/{checkpoint.size}", now),
            )
            metadata = sent.get(timeout=30)
        finally:
            close_producer(producer, 10)
        return metadata.partition, metadata.offset


def publish_checkpoint(
    tree: LogTree, signer: Signer, bootstrap: str, now: datetime, topic: str = CHECKPOINTS_TOPIC
) -> tuple[Published, bool]:
    """Signs the stored tree's head and publishes it with its proof from the last published
    checkpoint; (the checkpoint, whether it was sent: not when the last one is the same)."""
    target = CheckpointTopic(bootstrap, topic)
    previous = target.last(signer.verifier)
    published = make_checkpoint(tree, signer, previous)
    checkpoint = published.checkpoint
    if previous is not None and (previous.size, previous.root_hash) == (
        checkpoint.size,
        checkpoint.root_hash,
    ):
        return published, False
    target.publish(published, now)
    return published, True


def publish_to_kafka(settings: Settings) -> tuple[int, bool]:
    """The scheduler's checkpoint duty, with --publish-checkpoints: the store's tree head,
    signed by the checkpoint key as the log's origin, published on the settings' broker;
    (tree size, whether it was sent)."""
    from infra.audit.sources import open_source

    signer = log_signer(settings)
    keep_log_vkey(settings, signer)
    with open_source(settings) as source:
        published, sent = publish_checkpoint(
            LogTree(source), signer, settings.kafka_bootstrap, datetime.now(UTC)
        )
    return published.checkpoint.size, sent
