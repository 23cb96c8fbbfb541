"""Kafka: `relay`, `worker`, `ingest`, `send-command`. Each chooses its daemon's options and
tells the outcome; the wiring is `infra/kafka/daemon.py`'s, imported by the command that runs
it (the Kafka client, faust and the use cases are not loaded by any other command's start)."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Protocol, TypeVar

import typer
from rich.text import Text

from infra.cli.common import app, console, err, fail, open_app
from infra.inputs import json_object, read_input
from infra.terminal import markup_safe, visible

if TYPE_CHECKING:
    from infra.config import Settings
    from infra.kafka.relay import Relay
    from infra.ops.health import HealthServer
    from services.application import Backcheck

_log = logging.getLogger("backcheck.relay")


class _Daemon(Protocol):
    def run(self) -> int: ...

    def checks(self, max_lag: int) -> dict[str, Callable[[], str | None]]: ...


HealthPort = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=65535,
        help="serve /healthz, /readyz and /metrics on this port (0: any free one; default: off)",
    ),
]
ReadyMaxLag = Annotated[
    int,
    typer.Option(min=0, help="/readyz fails while the lag exceeds this many events (0: no bound)"),
]


Options = TypeVar("Options")
Running = TypeVar("Running", bound=_Daemon)


@app.command()
def relay(
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (default: BACKCHECK_KAFKA_BOOTSTRAP)"),
    ] = None,
    topic: Annotated[str, typer.Option(help="the events topic")] = "backcheck.events.v1",
    partitions: Annotated[
        int | None,
        typer.Option(min=1, help="partitions if the topic is created here (default: settings)"),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="publish up to the log's head, then exit")
    ] = False,
    batch: Annotated[
        int, typer.Option(min=1, help="events per acknowledged page (position recorded after)")
    ] = 2000,
    source: Annotated[str, typer.Option(help="the CloudEvents source attribute")] = "/backcheck",
    max_message_bytes: Annotated[
        int | None,
        typer.Option(
            min=1024,
            help="the largest message the broker takes (default: what it reports, else 1048588)",
        ),
    ] = None,
    health_port: HealthPort = None,
    ready_max_lag: ReadyMaxLag = 10_000,
) -> None:
    """Publish every stored event, in log order, to the Kafka events topic.

    Follows the log from the position it recorded last, until SIGINT/SIGTERM; the position of a
    page is recorded only once the broker acknowledged all of it (acks=all, idempotent
    producer), so a crash or an outage loses nothing and resends at most the pages in flight
    (four). Without --once an unavailable broker is waited for; with --once it is an error
    (exit 69). An event larger than the broker takes goes to the dead-letter topic instead,
    with the reason. With --health-port, health, readiness and metrics are served there.
    """
    from infra.kafka.daemon import RelayOptions, readiness_checks, relay_daemon
    from infra.ops import logs
    from infra.ops.health import serve_health

    options = RelayOptions(
        bootstrap=bootstrap_servers or "",
        topic=topic,
        partitions=partitions or 0,
        page=batch,
        source=source,
        max_message_bytes=max_message_bytes or 0,
    )
    try:
        logs.configure()
        application, settings = open_app()
        with closing(application), relay_daemon(application, settings, options) as relay_:
            err.print(
                f"[dim]relay of {markup_safe(settings.describe())} to {markup_safe(topic)} on "
                f"{markup_safe(relay_.bootstrap)}, from position {relay_.position}[/]"
            )
            relay_.on_notice = lambda text: _log.warning("%s", text)
            checks = readiness_checks(settings, relay_.bootstrap, lambda: relay_.lag, ready_max_lag)
            with _serving(serve_health(health_port, checks, settings.health_host)):
                sent = _publish(relay_, once)
            position, dead = relay_.position, relay_.dead_lettered
    except Exception as e:
        _fail_daemon("the relay", e)
    also = f"; {dead} too large, dead-lettered to {relay_.dead_topic}" if dead else ""
    console.print(
        f"published {sent} events to {markup_safe(topic)}; position {position}{markup_safe(also)}"
    )


def _publish(relay_: Relay, once: bool) -> int:
    """Runs the relay, its progress as a bar on a terminal, each new reason to wait said."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from infra.kafka.relay import PartitionCountError

    columns = (TextColumn("publishing"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("relay", total=relay_.head())
        return relay_.run(
            once=once,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            on_retry=lambda e: _log.warning(
                "not publishing: %s" if isinstance(e, PartitionCountError) else _waiting(e), e
            ),
        )


def _fail_daemon(process: str, error: Exception) -> NoReturn:
    """An expected error as every command reports it (`fail`); any other is a bug, which a
    daemon does not retry: one line naming it, exit 70 (its traceback at debug level)."""
    from infra.ops.retry import EX_SOFTWARE
    from infra.problem import problem_for

    if problem_for(error) is not None:
        fail(error)
    _log.debug("%s failed", process, exc_info=error)
    err.print(
        f"[red]{markup_safe(process)} stopped:[/] a bug, not retried "
        f"({type(error).__name__}: {markup_safe(error)}); fix it and start it again"
    )
    raise typer.Exit(EX_SOFTWARE)


def _waiting(error: Exception) -> str:
    """What the relay waits for, as a log format taking the error: the store when the error
    is the store's (its problem type says so), else the broker."""
    from infra.problem import problem_for

    problem = problem_for(error)
    if problem is not None and problem.type.startswith("store-"):
        return "waiting for the store: %s"
    return "waiting for the broker: %s"


@contextmanager
def _serving(server: HealthServer | None) -> Iterator[None]:
    """The health server (if any) for as long as the daemon runs."""
    try:
        if server is not None:
            err.print(f"[dim]health on port {server.port}: /healthz /readyz /metrics[/]")
        yield
    finally:
        if server is not None:
            server.close()


@app.command()
def worker(
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (default: BACKCHECK_KAFKA_BOOTSTRAP)"),
    ] = None,
    topic: Annotated[str, typer.Option(help="the events topic")] = "backcheck.events.v1",
    group: Annotated[str, typer.Option(help="consumer group the workers share")] = (
        "backcheck-views"
    ),
    partitions: Annotated[
        int | None,
        typer.Option(min=1, help="partitions of a topic created here (default: settings)"),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="messages applied per transaction")] = 500,
    session_timeout_ms: Annotated[
        int, typer.Option(min=1, help="the group drops a worker silent this long")
    ] = 10_000,
    heartbeat_interval_ms: Annotated[int, typer.Option(min=1)] = 3_000,
    max_poll_interval_ms: Annotated[
        int, typer.Option(min=1, help="how long a rebalance waits for members to rejoin")
    ] = 300_000,
    health_port: HealthPort = None,
    ready_max_lag: ReadyMaxLag = 10_000,
) -> None:
    """Run a projection worker: build the read views and the dashboard from the Kafka events
    topic (faust).

    Several workers share the topic's partitions in one consumer group. The read views go to
    `backcheck_stream_views_vN` on PostgreSQL, or `<store>.stream-views-vN.sqlite` on the
    embedded store, the dashboard to `backcheck_stream_dashboard_vN` or
    `<store>.stream-dashboard-vN.sqlite` (N: its projection's version; a new version starts
    from an empty store, filled from each partition's start); each partition's progress is
    kept with the rows, so redelivery changes nothing.
    Stops on SIGINT/SIGTERM.
    """
    from infra.kafka.daemon import projection_worker
    from infra.kafka.worker import WorkerOptions

    options = WorkerOptions(
        bootstrap=bootstrap_servers or "",
        topic=topic,
        group=group,
        partitions=partitions or 0,
        batch=batch,
        session_timeout=session_timeout_ms / 1000,
        heartbeat_interval=heartbeat_interval_ms / 1000,
        max_poll_interval=max_poll_interval_ms / 1000,
    )
    worker_, code = _run(
        projection_worker,
        options,
        lambda settings, running: (
            f"worker of group {group} on {running.options.bootstrap}; "
            f"views in {settings.describe()}"
        ),
        (health_port, ready_max_lag),
    )
    projection = worker_.projection
    err.print(
        f"worker stopped: applied {projection.applied_events} events "
        f"from partitions {sorted(projection.partitions_applied)}"
    )
    raise typer.Exit(code)


