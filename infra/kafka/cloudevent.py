"""backcheck's Kafka headers: CloudEvents 1.0 in Kafka binary mode, and dead letters.

The one module that writes and reads them. Every message carries its attributes as headers
and its data as the value (`content-type: application/json`).

An event (the relay writes it, the projection workers read it):

    key            the candidate id (every event names its data subject), so one candidate's
                   events share a partition and keep their order
    value          the stored state: JSON, personal values still sealed with the subject's
                   keys, so erasure (destroying the keys) reaches the copies in Kafka too
    ce_specversion 1.0
    ce_id          {originator id}:{version}, stable: the same event always has the same id
    ce_type        the event type's public name and version, e.g.
                   backcheck.consent.granted.v2 (`event_types.py`: the one table of them)
    ce_source      /backcheck (or the relay's --source)
    ce_subject     the candidate id
    ce_time        when the event happened (RFC 3339)
    ce_position    its position in the notification log (extension attribute)
    content-type   application/json
    ce_prevposition  the position of the previous event on the same partition (0: none), so
                   a worker notices a gap (a broker that lost messages, a consumer that
                   skipped some) and reads the partition again instead of applying past it

A command (other services and `backcheck send-command` write it, the intake reads it):
`ce_specversion` 1.0, `ce_id` (the sender's id for the command), `ce_source` (the sending
service), `ce_type` (a use case), `ce_time` (optional), `content-type: application/json`;
the value is the command as JSON. A signed command carries `ce_keyid` and `ce_signature`
too (`infra/kafka/signatures.py` writes and reads them).

A command's outcome (the intake writes it to `backcheck.command-outcomes.v1`, keyed as the
command was): `ce_specversion`, `ce_id` (the same for every answer to the same message),
`ce_source` (/backcheck), `ce_type` (`backcheck.command.accepted.v1` or
`backcheck.command.refused.v1`), `ce_time`, `content-type: application/json`, and the
correlation as extension attributes: `ce_correlationid` and `ce_correlationsource` (the
command's `ce_id` and `ce_source`) and `ce_commandtype` (its `ce_type`), each left out when
the command did not carry it readably. The body is infra/kafka/outcome.py's.

A dead letter is the message as it came, key, value and headers unchanged and in order, with
`dlq_reason` (one of `DeadLetterReason`), `dlq_error`, where it came from (`dlq_topic`,
`dlq_partition`, `dlq_offset`) and when (`dlq_time`) after them. An event the relay could not
publish (larger than the broker takes) is dead-lettered with its key and headers but an empty
value (it would not fit either; it stays in the store, and its `ce_id` and `ce_position` name
it), `dlq_topic` and `dlq_partition` where it was to go, and `dlq_offset` -1: it never was on
the topic.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

from domain.errors import PickledAsItIs

SOURCE = "/backcheck"
CONTENT_TYPE = "application/json"
MAX_ID_LENGTH = 256  # a command's ce_id, ce_source and ce_type are kept in its receipt

Headers = list[tuple[str, bytes]]

_SPECVERSION = ("ce_specversion", b"1.0")
_CONTENT_TYPE = ("content-type", CONTENT_TYPE.encode())
_CANDIDATE = b'"candidate_id":"'
_TIME = b'"timestamp":"'


# --- events: the relay writes, the workers read --------------------------------------------


class OutgoingEvent(NamedTuple):
    """A stored event as the relay sends it."""

    key: bytes
    value: bytes
    headers: Headers


@functools.lru_cache(maxsize=1024)
def _constant(name: str, value: str) -> tuple[str, bytes]:
    """A header whose value repeats (the event types, the source), made once."""
    return (name, value.encode())


def outgoing_event(
    position: int, originator: str, version: int, topic: str, state: bytes, source: str = SOURCE
) -> OutgoingEvent:
    """The message of one stored event, from its columns; `ce_prevposition` is added once its
    partition is known (`previous_position`)."""
    key = event_key(originator, state)
    return OutgoingEvent(
        key, state, event_headers(position, originator, version, topic, state, key, None, source)
    )


def event_key(originator: str, state: bytes) -> bytes:
    """The key of a stored event's message: the candidate it is about (`ce_subject`)."""
    start = state.find(_CANDIDATE)
    if start >= 0:
        return state[start + 16 : start + 52]  # 16 = len(_CANDIDATE), a UUID's 36 after
    found = orjson.loads(state).get("candidate_id")  # not the transcoder's usual layout
    return str(found or originator).encode()


