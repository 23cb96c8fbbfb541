"""The `backcheck` command line."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar
from uuid import UUID

import orjson
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from domain.classification import CATEGORIES
from infra.bootstrap import build_app
from infra.config import Settings
from infra.problem import problem_for
from infra.views.runner import ViewRunner
from projections.read_views import VIEWS
from services.application import Backcheck
from services.catalogue import USE_CASES

app = typer.Typer(
    name="backcheck",
    help="Employment background checks under strict privacy management (event-sourced).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)


def _open() -> tuple[Backcheck, Settings]:
    settings = Settings.from_env()
    return build_app(settings), settings


def _fail(error: Exception, as_json: bool = False) -> None:
    problem = problem_for(error)
    if problem is None:
        raise error
    if as_json:
        sys.stdout.write(orjson.dumps(problem.__dict__).decode() + "\n")
    else:
        err.print(f"[red]{problem.title}[/] ({problem.type}): {problem.detail}")
    raise typer.Exit(problem.exit_code)


@app.command()
def demo() -> None:
    """Run a complete screening story on the configured store and print what happened."""
    from infra.demo import DemoFailedError, run_demo

    try:
        application, settings = _open()
        console.print(f"[dim]store: {settings.describe()}[/]")
        run_demo(application, console)
    except DemoFailedError as e:
        err.print(f"[red]demo failed:[/] {e}")
        raise typer.Exit(1) from None
    except Exception as e:
        _fail(e)


@app.command()
def events(
    subject: Annotated[
        UUID | None, typer.Option(help="only events about this candidate (data subject)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="stop after this many")] = None,
) -> None:
    """List stored events in log order. Personal values are shown as their tier only."""
    try:
        application, _ = _open()
        table = Table("pos", "time (UTC)", "aggregate", "event", "by / data")
        count = 0
        for record in application.iter_events(subject):
            if as_json:
                sys.stdout.write(record.model_dump_json() + "\n")
            else:
                table.add_row(
                    str(record.position),
                    record.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
                    f"{record.aggregate} {str(record.originator_id)[:8]}",
                    record.event,
                    _brief(record.data),
                )
            count += 1
            if limit and count >= limit:
                break
        if not as_json:
            console.print(table)
            console.print(f"{count} event(s)")
    except Exception as e:
        _fail(e, as_json)


def _brief(data: dict[str, Any]) -> str:
    shown = {k: v for k, v in data.items() if k != "candidate_id"}
    text = json.dumps(shown, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 120 else text[:117] + "..."


@app.command()
def show(aggregate_id: UUID) -> None:
    """Show the current state of a candidate, consent, investigation or report."""
    from domain.errors import NotFoundError

    try:
        application, _ = _open()
        for getter in ("get_candidate", "get_consent", "get_investigation", "get_report"):
            try:
                result = getattr(application, getter)(aggregate_id)
            except NotFoundError:
                continue
            console.print_json(result.model_dump_json())
            return
        raise NotFoundError(f"nothing with id {aggregate_id} in the store")
    except Exception as e:
        _fail(e)


@app.command("do")
def do_use_case(
    use_case: Annotated[str, typer.Argument(help="a name from `backcheck use-cases`")],
    payload: Annotated[
        str, typer.Argument(help="the command as JSON, @FILE to read it from a file, - for stdin")
    ] = "-",
    as_json: Annotated[bool, typer.Option("--json", help="errors as problem+json")] = False,
) -> None:
    """Run one use case with a JSON command and print its result as JSON."""
    try:
        found = USE_CASES.get(use_case)
        if found is None:
            raise typer.BadParameter(
                f"unknown use case {use_case!r}; see `backcheck use-cases`", param_hint="USE_CASE"
            )
        if payload == "-":
            text = sys.stdin.read()
        elif payload.startswith("@"):
            text = Path(payload[1:]).read_text()
        else:
            text = payload
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise typer.BadParameter(f"not valid JSON: {e}", param_hint="PAYLOAD") from None
        if not isinstance(document, dict):
            raise typer.BadParameter("the command must be a JSON object", param_hint="PAYLOAD")
        application, _ = _open()
        result = found.run(application, document)
        sys.stdout.write(result.model_dump_json() + "\n")
    except typer.BadParameter:
        raise
    except Exception as e:
        _fail(e, as_json)


@app.command("use-cases")
def use_cases(
    schema: Annotated[
        str | None, typer.Option(help="print the JSON schema of this use case's command")
    ] = None,
) -> None:
    """List the use cases `backcheck do` can run (or print one command's JSON schema)."""
    if schema:
        if schema not in USE_CASES:
            raise typer.BadParameter(f"unknown use case {schema!r}", param_hint="--schema")
        console.print_json(json.dumps(USE_CASES[schema].command.model_json_schema()))
        return
    table = Table("use case", "rule it enforces")
    for uc in USE_CASES.values():
        table.add_row(uc.name, uc.summary)
    console.print(table)


@app.command()
def categories() -> None:
    """List the data categories and the tier each belongs to."""
    table = Table("category", "tier", "what")
    for c in CATEGORIES.values():
        table.add_row(c.key, c.tier.value, c.description)
    console.print(table)


@app.command()
def info() -> None:
    """Where the store is and how many events it holds."""
    try:
        application, settings = _open()
        console.print(f"store:  {settings.describe()}")
        console.print(f"events: {application.recorder.max_notification_id() or 0}")
    except Exception as e:
        _fail(e)


subject_cli = typer.Typer(help="A data subject's rights: erasure.")
app.add_typer(subject_cli, name="subject")


@subject_cli.command("erase")
def subject_erase(
    candidate_id: Annotated[UUID, typer.Argument(help="the candidate to erase")],
    reason: Annotated[str, typer.Option(help="why: the candidate's request, a retention rule")],
    actor: Annotated[str, typer.Option(help="who is erasing")] = "compliance",
    as_json: Annotated[bool, typer.Option("--json", help="the receipt as JSON")] = False,
) -> None:
    """Crypto-shred a candidate: destroy the keys to every personal value, keep the history."""
    from services.dto import EraseSubject

    try:
        application, _ = _open()
        result = application.erase_subject(
            EraseSubject(candidate_id=candidate_id, reason=reason, actor=actor)
        )
    except Exception as e:
        _fail(e, as_json)
        return
    if as_json:
        sys.stdout.write(result.model_dump_json() + "\n")
        return
    console.print(
        f"[green]erased[/] {candidate_id}: {result.keys_destroyed} data key(s) destroyed; "
        "their personal values now read as erased everywhere"
    )
    console.print(f"receipt (signed by key {result.receipt_key_id}):")
    console.print_json(result.receipt_statement)
    console.print(f"signature: {result.receipt_signature}")


read_cli = typer.Typer(help="Access-controlled reads of personal data (each one recorded).")
app.add_typer(read_cli, name="read")

# The options every recorded read takes.
_As = Annotated[str, typer.Option("--as", help="who is reading, e.g. hr:li.na or candidate:ID")]
_Purpose = Annotated[str, typer.Option(help="why; recorded with the read")]
_ConsentedPurpose = Annotated[str, typer.Option(help="why; must be a purpose the consent names")]
_BreakGlass = Annotated[
    str | None, typer.Option(help="compliance only: the justification to record")
]
_Json = Annotated[bool, typer.Option("--json", help="the answer as one JSON object")]
View = TypeVar("View", bound=BaseModel)


def _recorded_read(as_json: bool, read: Callable[[Backcheck], View]) -> View | None:
    """Runs one recorded read on the configured store: a refusal or an error becomes its
    problem and exit code, and with --json the answer is printed here. Otherwise returns the
    answer for the command to show as tables."""
    try:
        application, _ = _open()
        view = read(application)
    except Exception as e:
        _fail(e, as_json)
        return None
    if as_json:
        sys.stdout.write(view.model_dump_json() + "\n")
        return None
    return view


@read_cli.command("profile")
def read_profile(
    candidate_id: Annotated[UUID, typer.Argument(help="whose profile")],
    principal: _As,
    role: Annotated[str, typer.Option(help="recruiter, investigator, reviewer, ...")],
    purpose: _ConsentedPurpose,
    break_glass: _BreakGlass = None,
    as_json: _Json = False,
) -> None:
    """Read a candidate's profile: decided by policy, redacted per field, recorded first."""
    from services.dto import ReadProfile

    view = _recorded_read(
        as_json,
        lambda application: application.read_profile(
            ReadProfile(
                candidate_id=candidate_id,
                principal=principal,
                role=role,
                purpose=purpose,
                break_glass=break_glass,
            )
        ),
    )
    if view is None:
        return
    table = Table("field", "category", "tier", "value")
    for f in view.fields:
        table.add_row(f.name, f.category, f.tier, "[dim]withheld[/]" if f.withheld else f.value)
    console.print(table)
    console.print(f"{view.outcome}; recorded as access {view.access_id}")


@read_cli.command("report")
def read_report(
    report_id: Annotated[UUID, typer.Argument(help="which report")],
    principal: _As,
    role: Annotated[str, typer.Option(help="reviewer, hiring_manager, candidate, ...")],
    purpose: _ConsentedPurpose,
    break_glass: _BreakGlass = None,
    as_json: _Json = False,
) -> None:
    """Read a report: a reviewer one under review, a hiring manager one disclosed to them;
    an item touching a withheld category comes back without outcome or note. Recorded first."""
    from services.dto import ReadReport

    view = _recorded_read(
        as_json,
        lambda application: application.read_report(
            ReadReport(
                report_id=report_id,
                principal=principal,
                role=role,
                purpose=purpose,
                break_glass=break_glass,
            )
        ),
    )
    if view is None:
        return
    withheld = "[dim]withheld[/]"
    console.print(f"report {view.report_id}, edition {view.edition}: {view.status}")
    table = Table("check", "outcome", "sources", "flags", "note")
    for item in view.items:
        if item.withheld:
            table.add_row(item.check_type, withheld, withheld, withheld, withheld)
        else:
            table.add_row(
                item.check_type,
                item.outcome or "—",
                ", ".join(item.source_roles),
                ", ".join(item.flags),
                item.note or "",
            )
    console.print(table)
    console.print(f"{view.outcome}; recorded as access {view.access_id}")


@read_cli.command("investigation")
def read_investigation(
    investigation_id: Annotated[UUID, typer.Argument(help="which investigation")],
    principal: _As,
    role: Annotated[str, typer.Option(help="recruiter, investigator, candidate, ...")],
    purpose: _ConsentedPurpose,
    break_glass: _BreakGlass = None,
    as_json: _Json = False,
) -> None:
    """Read an investigation's status, the candidate's feedback and disputes and the answers:
    decided by policy, redacted per category, recorded first."""
    from services.dto import ReadInvestigation

    view = _recorded_read(
        as_json,
        lambda application: application.read_investigation(
            ReadInvestigation(
                investigation_id=investigation_id,
                principal=principal,
                role=role,
                purpose=purpose,
                break_glass=break_glass,
            )
        ),
    )
    if view is None:
        return
    withheld = "[dim]withheld[/]"
    console.print(f"{view.status}: {view.purpose} — {view.findings} finding(s)")
    checks = Table("check", "categories", "concluded")
    for c in view.checks:
        checks.add_row(
            c.check_type, ", ".join(c.categories), withheld if c.withheld else c.concluded or "—"
        )
    console.print(checks)
    said = Table("", "the candidate said", "the answer")
    for kind, items in (("feedback", view.feedback), ("dispute", view.disputes)):
        for x in items:
            if x.withheld:
                said.add_row(kind, withheld, withheld)
            else:
                said.add_row(kind, x.words or "", x.answer or "[dim]not yet answered[/]")
    if view.feedback or view.disputes:
        console.print(said)
    console.print(f"{view.outcome}; recorded as access {view.access_id}")


@subject_cli.command("access-log")
def subject_access_log(
    candidate_id: Annotated[UUID, typer.Argument(help="the candidate")],
    principal: _As,
    role: Annotated[str, typer.Option(help="candidate (their own log) or compliance")],
    purpose: _Purpose,
    as_json: _Json = False,
) -> None:
    """Who read what about the candidate, when and why. The candidate reads their own log, a
    compliance officer anyone's; the read is decided by policy and recorded first."""
    from services.dto import ReadAccessLog

    log = _recorded_read(
        as_json,
        lambda application: application.read_access_log(
            ReadAccessLog(
                candidate_id=candidate_id, principal=principal, role=role, purpose=purpose
            )
        ),
    )
    if log is None:
        return
    table = Table("when (UTC)", "who", "role", "purpose", "view", "outcome", "withheld")
    for e in log.entries:
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.principal,
            e.role,
            e.purpose,
            e.view,
            e.outcome,
            ", ".join(e.withheld),
        )
    console.print(table)
    console.print(f"{len(log.entries)} entries; this read recorded as access {log.access_id}")


