"""What every command shares: the typer app, the consoles, opening the store, turning an
error into its problem and exit code, and the options of a recorded read."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import orjson
import typer
from pydantic import BaseModel
from rich.console import Console

from infra.bootstrap import build_app
from infra.config import Settings
from infra.problem import problem_for
from services.application import Backcheck

app = typer.Typer(
    name="backcheck",
    help="Employment background checks under strict privacy management (event-sourced).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)


def open_app() -> tuple[Backcheck, Settings]:
    settings = Settings.from_env()
    return build_app(settings), settings


def fail(error: Exception, as_json: bool = False) -> None:
    problem = problem_for(error)
    if problem is None:
        raise error
    if as_json:
        sys.stdout.write(orjson.dumps(problem.__dict__).decode() + "\n")
    else:
        err.print(f"[red]{problem.title}[/] ({problem.type}): {problem.detail}")
    raise typer.Exit(problem.exit_code)


# The options every recorded read takes.
_As = Annotated[str, typer.Option("--as", help="who is reading, e.g. hr:li.na or candidate:ID")]
_Purpose = Annotated[str, typer.Option(help="why; recorded with the read")]
_ConsentedPurpose = Annotated[str, typer.Option(help="why; must be a purpose the consent names")]
_BreakGlass = Annotated[
    str | None, typer.Option(help="compliance only: the justification to record")
]
_Json = Annotated[bool, typer.Option("--json", help="the answer as one JSON object")]
View = TypeVar("View", bound=BaseModel)


def recorded_read(as_json: bool, read: Callable[[Backcheck], View]) -> View | None:
    """Runs one recorded read on the configured store: a refusal or an error becomes its
    problem and exit code, and with --json the answer is printed here. Otherwise returns the
    answer for the command to show as tables."""
    try:
        application, _ = open_app()
        view = read(application)
    except Exception as e:
        fail(e, as_json)
        return None
    if as_json:
        sys.stdout.write(view.model_dump_json() + "\n")
        return None
    return view