@app.command()
def ingest(
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="host:port[,...] (default: BACKCHECK_KAFKA_BOOTSTRAP)")
    ] = None,
    group: Annotated[str, typer.Option(help="the consumer group the workers share")] = (
        "backcheck-intake"
    ),
    partitions: Annotated[
        int | None,
        typer.Option(
            min=1, help="partitions of topics created (default: BACKCHECK_KAFKA_PARTITIONS)"
        ),
    ] = None,
    topic: Annotated[
        str | None, typer.Option(help="the command topic (default: backcheck.commands.v1)")
    ] = None,
    dlq_topic: Annotated[
        str | None,
        typer.Option(help="the dead-letter topic (default: backcheck.commands.dlq.v1)"),
    ] = None,
    outcomes_topic: Annotated[
        str | None,
        typer.Option(
            help="where each command is answered (default: backcheck.command-outcomes.v1)"
        ),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="SOURCE=USE-CASE[,USE-CASE]: what a sending service may ask for (repeat per "
            "source); without any, every source may send every write use case"
        ),
    ] = None,
    accept_unsigned: Annotated[
        bool,
        typer.Option(
            "--accept-unsigned",
            help="take commands without ce_keyid/ce_signature as before senders were checked "
            "(the topic's ACLs alone decide who writes); signed ones are checked all the same",
        ),
    ] = False,
    max_clock_skew: Annotated[
        int,
        typer.Option(
            min=1, max=86_400, help="seconds a signed command's ce_time may be off the clock"
        ),
    ] = 300,
    session_timeout_ms: Annotated[int, typer.Option(min=1)] = 10_000,
    heartbeat_interval_ms: Annotated[int, typer.Option(min=1)] = 3_000,
    max_poll_interval_ms: Annotated[int, typer.Option(min=1)] = 300_000,
    answer_timeout_ms: Annotated[
        int,
        typer.Option(
            min=100,
            max=600_000,
            help="how long an answer (outcome, dead letter) may wait for the broker to take it "
            "before it is sent again, its topic made again if the broker lost it",
        ),
    ] = 30_000,
    topic_check_ms: Annotated[
        int,
        typer.Option(
            min=100,
            max=3_600_000,
            help="how often the command topic is checked to be the one being read: a topic the "
            "broker lost or made anew stops the intake (exit 75), which, started again, reads "
            "it from its start",
        ),
    ] = 10_000,
    loglevel: Annotated[str, typer.Option(help="faust's log level")] = "warn",
    health_port: HealthPort = None,
) -> None:
    """Apply commands from other services: consume the command topic, one use case per
    message, applied once; what cannot be applied goes to the dead-letter topic with why.
    Every command is answered on the outcomes topic: accepted (its events) or refused.

    Each command must be signed by a registered sender (`backcheck principals add --kind
    service --public-key`) within its use cases and the actors it may act for."""
    from datetime import timedelta

    from infra.kafka.daemon import IntakeOptions, command_intake
    from infra.kafka.intake import DLQ_TOPIC
    from infra.kafka.topics import COMMANDS_TOPIC, OUTCOMES_TOPIC

    options = IntakeOptions(
        bootstrap=bootstrap_servers or "",
        group=group,
        partitions=partitions or 0,
        topic=topic or COMMANDS_TOPIC,
        dlq_topic=dlq_topic or DLQ_TOPIC,
        outcomes_topic=outcomes_topic or OUTCOMES_TOPIC,
        scopes=_scopes(scope or []),
        accept_unsigned=accept_unsigned,
        max_skew=timedelta(seconds=max_clock_skew),
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms,
        max_poll_interval_ms=max_poll_interval_ms,
        loglevel=loglevel,
        answer_timeout_ms=answer_timeout_ms,
        topic_check_ms=topic_check_ms,
    )
    _, code = _run(
        command_intake,
        options,
        lambda settings, running: (
            f"store: {settings.describe()}; commands from {options.topic} at {running.bootstrap}"
        ),
        (health_port, 0),
    )
    raise typer.Exit(code)


