"""Retention: `retention run`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from infra.cli.common import app, console, err, fail, open_app
from infra.terminal import cells

retention_cli = typer.Typer(help="Retention: shred what has been kept long enough.")
app.add_typer(retention_cli, name="retention")


@retention_cli.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what is due; change nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the result as JSON")] = False,
) -> None:
    """Shred every tier of personal values whose retention period has passed; first finish any
    shredding an earlier run recorded but was cut off before destroying its key."""
    from rich.progress import Progress

    from services.dto import RunRetention

    try:
        application, _ = open_app()
        with Progress(console=err, disable=as_json, transient=True) as bar:
            task = bar.add_task("shredding" if not dry_run else "checking", total=None)
            result = application.run_retention(
                RunRetention(dry_run=dry_run),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        sys.stdout.write(result.model_dump_json() + "\n")
        return
    verb = "due" if dry_run else "shredded"
    table = Table("candidate", "tier", "quiet since", "due at", "")
    for item in result.shredded:
        table.add_row(
            *cells(
                item.candidate_id,
                item.tier,
                f"{item.quiet_since:%Y-%m-%d}",
                f"{item.due_at:%Y-%m-%d}",
                verb,
            )
        )
    for item in result.held:
        table.add_row(
            *cells(
                item.candidate_id,
                item.tier,
                f"{item.quiet_since:%Y-%m-%d}",
                f"{item.due_at:%Y-%m-%d}",
                Text("legal hold", style="yellow"),
            )
        )
    console.print(table)
    console.print(
        f"{len(result.shredded)} tier(s) {verb}, {len(result.held)} kept under legal hold"
    )
    for cut in result.finished:  # recorded by an earlier run that stopped before the keys
        when = f"at {cut.recorded_at.isoformat()}" if cut.recorded_at else "earlier"
        done = "finishing it is due" if dry_run else "finished now"
        console.print(
            f"retention of the {cut.tier} data of {cut.candidate_id} was recorded {when} but "
            f"not finished; {done}"
        )
