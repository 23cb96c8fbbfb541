"""The three Kafka daemons, wired from the settings: the relay, a projection worker, the
command intake. Each opens the store and what it needs beside it, hands back the running
part, and closes what it opened; entry points only choose the options and tell the outcome.

In the options, an empty `bootstrap` and a zero `partitions` are the settings'
(BACKCHECK_KAFKA_BOOTSTRAP, BACKCHECK_KAFKA_PARTITIONS).
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from infra.config import Settings, parse_bootstrap
from infra.kafka.cloudevent import SOURCE
from infra.kafka.command_topic import RECORD as TOPIC_RECORD
from infra.kafka.command_topic import CommandTopic, TopicWatch
from infra.kafka.intake import DLQ_TOPIC, decide, intake_app
from infra.kafka.projection import StreamProjection
from infra.kafka.recovery import StallWatch
from infra.kafka.relay import Relay
from infra.kafka.relay_store import RelayState
from infra.kafka.senders import DEFAULT_SKEW, SenderCheck
from infra.kafka.shutdown import exit_at_deadline
from infra.kafka.streams import run_faust
from infra.kafka.topics import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    OUTCOMES_TOPIC,
    BrokerUnavailableError,
    dead_letter_topic,
    ensure_topics,
    reachable,
)
from infra.kafka.worker import WorkerOptions, projection_app, worker_targets
from infra.ops.health import Check, lag_check, master_key_check, settings_store_check
from services.application import Backcheck
from services.intake import CommandIntake


def _bootstrap(settings: Settings, chosen: str) -> str:
    return parse_bootstrap(chosen or settings.kafka_bootstrap)


def readiness_checks(
    settings: Settings,
    bootstrap: str,
    lag: Callable[[], int] | None = None,
    max_lag: int = 0,
    keys: object = None,
) -> dict[str, Check]:
    """What a daemon's `/readyz` asks (`infra/ops/health.py`): the store answers, a broker
    accepts connections at `bootstrap`, (with `lag`) the lag is at most `max_lag`, and (with
    `keys`, for a daemon that opens sealed values) the store is still bound to its master
    key."""

    def broker() -> str | None:
        found = reachable(bootstrap, timeout=2)
        return None if found else f"no Kafka broker answered at {bootstrap}"

    checks = {"store": settings_store_check(settings), "broker": broker}
    if lag is not None:
        checks["lag"] = lag_check(lag, max_lag, "the lag")
    if (master_key := master_key_check(keys, checks["store"])) is not None:
        checks["master_key"] = master_key
    return checks


# --- the relay ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RelayOptions:
    bootstrap: str = ""
    topic: str = EVENTS_TOPIC
    partitions: int = 0  # of the topic, if it is created here
    page: int = 2000  # events per acknowledged page (position recorded after)
    source: str = SOURCE  # the CloudEvents source attribute
    max_message_bytes: int = 0  # the largest message the broker takes; 0: what it reports


@contextmanager
def relay_daemon(
    application: Backcheck, settings: Settings, options: RelayOptions
) -> Iterator[Relay]:
    """The store's relay to the topic, holding its lock; SIGINT and SIGTERM stop its run (within
    `STOP_GRACE` seconds, `infra/kafka/shutdown.py`)."""
    relay = Relay(
        application,
        settings,
        topic=options.topic,
        bootstrap=_bootstrap(settings, options.bootstrap),
        partitions=options.partitions or settings.kafka_partitions,
        page=options.page,
        source=options.source,
        max_message_bytes=options.max_message_bytes or None,
    )

    def stop(*_: object) -> None:
        relay.stop.set()
        exit_at_deadline("the relay")

    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, stop)
        yield relay
    finally:
        relay.close()


# --- a projection worker ------------------------------------------------------------------


@dataclass
class ProjectionWorker:
    """One worker of the consumer group, wired: `run` until SIGINT/SIGTERM."""

    projection: StreamProjection
    options: WorkerOptions  # with the settings' bootstrap, partitions and data folder
    watch: StallWatch
    settings: Settings
    keys: object = None  # the application's key store: the views' rows are sealed with it
    _app: Any = None

    def lag(self) -> int:
        """The largest lag of a partition this worker holds, when last measured (every 2 s)."""
        return 0 if self._app is None else int(self._app.backcheck_partitions.lag)

    def checks(self, max_lag: int) -> dict[str, Check]:
        bootstrap = self.options.bootstrap
        return readiness_checks(self.settings, bootstrap, self.lag, max_lag, self.keys)

    def run(self) -> int:
        """Runs the worker; returns its exit code."""
        topic, options = self.projection.topic, self.options
        try:
            ensure_topics(options.bootstrap, options.partitions, topic, dead_letter_topic(topic))
        except BrokerUnavailableError as e:
            raise BrokerUnavailableError(
                f"{e}; start the broker or set --bootstrap-servers"
            ) from None
        if options.datadir:
            Path(options.datadir).mkdir(parents=True, exist_ok=True)
        self._app = app = projection_app(self.projection, options, self.watch)
        return run_faust(app, loglevel="warning", redirect_stdouts=False)


@contextmanager
def projection_worker(
    application: Backcheck, settings: Settings, options: WorkerOptions
) -> Iterator[ProjectionWorker]:
    """A projection worker keeping each of the kept views in its workers' store
    (`worker_targets`), watching for partitions that stall below what the relay recorded it
    delivered."""
    resolved = replace(
        options,
        bootstrap=_bootstrap(settings, options.bootstrap),
        partitions=options.partitions or settings.kafka_partitions,
        datadir=options.datadir or str(settings.data_dir / "faust" / options.group),
    )
    targets = worker_targets(application, settings)
    relayed = RelayState(application, settings, f"relay:{options.topic}")
    try:
        projection = StreamProjection(application, targets, topic=options.topic)
        watch = StallWatch(projection, lambda: relayed.load()[1])  # what the relay delivered
        yield ProjectionWorker(projection, resolved, watch, settings, application.keys)
    finally:
        relayed.close()


# --- the command intake -------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeOptions:
    bootstrap: str = ""
    group: str = "backcheck-intake"
    partitions: int = 0  # of the topics, if they are created here
    topic: str = COMMANDS_TOPIC
    dlq_topic: str = DLQ_TOPIC
    outcomes_topic: str = OUTCOMES_TOPIC
    scopes: dict[str, frozenset[str]] | None = None  # source -> use cases; None: every one
    accept_unsigned: bool = False  # messages with no signature headers: as before senders
    max_skew: timedelta = DEFAULT_SKEW  # how far a command's ce_time may be from the clock
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    loglevel: str = "warn"  # faust's
    answer_timeout_ms: int = 30_000  # an answer the broker has not taken: sent again
    topic_check_ms: int = 10_000  # how often the command topic is checked to be the same one


@dataclass(frozen=True)
class IntakeWorker:
    """One intake worker, wired: `run` until SIGINT/SIGTERM."""

    app: Any  # the faust app
    bootstrap: str
    options: IntakeOptions
    settings: Settings
    keys: object = None  # the application's key store: the commands' values are sealed
    watch: TopicWatch | None = None  # of the command topic: one lost or made anew stops it

    def checks(self, max_lag: int) -> dict[str, Check]:
        """The store, its master key and the broker (the command topic's lag is the broker's
        to tell)."""
        return readiness_checks(self.settings, self.bootstrap, keys=self.keys)

    def run(self) -> int:
        """Runs the worker; returns its exit code (75: stopped on a command topic the broker
        lost or made anew)."""
        code = run_faust(self.app, loglevel=self.options.loglevel)
        return code if self.watch is None else self.watch.exit_code(code)


@contextmanager
def command_intake(
    application: Backcheck, settings: Settings, options: IntakeOptions
) -> Iterator[IntakeWorker]:
    """An intake worker applying commands to the store; its topics made if missing."""
    bootstrap = _bootstrap(settings, options.bootstrap)
    partitions = options.partitions or settings.kafka_partitions
    intake = CommandIntake(application, options.scopes)
    senders = SenderCheck(application, options.max_skew, options.accept_unsigned)
    ensure_topics(bootstrap, partitions, options.topic, options.dlq_topic, options.outcomes_topic)
    faust_dir = settings.data_dir / "faust" / options.group
    faust_dir.mkdir(parents=True, exist_ok=True)
    # the command topic known by its id: one made anew is read from its start
    command_topic = CommandTopic(
        bootstrap,
        options.topic,
        options.group,
        partitions,
        faust_dir / TOPIC_RECORD,
        settle_wait=options.session_timeout_ms / 1000 + 5,
    )
    watch = TopicWatch(command_topic, command_topic.settle(), options.topic_check_ms / 1000)
    app = intake_app(
        functools.partial(decide, intake, senders=senders),
        bootstrap,
        group=options.group,
        topic=options.topic,
        dlq_topic=options.dlq_topic,
        outcomes_topic=options.outcomes_topic,
        partitions=partitions,
        consumer_settings={
            "session_timeout_ms": options.session_timeout_ms,
            "heartbeat_interval_ms": options.heartbeat_interval_ms,
            "max_poll_interval_ms": options.max_poll_interval_ms,
        },
        datadir=str(faust_dir),  # as the workers', not in the working directory
        answer_timeout=options.answer_timeout_ms / 1000,
        topic_watch=watch,
    )
    yield IntakeWorker(app, bootstrap, options, settings, application.keys, watch)
