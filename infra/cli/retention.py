"""Retention: `retention run`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from infra.cli.common import app, console, err, fail, open_app
from infra.terminal import cells

if TYPE_CHECKING:
    from services.dto import DueShred

retention_cli = typer.Typer(help="Retention: shred what has been kept long enough.")
app.add_typer(retention_cli, name="retention")


@retention_cli.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what is due; change nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the result as JSON")] = False,
) -> None:
    """Shred every category of personal values whose retention period has passed (a tier
    whole once all its categories are due); first finish any shredding an earlier run recorded
    but was cut off before destroying its keys."""
    from rich.progress import Progress

    from services.dto import RunRetention

    try:
        application, _ = open_app()
        with Progress(console=err, disable=as_json or not err.is_terminal, transient=True) as bar:
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
    table = Table("candidate", "tier", "categories", "quiet since", "due at", "outcome")
    for item in result.shredded:
        table.add_row(
            *cells(
                item.candidate_id,
                item.tier,
                _categories(item),
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
                _categories(item),
                f"{item.quiet_since:%Y-%m-%d}",
                f"{item.due_at:%Y-%m-%d}",
                Text("legal hold", style="yellow"),
            )
        )
    if table.rows:
        console.print(table)
    whole = sum(1 for i in result.shredded if i.whole_tier)
    console.print(
        f"{whole} tier(s) and {len(result.shredded) - whole} category group(s) {verb}, "
        f"{len(result.held)} kept under legal hold"
    )
    for cut in result.finished:  # recorded by an earlier run that stopped before the keys
        when = f"at {cut.recorded_at.isoformat()}" if cut.recorded_at else "earlier"
        done = "finishing it is due" if dry_run else "finished now"
        console.print(
            f"retention of the {cut.tier} data ({', '.join(cut.keys)}) of {cut.candidate_id} was "
            f"recorded {when} but not finished; {done}"
        )


def _categories(item: DueShred) -> str:
    """The categories shredded; a whole tier says so (its own key may hold any of them)."""
    listed = ", ".join(item.categories)
    if item.whole_tier:
        return f"all of the tier ({listed})" if listed else "all of the tier"
    if item.tier_key_kept:  # older values of these categories may be sealed with it
        return f"{listed} (values sealed with the tier's own key go with the tier)"
    return listed
