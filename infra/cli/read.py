"""Access-controlled reads of personal data: `read profile|report|investigation`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table

from infra.cli.common import (
    _As,
    _BreakGlass,
    _ConsentedPurpose,
    _Json,
    app,
    console,
    parsed,
    recorded_read,
)
from infra.terminal import cells, dim, markup_safe

_WITHHELD = dim("withheld")

read_cli = typer.Typer(help="Access-controlled reads of personal data (each one recorded).")
app.add_typer(read_cli, name="read")


@read_cli.command("profile")
def read_profile(
    candidate_id: Annotated[UUID, typer.Argument(help="whose profile")],
    principal: _As,
    role: Annotated[str, typer.Option(help="recruiter, investigator, reviewer, ...")],
    purpose: _ConsentedPurpose,
    break_glass: _BreakGlass = None,
    as_json: _Json = False,
) -> None:
    """Read a candidate's profile: decided by policy, redacted per field, recorded first."""
    from services.dto import ReadProfile

    view = recorded_read(
        as_json,
        lambda application: application.read_profile(
            parsed(
                ReadProfile,
                candidate_id=candidate_id,
                principal=principal,
                role=role,
                purpose=purpose,
                break_glass=break_glass,
            )
        ),
    )
    if view is None:
        return
    table = Table("field", "category", "tier", "value")
    for f in view.fields:
        table.add_row(*cells(f.name, f.category, f.tier, _WITHHELD if f.withheld else f.value))
    console.print(table)
    _recorded(view.outcome, view.access_id)


@read_cli.command("report")
def read_report(
    report_id: Annotated[UUID, typer.Argument(help="which report")],
    principal: _As,
    role: Annotated[str, typer.Option(help="reviewer, hiring_manager, candidate, ...")],
    purpose: _ConsentedPurpose,
    break_glass: _BreakGlass = None,
    as_json: _Json = False,
) -> None:
    """Read a report: a reviewer one under review, a hiring manager one disclosed to them;
    an item touching a withheld category comes back without outcome or note. Recorded first."""
    from services.dto import ReadReport

    view = recorded_read(
        as_json,
        lambda application: application.read_report(
            parsed(
                ReadReport,
                report_id=report_id,
                principal=principal,
                role=role,
                purpose=purpose,
                break_glass=break_glass,
            )
        ),
    )
    if view is None:
        return
    console.print(f"report {view.report_id}, edition {view.edition}: {markup_safe(view.status)}")
    table = Table("check", "outcome", "sources", "flags", "note")
    for item in view.items:
        if item.withheld:
            table.add_row(*cells(item.check_type, *[_WITHHELD] * 4))
        else:
            table.add_row(
                *cells(
                    item.check_type,
                    item.outcome or "—",
                    ", ".join(item.source_roles),
                    ", ".join(item.flags),
                    item.note or "",
                )
            )
    console.print(table)
    _recorded(view.outcome, view.access_id)


@read_cli.command("investigation")
def read_investigation(
    investigation_id: Annotated[UUID, typer.Argument(help="which investigation")],
    principal: _As,
    role: Annotated[str, typer.Option(help="recruiter, investigator, candidate, ...")],
    purpose: _ConsentedPurpose,
    break_glass: _BreakGlass = None,
    as_json: _Json = False,
) -> None:
    """Read an investigation's status, the candidate's feedback and disputes and the answers:
    decided by policy, redacted per category, recorded first."""
    from services.dto import ReadInvestigation

    view = recorded_read(
        as_json,
        lambda application: application.read_investigation(
            parsed(
                ReadInvestigation,
                investigation_id=investigation_id,
                principal=principal,
                role=role,
                purpose=purpose,
                break_glass=break_glass,
            )
        ),
    )
    if view is None:
        return
    console.print(
        f"{markup_safe(view.status)}: {markup_safe(view.purpose)} — {view.findings} finding(s)"
    )
    checks = Table("check", "categories", "concluded")
    for c in view.checks:
        checks.add_row(
            *cells(
                c.check_type,
                ", ".join(c.categories),
                _WITHHELD if c.withheld else c.concluded or "—",
            )
        )
    console.print(checks)
    said = Table("", "the candidate said", "the answer")
    for kind, items in (("feedback", view.feedback), ("dispute", view.disputes)):
        for x in items:
            if x.withheld:
                said.add_row(*cells(kind, _WITHHELD, _WITHHELD))
            else:
                said.add_row(*cells(kind, x.words or "", x.answer or dim("not yet answered")))
    if view.feedback or view.disputes:
        console.print(said)
    _recorded(view.outcome, view.access_id)


def _recorded(outcome: str, access_id: object) -> None:
    console.print(f"{markup_safe(outcome)}; recorded as access {access_id}")