def event_headers(
    position: int,
    originator: str,
    version: int,
    topic: str,
    state: bytes,
    key: bytes,
    previous: int | None,
    source: str = SOURCE,
) -> Headers:
    """The headers of a stored event's message, `key` its `event_key`; `ce_prevposition` last,
    if `previous` is given. (Built in one go: the relay builds one for each event it sends.)"""
    start = state.find(_TIME)
    if start >= 0:
        when = state[start + 13 : state.index(b'"', start + 13)]  # 13 = len(_TIME)
    else:
        when = str(orjson.loads(state).get("timestamp", "")).encode()
    headers = [
        _SPECVERSION,
        ("ce_id", b"%s:%d" % (originator.encode(), version)),
        _constant("ce_type", topic),
        _constant("ce_source", source),
        ("ce_subject", key),
        ("ce_time", when),
        ("ce_position", b"%d" % position),
        _CONTENT_TYPE,
    ]
    if previous is not None:
        headers.append(("ce_prevposition", b"%d" % previous))
    return headers


def previous_position(previous: int) -> tuple[str, bytes]:
    """The `ce_prevposition` header: the position sent before on the same partition (0: none)."""
    return ("ce_prevposition", b"%d" % previous)


class BadEventMessageError(ValueError):
    """A message on the events topic that is not a stored event as the relay publishes it;
    `reason` is the dead letter's."""

    def __init__(self, message: str, reason: DeadLetterReason | None = None) -> None:
        super().__init__(message)
        self.reason = reason or DeadLetterReason.MALFORMED


class IncomingEvent(NamedTuple):
    position: int
    previous: int | None  # the position before it on its partition; None: not said
    stored: StoredEvent


def _required(headers: Mapping[str, bytes], name: str, where: str) -> bytes:
    found = headers.get(name)
    if found is None:
        raise BadEventMessageError(f"{where}: no {name} header")
    return found


def incoming_event(
    headers: Mapping[str, bytes], value: bytes, where: str, types: Mapping[str, str]
) -> IncomingEvent:
    """The log position, the previous position on the partition and the stored event of a
    relay message; `where` (its partition and offset) names it in the error. Its `ce_type` must
    be one of `types` (the public names the workers take, each with the stored topic it stands
    for: `infra/kafka/event_types.py`), or the reason is `unknown-type`."""
    ce_id = _required(headers, "ce_id", where).decode(errors="replace")
    ce_position = _required(headers, "ce_position", where)
    ce_type = _required(headers, "ce_type", where).decode(errors="replace")
    topic = types.get(ce_type)
    if topic is None:
        shown = ce_type if len(ce_type) <= 120 else f"{ce_type[:120]}..."
        raise BadEventMessageError(
            f"{where}: ce_type {shown!r} is no event type of backcheck's domain",
            DeadLetterReason.UNKNOWN_TYPE,
        )
    ce_prev = headers.get("ce_prevposition")
    originator, _, version = ce_id.rpartition(":")
    try:
        position = int(ce_position)
        previous = int(ce_prev) if ce_prev is not None else None
        stored = StoredEvent(
            originator_id=UUID(originator),
            originator_version=int(version),
            topic=topic,
            state=value,
        )
    except ValueError as e:
        raise BadEventMessageError(
            f"{where}: ce_id {ce_id!r} or ce_position is not what the relay writes ({e})"
        ) from None
    return IncomingEvent(position, previous, stored)


def position_or_none(headers: Mapping[str, bytes]) -> int | None:
    """The log position a message says it has, if it says one."""
    try:
        return int(headers["ce_position"])
    except (KeyError, ValueError):
        return None


