"""A data subject's rights and records: `subject erase`, `subject access-log`,
`subject consents`, `subject export`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
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

if TYPE_CHECKING:
    from services.dto import AccessEntry, ConsentTermsView

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
    console.print(access_table(log.entries))
    console.print(f"{len(log.entries)} entries; this read recorded as access {log.access_id}")


def access_table(entries: Sequence[AccessEntry], candidates: Sequence[UUID] = ()) -> Table:
    """Reads and disclosures as a table: who, how signed in, in which role, why, what was
    returned and withheld, the outcome (a break-glass read marked), the deciding policies and
    the consents relied on (by the start of their id); with `candidates`, whose data each
    entry was (in the same order)."""
    whose = ["candidate"] if candidates else []
    table = Table("when (UTC)", *whose, "who", "authenticated by", "role", "purpose", "view")
    for column in ("outcome", "returned", "withheld", "policies", "consents"):
        table.add_column(column)
    for n, e in enumerate(entries):
        table.add_row(
            *cells(
                e.at.strftime("%Y-%m-%d %H:%M:%S"),
                *([str(candidates[n])[:8]] if candidates else []),
                e.principal,
                e.authentication or "—",
                e.role or "—",
                e.purpose,
                e.view,
                e.outcome
                + (f" ({e.failure})" if e.failure else "")
                + (" (break-glass)" if e.break_glass else ""),
                ", ".join(e.returned) or "—",
                ", ".join(e.withheld) or "—",
                ", ".join(e.policy_ids) or "—",
                ", ".join(str(c)[:8] for c in e.consent_ids) or "—",
            )
        )
    return table


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
    table = Table("consent", "status", "purposes", "checks", "scope", "valid", "relied on by")
    table.add_column("document (SHA-256)", overflow="fold")
    for c in register.consents:
        table.add_row(
            *cells(
                c.consent_id,
                c.status + (f"\nwithdrawn {_day(c.withdrawn_at)}" if c.withdrawn_at else ""),
                ", ".join(c.terms.purposes),
                ", ".join(c.terms.check_types),
                _scope(c.terms),
                f"from {_day(c.valid_from)}\nuntil {_day(c.valid_until)}",
                len(c.relied_on_by),
                c.document_sha256 or "— (not granted)",
            )
        )
    console.print(table)
    console.print(f"{len(register.consents)} consent(s); recorded as access {register.access_id}")


def _day(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "—"


def _scope(terms: ConsentTermsView) -> str:
    """What a consent covers beyond purposes and checks, a line each, "—" for none."""

    def listed(values: Sequence[str]) -> str:
        return ", ".join(values) or "—"

    return "\n".join(
        (
            f"categories: {listed(terms.categories)}",
            f"referees: {listed(terms.referee_roles)}",
            f"excluded: {listed(terms.excluded_organisations)}",
            f"third parties: {listed(terms.third_parties)}",
            f"recording: {'allowed' if terms.recording_allowed else 'not allowed'}",
        )
    )


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
        application, settings = open_app(existing=True)
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
