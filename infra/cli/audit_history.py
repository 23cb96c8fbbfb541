"""The compliance officer's look at one subject's history: `audit timeline` and `audit
as-of`. Each is a read of every candidate it shows, recorded first by the operator, as the
same reads over HTTP are (services/audit_reads.py)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.table import Table

from infra.cli.audit import audit
from infra.cli.common import (
    HISTORY_PURPOSE,
    OPERATOR,
    _HistoryPurpose,
    _Operator,
    console,
    fail,
    open_app,
    parsed,
)
from infra.terminal import cells


@audit.command("timeline")
def audit_timeline(
    subject: Annotated[UUID, typer.Option(help="the candidate (data subject)")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    principal: _Operator = OPERATOR,
    purpose: _HistoryPurpose = HISTORY_PURPOSE,
) -> None:
    """Everything that happened to one candidate, in order: who, what, when, which consent.
    A read of the candidate, recorded first (by the operator, as compliance), as over HTTP."""
    from services.access import Role
    from services.audit_reads import ReadTimeline

    try:
        application, _ = open_app(existing=True)
        entries = application.read_timeline(
            parsed(
                ReadTimeline,
                candidate_id=subject,
                principal=principal,
                role=Role.COMPLIANCE,
                purpose=purpose,
            )
        ).entries
        if as_json:
            for entry in entries:
                sys.stdout.write(entry.model_dump_json() + "\n")
            return
        table = Table("pos", "when (UTC)", "who", "what", "consent")
        for entry in entries:
            table.add_row(
                *cells(
                    entry.position,
                    entry.time.strftime("%Y-%m-%d %H:%M:%S"),
                    entry.who,
                    entry.what,
                    str(entry.consent_id)[:8] if entry.consent_id else "-",
                )
            )
        console.print(table)
    except Exception as e:
        fail(e, as_json)


@audit.command("as-of")
def audit_as_of(
    moment: Annotated[str, typer.Argument(help="ISO 8601 time, e.g. 2026-11-22T10:00:00+00:00")],
    subject: Annotated[UUID | None, typer.Option(help="only this candidate")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    principal: _Operator = OPERATOR,
    purpose: _HistoryPurpose = HISTORY_PURPOSE,
) -> None:
    """Rebuild the case overview as it was at a moment, from the event store alone. A read of
    each candidate shown is recorded first (by the operator, as compliance), as over HTTP."""
    from services.access import Role
    from services.audit_reads import ReadAsOf, ReadCasesAsOf

    try:
        when = datetime.fromisoformat(moment)
    except ValueError:
        raise typer.BadParameter(
            f"{moment!r} is not an ISO 8601 time (e.g. 2026-11-22T10:00:00+00:00)",
            param_hint="MOMENT",
        ) from None
    if when.tzinfo is None:  # as over HTTP (`timezone_aware`): a moment is one instant
        raise typer.BadParameter(
            f"{moment!r} carries no offset: give one, e.g. {moment}+00:00 or {moment}Z",
            param_hint="MOMENT",
        )
    try:
        application, _ = open_app(existing=True)
        reader = {"principal": principal, "role": Role.COMPLIANCE, "purpose": purpose}
        if subject is None:
            rows = application.read_cases_as_of(parsed(ReadCasesAsOf, at=when, **reader)).cases
        else:
            case = application.read_as_of(
                parsed(ReadAsOf, candidate_id=subject, at=when, **reader)
            ).case
            rows = [] if case is None else [case]
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    table = Table("candidate", "consents", "investigations", "reports")
    for row in rows:
        table.add_row(
            *cells(
                row["candidate_id"][:8] + _erasure(row["erasure"]),
                "\n".join(f"{k[:8]} {v}" for k, v in row["consents"].items()),
                "\n".join(f"{k[:8]} {v}" for k, v in row["investigations"].items()),
                "\n".join(f"{k[:8]} {v}" for k, v in row["reports"].items()),
            )
        )
    console.print(f"as of {when.isoformat()}")
    console.print(table)


def _erasure(steps: dict[str, Any]) -> str:
    """The steps of the candidate's erasure recorded by then, each with its position."""
    shown = [
        f"\n{label} at #{step['position']} {step['at'][:19]}"
        for label, step in (("erasure requested", steps["requested"]), ("erased", steps["erased"]))
        if step is not None
    ]
    return "".join(shown)
