"""`audit reads`: the reads and disclosures recorded across candidates, by time, of one
principal or everyone, every one or the refused ones, a page at a time.

Answered from the access log's lists by time (services/read_log.py), never by reading the
store through; the use case is imported by the command, so `--help` loads none of it."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from infra.cli.audit import audit
from infra.cli.common import console, fail, open_app, parsed
from infra.cli.subject import access_table
from infra.terminal import markup_safe


@audit.command("reads")
def audit_reads(
    principal: Annotated[
        str | None, typer.Option(help="only this principal's reads and hand-overs, e.g. hr:anna")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--from", help="from this moment on, ISO 8601 with its offset (2026-12-01T00:00Z)"
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="up to this moment, ISO 8601 with its offset")
    ] = None,
    refused: Annotated[bool, typer.Option("--refused", help="only the refused reads")] = False,
    cursor: Annotated[
        str | None, typer.Option(help="the page after the one whose last line named it")
    ] = None,
    limit: Annotated[int, typer.Option(help="entries a page (1 to 200)")] = 50,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="one JSON object per entry, then {reads, next_cursor}"),
    ] = False,
) -> None:
    """The reads and disclosures recorded across candidates, oldest first: when, whose data,
    who (how signed in, in which role), why, what was decided (a break-glass read marked),
    by which policies, under which consents, what was returned and withheld. A page at a
    time (--limit; the next with --cursor), read from the access log's lists by time and by
    principal: an index, not a scan of the store. They hold no personal value, so this is no
    read of anyone's personal data and records nothing."""
    from services.read_log import ListReads

    try:
        query = parsed(
            ListReads,
            principal=principal,
            until=until,
            refused=refused,
            cursor=cursor,
            limit=limit,
            **{"from": since},
        )
        application, _ = open_app()
        page = application.list_reads(query)
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        for item in page.items:
            sys.stdout.write(item.model_dump_json() + "\n")
        summary = {"reads": len(page.items), "next_cursor": page.next_cursor}
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    console.print(access_table(page.items, [item.candidate_id for item in page.items]))
    more = f"; next page: --cursor {markup_safe(page.next_cursor)}" if page.next_cursor else ""
    console.print(f"{len(page.items)} read(s) and disclosure(s){more}")
