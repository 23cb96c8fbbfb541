"""Senders: the services that sign commands for the Kafka command topic.
`principals keygen|sender-key|revoke-sender-key`, and `principals add --public-key`.

A sender's private key stays with the sender: `keygen` writes it to a file of the operator's
choosing (readable by its owner alone) and the public key beside it; only the public key is
given to backcheck, and recorded with the use cases the sender may send and whom it may act
for (infra/kafka/signatures.py describes the signature).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from infra.cli.common import _Json, console, err, fail, open_app, parsed
from infra.terminal import markup_safe

if TYPE_CHECKING:
    from services.senders import SenderIssued, SenderKey

PublicKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        help="a service's Ed25519 public key file (PEM or base64): it sends signed commands",
    ),
]
UseCasesOption = Annotated[
    str | None,
    typer.Option("--use-cases", help="the use cases it may send, comma-separated"),
]
ActsForOption = Annotated[
    str | None,
    typer.Option(
        "--acts-for",
        help="the principals it may name as actor, comma-separated (self: itself)",
    ),
]
_Actor = Annotated[str, typer.Option("--actor", help="who is acting (recorded)")]
_Name = Annotated[str, typer.Argument(help="the service principal, e.g. svc:ats")]
_MAX_LIST = 4096  # characters of a comma-separated option, at most


def _names(text: str | None, option: str) -> list[str]:
    if text is None or not text.strip():
        raise typer.BadParameter("give at least one, comma-separated", param_hint=option)
    if len(text) > _MAX_LIST:
        raise typer.BadParameter(f"longer than {_MAX_LIST} characters", param_hint=option)
    return [n.strip() for n in text.split(",") if n.strip()]


def _public_key(path: Path | None) -> str:
    from infra.kafka.signatures import public_key_of

    if path is None:
        raise typer.BadParameter(
            "a sender is registered with its public key", param_hint="--public-key"
        )
    return public_key_of(path)


def add_sender(
    name: str,
    role: str,
    kind: str,
    valid_days: int | None,
    public_key: Path | None,
    use_cases: str | None,
    acts_for: str | None,
    actor: str,
    as_json: bool,
) -> SenderIssued:
    """Adds a service principal that sends commands: its token and sender key in one write."""
    from services.senders import AddSender

    if kind != "service":
        raise typer.BadParameter("only a service sends commands", param_hint="--kind")
    uses, acts = _names(use_cases, "--use-cases"), _names(acts_for, "--acts-for")
    try:
        key = _public_key(public_key)
        application, _ = open_app()
        return application.add_sender(
            parsed(
                AddSender,
                name=name,
                role=role,
                public_key=key,
                use_cases=uses,
                acts_for=acts,
                valid_days=valid_days,
                actor=actor,
            )
        )
    except Exception as e:
        fail(e, as_json)


def show_sender_key(key: SenderKey) -> None:
    if key.key_id is None:
        err.print(f"{markup_safe(key.name)} holds no sender key: its commands are refused")
        return
    err.print(
        f"sender key {key.key_id} (ce_keyid): may send {markup_safe(', '.join(key.use_cases))}; "
        f"acts for {markup_safe(', '.join(key.acts_for))}"
    )


def register_sender_commands(principals_cli: typer.Typer) -> None:
    """Adds `keygen`, `sender-key` and `revoke-sender-key` to `backcheck principals`."""

    @principals_cli.command("keygen")
    def keygen(
        private_key: Annotated[
            Path, typer.Argument(help="where to write the private key (PEM; FILE.pub: public)")
        ],
    ) -> None:
        """Make a sender key pair: the private key to FILE (owner-only), the public key to
        FILE.pub; prints the key id. Neither file is overwritten."""
        from infra.audit.outputs import OutputPathError
        from infra.kafka.signatures import new_key_pair

        pem, public = new_key_pair()
        public_path = private_key.with_name(private_key.name + ".pub")
        try:
            for path in (private_key, public_path):
                if path.exists():
                    raise OutputPathError(f"{path} exists; a key file is never overwritten")
            _write_new(private_key, pem, 0o600)
            _write_new(public_path, public.encode() + b"\n", 0o644)
        except Exception as e:
            fail(e)
        from domain.principal import sender_key_id

        err.print(f"private key: {markup_safe(str(private_key))} (keep it with the sender alone)")
        err.print(f"public key:  {markup_safe(str(public_path))}")
        sys.stdout.write(f"{sender_key_id(public)}\n")

    @principals_cli.command("sender-key")
    def sender_key(
        name: _Name,
        public_key: PublicKeyOption = None,
        use_cases: UseCasesOption = None,
        acts_for: ActsForOption = None,
        actor: _Actor = "operator",
        as_json: _Json = False,
    ) -> None:
        """Give a service its sender key, or a new one (the old one's signatures are refused
        from now on), with the use cases it may send and whom it may act for."""
        from services.senders import IssueSenderKey

        uses, acts = _names(use_cases, "--use-cases"), _names(acts_for, "--acts-for")
        try:
            key = _public_key(public_key)
            application, _ = open_app()
            result = application.issue_sender_key(
                parsed(
                    IssueSenderKey,
                    name=name,
                    public_key=key,
                    use_cases=uses,
                    acts_for=acts,
                    actor=actor,
                )
            )
        except Exception as e:
            fail(e, as_json)
        if as_json:
            sys.stdout.write(result.model_dump_json() + "\n")
            return
        show_sender_key(result)

    @principals_cli.command("revoke-sender-key")
    def revoke_sender_key(
        name: _Name,
        reason: Annotated[str, typer.Option(help="why; recorded")],
        actor: _Actor = "operator",
        as_json: _Json = False,
    ) -> None:
        """Refuse a service's commands from now on (its token, if any, still works)."""
        from services.senders import RevokeSenderKey

        try:
            application, _ = open_app()
            result = application.revoke_sender_key(
                parsed(RevokeSenderKey, name=name, reason=reason, actor=actor)
            )
        except Exception as e:
            fail(e, as_json)
        if as_json:
            sys.stdout.write(result.model_dump_json() + "\n")
            return
        console.print(f"[green]revoked[/] the sender key of {markup_safe(name)}")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
