"""`backcheck demo`: the screening story, told chapter by chapter.

One demo at a time on a store: the story checks that each refusal stored nothing by the log's
head, which another demo writing at the same time would move (a false failure). A second demo
is refused at once, exit 75."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from infra.cli.common import (
    app,
    console,
    err,
    fail,
    load_settings,
    open_app,
)
from infra.store.filelock import running_alone
from infra.terminal import markup_safe

if TYPE_CHECKING:
    from infra.config import Settings


@app.command()
def demo(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="print only the ids the story made, with its counts, as one JSON object"
        ),
    ] = False,
) -> None:
    """Run a complete screening story on the configured store and print what happened."""
    from infra.demo import DemoFailedError, run_demo, tell_story

    try:
        with running_alone(lock_path(load_settings()), "demo"):
            application, settings = open_app()
            if as_json:
                told = tell_story(application)
            else:
                console.print(f"[dim]store: {markup_safe(settings.describe())}[/]")
                told = run_demo(application, console)
    except DemoFailedError as e:
        err.print(f"[red]demo failed:[/] {markup_safe(e)}")
        raise typer.Exit(1) from None
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        sys.stdout.write(orjson.dumps(told.as_json()).decode() + "\n")


def lock_path(settings: Settings) -> Path:
    """Beside the SQLite store; in the data directory for a PostgreSQL one."""
    if settings.backend == "sqlite":
        return settings.after_store("demo-lock")
    return settings.data_dir / "demo.lock"
