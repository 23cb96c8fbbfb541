"""`backcheck demo`: the screening story, told chapter by chapter."""

from __future__ import annotations

import typer

from infra.cli.common import (
    app,
    console,
    err,
    fail,
    open_app,
)


@app.command()
def demo() -> None:
    """Run a complete screening story on the configured store and print what happened."""
    from infra.demo import DemoFailedError, run_demo

    try:
        application, settings = open_app()
        console.print(f"[dim]store: {settings.describe()}[/]")
        run_demo(application, console)
    except DemoFailedError as e:
        err.print(f"[red]demo failed:[/] {e}")
        raise typer.Exit(1) from None
    except Exception as e:
        fail(e)
