"""Command receipts: which internal service sent which command, and that it was applied.

A command that arrives from another service (an ATS, an e-signature service) is applied once:
its receipt is stored in the same write as the events the command caused, under an id derived
from the sender and the sender's command id. A second delivery of the same command collides
with that receipt and records nothing. The receipt is also a fact for the audit trail — who
sent what, on behalf of whom, when, through which channel — and never holds a personal value.

Since v2 it also names the events stored with it (`originator id:version`, the ids the relay
publishes them under), so the answer to a redelivered command (the outcomes topic,
infra/kafka/outcome.py) lists the same events the first answer did.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.errors import InvalidInputError
from domain.subject import SubjectAggregate

# Fixed for ever: receipt ids of commands already applied are derived from it.
RECEIPT_NAMESPACE = UUID("5d0c3b0e-7a52-4c8e-9d36-0b7f6a1f2c41")


def receipt_id(source: str, command_id: str) -> UUID:
    """The one id a command from `source` with the sender's id `command_id` can be stored
    under: the same for every delivery of it, different for any other sender or command.

    The name is `source:command_id` with `%` and `:` percent-encoded in the command id, so
    the last colon always separates the two parts: `("a:b", "c")` and `("a", "b:c")` no
    longer share a receipt. A command id without `%` or `:` keeps the id it always had."""
    encoded = command_id.replace("%", "%25").replace(":", "%3A")
    return uuid5(RECEIPT_NAMESPACE, f"{source}:{encoded}")


class CommandReceipt(SubjectAggregate):
    class Applied(SubjectAggregate.Created):
        """v1 did not name the events stored with it: they replay as unknown (none)."""

        class_version = 2
        source: str
        command_id: str
        command_type: str
        actor: str
        channel: str
        events: tuple[str, ...]

        @classmethod
        def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
            state["events"] = []

    @classmethod
    def record(
        cls,
        candidate_id: UUID,
        source: str,
        command_id: str,
        command_type: str,
        actor: str,
        channel: str,
        events: tuple[str, ...] = (),
    ) -> CommandReceipt:
        for name, value in (("source", source), ("command_id", command_id)):
            if not value.strip():
                raise InvalidInputError(f"field {name!r}: a delivered command names its {name}")
        return cls(
            candidate_id=candidate_id,
            source=source,
            command_id=command_id,
            command_type=command_type,
            actor=actor,
            channel=channel,
            events=events,
        )

    @staticmethod
    def create_id(source: str, command_id: str) -> UUID:
        return receipt_id(source, command_id)

    @event(Applied)
    def __init__(
        self,
        candidate_id: UUID,
        source: str,
        command_id: str,
        command_type: str,
        actor: str,
        channel: str,
        events: tuple[str, ...],
    ) -> None:
        self.candidate_id = candidate_id
        self.source = source
        self.command_id = command_id
        self.command_type = command_type
        self.actor = actor
        self.channel = channel
        self.events = events  # "originator id:version" of each event stored with it