def _run(
    daemon: Callable[[Backcheck, Settings, Options], AbstractContextManager[Running]],
    options: Options,
    started: Callable[[Settings, Running], str],
    health: tuple[int | None, int],
) -> tuple[Running, int]:
    """Opens the daemon on the configured store, says what runs where, serves its health on
    the port of `health` (port, the readiness's lag bound) if any, runs it until
    SIGINT/SIGTERM; (the daemon, its exit code)."""
    from infra.ops.health import serve_health

    try:
        application, settings = open_app()
        with closing(application), daemon(application, settings, options) as running:
            err.print(f"[dim]{markup_safe(started(settings, running))}[/]")
            with _serving(serve_health(health[0], running.checks(health[1]), settings.health_host)):
                return running, running.run()
    except Exception as e:
        _fail_daemon(f"backcheck {daemon.__name__.replace('_', ' ')}", e)


def _scopes(items: list[str]) -> dict[str, frozenset[str]] | None:
    """--scope SOURCE=USE-CASE[,USE-CASE] options as what each source may ask for."""
    from services.catalogue import USE_CASES

    scopes: dict[str, frozenset[str]] | None = None
    for item in items:
        source, sep, names = item.partition("=")
        if not sep or not source.strip():
            raise typer.BadParameter(f"{item!r} is not SOURCE=USE-CASE[,...]", param_hint="--scope")
        allowed = frozenset(n.strip() for n in names.split(",") if n.strip())
        if unknown := sorted(allowed - USE_CASES.keys()):
            raise typer.BadParameter(
                f"{', '.join(unknown)}: not a use case (see `backcheck use-cases`)",
                param_hint="--scope",
            )
        scopes = scopes or {}
        scopes[source.strip()] = allowed
    return scopes


