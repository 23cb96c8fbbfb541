"""The kept views (infra/views/kept.py): `views status`, `views rebuild`."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table
from rich.text import Text

from infra.cli.common import (
    app,
    console,
    err,
    fail,
    open_app,
)
from infra.terminal import cells

if TYPE_CHECKING:
    from infra.config import Settings
    from infra.views.runner import ViewRunner
    from services.application import Backcheck

views_cli = typer.Typer(
    help="The kept views (the read views, the dashboard): where they stand; rebuilding them."
)
app.add_typer(views_cli, name="views")


def _runners(application: Backcheck) -> list[ViewRunner]:
    """The application's runner of each of the kept views (infra/views/kept.py), in order."""
    from infra.views.runner import ViewRunner

    runners = [model for model in application.kept_views if isinstance(model, ViewRunner)]
    if not runners:
        raise RuntimeError("this application keeps no views")
    return runners


def _in_process(application: Backcheck, head: int) -> dict[str, Any]:
    """Each runner's tracking name, position, lag behind the log's head, and rows per view."""
    return {
        runner.kept.name: {
            "tracking": runner.name,
            "position": runner.position,
            "behind": max(head - runner.position, 0),
            "rows": runner.store.counts(),
        }
        for runner in _runners(application)
    }


def _of_workers(application: Backcheck, settings: Settings, head: int) -> dict[str, Any]:
    """Each of the kept views as the workers keep them: each partition's position, how far it
    is behind what the relay delivered there (None: no relay's record), and rows; and, under
    `relays`, how far each relay got (how far behind the log's head)."""
    from infra.kafka.relay_store import relayed
    from infra.kafka.worker import worker_store, worker_store_made
    from infra.views.kept import KEPT

    found: dict[str, Any] = {}
    relays: dict[str, Any] = {}
    for kept in KEPT:
        if not worker_store_made(kept, application, settings):  # reported, not made
            found[kept.name] = {"made": False, "partitions": {}, "behind": {}, "rows": {}}
            continue
        store = worker_store(kept, application, settings)
        partitions = store.progress()
        behind: dict[str, int | None] = {}
        for name, position in partitions.items():
            topic, _, number = name.rpartition("/")
            if topic not in relays:
                relays[topic] = relayed(application, settings, topic)
            state = relays[topic]
            delivered = state[1].get(int(number), 0) if state and number.isdigit() else None
            behind[name] = None if delivered is None else max(delivered - position, 0)
        found[kept.name] = {
            "made": True,
            "partitions": partitions,
            "behind": behind,
            "rows": store.counts(),
        }
    found["relays"] = {
        topic: None if state is None else {"position": state[0], "behind": max(head - state[0], 0)}
        for topic, state in relays.items()
    }
    return found


@views_cli.command("status")
def views_status(
    stream: Annotated[
        bool, typer.Option("--stream", help="the projection workers' views, per partition")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="as JSON")] = False,
) -> None:
    """How far each of the kept views (the read views, the dashboard) has applied the log,
    how far behind its head it is, and how many rows each view holds."""
    from infra.views.kept import KEPT

    try:
        application, settings = open_app(existing=True)
        head = application.recorder.max_notification_id() or 0
        if stream:
            kept = _of_workers(application, settings, head)
            relays = kept.pop("relays")
        else:
            kept, relays = _in_process(application, head), None
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        shown = {"head": head, "kept": kept} | ({"relays": relays} if stream else {})
        sys.stdout.write(orjson.dumps(shown).decode() + "\n")
        return
    if stream:
        _print_workers(head, kept, relays or {})
    else:
        _print_in_process(head, kept)
    table = Table("views", "view", "rows")
    for entry in KEPT:
        rows = kept[entry.name]["rows"]
        for view in entry.listed:
            table.add_row(*cells(entry.name, view, rows.get(view, 0)))
    console.print(table)


def _print_in_process(head: int, kept: dict[str, Any]) -> None:
    console.print(f"the log's head is at {head}")
    table = Table("views", "tracked as", "position", "behind")
    for name, status in kept.items():
        behind = status["behind"]
        lag = Text(f"{behind} (caught up on the next read)", style="yellow") if behind else "0"
        table.add_row(*cells(name, status["tracking"], status["position"]), lag)
    console.print(table)


def _print_workers(head: int, kept: dict[str, Any], relays: dict[str, Any]) -> None:
    console.print(f"workers' views; the log's head is at {head}")
    for topic, state in relays.items():
        if state is None:
            console.print(f"no relay to {topic} has recorded what it published")
        else:
            late = f", {state['behind']} behind the head" if state["behind"] else ""
            console.print(f"the relay to {topic} has published up to {state['position']}{late}")
    for name, status in kept.items():
        if not status["made"]:
            console.print(
                f"no worker has kept the {name} on this store yet (`backcheck worker` keeps it)"
            )
    parts = Table("views", "topic/partition", "last position applied", "behind")
    for name, status in kept.items():
        for partition, position in status["partitions"].items():
            behind = status["behind"][partition]
            if behind is None:
                lag: str | Text = "?"
            elif behind:
                lag = Text(f"{behind} (delivered there, not yet applied)", style="yellow")
            else:
                lag = "0"
            parts.add_row(*cells(name, partition, position), lag)
    console.print(parts)


@views_cli.command("rebuild")
def views_rebuild(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="which views: views, dashboard (default: every one)"),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="events per transaction")] = 500,
) -> None:
    """Drop the rows of the kept views (the read views, the dashboard; or those named) and
    build them again from the start of the log: the same rows as kept incrementally."""
    from infra.views.kept import kept_named

    try:
        chosen = {kept.name for kept in kept_named(names or [])}
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="NAMES") from None
    try:
        application, _ = open_app(existing=True)
        done = [
            _rebuild(application, runner, batch)
            for runner in _runners(application)
            if runner.kept.name in chosen
        ]
    except Exception as e:
        fail(e)
        return
    for line in done:
        console.print(line)


def _rebuild(application: Backcheck, runner: ViewRunner, batch: int) -> str:
    """Rebuilds one runner's views with a progress bar; what it did, in one line."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    started = time.perf_counter()
    name = runner.kept.name
    columns = (TextColumn(f"rebuilding {name}"), BarColumn(), MofNCompleteColumn())
    # off a terminal no bar, and no blank line where it was
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(name, total=application.recorder.max_notification_id() or 0)
        position = runner.rebuild(
            batch=batch,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    rows = runner.store.counts()
    elapsed = time.perf_counter() - started
    return f"rebuilt {name} from {position} events in {elapsed:.1f} s: " + ", ".join(
        f"{view} {rows.get(view, 0)}" for view in runner.kept.listed
    )
