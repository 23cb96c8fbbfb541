"""A data subject's rights and records: `subject erase`, `subject access-log`,
`subject consents`, `subject export`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table

from infra.cli.common import (
    _As,
    _Json,
    _Purpose,
    app,
    console,
    fail,
    open_app,
    parsed,
    recorded_read,
)
from infra.terminal import cells, json_text, markup_safe

subject_cli = typer.Typer(
    help="A data subject's rights and records: erasure, their access log, their consents, "
    "their access package."
)
app.add_typer(subject_cli, name="subject")


@subject_cli.command("erase")
def subject_erase(
    candidate_id: Annotated[UUID, typer.Argument(help="the candidate to erase")],
    reason: Annotated[
        str,
        typer.Option(
            help="why, one of: candidate-request, consent-withdrawn, retention-ended, "
            "unlawful-processing, legal-obligation (a fixed ground, never free text)"
        ),
    ],
    actor: Annotated[str, typer.Option(help="who is erasing")] = "compliance",
    as_json: Annotated[bool, typer.Option("--json", help="the receipt as JSON")] = False,
) -> None:
    """Crypto-shred a candidate: destroy the keys to every personal value, keep the history.
    Run again, it finishes an erasure recorded but cut off before its keys were destroyed."""
    from services.dto import EraseSubject

    try:
        application, _ = open_app()
        result = application.erase_subject(
            EraseSubject(candidate_id=candidate_id, reason=reason, actor=actor)
        )
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        sys.stdout.write(result.model_dump_json() + "\n")
        return
    if result.resumed:  # the erasure was recorded by a run cut off before its keys were gone
        console.print(
            f"erasure of {candidate_id} was recorded at {result.erased_at.isoformat()} but not "
            f"finished; [green]finished now[/]: {result.keys_destroyed} data key(s) destroyed; "
            "their personal values now read as erased everywhere"
        )
    else:
        console.print(
            f"[green]erased[/] {candidate_id}: {result.keys_destroyed} data key(s) destroyed; "
            "their personal values now read as erased everywhere"
        )
    if result.categories_shredded:
        console.print(f"categories shredded: {', '.join(result.categories_shredded)}")
    if result.tiers_shredded:  # keys of values sealed before keys per category
        console.print(f"tier keys shredded: {', '.join(result.tiers_shredded)}")
    if result.portal_link_revoked:
        console.print(f"portal link revoked: candidate:{candidate_id} signs in nowhere")
    if result.portal_link_withdrawn is not None:
        console.print(
            f"link waiting to be sent taken back: {markup_safe(result.portal_link_withdrawn)}"
        )
    console.print(f"receipt (signed by key {markup_safe(result.receipt_key_id)}):")
    console.print(json_text(result.receipt_statement))
    console.print(f"signature: {markup_safe(result.receipt_signature)}")


@subject_cli.command("access-log")
def subject_access_log(
    candidate_id: Annotated[UUID, typer.Argument(help="the candidate")],
    principal: _As,
    role: Annotated[str, typer.Option(help="candidate (their own log) or compliance")],
    purpose: _Purpose,
    as_json: _Json = False,
) -> None:
    """Who read what about the candidate, when and why. The candidate reads their own log, a
    compliance officer anyone's; the read is decided by policy and recorded first."""
    from services.dto import ReadAccessLog

    log = recorded_read(
        as_json,
        lambda application: application.read_access_log(
            parsed(
                ReadAccessLog,
                candidate_id=candidate_id,
                principal=principal,
                role=role,
                purpose=purpose,
            )
        ),
    )
    if log is None:
        return
    table = Table(
        "when (UTC)", "who", "authenticated by", "role", "purpose", "view", "outcome", "withheld"
    )
    for e in log.entries:
        table.add_row(
            *cells(
                e.at.strftime("%Y-%m-%d %H:%M:%S"),
                e.principal,
                e.authentication or "—",
                e.role,
                e.purpose,
                e.view,
                e.outcome,
                ", ".join(e.withheld),
            )
        )
    console.print(table)
    console.print(f"{len(log.entries)} entries; this read recorded as access {log.access_id}")


@subject_cli.command("consents")
def subject_consents(
    candidate_id: Annotated[UUID, typer.Argument(help="the candidate")],
    principal: _As,
    role: Annotated[str, typer.Option(help="candidate, recruiter, investigator or compliance")],
    purpose: _Purpose,
    as_json: _Json = False,
) -> None:
    """The candidate's consent register: what each consent covers and whether it is in force
    now. The candidate, their recruiter, an assigned investigator or compliance; the read is
    decided by policy and recorded first."""
    from services.dto import ReadConsents

    register = recorded_read(
        as_json,
        lambda application: application.read_consents(
            parsed(
                ReadConsents,
                candidate_id=candidate_id,
                principal=principal,
                role=role,
                purpose=purpose,
            )
        ),
    )
    if register is None:
        return
    table = Table("consent", "status", "purposes", "checks", "valid until", "relied on by")
    for c in register.consents:
        table.add_row(
            *cells(
                c.consent_id,
                c.status,
                ", ".join(c.terms.purposes),
                ", ".join(c.terms.check_types),
                c.valid_until.strftime("%Y-%m-%d") if c.valid_until else "—",
                len(c.relied_on_by),
            )
        )
    console.print(table)
    console.print(f"{len(register.consents)} consent(s); recorded as access {register.access_id}")


@subject_cli.command("export")
def subject_export(
    candidate_id: Annotated[UUID, typer.Argument(help="the candidate (data subject)")],
    out: Annotated[
        Path | None,
        typer.Option(help="the package file (default: access-package-ID.json here)"),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="replace an existing --out file (never the store's files, keys or checkpoints)",
        ),
    ] = False,
    actor: Annotated[str, typer.Option(help="who makes it, on the candidate's behalf")] = (
        "compliance"
    ),
) -> None:
    """Write the candidate's access package (GDPR Art. 15/20, PIPL Art. 45): every value held
    about them (the events of their case, each value opened: findings with sources and notes,
    reviewers' comments, withdrawal reasons, ...), their consents, investigations, reports,
    timeline and access log, as JSON.
    Handing it over is a disclosure: recorded before it is assembled, once the file is known
    to be writable (a refused --out records nothing)."""
    from infra.audit.outputs import check_directory, check_output, free_name, write_output
    from infra.config import Settings
    from services.subject_export import ExportSubjectData

    try:
        settings = Settings.load()
        if out is None:
            check_directory(Path.cwd())
        else:
            check_output(settings, out, force=force)  # first: then record, then write
        application, settings = open_app()
        package = application.export_subject_data(
            parsed(ExportSubjectData, candidate_id=candidate_id, actor=actor)
        )
        path = out or free_name(Path(), f"access-package-{candidate_id}", ".json")
        data = package.model_dump_json(indent=2).encode()
        write_output(settings, path, data, force=force)
    except Exception as e:
        fail(e)
        return
    console.print(
        f"access package of {candidate_id}: {markup_safe(path)} ({len(data):,} bytes; "
        f"{len(package.access_log.entries)} access entries); recorded as disclosure "
        f"{package.disclosure_id}"
    )
