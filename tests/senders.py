"""Registered senders and their signed commands, as the sender-check tests build them (with
and without a broker)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.principal import SELF, principal_id
from infra.kafka.signatures import CommandSigner, public_text
from services.application import Backcheck
from services.dto import AddPrincipal
from services.senders import AddSender
from tests.commands import headers

ATS_SENDER = "svc:ats"
ESIGN_SENDER = "svc:esign"
SENDER_USE_CASES = ["register-candidate", "request-consent"]


@dataclass(frozen=True)
class Registered:
    name: str
    signer: CommandSigner

    def signed(
        self,
        command_type: str,
        value: bytes,
        command_id: str | None = None,
        time: datetime | None = None,
        source: str | None = None,
    ) -> list[tuple[str, bytes]]:
        """The command's headers as this sender signs them (`source`: a lie it tells)."""
        found = headers(command_type, command_id, source=source or self.name)
        if time is not None:
            found = [(n, time.isoformat().encode() if n == "ce_time" else v) for n, v in found]
        return self.signer.headers(found, value)


def new_signer() -> CommandSigner:
    return CommandSigner(Ed25519PrivateKey.generate())


def register_sender(
    app: Backcheck,
    name: str,
    use_cases: list[str] | None = None,
    acts_for: list[str] | None = None,
    **more: Any,
) -> Registered:
    """A service principal with a sender key, registered as an operator would: the staff it
    acts for first (a sender acts for registered principals only)."""
    signer = new_signer()
    acts_for = acts_for or ["hr:li.na", "self"]
    for acted_for in acts_for:
        if acted_for not in (SELF, name) and not app.exists(principal_id(acted_for)):
            app.add_principal(AddPrincipal(name=acted_for, role="recruiter", actor="operator"))
    app.add_sender(
        AddSender(
            name=name,
            role="service",
            public_key=public_text(signer.private.public_key()),
            use_cases=use_cases or SENDER_USE_CASES,
            acts_for=acts_for,
            actor="operator",
            **more,
        )
    )
    return Registered(name, signer)
