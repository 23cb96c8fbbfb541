"""Command intake: the Kafka command topic, in faust.

Other services send commands to `backcheck.commands.v1` as CloudEvents 1.0 in Kafka binary
mode: headers `ce_specversion` (1.0), `ce_id` (the sender's id for the command), `ce_source`
(the sending service), `ce_type` (a use case from `backcheck use-cases`) and `content-type:
application/json`; the value is the command as JSON. Each message becomes one use-case call
(`services/intake.py`), applied once per (ce_source, ce_id).

A message that cannot be applied goes to `backcheck.commands.dlq.v1`, its original key, value
and headers unchanged, with `dlq_reason` (one of `Reason`), `dlq_error`, where it came from
(`dlq_topic`, `dlq_partition`, `dlq_offset`) and when (`dlq_time`). Nothing is dropped: the
worker moves past a message only once it is applied or its dead letter is acknowledged by
the broker. A failure that is nobody's message (the store unreachable, a bug) is neither: the
worker retries that message, so the commands behind it wait rather than being lost.

`decide` holds every decision about one message and needs no broker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from domain.errors import DomainError, InvalidInputError
from infra.kafka.topics import COMMANDS_TOPIC, dead_letter_topic, refuse_topic_auto_creation
from infra.problem import problem_for
from services.errors import CommandAlreadyAppliedError, UnknownUseCaseError
from services.intake import CommandIntake
from services.unit import Delivery

DLQ_TOPIC = dead_letter_topic(COMMANDS_TOPIC)  # backcheck.commands.dlq.v1
CONTENT_TYPE = "application/json"
MAX_ID_LENGTH = 256  # ce_id, ce_source and ce_type are kept in the receipt

log = logging.getLogger("backcheck.intake")
T = TypeVar("T")


class Reason(StrEnum):
    """Why a command was dead-lettered (the `dlq_reason` header)."""

    MALFORMED = "malformed"  # not JSON, or the CloudEvents headers are missing or wrong
    UNKNOWN_TYPE = "unknown-type"  # ce_type names no use case
    INVALID = "invalid"  # the use case's command schema refused it (the field and the rule)
    REFUSED = "refused"  # a rule refused it, or it is not accepted from services
    DUPLICATE = "duplicate"  # the same ce_source + ce_id was already applied


@dataclass(frozen=True)
class Message:
    """What the intake needs of one Kafka message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def channel(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


@dataclass(frozen=True)
class Outcome:
    """Applied (`result` holds the use case's result), already applied by this very message
    (a redelivery: nothing to do), or dead-lettered with a reason and an error."""

    command_type: str | None
    reason: Reason | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    redelivered: bool = False

    @property
    def applied(self) -> bool:
        return self.reason is None


class MalformedCommandError(ValueError):
    pass


_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type", "content-type")


def delivery_of(message: Message) -> tuple[Delivery, Any]:
    """The delivery and the parsed JSON document of a command message."""
    headers: dict[str, str] = {}
    for name, raw in message.headers:
        if name not in _REQUIRED:
            continue
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise MalformedCommandError(f"header {name} is not UTF-8") from None
        if name in headers and headers[name] != text:
            raise MalformedCommandError(f"header {name} is given twice, with different values")
        headers[name] = text
    missing = [name for name in _REQUIRED if not headers.get(name)]
    if missing:
        raise MalformedCommandError(
            f"missing or empty header(s) {', '.join(missing)}; a command is a CloudEvent in "
            f"binary mode: ce_specversion 1.0, ce_id, ce_source, ce_type, content-type "
            f"{CONTENT_TYPE}"
        )
    for name in ("ce_id", "ce_source", "ce_type"):
        if len(headers[name]) > MAX_ID_LENGTH:
            raise MalformedCommandError(f"{name} is longer than {MAX_ID_LENGTH} characters")
    if headers["ce_specversion"] != "1.0":
        raise MalformedCommandError(
            f"ce_specversion {headers['ce_specversion']!r}: only CloudEvents 1.0 is understood"
        )
    media_type = headers["content-type"].split(";")[0].strip().lower()
    if media_type != CONTENT_TYPE:
        raise MalformedCommandError(
            f"content-type {headers['content-type']!r}: commands are {CONTENT_TYPE}"
        )
    if message.value is None:
        raise MalformedCommandError("no value: a command carries its JSON document as the value")
    try:
        document = orjson.loads(message.value)
    except orjson.JSONDecodeError as e:
        raise MalformedCommandError(f"the value is not JSON: {e}") from None
    delivery = Delivery(
        source=headers["ce_source"],
        command_id=headers["ce_id"],
        command_type=headers["ce_type"],
        channel=message.channel,
    )
    return delivery, document


def decide(intake: CommandIntake, message: Message) -> Outcome:
    """Applies one command message, or says why it goes to the dead-letter topic.

    Checked in this order, the first problem deciding: headers and JSON (malformed), the
    command type (unknown-type; a read or another use case not taken from services is
    refused), the command's schema (invalid), an earlier application (duplicate), the rules
    (refused; data the domain cannot accept is invalid). Errors that are nobody's message —
    the store unreachable, a bug — are raised, not decided: the message is tried again."""
    try:
        delivery, document = delivery_of(message)
    except MalformedCommandError as e:
        return Outcome(None, Reason.MALFORMED, str(e))
    kind = delivery.command_type
    try:
        result = intake.apply(delivery, document)
    except ValidationError as e:
        return Outcome(kind, Reason.INVALID, _detail(e))
    except UnknownUseCaseError as e:
        return Outcome(kind, Reason.UNKNOWN_TYPE, str(e))
    except CommandAlreadyAppliedError as e:
        if e.channel == message.channel:
            return Outcome(kind, redelivered=True)  # this very message, delivered again
        return Outcome(kind, Reason.DUPLICATE, str(e))
    except InvalidInputError as e:
        return Outcome(kind, Reason.INVALID, _detail(e))
    except DomainError as e:
        return Outcome(kind, Reason.REFUSED, _detail(e))
    return Outcome(kind, result=result.model_dump(mode="json"))


def _detail(error: Exception) -> str:
    problem = problem_for(error)
    if problem is None:
        return str(error)
    return f"{problem.type}: {problem.detail}"


def dead_letter_headers(
    message: Message, outcome: Outcome, now: datetime
) -> list[tuple[str, bytes]]:
    """The original headers, unchanged and in order, then the dead letter's own."""
    if outcome.reason is None:
        raise ValueError("an applied command has no dead letter")
    return [
        *message.headers,
        ("dlq_reason", outcome.reason.value.encode()),
        ("dlq_error", (outcome.error or "").encode()),
        ("dlq_topic", message.topic.encode()),
        ("dlq_partition", str(message.partition).encode()),
        ("dlq_offset", str(message.offset).encode()),
        ("dlq_time", now.astimezone(UTC).isoformat().encode()),
    ]


def faust_app(
    intake: Callable[[Message], Outcome],
    bootstrap: str,
    group: str = "backcheck-intake",
    topic: str = COMMANDS_TOPIC,
    dlq_topic: str = DLQ_TOPIC,
    partitions: int = 6,
    consumer_settings: dict[str, Any] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    retry_delay: float = 1.0,
    datadir: str | None = None,
) -> Any:
    """The faust application of one intake worker: one agent over the command topic.

    `intake` decides one message (`decide` bound to an application). It blocks on the store,
    so it runs on one thread of its own: the event loop stays free for the consumer's
    heartbeats, and messages are still handled one at a time, in partition order."""
    import faust

    refuse_topic_auto_creation()
    settings = consumer_settings or {}
    app = faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=datadir or f"{group}-data",  # faust's default: a folder in the working directory
        web_enabled=False,
        topic_partitions=partitions,
        topic_allow_declare=False,  # created with their partitions by `ensure_topics`
        topic_disable_leader=True,  # no leader election here, so no `{group}-__assignor-__leader`
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.get("session_timeout_ms", 10_000) / 1000,
        broker_heartbeat_interval=settings.get("heartbeat_interval_ms", 3_000) / 1000,
        broker_max_poll_interval=settings.get("max_poll_interval_ms", 300_000) / 1000,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw"}
    commands = app.topic(topic, value_serializer="raw", partitions=partitions, **raw)
    dead_letters = app.topic(dlq_topic, value_serializer="raw", partitions=partitions, **raw)
    store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-store")

    async def persist(what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Tries `attempt` until it succeeds: a failure here is nobody's message, and moving
        on would drop it (shutdown cancels the wait)."""
        delay = retry_delay
        while True:
            try:
                return await attempt()
            except Exception:
                log.exception("%s failed; retrying in %.0f s", what, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def send_dead_letter(message: Message, outcome: Outcome) -> None:
        sent = await dead_letters.send(
            key=message.key,
            value=message.value,
            headers=dead_letter_headers(message, outcome, clock()),
        )
        await sent  # acknowledged by the broker

    @app.agent(commands)  # type: ignore[misc]
    async def ingest(stream: Any) -> None:
        loop = asyncio.get_running_loop()
        async for event in stream.events():
            raw_message = event.message  # the bytes as sent, headers in order, repeats kept
            message = Message(
                topic=raw_message.topic,
                partition=raw_message.partition,
                offset=raw_message.offset,
                key=raw_message.key,
                value=raw_message.value,
                headers=tuple((k, bytes(v)) for k, v in _header_pairs(raw_message.headers)),
            )
            outcome = await persist(
                f"deciding the command at {message.channel}",
                functools.partial(loop.run_in_executor, store_thread, intake, message),
            )
            if outcome.redelivered:
                log.warning(
                    "%s was applied before its offset was committed; passed over", message.channel
                )
            elif outcome.applied:
                log.info("applied %s from %s", outcome.command_type, message.channel)
            else:
                log.warning(
                    "dead-lettered %s: %s: %s", message.channel, outcome.reason, outcome.error
                )
                await persist(
                    f"dead-lettering {message.channel}",
                    functools.partial(send_dead_letter, message, outcome),
                )
            # Only now does faust count the message as handled (its offset may be committed).

    return app


def _header_pairs(headers: Any) -> list[tuple[str, bytes]]:
    if not headers:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)
