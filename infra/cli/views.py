"""The read views: `views status`, `views rebuild`."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from infra.cli.common import (
    app,
    console,
    err,
    fail,
    open_app,
)
from infra.terminal import cells
from infra.views.runner import ViewRunner
from projections.read_views import VIEWS
from services.application import Backcheck

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
        application, settings = open_app()
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
        fail(e, as_json)
        return
    if as_json:
        sys.stdout.write(orjson.dumps(status).decode() + "\n")
        return
    if stream:
        console.print(f"workers' views; the log's head is at {head}")
        parts = Table("topic/partition", "last position applied")
        for name, position in status["partitions"].items():
            parts.add_row(*cells(name, position))
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
        table.add_row(*cells(view, status["rows"].get(view, 0)))
    console.print(table)


@views_cli.command("rebuild")
def views_rebuild(
    batch: Annotated[int, typer.Option(min=1, help="events per transaction")] = 500,
) -> None:
    """Drop every view row and build them again from the start of the log (identical rows)."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    try:
        application, _ = open_app()
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
        fail(e)
        return
    elapsed = time.perf_counter() - started
    console.print(
        f"rebuilt from {position} events in {elapsed:.1f} s: "
        + ", ".join(f"{view} {rows.get(view, 0)}" for view in VIEWS)
    )
