"""The `backcheck` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import orjson
import typer
from rich.console import Console
from rich.table import Table

from domain.classification import CATEGORIES
from infra.bootstrap import build_app
from infra.config import Settings
from infra.errors import problem_for
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
