"""Services that send commands on the Kafka command topic: their keys, their scope, and what
was refused from senders that could not be trusted.

A sender is a service principal holding a sender key (domain/principal.py): the Ed25519 public
key its commands are signed with, the use cases it may send — names from the one use-case table
(services/catalogue.py), none that is refused from services anyway — and the principals it may
name as the command's actor. The intake (infra/kafka/senders.py) asks `sender` for it on every
message: one indexed look-up tells whether the principal changed since it was last loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Annotated

from pydantic import Field, StringConstraints

from domain.errors import InvalidPrincipalError, PrincipalAlreadyExistsError
from domain.principal import (
    MAX_ACTS_FOR,
    MAX_NAME,
    MAX_SENDER_USE_CASES,
    SELF,
    Principal,
    PrincipalKind,
    principal_id,
)
from domain.sender import SenderRefusal, refusal_id
from domain.subject import recorded_at
from services.access import Role
from services.dto import Actor, Command, PrincipalIssued, PrincipalName, Result, Text, ValidDays
from services.errors import AggregateMissingError, ConcurrentChangeError, UnknownPrincipalError
from services.principals import new_token, principal_result, token_hash
from services.unit import UnitOfWork, use_case

_SENDERS_KEPT = 1024  # senders remembered between messages, at most

PublicKey = Annotated[
    str,
    StringConstraints(min_length=44, max_length=44, pattern=r"^[A-Za-z0-9+/]{43}=$"),
    Field(description="the Ed25519 public key: its 32 raw bytes in base64"),
]
UseCaseName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ActsFor = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_NAME),
    Field(description="a principal's name, or self"),
]


class IssueSenderKey(Command):
    """A service's key for signing commands, and what it may send (again: a rotation)."""

    name: PrincipalName
    public_key: PublicKey
    use_cases: list[UseCaseName] = Field(min_length=1, max_length=MAX_SENDER_USE_CASES)
    acts_for: list[ActsFor] = Field(min_length=1, max_length=MAX_ACTS_FOR)
    actor: Actor


class AddSender(IssueSenderKey):
    """A service principal with its first token and its sender key, in one write."""

    role: Role = Role.SERVICE
    valid_days: ValidDays = None


class RevokeSenderKey(Command):
    name: PrincipalName
    reason: Text
    actor: Actor


class SenderKey(Result):
    name: str
    key_id: str | None = Field(description="the key's id, as senders put it in ce_keyid")
    use_cases: list[str]
    acts_for: list[str]
    version: int


class SenderIssued(PrincipalIssued):
    sender: SenderKey


@dataclass(frozen=True)
class Sender:
    """A service that may send commands, as its principal stands now."""

    name: str
    public_key: str  # base64 Ed25519
    key_id: str
    use_cases: frozenset[str]
    acts_for: frozenset[str]  # principals' names; `self` as its own name
    version: int


def check_use_cases(names: list[str]) -> None:
    """Each a use case of the table, and one accepted from services."""
    from services.catalogue import USE_CASES  # imports the application: not at module import
    from services.intake import NOT_FROM_SERVICES

    for name in names:
        if name not in USE_CASES:
            raise InvalidPrincipalError(
                "use_cases", f"{name!r} is no use case (`backcheck use-cases` lists them)"
            )
        if name in NOT_FROM_SERVICES:
            raise InvalidPrincipalError(
                "use_cases", f"{name!r} is not accepted from services: {NOT_FROM_SERVICES[name]}"
            )


def sender_key(principal: Principal) -> SenderKey:
    return SenderKey(
        name=principal.name,
        key_id=principal.sender_key_id,
        use_cases=list(principal.sender_use_cases),
        acts_for=list(principal.sender_acts_for),
        version=principal.version,
    )


