"""Command outcomes: the answer the intake gives to every message on the command topic.

A service that sends a command needs to know whether it took, and what it did: without an
answer it can only watch the events topic and guess, or ask an operator to read the dead
letters. So every message gets one outcome on `backcheck.command-outcomes.v1`, keyed as the
command was (so one candidate's answers keep their order), its headers built by
infra/kafka/cloudevent.py (`outcome_headers`: the command's `ce_id` and `ce_source` as the
correlation), its body JSON:

    accepted  {"outcome": "accepted", "command": {id, source, type, channel},
               "events": [{"id", "position"}, ...], "receipt": {"id", "position"}}
    refused   {"outcome": "refused", "command": {...}, "reason": a dead-letter reason,
               "problem": {type, title, status, detail, rule, field, errors},
               "dead_letter": {topic, partition, offset}}

`events` are the events the command stored, each by the id the relay publishes it under
(`originator id:version`) and its position in the notification log, the command's receipt
apart. A refused command's `problem.type` is the URI the HTTP API uses for the same error
(infra/problem.py), `rule` the broken rule, `field` the field at fault where one is known. A
command refused as a duplicate (its `ce_source` + `ce_id` applied before, from another
message) also lists the events the first one stored.

The answer is sent after the store write, or after the dead letter is acknowledged; only then
is the command's offset committed. A crash in between delivers the message again: the store
finds it applied, and the answer is built again from its receipt, which names the same events
(domain/intake.py), so it is the same answer, with the same `ce_id`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

import orjson
from pydantic import ValidationError

from domain.errors import InvalidInputError
from infra.kafka.cloudevent import DeadLetterReason, Headers, command_correlation, outcome_headers
from infra.kafka.topics import (
    MissingTopicError,
    OutcomeTimeoutError,
    kafka_consumer,
    missing_topics,
)
from infra.problem import (
    MAX_DETAIL,
    MAX_ERRORS,
    TYPE_PREFIX,
    bounded,
    family_exit_code,
    field_message,
    field_name,
    kind_exit_code,
    problem_for,
    problem_type,
    status_exit_code,
)
from infra.store.recorder import chained

if TYPE_CHECKING:
    from eventsourcing.application import Application

    from infra.kafka.intake import CommandMessage, IntakeDecision

# Fixed for ever: an outcome's ce_id is derived from it, the same for every answer to a message.
OUTCOME_NAMESPACE = UUID("3b8f4f0e-2c1d-4b7a-9e55-6a0d3c9e7f12")

Stored = tuple[tuple[str, int], ...]

# Refusals no error names (a message that is no command at all, a sender turned away before
# its command is read): their kind is the dead-letter reason.
_REASONS: dict[str, tuple[int, str]] = {
    DeadLetterReason.MALFORMED.value: (400, "Malformed command"),
}
# The header (or body field) at fault in a refusal whose decision names none (the sender's
# check names its own, infra/kafka/senders.py): each reason is about one of them alone.
_FIELDS: dict[str, str] = {
    DeadLetterReason.UNSIGNED.value: "ce_signature",
    DeadLetterReason.UNKNOWN_SENDER.value: "ce_source",
    DeadLetterReason.BAD_SIGNATURE.value: "ce_signature",
    DeadLetterReason.EXPIRED.value: "ce_time",
    DeadLetterReason.FUTURE.value: "ce_time",
    DeadLetterReason.REPLAYED.value: "ce_id",
    DeadLetterReason.DUPLICATE.value: "ce_id",
    DeadLetterReason.OUT_OF_SCOPE.value: "ce_type",
    DeadLetterReason.ACTOR_NOT_ALLOWED.value: "actor",
}


@dataclass(frozen=True)
class Outcome:
    """One outcome message, as it is sent."""

    key: bytes | None
    value: bytes
    headers: Headers


@dataclass(frozen=True)
class DeadLetterPlace:
    """Where a refused command's dead letter was put (the broker's acknowledgement)."""

    topic: str
    partition: int
    offset: int


def outcome_id(message: CommandMessage, correlation: dict[str, str]) -> str:
    """The same for every answer to this message; another for any other message."""
    name = "\n".join(
        (correlation.get("ce_source", ""), correlation.get("ce_id", ""), message.channel)
    )
    return str(uuid5(OUTCOME_NAMESPACE, name))


def stored_events(app: Application[UUID], ids: Sequence[str]) -> Stored:
    """(event id, log position) of each of these stored events, in the order given; an
    event id is `originator id:version`. One not found (never, for a receipt's) is left out."""
    keys = []
    for event_id in ids:
        originator, _, version = event_id.rpartition(":")
        keys.append((UUID(originator), int(version)))
    found = chained(app.recorder).positions_of(keys)
    return tuple(
        (event_id, found[key]) for event_id, key in zip(ids, keys, strict=True) if key in found
    )


def _field_errors(error: ValidationError) -> list[dict[str, str]]:
    """Each broken field with its rule (pydantic's error type), as the HTTP API lists them."""
    return [
        {
            "field": field_name(e["loc"]),
            "rule": e["type"],
            "message": bounded(field_message(e)),
        }
        for e in error.errors()[:MAX_ERRORS]
    ]


def problem_of(decision: IntakeDecision) -> dict[str, Any]:
    """The refusal as problem details, with the type URI, rule and field the HTTP API would
    give for the same error."""
    error, reason = decision.cause, (decision.reason or "refused")
    problem = problem_for(error) if error is not None else None
    if problem is None:
        status, title = _REASONS.get(reason, (422, "Refused"))
        kind, detail = str(reason), decision.error or str(reason)
        return {
            "type": problem_type(kind),
            "title": title,
            "status": status,
            "detail": bounded(detail, MAX_DETAIL),
            "rule": kind,
            "field": decision.field or _FIELDS.get(kind),
        }
    body: dict[str, Any] = {
        "type": problem_type(problem.type),
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,  # bounded by the problem table
        "rule": problem.type,
        "field": problem.field,
    }
    if isinstance(error, ValidationError):
        body["errors"] = _field_errors(error)
    if body["field"] is None:
        body["field"] = decision.field or _FIELDS.get(str(reason))
    return body


def _events(stored: Stored) -> dict[str, Any]:
    if not stored:
        return {"events": [], "receipt": None}
    *caused, (receipt, position) = stored
    return {
        "events": [{"id": i, "position": p} for i, p in caused],
        "receipt": {"id": receipt, "position": position},
    }


def outcome_of(
    message: CommandMessage,
    decision: IntakeDecision,
    now: datetime,
    dead_letter: DeadLetterPlace | None = None,
) -> Outcome:
    """The answer to one command message, as decided (and, if refused, where its dead
    letter went)."""
    correlation = command_correlation(message.headers)
    body: dict[str, Any] = {
        "outcome": "accepted" if decision.applied else "refused",
        "command": {
            "id": correlation.get("ce_id"),
            "source": correlation.get("ce_source"),
            "type": correlation.get("ce_type"),
            "channel": message.channel,
        },
    }
    if decision.applied:
        body |= _events(decision.stored)
    else:
        body["reason"] = str(decision.reason)
        body["problem"] = problem_of(decision)
        if decision.stored:  # a duplicate: what the first delivery stored
            body |= _events(decision.stored)
        if dead_letter is not None:
            body["dead_letter"] = {
                "topic": dead_letter.topic,
                "partition": dead_letter.partition,
                "offset": dead_letter.offset,
            }
    headers = outcome_headers(outcome_id(message, correlation), decision.applied, now, correlation)
    return Outcome(message.key, orjson.dumps(body), headers)


# --- a sender waiting for its answer (`backcheck send-command --wait`) ----------------------

EX_UNKNOWN_REFUSAL = 1  # a refusal of a kind the problem table does not know (a newer intake's)


def refusal_exit_code(problem: Mapping[str, Any]) -> int:
    """The exit code of a refusal as its answer's problem gives it: the code the problem
    table gives its kind (the `type` URI's tail), as the command line exits for the same
    error (`backcheck do`), whatever its HTTP status (a configuration error, 503, is 78; a
    busy store, 503 too, 75). A broken rule's kind is the rule's name, no row's: the code of
    the family its status names (404 not found 4, 403 forbidden 5, 409 a rule 3, 422 invalid
    2). A refusal no error names (a dead-letter reason: a malformed message, a sender turned
    away) is invalid input, 2; a kind the table does not know, 1."""
    kind = str(problem.get("type") or "").removeprefix(TYPE_PREFIX)
    code = kind_exit_code(kind)
    if code is not None:
        return code
    if kind in {reason.value for reason in DeadLetterReason}:
        return family_exit_code(InvalidInputError)
    code = status_exit_code(_status(problem.get("status")))
    return EX_UNKNOWN_REFUSAL if code is None else code


def _status(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class OutcomeWatch:
    """Where the outcomes topic ends, noted before a command is sent; then the answer to that
    command, found by the place its message took (`command.channel`)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import TopicPartition

        if topic in missing_topics(bootstrap, topic):  # BrokerUnavailableError if none answers
            raise MissingTopicError(
                f"no topic {topic} on {bootstrap}: `backcheck ingest` creates it when it starts"
            )
        self.topic = topic
        self._consumer = kafka_consumer(
            bootstrap_servers=bootstrap.split(","), enable_auto_commit=False
        )
        numbers = sorted(self._consumer.partitions_for_topic(topic) or ())
        self._partitions = [TopicPartition(topic, n) for n in numbers]
        self._since = self._consumer.end_offsets(self._partitions)

    def wait(self, channel: str, timeout: float) -> tuple[dict[str, bytes], dict[str, Any]]:
        """The headers and body of the answer to the command sent to `channel`
        (topic/partition@offset), or OutcomeTimeoutError."""
        import time

        self._consumer.assign(self._partitions)
        for partition, offset in self._since.items():
            self._consumer.seek(partition, offset)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in self._consumer.poll(timeout_ms=200).values():
                for record in records:
                    try:
                        body = orjson.loads(record.value)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(body, dict) and body.get("command", {}).get("channel") == channel:
                        return dict(record.headers or ()), body
        raise OutcomeTimeoutError(
            f"no answer to the command at {channel} on {self.topic} within {timeout:g} s "
            "(is `backcheck ingest` running?); it may still be applied: look for it there"
        )

    def close(self) -> None:
        self._consumer.close()