@subject_cli.command("consents")
def subject_consents(
    candidate_id: Annotated[UUID, typer.Argument(help="the candidate")],
    principal: _As,
    role: Annotated[str, typer.Option(help="candidate, recruiter, investigator or compliance")],
    purpose: _Purpose,
    as_json: _Json = False,
) -> None:
    """The candidate's consent register: what each consent covers and whether it is in force
    now. The candidate, their recruiter, an assigned investigator or compliance; the read is
    decided by policy and recorded first."""
    from services.dto import ReadConsents

    register = _recorded_read(
        as_json,
        lambda application: application.read_consents(
            ReadConsents(candidate_id=candidate_id, principal=principal, role=role, purpose=purpose)
        ),
    )
    if register is None:
        return
    table = Table("consent", "status", "purposes", "checks", "valid until", "relied on by")
    for c in register.consents:
        table.add_row(
            str(c.consent_id),
            c.status,
            ", ".join(c.terms.purposes),
            ", ".join(c.terms.check_types),
            c.valid_until.strftime("%Y-%m-%d") if c.valid_until else "—",
            str(len(c.relied_on_by)),
        )
    console.print(table)
    console.print(f"{len(register.consents)} consent(s); recorded as access {register.access_id}")


views_cli = typer.Typer(help="The read views: where they stand; rebuilding them from the log.")
app.add_typer(views_cli, name="views")