class SenderUseCases(UnitOfWork):
    @use_case
    def add_sender(self, cmd: AddSender) -> SenderIssued:
        """A service that sends commands gets its principal, its first token (shown once) and
        its sender key in one write: the use cases it may send (from the use-case table, none
        refused from services) and the principals it may act for (self: itself)."""
        check_use_cases(cmd.use_cases)
        pid = principal_id(cmd.name)
        if self.exists(pid):
            raise PrincipalAlreadyExistsError(cmd.name)
        token = new_token(pid)
        days = cmd.valid_days
        expires = self.now() + timedelta(days=days) if days is not None else None
        principal = Principal.add(
            cmd.name,
            cmd.role.value,
            PrincipalKind.SERVICE.value,
            (),
            token_hash(token),
            expires,
            cmd.actor,
        )
        principal.issue_sender_key(
            cmd.public_key, tuple(cmd.use_cases), tuple(cmd.acts_for), cmd.actor
        )
        self._check_acts_for(cmd.name, cmd.acts_for)
        self.commit(principal)
        return SenderIssued(
            **principal_result(principal).model_dump(), token=token, sender=sender_key(principal)
        )

    @use_case
    def issue_sender_key(self, cmd: IssueSenderKey) -> SenderKey:
        """A service gets a sender key, or a new one in place of the old (whose signatures are
        refused from then on), with the use cases it may send and whom it may act for."""
        check_use_cases(cmd.use_cases)
        principal = self._sender_principal(cmd.name)
        principal.issue_sender_key(
            cmd.public_key, tuple(cmd.use_cases), tuple(cmd.acts_for), cmd.actor
        )
        self._check_acts_for(cmd.name, cmd.acts_for)
        self.commit(principal)
        return sender_key(principal)

    @use_case
    def revoke_sender_key(self, cmd: RevokeSenderKey) -> SenderKey:
        """A service's commands are refused from now on; its token, if any, still works."""
        principal = self._sender_principal(cmd.name)
        principal.revoke_sender_key(cmd.reason, cmd.actor)
        self.commit(principal)
        return sender_key(principal)

    def _check_acts_for(self, sender: str, acts_for: list[str]) -> None:
        """Each principal a sender may act for is registered (or is the sender itself: self):
        a name that is no one's would let the sender's commands be recorded as done by no one,
        or by whoever is registered under that name later. Run after the principal checked
        the names' form, before anything is saved."""
        for name in acts_for:
            if name not in (SELF, sender) and not self.exists(principal_id(name)):
                raise InvalidPrincipalError(
                    "acts_for",
                    f"{name!r} is no registered principal; a sender acts for principals "
                    "registered first (`backcheck principals list`), or for self",
                )

    def _sender_principal(self, name: str) -> Principal:
        try:
            return self.load(Principal, principal_id(name))
        except AggregateMissingError:
            raise UnknownPrincipalError(name) from None

    def sender(self, name: str) -> Sender | None:
        """The service `name` as a sender now; None when there is no such principal, or it is
        no service, revoked, or holds no sender key."""
        if len(name) > MAX_NAME:
            return None
        pid = principal_id(name)
        version = self.version_of(pid)
        if version is None:
            return None
        known = self._senders.get(name)
        if known is not None and known[0] == version:
            return known[1]
        principal = self.load(Principal, pid)
        found = None
        if (
            principal.kind == PrincipalKind.SERVICE
            and principal.revoked is None
            and principal.sender_key is not None
            and principal.sender_key_id is not None
        ):
            found = Sender(
                name=principal.name,
                public_key=principal.sender_key,
                key_id=principal.sender_key_id,
                use_cases=frozenset(principal.sender_use_cases),
                acts_for=frozenset(principal.sender_acts_for),
                version=principal.version,
            )
        if len(self._senders) >= _SENDERS_KEPT:
            self._senders.clear()
        self._senders[name] = (version, found)
        return found

    @cached_property
    def _senders(self) -> dict[str, tuple[int, Sender | None]]:
        return {}

    def record_sender_refusal(
        self,
        channel: str,
        reason: str,
        error: str,
        source: str,
        command_id: str,
        command_type: str,
        key_id: str,
        body_sha256: str,
    ) -> bool:
        """Records that the message at `channel` was refused (domain/sender.py); False when it
        was recorded before (the same message delivered again)."""
        if self.exists(refusal_id(channel)):
            return False
        with recorded_at(self.clock()):
            refusal = SenderRefusal.record(
                channel, reason, error, source, command_id, command_type, key_id, body_sha256
            )
            try:
                self.commit(refusal)
            except ConcurrentChangeError:
                return False  # another worker recorded it first
        return True
