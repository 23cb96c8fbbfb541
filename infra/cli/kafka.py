"""Kafka: `relay`, `worker`, `ingest`, `send-command`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from infra.bootstrap import build_app
from infra.cli.common import (
    app,
    console,
    err,
    fail,
    open_app,
)
from infra.config import Settings
from services.catalogue import USE_CASES


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
) -> None:
    """Publish every stored event, in log order, to the Kafka events topic.

    Follows the log from the position it recorded last, until SIGINT/SIGTERM; the position of a
    page is recorded only once the broker acknowledged all of it (acks=all, idempotent
    producer), so a crash or an outage loses nothing and resends at most that page. Without
    --once an unavailable broker is waited for; with --once it is an error (exit 69).
    """
    import signal

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from infra.config import parse_bootstrap
    from infra.kafka.relay import PartitionCountError, Relay, RelayBusyError, RelayFailedError
    from infra.kafka.topics import BrokerUnavailableError

    try:
        application, settings = open_app()
        servers = parse_bootstrap(bootstrap_servers or settings.kafka_bootstrap)
        relay_ = Relay(
            application,
            settings,
            topic=topic,
            bootstrap=servers,
            partitions=partitions or settings.kafka_partitions,
            page=batch,
            source=source,
        )
    except RelayBusyError as e:
        err.print(f"[red]relay not started:[/] {e}")
        raise typer.Exit(75) from None  # EX_TEMPFAIL
    except Exception as e:
        fail(e)
        return
    relay_.on_notice = lambda text: err.print(f"[yellow]{text}[/]")
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: relay_.stop.set())
    err.print(
        f"[dim]relay of {settings.describe()} to {topic} on {servers}, "
        f"from position {relay_.position}[/]"
    )
    columns = (TextColumn("publishing"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("relay", total=relay_.head())
            sent = relay_.run(
                once=once,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                on_retry=lambda e: err.print(
                    f"[yellow]not publishing:[/] {e}"
                    if isinstance(e, PartitionCountError)
                    else f"[yellow]waiting for the broker:[/] {e}"
                ),
            )
    except (BrokerUnavailableError, RelayFailedError) as e:
        err.print(f"[red]Kafka unavailable:[/] {e}")
        raise typer.Exit(69) from None  # EX_UNAVAILABLE
    except PartitionCountError as e:
        err.print(f"[red]relay stopped:[/] {e}")
        raise typer.Exit(78) from None  # EX_CONFIG
    finally:
        position = relay_.position
        relay_.close()
        application.close()
    console.print(f"published {sent} events to {topic}; position {position}")


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
) -> None:
    """Run a projection worker: build the read views from the Kafka events topic (faust).

    Several workers share the topic's partitions in one consumer group. Views go to
    `backcheck_stream_views` on PostgreSQL, or `<store>.stream-views.sqlite` on the embedded
    store; each partition's progress is kept with the rows, so redelivery changes nothing.
    Stops on SIGINT/SIGTERM.
    """
    from infra.config import parse_bootstrap
    from infra.kafka.relay import RelayState
    from infra.kafka.topics import BrokerUnavailableError
    from infra.kafka.worker import (
        StallWatch,
        StreamProjection,
        WorkerOptions,
        run_worker,
        worker_views,
    )

    try:
        application, settings = open_app()
        bootstrap = parse_bootstrap(bootstrap_servers or settings.kafka_bootstrap)
        store = worker_views(application, settings)
        relayed = RelayState(application, settings, f"relay:{topic}")  # what the relay delivered
    except Exception as e:
        fail(e)
        return
    options = WorkerOptions(
        bootstrap=bootstrap,
        group=group,
        partitions=partitions or settings.kafka_partitions,
        batch=batch,
        session_timeout=session_timeout_ms / 1000,
        heartbeat_interval=heartbeat_interval_ms / 1000,
        max_poll_interval=max_poll_interval_ms / 1000,
        datadir=str(settings.data_dir / "faust" / group),
    )
    err.print(f"[dim]worker of group {group} on {bootstrap}; views in {settings.describe()}[/]")
    projection = StreamProjection(application, store, topic=topic)
    watch = StallWatch(projection, lambda: relayed.load()[1])
    try:
        code = run_worker(projection, options, watch)
    except BrokerUnavailableError as e:
        err.print(f"[red]Kafka unavailable:[/] {e}; start the broker or set --bootstrap-servers")
        raise typer.Exit(69) from None  # EX_UNAVAILABLE
    finally:
        relayed.close()
        application.close()
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
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="SOURCE=USE-CASE[,USE-CASE]: what a sending service may ask for (repeat per "
            "source); without any, every source may send every write use case"
        ),
    ] = None,
    session_timeout_ms: Annotated[int, typer.Option(min=1)] = 10_000,
    heartbeat_interval_ms: Annotated[int, typer.Option(min=1)] = 3_000,
    max_poll_interval_ms: Annotated[int, typer.Option(min=1)] = 300_000,
    loglevel: Annotated[str, typer.Option(help="faust's log level")] = "warn",
) -> None:
    """Apply commands from other services: consume the command topic, one use case per
    message, applied once; what cannot be applied goes to the dead-letter topic with why."""
    from faust.worker import Worker

    from infra.config import parse_bootstrap
    from infra.kafka.intake import COMMANDS_TOPIC, DLQ_TOPIC, decide, faust_app
    from infra.kafka.topics import ensure_topics
    from services.intake import CommandIntake

    topic = topic or COMMANDS_TOPIC
    dlq_topic = dlq_topic or DLQ_TOPIC

    scopes: dict[str, frozenset[str]] | None = None
    for item in scope or []:
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
    try:
        settings = Settings.from_env()
        bootstrap = parse_bootstrap(bootstrap_servers or settings.kafka_bootstrap)
        count = partitions or settings.kafka_partitions
        application = build_app(settings)
        intake = CommandIntake(application, scopes)
        ensure_topics(bootstrap, count, topic, dlq_topic)
    except Exception as e:
        fail(e)
        return
    faust_dir = settings.data_dir / "faust" / group
    faust_dir.mkdir(parents=True, exist_ok=True)
    worker_app = faust_app(
        lambda message: decide(intake, message),
        bootstrap,
        group=group,
        topic=topic,
        dlq_topic=dlq_topic,
        partitions=count,
        consumer_settings={
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "max_poll_interval_ms": max_poll_interval_ms,
        },
        datadir=str(faust_dir),  # as the workers', not in the working directory
    )
    err.print(f"[dim]store: {settings.describe()}; commands from {topic} at {bootstrap}[/]")
    try:
        Worker(worker_app, loglevel=loglevel, quiet=True).execute_from_commandline()
    finally:
        application.close()


@app.command("send-command")
def send_command(
    command_type: Annotated[str, typer.Argument(help="a use case, e.g. register-candidate")],
    payload: Annotated[
        str, typer.Argument(help="the command as JSON, @FILE to read it from a file, - for stdin")
    ] = "-",
    command_id: Annotated[str, typer.Option("--id", help="the command's id (ce_id)")] = "",
    source: Annotated[str, typer.Option(help="the sending service (ce_source)")] = "backcheck-cli",
    key: Annotated[str | None, typer.Option(help="message key: the candidate id, if known")] = None,
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="host:port[,...] (default: BACKCHECK_KAFKA_BOOTSTRAP)")
    ] = None,
    topic: Annotated[
        str | None, typer.Option(help="the command topic (default: backcheck.commands.v1)")
    ] = None,
) -> None:
    """Send one command to the command topic as a CloudEvent (for operators and tests)."""
    import uuid
    from datetime import UTC, datetime

    from infra.config import parse_bootstrap
    from infra.kafka.intake import COMMANDS_TOPIC
    from infra.kafka.topics import MissingTopicError, kafka_producer, missing_topics

    topic = topic or COMMANDS_TOPIC
    text = sys.stdin.read() if payload == "-" else payload
    if payload.startswith("@"):
        text = Path(payload[1:]).read_text()
    command_id = command_id or str(uuid.uuid4())
    try:
        bootstrap = parse_bootstrap(bootstrap_servers or Settings.from_env().kafka_bootstrap)
        if missing_topics(bootstrap, topic):
            raise MissingTopicError(
                f"no topic {topic} on {bootstrap}: `backcheck intake` creates it (with "
                "BACKCHECK_KAFKA_PARTITIONS partitions) when it starts; start it first"
            )
    except Exception as e:
        fail(e)
        return
    producer = kafka_producer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        producer.send(
            topic,
            key=key.encode() if key else None,
            value=text.encode(),
            headers=[
                ("ce_specversion", b"1.0"),
                ("ce_id", command_id.encode()),
                ("ce_source", source.encode()),
                ("ce_type", command_type.encode()),
                ("ce_time", datetime.now(UTC).isoformat().encode()),
                ("content-type", b"application/json"),
            ],
        ).get(timeout=30)
    finally:
        producer.close()
    console.print(f"sent {command_type} {command_id} from {source} to {topic}")
