"""Running use cases by name: `do`, `use-cases`, `categories`."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperCommand

from infra.cli.common import (
    app,
    console,
    fail,
    open_app,
)
from infra.inputs import MAX_INPUT_BYTES, InputError, json_object, read_input
from infra.terminal import cells


class _ProblemsAsJson(TyperCommand):
    """With --json, a command line that cannot be parsed (an option unknown, an argument
    missing) is answered as a problem object too, not as usage text."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        as_json = "--json" in args  # before parsing, which consumes the list
        try:
            return super().parse_args(ctx, args)
        except Exception as e:
            # typer's (vendored) click usage errors; --help and the like are not errors
            if not as_json or not hasattr(e, "format_message"):
                raise
            fail(InputError(e.format_message()), as_json=True)


@app.command("do", cls=_ProblemsAsJson)
def do_use_case(
    use_case: Annotated[str, typer.Argument(help="a name from `backcheck use-cases`")],
    payload: Annotated[
        str,
        typer.Argument(
            help=f"the command as JSON, @FILE to read it from a file, - for stdin (at most "
            f"{MAX_INPUT_BYTES:,} bytes)"
        ),
    ] = "-",
    as_json: Annotated[
        bool, typer.Option("--json", help="errors as a problem object on stdout, too")
    ] = False,
) -> None:
    """Run one use case with a JSON command and print its result as JSON."""
    from services.catalogue import USE_CASES

    try:
        found = USE_CASES.get(use_case)
        if found is None:
            # only here: infra.problem loads every adapter's errors (psycopg's too)
            from infra.problem import MAX_FIELD, bounded

            raise InputError(
                f"USE_CASE: unknown use case {bounded(use_case, MAX_FIELD)!r}; see "
                "`backcheck use-cases`"
            )
        document = json_object(read_input(payload))
        application, _ = open_app()
        result = found.run(application, document)
    except Exception as e:
        fail(e, as_json)
    sys.stdout.write(result.model_dump_json() + "\n")


@app.command("use-cases")
def use_cases(
    schema: Annotated[
        str | None, typer.Option(help="print the JSON schema of this use case's command")
    ] = None,
) -> None:
    """List the use cases `backcheck do` can run (or print one command's JSON schema)."""
    from services.catalogue import USE_CASES

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
    from domain.classification import CATEGORIES

    table = Table("category", "tier", "what")
    for c in CATEGORIES.values():
        table.add_row(*cells(c.key, c.tier.value, c.description))
    console.print(table)
