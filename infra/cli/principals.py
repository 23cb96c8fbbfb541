"""Principals and their tokens: `principals add|rotate|revoke|list|portal-link`.

Run by the operator on the store's own machine. A token is printed once, when it is made:
only its SHA-256 is stored, so a lost token is replaced (`rotate`), never shown again.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from rich.table import Table
from rich.text import Text

from infra.cli.common import _Json, app, console, err, fail, open_app, parsed
from infra.cli.senders import (
    ActsForOption,
    PublicKeyOption,
    UseCasesOption,
    add_sender,
    register_sender_commands,
    show_sender_key,
)
from infra.http.link import portal_link
from infra.terminal import cells, dim, markup_safe, visible

if TYPE_CHECKING:
    from services.dto import PrincipalIssued

principals_cli = typer.Typer(
    help="Principals that call backcheck with a token: staff, services, candidates' portal "
    "links. Each issue, rotation and revocation is an event."
)
app.add_typer(principals_cli, name="principals")

_Actor = Annotated[str, typer.Option("--actor", help="who is acting (recorded)")]
_Name = Annotated[str, typer.Argument(help="the principal, e.g. hr:li.na or svc:ats")]
_Days = Annotated[
    int | None,
    typer.Option("--valid-days", help="days the token is valid (default: until rotated)"),
]


def _issued(result: PrincipalIssued, as_json: bool, verb: str) -> None:
    """The principal issued, its token alone on stdout (with --json: the whole result)."""
    if as_json:
        sys.stdout.write(result.model_dump_json() + "\n")
        return
    until = f", valid until {result.expires_at:%Y-%m-%d %H:%M} UTC" if result.expires_at else ""
    err.print(
        f"[green]{verb}[/] {markup_safe(result.name)} ({result.kind}, role "
        f"{markup_safe(result.role)}){until}"
    )
    err.print(
        Text(
            "the token is shown this once: only its hash is kept; store it now "
            "(a lost token is replaced with `backcheck principals rotate`)",
            style="yellow",
        )
    )
    sys.stdout.write(result.token + "\n")  # alone on stdout, for a pipe or a secret store


@principals_cli.command("add")
def principals_add(
    name: _Name,
    role: Annotated[str, typer.Option(help="the role its reads are decided in")],
    assign: Annotated[
        list[UUID] | None,
        typer.Option("--assign", help="a candidate it may read about (repeat; none: any)"),
    ] = None,
    kind: Annotated[str, typer.Option(help="staff or service")] = "staff",
    valid_days: _Days = None,
    public_key: PublicKeyOption = None,
    use_cases: UseCasesOption = None,
    acts_for: ActsForOption = None,
    actor: _Actor = "operator",
    as_json: _Json = False,
) -> None:
    """Add a principal and print its first token, once. A service given --public-key also
    sends commands on the command topic, signed with that key (see `principals keygen`)."""
    from services.dto import AddPrincipal

    if public_key is not None or use_cases or acts_for:
        sender = add_sender(
            name, role, kind, valid_days, public_key, use_cases, acts_for, actor, as_json
        )
        _issued(sender, as_json, "added")
        if not as_json:
            show_sender_key(sender.sender)
        return
    try:
        application, _ = open_app()
        result = application.add_principal(
            parsed(
                AddPrincipal,
                name=name,
                role=role,
                kind=kind,
                assignments=assign or [],
                valid_days=valid_days,
                actor=actor,
            )
        )
    except Exception as e:
        fail(e, as_json)
        return
    _issued(result, as_json, "added")


@principals_cli.command("rotate")
def principals_rotate(
    name: _Name, valid_days: _Days = None, actor: _Actor = "operator", as_json: _Json = False
) -> None:
    """Give a principal a new token, printed once; its old token is refused from now on."""
    from services.dto import RotatePrincipal

    try:
        application, _ = open_app()
        result = application.rotate_principal(
            parsed(RotatePrincipal, name=name, valid_days=valid_days, actor=actor)
        )
    except Exception as e:
        fail(e, as_json)
        return
    _issued(result, as_json, "new token for")


@principals_cli.command("portal-link")
def principals_portal_link(
    candidate_id: Annotated[UUID, typer.Argument(help="the candidate")],
    valid_days: Annotated[int, typer.Option("--valid-days", help="days it is valid")] = 30,
    actor: _Actor = "operator",
    as_json: _Json = False,
) -> None:
    """Issue the candidate's portal link token (again: a new one, the old one refused)."""
    from services.dto import IssuePortalLink

    try:
        application, settings = open_app()
        result = application.issue_portal_link(
            parsed(IssuePortalLink, candidate_id=candidate_id, valid_days=valid_days, actor=actor)
        )
    except Exception as e:
        fail(e, as_json)
        return
    _issued(result, as_json, "portal link for")
    if not as_json:  # the fragment never reaches the server's logs
        link = portal_link(settings.public_url, result.token)
        err.print(f"the candidate opens: {link}", highlight=False)
        sent = result.sent
        if sent.status == "delivered":
            err.print(f"sent to the link delivery: {markup_safe(sent.detail)}")
        else:  # issued and shown above all the same: the operator can pass it on
            err.print(Text(f"not sent: {sent.detail}", style="yellow"))


@principals_cli.command("revoke")
def principals_revoke(
    name: _Name,
    reason: Annotated[str, typer.Option(help="why; recorded")],
    actor: _Actor = "operator",
    as_json: _Json = False,
) -> None:
    """Revoke a principal for good: its token is refused from now on."""
    from services.dto import RevokePrincipal

    try:
        application, _ = open_app()
        result = application.revoke_principal(
            parsed(RevokePrincipal, name=name, reason=reason, actor=actor)
        )
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        sys.stdout.write(result.model_dump_json() + "\n")
        return
    console.print(f"[green]revoked[/] {markup_safe(result.name)}: its token is refused from now on")


@principals_cli.command("list")
def principals_list(as_json: _Json = False) -> None:
    """Every principal, revoked ones too; never a token or its hash."""
    try:
        application, _ = open_app(existing=True)
        found = application.list_principals()
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        sys.stdout.write("[" + ",".join(p.model_dump_json() for p in found) + "]\n")
        return
    table = Table("name", "kind", "role", "assigned to", "expires (UTC)", "state", "added by")
    for p in found:
        assigned = ", ".join(str(a) for a in p.assignments) if p.assignments else dim("any")
        state = (
            Text(f"revoked: {visible(p.revoked_reason)}", style="red") if p.revoked else "active"
        )
        table.add_row(
            *cells(
                p.name,
                p.kind,
                p.role,
                assigned,
                f"{p.expires_at:%Y-%m-%d %H:%M}" if p.expires_at else "—",
                state,
                p.added_by,
            )
        )
    console.print(table)
    console.print(f"{len(found)} principal(s)")


register_sender_commands(principals_cli)
