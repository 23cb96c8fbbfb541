"""The command outcomes' bodies as models: what `backcheck.command-outcomes.v1` carries.

Issue 20 item 2 answers every command on the command topic (the intake's outcome producer); this
is its message's shape, for the AsyncAPI document to be generated from code like every other
message's. The producer builds the same JSON (`{"outcome": "accepted" | "refused", ...}`); a
test holds real outcomes to this schema, so the two cannot drift apart unseen.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from infra.contract.headers import REASONS

OUTCOMES_TOPIC = "backcheck.command-outcomes.v1"
ACCEPTED = "backcheck.command.accepted.v1"
REFUSED = "backcheck.command.refused.v1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommandAnswered(_Model):
    """The command answered, as it named itself (each left out, null, if it did not readably)."""

    id: str | None = Field(
        description="its ce_id, whole: the correlation id (null for an id past the contract's "
        "bound, refused as malformed: it is never cut to fit, where a prefix could be another "
        "command's)"
    )
    source: str | None = Field(description="its ce_source")
    type: str | None = Field(description="its ce_type (the use case)")
    channel: str = Field(description="the channel it came by")


class StoredEventRef(_Model):
    id: str = Field(description="the event's ce_id on the events topic: `originator id:version`")
    position: int = Field(ge=1, description="its position in the log (ce_position)")


class Problem(_Model):
    """RFC 9457 problem details, as the HTTP API gives them for the same error."""

    type: str = Field(description="the problem type's absolute URI")
    title: str
    status: int
    detail: str = Field(max_length=2_003)
    rule: str = Field(description="the rule that refused it")
    field: str | None = Field(description="the field at fault, where one is known")
    errors: list[dict[str, str]] | None = Field(
        default=None, max_length=50, description="each broken field: field, rule, message"
    )


class DeadLetterPlace(_Model):
    topic: str
    partition: int
    offset: int


class CommandAccepted(_Model):
    """The command was applied: the events it stored, and its receipt."""

    outcome: Literal["accepted"]
    command: CommandAnswered
    events: list[StoredEventRef]
    receipt: StoredEventRef | None


class CommandRefused(_Model):
    """The command was refused and dead-lettered; nothing was stored (a duplicate: what its
    first delivery stored)."""

    outcome: Literal["refused"]
    command: CommandAnswered
    reason: str = Field(description=REASONS)
    problem: Problem
    events: list[StoredEventRef] | None = None
    receipt: StoredEventRef | None = None
    dead_letter: DeadLetterPlace | None = None
