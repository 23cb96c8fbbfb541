"""Command intake: the Kafka command topic, in faust.

Other services send commands to `backcheck.commands.v1` as CloudEvents 1.0 in Kafka binary
mode (`infra/kafka/cloudevent.py`): `ce_type` names a use case from `backcheck use-cases`, the
value is the command as JSON. Each message becomes one use-case call (`services/intake.py`),
applied once per (ce_source, ce_id).

Every message is answered on `backcheck.command-outcomes.v1` (infra/kafka/outcome.py):
accepted, with the events it stored, or refused, with the problem. A message that cannot be
applied goes to `backcheck.commands.dlq.v1` as a dead letter: its
original key, value and headers unchanged, with why (`dlq_reason`, one of `DeadLetterReason`),
`dlq_error`, where it came from and when. Nothing is dropped: the worker moves past a message
only once it is applied or its dead letter is acknowledged by the broker. A failure that is
nobody's message (the store unreachable, the broker away) is neither: the worker retries that
message with backoff and jitter, so the commands behind it wait rather than being lost; a bug
stops the worker with one line and exit code 70 (`infra/ops/retry.py`). The answer is sent after
the write or the dead letter, and before the offset is committed: a redelivered message is
answered again, the same way (its receipt names the events it stored).

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
from typing import Any, TypeVar

from pydantic import ValidationError

from domain.access import Authentication
from domain.errors import DomainError, InvalidInputError
from infra.kafka.cloudevent import (
    DeadLetter,
    DeadLetterReason,
    Headers,
    MalformedCommandError,
    command_correlation,
    command_headers,
    dead_letter_headers,
    incoming_command,
)
from infra.kafka.command_topic import TopicWatch
from infra.kafka.outcome import DeadLetterPlace, Stored, outcome_of, stored_events
from infra.kafka.senders import SenderCheck
from infra.kafka.signatures import CommandSigner
from infra.kafka.streams import RAW, faust_app, off_the_loop, until_done
from infra.kafka.topics import (
    COMMANDS_TOPIC,
    OUTCOMES_TOPIC,
    MissingTopicError,
    broker_has_topic,
    dead_letter_topic,
    kafka_producer,
    missing_topics,
    remade_if_lost,
)
from infra.ops import logs, metrics
from infra.problem import problem_for, told_away_from_the_store
from services.errors import CommandAlreadyAppliedError, UnknownUseCaseError
from services.intake import CommandIntake
from services.unit import Delivery

DLQ_TOPIC = dead_letter_topic(COMMANDS_TOPIC)  # backcheck.commands.dlq.v1
# Seconds an answer (a dead letter, an outcome) may wait for the broker to take it: faust's
# producer waits up to 20 minutes for a topic the broker does not have, so an intake whose
# broker lost its answer topics answered nothing, silently, for that long.
ANSWER_TIMEOUT = 30.0
# Bytes a record batch adds to a message's key, value and headers (with room to spare).
LETTER_OVERHEAD = 1024
T = TypeVar("T")

log = logging.getLogger("backcheck.intake")


@dataclass(frozen=True)
class IntakeDecision:
    """Applied (`result` holds the use case's result), already applied by this very message
    (a redelivery: nothing to apply, answered again), or dead-lettered with a reason and an
    error (`cause`: the exception that said why, if one did; `field`: the header or body at
    fault in a message that is no command, or that its sender's check refused, which no
    exception of the table names). `stored`:
    (event id, position) of the events the command stored, its receipt's last (applied,
    redelivered, or a duplicate's first)."""

    command_type: str | None
    reason: DeadLetterReason | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    redelivered: bool = False
    stored: Stored = ()
    cause: Exception | None = None
    field: str | None = None

    @property
    def applied(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class CommandMessage:
    """What the intake needs of one Kafka message on the command topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def channel(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"

    def dead_letter_headers(
        self, decision: IntakeDecision, now: datetime, note: str = ""
    ) -> Headers:
        """Its headers as a dead letter: the original ones, unchanged and in order, then why."""
        if decision.reason is None:
            raise ValueError("an applied command has no dead letter")
        letter = DeadLetter(
            decision.reason,
            (decision.error or "") + note,
            self.topic,
            self.partition,
            self.offset,
            now,
        )
        return dead_letter_headers(self.headers, letter)

    def dead_letter(
        self, decision: IntakeDecision, now: datetime, max_bytes: int
    ) -> tuple[bytes | None, Headers]:
        """The dead letter's value and headers. A message the broker took may not fit once the
        dead letter's headers are added, or may be larger than our producer sends: then its
        value is left out (empty; said in `dlq_error`), since a letter that cannot be sent
        would stop the intake at this message for good."""
        headers = self.dead_letter_headers(decision, now)
        size = len(self.key or b"") + len(self.value or b"")
        size += sum(len(name) + len(value) for name, value in headers)
        if size + LETTER_OVERHEAD <= max_bytes:
            return self.value, headers
        note = (
            f" (the value, {len(self.value or b''):,} bytes, is not kept here: the dead "
            f"letter would be larger than the {max_bytes:,} bytes a message may take)"
        )
        return b"", self.dead_letter_headers(decision, now, note)


def delivery_of(
    message: CommandMessage, authentication: Authentication = Authentication.ASSERTED
) -> tuple[Delivery, Any]:
    """The delivery and the parsed JSON document of a command message; `authentication`:
    how its sender is known (signed, once its signature verified)."""
    command = incoming_command(message.headers, message.value)
    delivery = Delivery(
        source=command.source,
        command_id=command.command_id,
        command_type=command.command_type,
        channel=message.channel,
        authentication=authentication,
    )
    return delivery, command.document


def decide(
    intake: CommandIntake, message: CommandMessage, senders: SenderCheck | None = None
) -> IntakeDecision:
    """Applies one command message, or says why it goes to the dead-letter topic.

    Checked in this order, the first problem deciding: its sender, signature, time and scope,
    before anything is parsed (`senders`, infra/kafka/senders.py; refusals recorded there), the
    headers and JSON (malformed), the
    command type (unknown-type; a read or another use case not taken from services is
    refused), the command's schema (invalid), an earlier application (duplicate), the rules
    (refused; data the domain cannot accept is invalid). Errors that are nobody's message —
    the store unreachable, a bug — are raised, not decided: the message is tried again."""
    signed = False
    if senders is not None:
        refused = senders.check(message.headers, message.value, message.channel)
        if refused is not None:
            return IntakeDecision(
                refused.command_type, refused.reason, refused.error, field=refused.field
            )
        signed = senders.signed(message.headers)
    # its signature verified above: its events say their caller was its sender, signed
    authentication = Authentication.SIGNED if signed else Authentication.ASSERTED
    try:
        delivery, document = delivery_of(message, authentication)
    except MalformedCommandError as e:
        return IntakeDecision(None, DeadLetterReason.MALFORMED, str(e), field=e.field)
    kind = delivery.command_type
    try:
        applied = intake.apply_delivered(delivery, document)
    except ValidationError as e:
        return IntakeDecision(kind, DeadLetterReason.INVALID, _detail(e), cause=e)
    except UnknownUseCaseError as e:
        return IntakeDecision(kind, DeadLetterReason.UNKNOWN_TYPE, str(e), cause=e)
    except CommandAlreadyAppliedError as e:
        before = stored_events(intake.app, intake.stored_by(delivery) or ())
        if e.details.get("channel") == message.channel:
            # this very message, delivered again: answered again, the same way
            return IntakeDecision(kind, redelivered=True, stored=before)
        if senders is not None and signed:  # verified: its sender's
            replay = senders.replayed(
                message.headers, message.value, message.channel, str(e.details.get("channel"))
            )
            return IntakeDecision(
                kind, replay.reason, replay.error, stored=before, cause=e, field=replay.field
            )
        return IntakeDecision(kind, DeadLetterReason.DUPLICATE, str(e), stored=before, cause=e)
    except InvalidInputError as e:
        return IntakeDecision(kind, DeadLetterReason.INVALID, _detail(e), cause=e)
    except DomainError as e:
        # the sending service has no shell on this machine: an unknown id is told with the
        # API's route that lists its kind, in the outcome and the dead letter alike
        told = told_away_from_the_store(e)
        return IntakeDecision(kind, DeadLetterReason.REFUSED, _detail(told), cause=told)
    return IntakeDecision(
        kind, result=applied.result.model_dump(mode="json"), stored=applied.stored
    )


def _detail(error: Exception) -> str:
    problem = problem_for(error)
    if problem is None:
        return str(error)
    return f"{problem.type}: {problem.detail}"


def _message_of(event: Any) -> CommandMessage:
    """The bytes as sent, headers in order, repeats kept."""
    raw = event.message
    headers = raw.headers or []
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    return CommandMessage(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        headers=tuple((k, bytes(v)) for k, v in pairs),
    )


def _report(message: CommandMessage, decision: IntakeDecision) -> None:
    """One log line for the message (with its command id as `event_id` and `correlation_id`,
    when it has one), and its count by outcome."""
    # the command's id whole, as its outcome carries it (command_correlation: up to the
    # contract's bound); none for an id past it, rather than a prefix another id may share
    extra = logs.ids(*([command_correlation(message.headers).get("ce_id")] * 2))
    if decision.redelivered:
        metrics.command("redelivered")
        log.warning(
            "%s was applied before its offset was committed; answered again",
            message.channel,
            extra=extra,
        )
    elif decision.applied:
        metrics.command("applied")
        log.info("applied %s from %s", decision.command_type, message.channel, extra=extra)
        link = (decision.result or {}).get("portal_link") or {}
        if link.get("status") not in (None, "delivered"):  # nobody else reads the answer
            log.warning(
                "%s from %s: the candidate's portal link was not sent (%s): %s",
                decision.command_type,
                message.channel,
                link.get("status"),
                link.get("detail"),
                extra=extra,
            )
    else:
        metrics.command("dead-lettered")
        log.warning(
            "dead-lettered %s: %s: %s",
            message.channel,
            decision.reason,
            decision.error,
            extra=extra,
        )


def intake_app(
    intake: Callable[[CommandMessage], IntakeDecision],
    bootstrap: str,
    group: str = "backcheck-intake",
    topic: str = COMMANDS_TOPIC,
    dlq_topic: str = DLQ_TOPIC,
    outcomes_topic: str = OUTCOMES_TOPIC,
    partitions: int = 6,
    consumer_settings: dict[str, Any] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    retry_delay: float = 1.0,
    datadir: str | None = None,
    answer_timeout: float = ANSWER_TIMEOUT,
    topic_watch: TopicWatch | None = None,
) -> Any:
    """The faust application of one intake worker: one agent over the command topic.

    `intake` decides one message (`decide` bound to an application). It blocks on the store,
    so it runs on one thread of its own: the event loop stays free for the consumer's
    heartbeats, and messages are still handled one at a time, in partition order. Each answer
    goes only to a topic the broker has just said it has: one it lost is made again first
    (decision 0054). An answer the broker has not taken within `answer_timeout` seconds is
    sent again, after its topic is made again if the broker lost it meanwhile. With
    `topic_watch`, a command topic the broker lost or made anew stops the intake
    (infra/kafka/command_topic.py)."""
    settings = consumer_settings or {}
    app = faust_app(
        group,
        bootstrap,
        partitions,
        datadir or f"{group}-data",  # faust's default: a folder in the working directory
        session_timeout=settings.get("session_timeout_ms", 10_000) / 1000,
        heartbeat_interval=settings.get("heartbeat_interval_ms", 3_000) / 1000,
        max_poll_interval=settings.get("max_poll_interval_ms", 300_000) / 1000,
    )
    commands = app.topic(topic, partitions=partitions, **RAW)
    dead_letters = app.topic(dlq_topic, partitions=partitions, **RAW)
    outcomes = app.topic(outcomes_topic, partitions=partitions, **RAW)
    store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-store")

    async def send_dead_letter(
        message: CommandMessage, decision: IntakeDecision
    ) -> DeadLetterPlace:
        value, headers = message.dead_letter(decision, clock(), app.conf.producer_max_request_size)
        sent = await dead_letters.send(key=message.key, value=value, headers=headers)
        metadata = await sent  # acknowledged by the broker
        return DeadLetterPlace(dlq_topic, metadata.partition, metadata.offset)

    async def send_outcome(
        message: CommandMessage, decision: IntakeDecision, placed: DeadLetterPlace | None
    ) -> None:
        answer = outcome_of(message, decision, clock(), placed)
        sent = await outcomes.send(key=answer.key, value=answer.value, headers=answer.headers)
        await sent  # acknowledged by the broker
        if decision.reason is not None:  # the one place a command's dead letter is counted
            metrics.dead_letter(dlq_topic, decision.reason.value)

    async def remade(topic: str) -> bool:
        loop = asyncio.get_running_loop()
        made = await loop.run_in_executor(None, remade_if_lost, bootstrap, partitions, topic)
        if made:
            log.warning("the broker had lost %s: made again with %d partitions", topic, partitions)
        return made

    def answering(topic: str, send: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        async def attempt() -> T:
            # The broker is asked for the topic before each answer: faust's producer sends to
            # a topic it knew even once the broker lost it, and Tansu takes the answer into no
            # topic, acknowledged (decision 0054).
            client = app.producer._ensure_producer().client  # (faust has no public way to it)
            kept = await asyncio.wait_for(broker_has_topic(client, topic), answer_timeout)
            if not kept and not await remade(topic):
                raise MissingTopicError(f"the broker has no topic {topic}; not made again yet")
            try:
                return await asyncio.wait_for(send(), answer_timeout)
            except Exception:  # retried by `until_done` if transient; the topic checked first
                await remade(topic)
                raise

        return attempt

    async def ingest(stream: Any) -> None:
        async for event in stream.events():
            message = _message_of(event)
            decision = await until_done(
                off_the_loop(functools.partial(intake, message), store_thread),
                f"deciding the command at {message.channel}",
                log,
                retry_delay,
                process="the command intake",
            )
            _report(message, decision)
            placed = None
            if not decision.applied:
                placed = await until_done(
                    answering(dlq_topic, functools.partial(send_dead_letter, message, decision)),
                    f"dead-lettering {message.channel}",
                    log,
                    retry_delay,
                    process="the command intake",
                )
            await until_done(
                answering(
                    outcomes_topic, functools.partial(send_outcome, message, decision, placed)
                ),
                f"answering {message.channel}",
                log,
                retry_delay,
            )
            # Only now does faust count the message as handled (its offset may be committed).

    app.agent(commands)(ingest)
    if topic_watch is not None:

        async def watch_topic() -> None:
            loop = asyncio.get_running_loop()
            reason = await loop.run_in_executor(None, topic_watch.check)
            if reason is not None:
                topic_watch.stop(reason)

        app.timer(interval=topic_watch.interval)(watch_topic)
    return app


def send_command(
    bootstrap: str,
    topic: str,
    command_type: str,
    command_id: str,
    source: str,
    document: bytes,
    key: bytes | None = None,
    signer: CommandSigner | None = None,
) -> tuple[int, int]:
    """Sends one command to the command topic as a CloudEvent, as another service would, and
    waits until the broker has it: (partition, offset) where it went. A missing topic is
    refused, not made here."""
    if missing_topics(bootstrap, topic):
        raise MissingTopicError(
            f"no topic {topic} on {bootstrap}: `backcheck ingest` creates it (with "
            "BACKCHECK_KAFKA_PARTITIONS partitions) when it starts; start it first"
        )
    producer = kafka_producer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        headers = command_headers(command_type, command_id, source, datetime.now(UTC))
        if signer is not None:
            headers = signer.headers(headers, document)
        sent = producer.send(topic, key=key, value=document, headers=headers).get(timeout=30)
        return sent.partition, sent.offset
    finally:
        producer.close()
