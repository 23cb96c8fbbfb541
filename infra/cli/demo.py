"""`backcheck demo`: the screening story, told chapter by chapter."""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer

from infra.cli.common import (
    app,
    console,
    err,
    fail,
    open_app,
)
from infra.terminal import markup_safe


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