def _runner(application: Backcheck) -> ViewRunner:
    if not isinstance(application.views, ViewRunner):
        raise RuntimeError("this application has no read views")
    return application.views


@views_cli.command("status")
def views_status(
    stream: Annotated[
        bool, typer.Option("--stream", help="the projection workers' views, per partition")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="as JSON")] = False,
) -> None:
    """How far the views have applied the log, and how many rows each holds."""
    try:
        application, settings = _open()
        head = application.recorder.max_notification_id() or 0
        if stream:
            from infra.kafka.worker import worker_views

            store = worker_views(application, settings)
            status: dict[str, Any] = {
                "head": head,
                "partitions": store.progress(),
                "rows": store.counts(),
            }
        else:
            runner = _runner(application)
            status = {"position": runner.position, "head": head, "rows": runner.store.counts()}
    except Exception as e:
        _fail(e, as_json)
        return
    if as_json:
        sys.stdout.write(orjson.dumps(status).decode() + "\n")
        return
    if stream:
        console.print(f"workers' views; the log's head is at {head}")
        parts = Table("topic/partition", "last position applied")
        for name, position in status["partitions"].items():
            parts.add_row(name, str(position))
        console.print(parts)
    else:
        behind = head - status["position"]
        console.print(
            f"views at position {status['position']} of {head}"
            + (
                f" ([yellow]{behind} behind[/]; any read catches up first)"
                if behind
                else " (current)"
            )
        )
    table = Table("view", "rows")
    for view in VIEWS:
        table.add_row(view, str(status["rows"].get(view, 0)))
    console.print(table)


