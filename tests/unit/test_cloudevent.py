"""backcheck's Kafka headers, written and read by one module: what the relay writes a worker
reads back, what `send-command` writes the intake reads back, and a dead letter says the same
things whichever daemon set the message aside."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import orjson
import pytest

from infra.kafka.cloudevent import (
    DEAD_LETTER_HEADERS,
    BadEventMessageError,
    DeadLetterReason,
    command_headers,
    dead_letter_of,
    incoming_command,
    incoming_event,
    outgoing_event,
    previous_position,
)
from infra.kafka.intake import IntakeDecision
from infra.kafka.projection import Record
from tests.commands import headers, message

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOPIC = "domain.candidate:Candidate.Registered"
PUBLIC = "backcheck.candidate.registered.v1"  # its public name (infra/kafka/event_types.py)


def test_an_event_the_relay_writes_reads_back_as_the_stored_event_of_its_public_type() -> None:
    originator, candidate = uuid4(), uuid4()
    state = orjson.dumps({"candidate_id": str(candidate), "timestamp": NOW.isoformat()})
    sent = outgoing_event(42, str(originator), 3, PUBLIC, state)
    sent.headers.append(previous_position(17))

    read = incoming_event(dict(sent.headers), sent.value, "partition 0 offset 5", {PUBLIC: TOPIC})

    assert sent.key == str(candidate).encode()
    assert (read.position, read.previous) == (42, 17)
    assert read.stored.originator_id == originator
    assert read.stored.originator_version == 3
    assert read.stored.topic == TOPIC
    assert read.stored.state == state
    assert [name for name, _ in sent.headers] == [
        "ce_specversion",
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_subject",
        "ce_time",
        "ce_position",
        "content-type",
        "ce_prevposition",
    ]


def test_an_event_of_no_known_type_is_dead_lettered_as_unknown_type() -> None:
    state = orjson.dumps({"candidate_id": str(uuid4()), "timestamp": NOW.isoformat()})
    sent = outgoing_event(42, str(uuid4()), 3, "os:system", state)

    with pytest.raises(BadEventMessageError) as refused:
        incoming_event(dict(sent.headers), sent.value, "partition 0 offset 5", {PUBLIC: TOPIC})

    assert refused.value.reason is DeadLetterReason.UNKNOWN_TYPE
    assert str(refused.value) == (
        "partition 0 offset 5: ce_type 'os:system' is no event type of backcheck's domain"
    )


def test_a_command_send_command_writes_reads_back_as_the_command() -> None:
    written = command_headers("register-candidate", "c-1", "ats.example", NOW)

    read = incoming_command(written, b'{"name": "Zhou Min"}')

    assert written == headers("register-candidate", "c-1")  # as other services send them
    assert (read.source, read.command_id, read.command_type) == (
        "ats.example",
        "c-1",
        "register-candidate",
    )
    assert read.document == {"name": "Zhou Min"}


def test_both_daemons_dead_letter_with_the_same_headers() -> None:
    original = headers("register-candidate", "c-9")
    command = message(b"{", original, partition=2, offset=7)
    event = Record(partition=2, offset=7, value=b"{", headers=dict(original))

    from_intake = command.dead_letter_headers(
        IntakeDecision(None, DeadLetterReason.MALFORMED, "not JSON"), NOW
    )
    from_worker = event.dead_letter_headers("not JSON", "backcheck.commands.v1", NOW)

    assert from_intake == from_worker
    assert [name for name, _ in from_worker[len(original) :]] == list(DEAD_LETTER_HEADERS)
    letter = dead_letter_of(from_worker)
    assert (letter.reason, letter.error, letter.topic) == (
        DeadLetterReason.MALFORMED,
        "not JSON",
        "backcheck.commands.v1",
    )
    assert (letter.partition, letter.offset, letter.time) == (2, 7, NOW)
