"""Looking into the store: `events`, `show`, `info`. What `events` and `show` tell is about
data subjects, so each is a recorded read of each candidate shown (services/audit_reads.py)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.table import Table

from infra.cli.common import (
    HISTORY_PURPOSE,
    OPERATOR,
    _HistoryPurpose,
    _Operator,
    app,
    console,
    fail,
    open_app,
    parsed,
)
from infra.terminal import cells, json_text, markup_safe


@app.command()
def events(
    subject: Annotated[
        UUID | None, typer.Option(help="only events about this candidate (data subject)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="stop after this many")] = None,
    principal: _Operator = OPERATOR,
    purpose: _HistoryPurpose = HISTORY_PURPOSE,
) -> None:
    """List stored events in log order. Personal values are shown as their tier only. Who the
    events are about is the subject's business: a read of each candidate shown is recorded
    (by the operator, as compliance) before their events are listed, a page at a time."""
    from services.access import Role
    from services.audit_reads import ReadEvents

    try:
        application, _ = open_app(existing=True)
        table = Table("pos", "time (UTC)", "aggregate", "event", "by / data")
        count = 0
        start: int | None = 1
        until = application.recorder.max_notification_id() or 0  # not the reads it records
        while start is not None and (limit is None or count < limit):
            page = application.read_events(
                parsed(
                    ReadEvents,
                    candidate_id=subject,
                    start=start,
                    until=until,
                    limit=min(500, limit - count) if limit else 500,
                    principal=principal,
                    role=Role.COMPLIANCE,
                    purpose=purpose,
                )
            )
            for record in page.events:
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
            start = page.next_start
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
def show(
    aggregate_id: UUID,
    principal: _Operator = OPERATOR,
    purpose: _HistoryPurpose = HISTORY_PURPOSE,
) -> None:
    """Show the current state of a candidate, consent, investigation or report (for a
    candidate, with the steps of their erasure). A read of the candidate it is about is
    recorded first (by the operator, as compliance)."""
    from services.access import Role
    from services.state_reads import ShowState

    try:
        application, _ = open_app(existing=True)
        result = application.show_state(
            parsed(
                ShowState,
                aggregate_id=aggregate_id,
                principal=principal,
                role=Role.COMPLIANCE,
                purpose=purpose,
            )
        )
        console.print(json_text(result.model_dump_json()))
    except Exception as e:
        fail(e)


@app.command()
def info() -> None:
    """Where the store is and how many events it holds."""
    try:
        application, settings = open_app()
        console.print(f"store:  {markup_safe(settings.location())}")
        console.print(f"events: {application.recorder.max_notification_id() or 0}")
    except Exception as e:
        fail(e)


def short_id(id_: UUID) -> str:
    """An id in a table cell: its first 8 hex digits, or, for a time-ordered id (version 7:
    access records, disclosures, which begin with the time and so alike), its last 8."""
    text = str(id_)
    return f"…{text[-8:]}" if id_.version == 7 else text[:8]