@views_cli.command("rebuild")
def views_rebuild(
    batch: Annotated[int, typer.Option(min=1, help="events per transaction")] = 500,
) -> None:
    """Drop every view row and build them again from the start of the log (identical rows)."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    try:
        application, _ = _open()
        runner = _runner(application)
        started = time.perf_counter()
        columns = (TextColumn("rebuilding views"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("rebuild", total=application.recorder.max_notification_id() or 0)
            position = runner.rebuild(
                batch=batch,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        rows = runner.store.counts()
    except Exception as e:
        _fail(e)
        return
    elapsed = time.perf_counter() - started
    console.print(
        f"rebuilt from {position} events in {elapsed:.1f} s: "
        + ", ".join(f"{view} {rows.get(view, 0)}" for view in VIEWS)
    )


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
        application, settings = _open()
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
        _fail(e)
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
        application, settings = _open()
        bootstrap = parse_bootstrap(bootstrap_servers or settings.kafka_bootstrap)
        store = worker_views(application, settings)
        relayed = RelayState(application, settings, f"relay:{topic}")  # what the relay delivered
    except Exception as e:
        _fail(e)
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


retention_cli = typer.Typer(help="Retention: shred what has been kept long enough.")
app.add_typer(retention_cli, name="retention")


@retention_cli.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what is due; change nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the result as JSON")] = False,
) -> None:
    """Shred every tier of personal values whose retention period has passed."""
    from rich.progress import Progress

    from services.dto import RunRetention

    try:
        application, _ = _open()
        with Progress(console=err, disable=as_json, transient=True) as bar:
            task = bar.add_task("shredding" if not dry_run else "checking", total=None)
            result = application.run_retention(
                RunRetention(dry_run=dry_run),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except Exception as e:
        _fail(e, as_json)
        return
    if as_json:
        sys.stdout.write(result.model_dump_json() + "\n")
        return
    verb = "due" if dry_run else "shredded"
    table = Table("candidate", "tier", "quiet since", "due at", "")
    for item in result.shredded:
        table.add_row(
            str(item.candidate_id),
            item.tier,
            f"{item.quiet_since:%Y-%m-%d}",
            f"{item.due_at:%Y-%m-%d}",
            verb,
        )
    for item in result.held:
        table.add_row(
            str(item.candidate_id),
            item.tier,
            f"{item.quiet_since:%Y-%m-%d}",
            f"{item.due_at:%Y-%m-%d}",
            "[yellow]legal hold[/]",
        )
    console.print(table)
    console.print(
        f"{len(result.shredded)} tier(s) {verb}, {len(result.held)} kept under legal hold"
    )


audit = typer.Typer(help="The compliance officer's tools: verify, checkpoint, replay, export.")
app.add_typer(audit, name="audit")


@audit.command()
def keygen(
    out: Annotated[
        Path | None, typer.Option(help="directory for the key pair (default: DATA_DIR/keys)")
    ] = None,
) -> None:
    """Create the Ed25519 key pair that signs checkpoints."""
    from infra.audit.checkpoint import CheckpointError, generate_keys

    settings = Settings.from_env()
    try:
        private, public = generate_keys(out or settings.signing_key_path.parent)
    except CheckpointError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    console.print(f"private key: {private}  (keep it secret; mode 600)")
    console.print(f"public key:  {public}  (give it to whoever verifies checkpoints)")


@audit.command()
def checkpoint(
    out: Annotated[
        Path | None,
        typer.Option(help="where to write it (default: DATA_DIR/checkpoints/checkpoint-POS.json)"),
    ] = None,
) -> None:
    """Sign the chain head (position, hash, time) for an outside witness to keep."""
    from datetime import UTC, datetime

    from infra.audit.checkpoint import CheckpointError, load_private_key, sign
    from infra.audit.verification import open_source

    settings = Settings.from_env()
    try:
        key = load_private_key(settings.signing_key_path)
        build_app(settings).close()  # creates the store and its tables on first use
        with open_source(settings) as source:
            head = source.head()
    except CheckpointError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    signed = sign(head, datetime.now(UTC), key)
    path = out or settings.checkpoints_dir / f"checkpoint-{head.position}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(signed.to_json())
    console.print(f"checkpoint at position {head.position}, hash {head.hash.hex()[:16]}…")
    console.print(f"written to {path}")


@audit.command()
def verify(
    checkpoint_files: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", "-c", help="a signed checkpoint to hold the chain to"),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="the trusted checkpoint key (default: BACKCHECK_VERIFY_KEY)")
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="verify this evidence bundle offline, not the store")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the verdict as JSON")] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="processes to verify with (default: all cores on large stores)"),
    ] = None,
) -> None:
    """Recompute the hash chain over every stored event; exit 0 when intact, 1 otherwise."""
    if bundle is not None:
        _verify_bundle(bundle, public_key, as_json)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from infra.audit.checkpoint import CheckpointError, check_signature, load_public_key, read
    from infra.audit.verification import Problem, open_source
    from infra.audit.verification import verify as run_verify

    settings = Settings.from_env()
    checkpoints = []
    bad_signatures: list[Problem] = []
    try:
        if checkpoint_files:
            key = load_public_key(public_key or settings.verify_key_path)
            for path in checkpoint_files:
                cp = read(path)
                problem = check_signature(cp, key)
                if problem:
                    bad_signatures.append(Problem(cp.position, "checkpoint", f"{path}: {problem}"))
                else:
                    checkpoints.append(cp)
        with open_source(settings) as source:
            total = source.count()
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                disable=as_json or total < 50_000,
                transient=True,
            ) as bar:
                task = bar.add_task("verifying", total=total)
                verdict = run_verify(
                    source,
                    checkpoints,
                    lambda n: bar.update(task, completed=n),
                    opener=functools.partial(open_source, settings),
                    workers=workers or ((os.cpu_count() or 1) if total >= 200_000 else 1),
                )
    except CheckpointError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    verdict.problems.extend(bad_signatures)
    verdict.checkpoints += len(bad_signatures)
    if as_json:
        sys.stdout.write(json.dumps(verdict.as_dict()) + "\n")
    elif verdict.intact:
        console.print(
            f"[green]intact[/]: {verdict.checked} events, head {verdict.head.position} "
            f"{verdict.head.hash.hex()[:16]}…, {verdict.checkpoints} checkpoint(s) hold"
        )
    else:
        first = verdict.first
        assert first is not None
        err.print(
            f"[red]TAMPERED[/]: first bad position {first.position}: {first.kind}: {first.detail}"
        )
        for p in sorted(verdict.problems, key=lambda p: p.position)[1:20]:
            err.print(f"  also at {p.position}: {p.kind}: {p.detail}")
    raise typer.Exit(0 if verdict.intact else 1)


def _verify_bundle(path: Path, public_key: Path | None, as_json: bool) -> None:
    from infra.audit.checkpoint import CheckpointError, load_public_key
    from infra.audit.evidence import verify_bundle

    settings = Settings.from_env()
    try:
        key = load_public_key(public_key or settings.verify_key_path)
        data = path.read_bytes()
    except (CheckpointError, OSError) as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    verdict = verify_bundle(data, key)
    if as_json:
        sys.stdout.write(json.dumps({**verdict.__dict__, "intact": verdict.intact}) + "\n")
    elif verdict.intact:
        console.print(
            f"[green]intact[/]: {verdict.events} events about {verdict.subject}, proven up to "
            f"the signed checkpoint at position {verdict.checkpoint_position}"
        )
    else:
        err.print(f"[red]NOT VALID[/]: {path}")
        for problem in verdict.problems:
            err.print(f"  {problem}")
    raise typer.Exit(0 if verdict.intact else 1)


@audit.command("export")
def audit_export(
    subject: Annotated[UUID, typer.Option(help="the candidate (data subject)")],
    out: Annotated[
        Path | None, typer.Option(help="bundle file (default: evidence-SUBJECT-POS.bundle)")
    ] = None,
    to: Annotated[str, typer.Option(help="who receives the bundle")] = "compliance archive",
    purpose: Annotated[str, typer.Option(help="why it is handed over")] = "compliance evidence",
    actor: Annotated[str, typer.Option(help="who is exporting")] = "compliance",
) -> None:
    """Export one subject's events with chain proofs and a checkpoint signed now. The export
    is a disclosure of personal data: it is recorded (DataDisclosed) before the file exists."""
    from datetime import UTC, datetime

    from infra.audit.checkpoint import CheckpointError, load_private_key
    from infra.audit.evidence import BundleError, export_bundle
    from infra.audit.verification import open_source
    from services.dto import RecordDisclosure

    settings = Settings.from_env()
    try:
        key = load_private_key(settings.signing_key_path)
        application = build_app(settings)
        application.record_disclosure(
            RecordDisclosure(
                candidate_id=subject,
                recipient=to,
                purpose=purpose,
                channel="evidence bundle",
                actor=actor,
            )
        )
        entries = list(application.timeline(subject))  # one replay: positions and timeline
        positions = [e.position for e in entries]
        timeline = [e.model_dump(mode="json") for e in entries]
        with open_source(settings) as source:
            data, checkpoint = export_bundle(
                source, subject, positions, key, datetime.now(UTC), timeline
            )
    except (CheckpointError, BundleError) as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    except Exception as e:
        _fail(e)
        return
    path = out or Path(f"evidence-{subject}-{checkpoint.position}.bundle")
    path.write_bytes(data)
    settings.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    (settings.checkpoints_dir / f"checkpoint-{checkpoint.position}.json").write_text(
        checkpoint.to_json()
    )
    console.print(
        f"{len(positions)} events about {subject}, proven up to the checkpoint at position "
        f"{checkpoint.position}: {path} ({len(data):,} bytes)"
    )


@audit.command("timeline")
def audit_timeline(
    subject: Annotated[UUID, typer.Option(help="the candidate (data subject)")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Everything that happened to one candidate, in order: who, what, when, which consent."""
    try:
        application, _ = _open()
        entries = list(application.timeline(subject))
        if not entries:
            from domain.errors import NotFoundError

            raise NotFoundError(f"no events about candidate {subject} in the store")
        if as_json:
            for entry in entries:
                sys.stdout.write(entry.model_dump_json() + "\n")
            return
        table = Table("pos", "when (UTC)", "who", "what", "consent")
        for entry in entries:
            table.add_row(
                str(entry.position),
                entry.time.strftime("%Y-%m-%d %H:%M:%S"),
                entry.who,
                entry.what,
                str(entry.consent_id)[:8] if entry.consent_id else "-",
            )
        console.print(table)
    except Exception as e:
        _fail(e, as_json)


