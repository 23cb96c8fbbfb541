"""Scheduled duties: `scheduler` (runs retention, consent expiry and signed checkpoints on
their schedules, once across every scheduler on the store) and `duty-runs` (what ran, from
the store). The rules are services/schedule.py's, the wiring infra/scheduling.py's."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from infra.cli.common import app, console, err, fail, open_app
from infra.terminal import cells, markup_safe

if TYPE_CHECKING:
    from services.schedule import RunReport

TICK = 30.0  # seconds between looks at what is due


@app.command()
def scheduler(
    once: Annotated[
        bool, typer.Option("--once", help="run what is due now, then exit (for cron and tests)")
    ] = False,
    tick: Annotated[
        float, typer.Option(min=1.0, max=3600.0, help="seconds between looks at what is due")
    ] = TICK,
    as_json: Annotated[bool, typer.Option("--json", help="each run as one JSON line")] = False,
    health_port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="serve /healthz, /readyz (the store answers) and /metrics here"
        ),
    ] = None,
    publish_checkpoints: Annotated[
        bool,
        typer.Option(
            "--publish-checkpoints",
            help="the checkpoint duty also publishes the tree head on backcheck.checkpoints.v1 "
            "(BACKCHECK_KAFKA_BOOTSTRAP) for the witnesses",
        ),
    ] = False,
) -> None:
    """Run retention, consent expiry and signed checkpoints on their schedules
    (BACKCHECK_SCHEDULE_*), each run recorded in the store.

    Safe on several machines at once: each due run is claimed in the store, one scheduler wins
    and runs it, the others say who did. A claim not finished within BACKCHECK_SCHEDULE_LEASE
    (its holder died) is taken over. Runs until SIGINT/SIGTERM (a duty running then is given
    8 s to end); exit 1 if, with --once, a run failed or was taken over before it ended."""
    from infra.kafka.shutdown import exit_at_deadline
    from infra.ops import metrics
    from infra.ops.health import master_key_check, serve_health, settings_store_check
    from infra.scheduling import duty_scheduler
    from services.schedule import Every, Status

    stop = threading.Event()

    def stopping(*_: object) -> None:
        stop.set()
        exit_at_deadline("the scheduler")

    bad = False
    try:
        application, settings = open_app()
        scheduled = duty_scheduler(application, settings, publish_checkpoints=publish_checkpoints)
        plan = ", ".join(f"{d.name} {d.every}" for d in scheduled.duties) or "no duty (all off)"
        lease = str(Every(settings.schedule_lease)).removeprefix("every ")
        err.print(
            f"[dim]scheduler {markup_safe(scheduled.runner)} on "
            f"{markup_safe(settings.describe())}: {markup_safe(plan)}; lease {lease}[/]"
        )
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, stopping)
        # live: this process answers; ready: the store answers, on this process's master
        # key; metrics: runs by duty and
        # status, the newest checkpoint's age
        metrics.watch_checkpoints(settings.checkpoints_dir, time.time)
        checks = {"store": settings_store_check(settings)}
        if (master_key := master_key_check(application.keys, checks["store"])) is not None:
            checks["master_key"] = master_key  # its duties (retention, erasure) open keys
        health = serve_health(health_port, checks, settings.health_host)
        told: dict[str, tuple[object, str, int]] = {}  # duty -> what was said of it last
        while not stop.is_set():
            for report in scheduled.run_due(stopping=stop.is_set):
                bad = bad or report.status in (Status.FAILED, Status.LOST)
                if report.status in (Status.RAN, Status.FAILED, Status.LOST):  # its own runs
                    metrics.scheduled_run(report.duty, report.status.value)
                said = (report.run_id, report.status.value, report.attempt)
                if told.get(report.duty) != said:  # each change once, not each tick
                    told[report.duty] = said
                    _tell(report, as_json)
            if once:
                break
            stop.wait(tick)
        if health is not None:
            health.close()
    except Exception as e:
        fail(e, as_json)
    if once and bad:
        raise typer.Exit(1)


def _tell(report: RunReport, as_json: bool) -> None:
    from services.schedule import Status

    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "duty": report.duty,
                    "slot": report.slot.isoformat(),
                    "run_id": str(report.run_id),
                    "status": report.status.value,
                    "runner": report.runner,
                    "attempt": report.attempt,
                    "counts": report.counts,
                    "detail": report.detail,
                }
            )
            + "\n"
        )
        sys.stdout.flush()
        return
    style = {Status.FAILED: "red", Status.LOST: "yellow"}.get(report.status)
    line = f"{datetime.now(UTC):%H:%M:%S} {markup_safe(report.describe())}"
    console.print(f"[{style}]{line}[/]" if style else line)


@app.command("duty-runs")
def duty_runs(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """List every scheduled run recorded in the store: duty, slot, who ran it (each attempt),
    when, the outcome and its counts; replayed from the runs' events."""
    from services.schedule import recorded_runs

    try:
        application, _ = open_app(existing=True)
        runs = list(recorded_runs(application))
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        for run in runs:
            sys.stdout.write(
                json.dumps(
                    {
                        "run_id": str(run.run_id),
                        "duty": run.duty,
                        "slot": run.slot.isoformat(),
                        "runners": run.runners,
                        "started_at": run.started_at.isoformat(),
                        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                        "outcome": run.outcome,
                        "counts": run.counts,
                        "detail": run.detail,
                    }
                )
                + "\n"
            )
        return
    table = Table("duty", "slot (UTC)", "run by", "started", "finished", "outcome", "counts")
    for run in runs:
        table.add_row(
            *cells(
                run.duty,
                f"{run.slot:%Y-%m-%d %H:%M}",
                " then ".join(run.runners),
                f"{run.started_at:%Y-%m-%d %H:%M:%S}",
                f"{run.finished_at:%Y-%m-%d %H:%M:%S}" if run.finished_at else "(unfinished)",
                run.outcome or "",
                ", ".join(f"{k} {v}" for k, v in run.counts.items()) or run.detail,
            )
        )
    console.print(table)
    console.print(f"{len(runs)} run(s)")
