"""Commands delivered by other services (an ATS, an e-signature service): each one is one
use-case call, applied once.

The sender names the use case and gives the command an id of its own. The command is
validated by that use case's DTO and run as any other command would be; its receipt
(`domain/intake.py`) is stored in the same write as the events it caused. So a command is
applied with its receipt or not at all, and a second delivery of it — a resend, a second
worker racing the first — finds the receipt, or collides with it, and records nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from domain.intake import CommandReceipt, receipt_id
from services.application import Backcheck
from services.catalogue import USE_CASES, UseCase
from services.errors import (
    AggregateMissingError,
    CommandAlreadyAppliedError,
    ConcurrentChangeError,
    NotAcceptedFromServicesError,
    UnknownUseCaseError,
)
from services.unit import Delivery, ReceiptError

_READ = (
    "a read returns personal data to a person who states a purpose, and is recorded as their "
    "access; a command topic has no one to answer"
)
_TOKEN = (
    "a token is shown once to whoever asks for it, and a command topic has no one to hand "
    "it to; nor may whoever can write to the topic give principals access (an operator runs "
    "`backcheck principals`)"
)
NOT_FROM_SERVICES: dict[str, str] = {
    "read-profile": _READ,
    "read-profiles": _READ,
    "read-report": _READ,
    "read-investigation": _READ,
    "read-access-log": _READ,
    "read-consents": _READ,
    "read-timeline": _READ,
    "read-as-of": _READ,
    "add-principal": _TOKEN,
    "rotate-principal": _TOKEN,
    "issue-portal-link": _TOKEN,
    "revoke-principal": "principals are managed by an operator (`backcheck principals "
    "revoke`) or an authenticated caller, never by an asserted one",
    "export-subject-data": "an access package hands the subject's personal data over, and a "
    "command topic has no one to hand it to (the candidate downloads it from the portal; an "
    "operator runs `backcheck subject export`)",
    "erase-subject": "erasure destroys the subject's keys after its write, which a redelivery "
    "must not skip; a compliance officer runs `backcheck subject erase` (a service may send "
    "request-erasure)",
}


@dataclass(frozen=True)
class AppliedCommand:
    """What applying a delivered command did: the use case's result, and (event id, log
    position) of every event stored in its write, its receipt's last."""

    result: BaseModel
    stored: tuple[tuple[str, int], ...]


class CommandIntake:
    """Applies delivered commands to one application.

    `scopes`, when given, names the use cases each sending service may ask for: a source not
    named, or a use case outside its scope, is refused. Without it every source may send every
    use case accepted from services (the topic's ACLs decide who may write)."""

    def __init__(
        self,
        app: Backcheck,
        scopes: Mapping[str, frozenset[str]] | None = None,
        retries: int = 3,
        refused: Mapping[str, str] = NOT_FROM_SERVICES,
    ) -> None:
        self.app = app
        self.scopes = scopes
        self.retries = retries
        self.refused = refused  # use case -> why it is not taken on this channel

    def use_case(self, delivery: Delivery) -> UseCase:
        found = USE_CASES.get(delivery.command_type)
        if found is None:
            raise UnknownUseCaseError(delivery.command_type)
        why = self.refused.get(found.name)
        if why is not None:
            raise NotAcceptedFromServicesError(found.name, why)
        if self.scopes is not None and found.name not in self.scopes.get(delivery.source, ()):
            raise NotAcceptedFromServicesError(
                found.name, f"it is outside the scope of the sending service {delivery.source!r}"
            )
        return found

    def already_applied(self, delivery: Delivery) -> CommandAlreadyAppliedError | None:
        try:
            receipt = self.app.load(
                CommandReceipt, receipt_id(delivery.source, delivery.command_id)
            )
        except AggregateMissingError:
            return None
        return CommandAlreadyAppliedError(
            receipt.source,
            receipt.command_id,
            receipt.command_type,
            receipt.created_on.isoformat(),
            receipt.channel,
        )

    def stored_by(self, delivery: Delivery) -> tuple[str, ...] | None:
        """The ids of the events an applied command stored, its receipt's last, as its receipt
        names them (a receipt stored before v2 names only itself); None: not applied."""
        receipt_key = receipt_id(delivery.source, delivery.command_id)
        try:
            receipt = self.app.load(CommandReceipt, receipt_key)
        except AggregateMissingError:
            return None
        return (*receipt.events, f"{receipt_key}:1")

    def apply(self, delivery: Delivery, payload: Any) -> BaseModel:
        """`apply_delivered`'s result alone."""
        return self.apply_delivered(delivery, payload).result

    def apply_delivered(self, delivery: Delivery, payload: Any) -> AppliedCommand:
        """Runs the command once. Raises pydantic's ValidationError for a command its DTO
        refuses, a DomainError for a rule it breaks, CommandAlreadyAppliedError when it was
        applied before; in each case nothing is recorded.

        A write that collides with someone else's is decided again on the new state (a few
        times) unless the collision was with this command's own receipt."""
        use_case = self.use_case(delivery)
        command = use_case.command.model_validate(payload)
        actor = str(getattr(command, "actor", ""))
        for attempt in range(self.retries + 1):
            duplicate = self.already_applied(delivery)
            if duplicate is not None:
                raise duplicate
            try:
                with self.app.receiving(delivery, actor) as receiving:
                    result = use_case.call(self.app, command)
            except ConcurrentChangeError:
                if attempt == self.retries:
                    duplicate = self.already_applied(delivery)
                    raise duplicate or ConcurrentChangeError([delivery.command_id]) from None
                continue
            if receiving.receipt is None:
                raise ReceiptError(
                    f"{use_case.name} returned without saving; a delivered command writes once"
                )
            return AppliedCommand(result, receiving.stored)
        raise AssertionError("unreachable: the last attempt returns or raises")
