"""Looking into the store: `events`, `show`, `info`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer
from rich.table import Table

from domain.errors import NotFoundError
from infra.cli.common import (
    app,
    console,
    fail,
    open_app,
)
from infra.terminal import cells, json_text, markup_safe

if TYPE_CHECKING:
    from pydantic import BaseModel


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
        application, _ = open_app(existing=True)
        table = Table("pos", "time (UTC)", "aggregate", "event", "by / data")
        count = 0
        for record in application.iter_events(subject):
            if as_json:
                sys.stdout.write(record.model_dump_json() + "\n")
            else:
                table.add_row(
                    *cells(
                        record.position,
                        record.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
                        f"{record.aggregate} {short_id(record.originator_id)}",
                        record.event,
                        _brief(record.data),
                    )
                )
            count += 1
            if limit and count >= limit:
                break
        if not as_json:
            console.print(table)
            console.print(f"{count} event(s)")
    except Exception as e:
        fail(e, as_json)


def _brief(data: dict[str, Any]) -> str:
    shown = {k: v for k, v in data.items() if k != "candidate_id"}
    text = json.dumps(shown, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 120 else text[:117] + "..."


@app.command()
def show(aggregate_id: UUID) -> None:
    """Show the current state of a candidate, consent, investigation or report."""
    try:
        application, _ = open_app(existing=True)
        getters: tuple[Callable[[UUID], BaseModel], ...] = (
            application.get_candidate,
            application.get_consent,
            application.get_investigation,
            application.get_report,
        )
        for get in getters:
            try:
                result = get(aggregate_id)
            except NotFoundError:
                continue
            console.print(json_text(result.model_dump_json()))
            return
        raise NotFoundError(f"nothing with id {aggregate_id} in the store")
    except Exception as e:
        fail(e)


@app.command()
def info() -> None:
    """Where the store is and how many events it holds."""
    try:
        application, settings = open_app()
        console.print(f"store:  {markup_safe(settings.describe())}")
        console.print(f"events: {application.recorder.max_notification_id() or 0}")
    except Exception as e:
        fail(e)


def short_id(id_: UUID) -> str:
    """An id in a table cell: its first 8 hex digits, or, for a time-ordered id (version 7:
    access records, disclosures, which begin with the time and so alike), its last 8."""
    text = str(id_)
    return f"…{text[-8:]}" if id_.version == 7 else text[:8]