@app.command("send-command")
def send_command(
    command_type: Annotated[str, typer.Argument(help="a use case, e.g. register-candidate")],
    payload: Annotated[
        str, typer.Argument(help="the command as JSON, @FILE to read it from a file, - for stdin")
    ] = "-",
    command_id: Annotated[str, typer.Option("--id", help="the command's id (ce_id)")] = "",
    source: Annotated[
        str, typer.Option(help="the sending service (ce_source): the sender principal's name")
    ] = "backcheck-cli",
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key",
            help="the sender's private key (PEM, from `principals keygen`) to sign with "
            "(default: BACKCHECK_SENDER_KEY; neither: sent unsigned)",
        ),
    ] = None,
    key: Annotated[str | None, typer.Option(help="message key: the candidate id, if known")] = None,
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="host:port[,...] (default: BACKCHECK_KAFKA_BOOTSTRAP)")
    ] = None,
    topic: Annotated[
        str | None, typer.Option(help="the command topic (default: backcheck.commands.v1)")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(min=0, help="seconds to wait for the answer and print it (0: do not wait)"),
    ] = 0,
    outcomes_topic: Annotated[
        str, typer.Option(help="where the answer comes")
    ] = "backcheck.command-outcomes.v1",
) -> None:
    """Send one command to the command topic as a CloudEvent, signed with the sender's key
    (for operators and tests).

    With --wait, print its answer from the outcomes topic as JSON; exit 0 accepted, a refusal
    with the code its problem's kind has (as `backcheck do` exits for it: 2 invalid, 3 a rule,
    4 not found, 5 forbidden, 78 configuration, …), 75 no answer."""
    from infra.config import Settings, parse_bootstrap
    from infra.kafka.intake import send_command as send
    from infra.kafka.outcome import OutcomeWatch
    from infra.kafka.signatures import CommandSigner
    from infra.kafka.topics import COMMANDS_TOPIC

    command_id = command_id or str(uuid.uuid4())
    topic = topic or COMMANDS_TOPIC
    try:
        data = read_input(payload)
        json_object(data)  # a command that is not a JSON object is refused here, broker or not
        settings = Settings.load()
        bootstrap = parse_bootstrap(bootstrap_servers or settings.kafka_bootstrap)
        key_file = signing_key or settings.sender_key
        signer = CommandSigner.from_file(key_file) if key_file is not None else None
        watch = OutcomeWatch(bootstrap, outcomes_topic) if wait else None
        try:
            partition, offset = send(
                bootstrap,
                topic,
                command_type,
                command_id,
                source,
                data,
                key=key.encode() if key else None,
                signer=signer,
            )
            answer = watch.wait(f"{topic}/{partition}@{offset}", wait) if watch else None
        finally:
            if watch is not None:
                watch.close()
    except Exception as e:
        fail(e)
    signed = f", signed with key {signer.key_id}" if signer is not None else ", unsigned"
    console.print(markup_safe(f"sent {command_type} {command_id} from {source} to {topic}{signed}"))
    if answer is not None:
        _answered(answer[1])


def _answered(body: dict[str, object]) -> None:
    """The answer on stdout as JSON; a refusal also in one line, and as the exit code the
    problem table gives its kind (`refusal_exit_code`), as `backcheck do` would exit."""
    import orjson

    from infra.kafka.outcome import refusal_exit_code

    sys.stdout.write(orjson.dumps(body).decode() + "\n")
    if body.get("outcome") == "accepted":
        return
    problem = body.get("problem")
    problem = problem if isinstance(problem, dict) else {}
    err.print(
        Text.assemble(
            (f"refused ({visible(problem.get('rule'))})", "red"),
            f": {visible(problem.get('detail'))}",
        )
    )
    raise typer.Exit(refusal_exit_code(problem))