# --- commands: other services write, the intake reads ---------------------------------------


def command_headers(command_type: str, command_id: str, source: str, time: datetime) -> Headers:
    """The headers of a command sent to the command topic."""
    return [
        _SPECVERSION,
        ("ce_id", command_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", command_type.encode()),
        ("ce_time", time.isoformat().encode()),
        _CONTENT_TYPE,
    ]


class MalformedCommandError(PickledAsItIs, ValueError):
    """A message on the command topic that is no command event (headers or JSON); `field`
    names what is at fault: a header (`ce_id`, `content-type`, ...) or `(body)`, the value
    (as an invalid command names a body that is no JSON object)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class IncomingCommand:
    source: str
    command_id: str
    command_type: str
    document: object  # the value, parsed JSON


_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type", "content-type")


def _command_attributes(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, raw in headers:
        if name not in _REQUIRED:
            continue
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise MalformedCommandError(f"header {name} is not UTF-8", name) from None
        if name in found and found[name] != text:
            raise MalformedCommandError(
                f"header {name} is given twice, with different values", name
            )
        found[name] = text
    missing = [name for name in _REQUIRED if not found.get(name)]
    if missing:
        raise MalformedCommandError(
            f"missing or empty header(s) {', '.join(missing)}; a command is a CloudEvent in "
            f"binary mode: ce_specversion 1.0, ce_id, ce_source, ce_type, content-type "
            f"{CONTENT_TYPE}",
            missing[0],
        )
    return found


def incoming_command(headers: Sequence[tuple[str, bytes]], value: bytes | None) -> IncomingCommand:
    """The sender, id, type and JSON document of a command message, or why it is none."""
    found = _command_attributes(headers)
    for name in ("ce_id", "ce_source", "ce_type"):
        if len(found[name]) > MAX_ID_LENGTH:
            raise MalformedCommandError(f"{name} is longer than {MAX_ID_LENGTH} characters", name)
    if found["ce_specversion"] != "1.0":
        raise MalformedCommandError(
            f"ce_specversion {found['ce_specversion']!r}: only CloudEvents 1.0 is understood",
            "ce_specversion",
        )
    media_type = found["content-type"].split(";")[0].strip().lower()
    if media_type != CONTENT_TYPE:
        raise MalformedCommandError(
            f"content-type {found['content-type']!r}: commands are {CONTENT_TYPE}",
            "content-type",
        )
    if value is None:
        raise MalformedCommandError(
            "no value: a command carries its JSON document as the value", "(body)"
        )
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        raise MalformedCommandError(f"the value is not JSON: {e}", "(body)") from None
    return IncomingCommand(found["ce_source"], found["ce_id"], found["ce_type"], document)


# --- command outcomes: the intake writes, the sending service reads ------------------------

ACCEPTED = "backcheck.command.accepted.v1"
REFUSED = "backcheck.command.refused.v1"
_CORRELATION = (
    ("ce_id", "ce_correlationid"),
    ("ce_source", "ce_correlationsource"),
    ("ce_type", "ce_commandtype"),
)


def command_correlation(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """What of a command's `ce_id`, `ce_source` and `ce_type` can be read, malformed or not
    (the first of each name, UTF-8, not empty, at most MAX_ID_LENGTH characters)."""
    found: dict[str, str] = {}
    for name, raw in headers:
        if name in found or name not in ("ce_id", "ce_source", "ce_type"):
            continue
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            continue
        if text and len(text) <= MAX_ID_LENGTH:
            found[name] = text
    return found


def outcome_headers(
    outcome_id: str, accepted: bool, time: datetime, command: Mapping[str, str]
) -> Headers:
    """The headers of a command's outcome; `command` is its `command_correlation`."""
    headers = [
        _SPECVERSION,
        ("ce_id", outcome_id.encode()),
        ("ce_source", SOURCE.encode()),
        ("ce_type", (ACCEPTED if accepted else REFUSED).encode()),
        ("ce_time", time.astimezone(UTC).isoformat().encode()),
        _CONTENT_TYPE,
    ]
    headers += [(ext, command[name].encode()) for name, ext in _CORRELATION if name in command]
    return headers


# --- dead letters: the intake, the workers and the relay write them --------------------------


class DeadLetterReason(StrEnum):
    """Why a message was dead-lettered (the `dlq_reason` header)."""

    MALFORMED = "malformed"  # not JSON, or the CloudEvents headers are missing or wrong
    UNKNOWN_TYPE = "unknown-type"  # ce_type names no use case, or no event type of the domain
    INVALID = "invalid"  # the use case's command schema refused it (the field and the rule)
    REFUSED = "refused"  # a rule refused it, or it is not accepted from services
    DUPLICATE = "duplicate"  # the same ce_source + ce_id was already applied
    TOO_LARGE = "too-large"  # the relay's: an event larger than the broker takes a message
    # The intake's refusals of senders it cannot trust (infra/kafka/senders.py):
    UNSIGNED = "unsigned"  # no ce_signature / ce_keyid
    UNKNOWN_SENDER = "unknown-sender"  # ce_source is no service holding a sender key
    BAD_SIGNATURE = "bad-signature"  # not signed with the sender's current key
    EXPIRED = "expired"  # ce_time older than the allowed clock skew (or none)
    FUTURE = "future"  # ce_time later than the allowed clock skew
    REPLAYED = "replayed"  # the same ce_source + ce_id was applied from another message
    OUT_OF_SCOPE = "out-of-scope"  # a use case the sender may not send
    ACTOR_NOT_ALLOWED = "actor-not-allowed"  # an actor the sender may not act for
    # A witness's, on the checkpoints topic (infra/kafka/witness.py):
    FORK = "fork"  # the same size with another root, or a consistency proof that fails
    ROLLBACK = "rollback"  # a smaller tree than the checkpoint the witness holds
    UNPROVEN = "unproven"  # its consistency proof is from another size than the one held


@dataclass(frozen=True)
class DeadLetter:
    """Why and whence a message was set aside."""

    reason: DeadLetterReason
    error: str
    topic: str
    partition: int
    offset: int
    time: datetime


DEAD_LETTER_HEADERS = (
    "dlq_reason",
    "dlq_error",
    "dlq_topic",
    "dlq_partition",
    "dlq_offset",
    "dlq_time",
)


def dead_letter_headers(original: Sequence[tuple[str, bytes]], letter: DeadLetter) -> Headers:
    """The original headers, unchanged and in order, then the dead letter's own."""
    return [
        *original,
        ("dlq_reason", letter.reason.value.encode()),
        ("dlq_error", letter.error.encode()),
        ("dlq_topic", letter.topic.encode()),
        ("dlq_partition", str(letter.partition).encode()),
        ("dlq_offset", str(letter.offset).encode()),
        ("dlq_time", letter.time.astimezone(UTC).isoformat().encode()),
    ]


def unpublishable_event(
    event: OutgoingEvent, error: str, topic: str, partition: int, now: datetime
) -> OutgoingEvent:
    """The dead letter of an event the relay cannot publish to `topic` (too large): its key
    and headers, no value, `dlq_offset` -1."""
    letter = DeadLetter(DeadLetterReason.TOO_LARGE, error, topic, partition, -1, now)
    return OutgoingEvent(event.key, b"", dead_letter_headers(event.headers, letter))


def dead_letter_of(headers: Sequence[tuple[str, bytes]]) -> DeadLetter:
    """The dead letter's own headers read back (the last of each name: the original message
    may carry headers of the same names from an earlier dead-lettering)."""
    found = {name: raw.decode() for name, raw in headers if name in DEAD_LETTER_HEADERS}
    return DeadLetter(
        DeadLetterReason(found["dlq_reason"]),
        found["dlq_error"],
        found["dlq_topic"],
        int(found["dlq_partition"]),
        int(found["dlq_offset"]),
        datetime.fromisoformat(found["dlq_time"]),
    )