@audit.command("as-of")
def audit_as_of(
    moment: Annotated[str, typer.Argument(help="ISO 8601 time, e.g. 2026-11-22T10:00:00+00:00")],
    subject: Annotated[UUID | None, typer.Option(help="only this candidate")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Rebuild the case overview as it was at a moment, from the event store alone."""
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(moment)
    except ValueError:
        raise typer.BadParameter(
            f"{moment!r} is not an ISO 8601 time (e.g. 2026-11-22T10:00:00+00:00)",
            param_hint="MOMENT",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        application, _ = _open()
        rows = application.as_of(when, subject)
    except Exception as e:
        _fail(e, as_json)
        return
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    table = Table("candidate", "consents", "investigations", "reports")
    for row in rows:
        table.add_row(
            row["candidate_id"][:8] + ("  (erasure requested)" if row["erasure_requested"] else ""),
            "\n".join(f"{k[:8]} {v}" for k, v in row["consents"].items()),
            "\n".join(f"{k[:8]} {v}" for k, v in row["investigations"].items()),
            "\n".join(f"{k[:8]} {v}" for k, v in row["reports"].items()),
        )
    console.print(f"as of {when.isoformat()}")
    console.print(table)


@audit.command("check")
def audit_check(
    as_json: Annotated[bool, typer.Option("--json", help="violations as JSON lines")] = False,
) -> None:
    """Replay the whole stream and report every broken rule with its position (exit 1 if any)."""
    try:
        application, _ = _open()
        found = list(application.violations())
    except Exception as e:
        _fail(e, as_json)
        return
    if as_json:
        for v in found:
            sys.stdout.write(
                json.dumps(
                    {
                        **v.__dict__,
                        "aggregate_id": str(v.aggregate_id),
                        "candidate_id": str(v.candidate_id),
                    }
                )
                + "\n"
            )
    elif not found:
        console.print(
            f"[green]no violations[/] in {application.recorder.max_notification_id() or 0} events"
        )
    else:
        table = Table("pos", "rule broken", "aggregate", "candidate", "detail")
        for v in found:
            table.add_row(
                str(v.position), v.rule, str(v.aggregate_id)[:8], str(v.candidate_id)[:8], v.detail
            )
        console.print(table)
        err.print(f"[red]{len(found)} violation(s)[/]")
    raise typer.Exit(1 if found else 0)


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
        _fail(e)
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
        _fail(e)
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
