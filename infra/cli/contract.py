"""`backcheck contract`: the AsyncAPI 3 document of the Kafka topics, and its fingerprints.

The document is made from the code (infra/contract/), so it needs no store: it says what this
version of backcheck publishes and takes, whatever store it runs on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from infra.cli.common import app, err, fail


@app.command()
def contract(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", dir_okay=False, help="write it here (default: stdout)"),
    ] = None,
    record_fingerprints: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="add the missing message fingerprints to this file; a changed one is refused",
        ),
    ] = None,
    check_fingerprints: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False, help="exit 1 if a message's schema changed without a version bump"
        ),
    ] = None,
) -> None:
    """Write the AsyncAPI 3.0 document (JSON) of backcheck's Kafka topics: events, commands,
    command outcomes and dead letters, each message with its headers' and payload's schema."""
    from infra.audit.outputs import check_document, write_document
    from infra.contract import fingerprints as fp
    from infra.contract.asyncapi import asyncapi_document

    try:
        if output is not None:
            check_document(output)  # first: nothing recorded for a document not written
        document = asyncapi_document()
        if record_fingerprints is not None:
            added = fp.record(
                record_fingerprints, fp.fingerprints(document), what="--record-fingerprints"
            )
            err.print(f"{len(added)} fingerprint(s) added to {record_fingerprints}")
        lines: list[str] = []
        if check_fingerprints is not None:
            recorded = fp.load(check_fingerprints, what="--check-fingerprints")
            lines = fp.differences(recorded, fp.fingerprints(document))
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if output is not None and not lines:
            write_document(output, text.encode())
    except fp.FingerprintChangedError as e:
        err.print(f"[red]not recorded[/red]: {e}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    except Exception as e:
        fail(e)
    for line in lines:
        err.print(line, markup=False, highlight=False)
    if lines:
        raise typer.Exit(1)
    if output is not None:
        err.print(f"AsyncAPI document written to {output}", markup=False, highlight=False)
    elif record_fingerprints is None and check_fingerprints is None:
        sys.stdout.write(text)
