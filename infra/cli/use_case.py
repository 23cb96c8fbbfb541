"""Running use cases by name: `do`, `use-cases`, `categories`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from domain.classification import CATEGORIES
from infra.cli.common import (
    app,
    console,
    fail,
    open_app,
)
from infra.terminal import cells
from services.catalogue import USE_CASES


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
        application, _ = open_app()
        result = found.run(application, document)
        sys.stdout.write(result.model_dump_json() + "\n")
    except typer.BadParameter:
        raise
    except Exception as e:
        fail(e, as_json)


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
        table.add_row(*cells(uc.name, uc.summary))
    console.print(table)


@app.command()
def categories() -> None:
    """List the data categories and the tier each belongs to."""
    table = Table("category", "tier", "what")
    for c in CATEGORIES.values():
        table.add_row(*cells(c.key, c.tier.value, c.description))
    console.print(table)
