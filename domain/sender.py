"""Commands refused before they were trusted: the sender could not be established, or was
acting outside what it is registered for.

A message on the command topic is a claim by whoever could write to the topic. When the intake
cannot tie it to a registered service's key (unsigned, unknown sender, a signature that does not
verify), or the sender asks for more than it may (a use case outside its scope, an actor it may
not act for, a stale or replayed message), the message is dead-lettered and this refusal is
recorded in the store: the same hash chain as everything else, so the audit replays who tried
to send what, and why it was refused, beside what was done.

A refusal holds no personal value: the command's body is kept only as its SHA-256, the headers
it names are bounded and were checked to be plain text. Its id is derived from where the message
was on the topic, so the same message delivered again records nothing new.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.subject import RecordedAggregate

# Fixed for ever: the ids of refusals already recorded are derived from it.
REFUSAL_NAMESPACE = UUID("0b7e4f2a-93c1-5d8e-a6f4-2c9d1e3b7a50")
MAX_TEXT = 256
MAX_ERROR = 1000


def refusal_id(channel: str) -> UUID:
    """The one id the refusal of the message at `channel` (topic/partition@offset) has."""
    return uuid5(REFUSAL_NAMESPACE, channel)


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


class SenderRefusal(RecordedAggregate):
    @classmethod
    def record(
        cls,
        channel: str,
        reason: str,
        error: str,
        source: str,
        command_id: str,
        command_type: str,
        key_id: str,
        body_sha256: str,
    ) -> SenderRefusal:
        """A refusal of the message at `channel`; every text bounded (what a sender wrote is
        cut, never refused again here)."""
        return cls._create(
            cls.Refused,  # type: ignore[attr-defined]
            id=refusal_id(channel),
            channel=_bounded(channel, MAX_TEXT),
            reason=_bounded(reason, MAX_TEXT),
            error=_bounded(error, MAX_ERROR),
            source=_bounded(source, MAX_TEXT),
            command_id=_bounded(command_id, MAX_TEXT),
            command_type=_bounded(command_type, MAX_TEXT),
            key_id=_bounded(key_id, MAX_TEXT),
            body_sha256=_bounded(body_sha256, 64),
        )

    @event("Refused")
    def __init__(
        self,
        channel: str,
        reason: str,
        error: str,
        source: str,
        command_id: str,
        command_type: str,
        key_id: str,
        body_sha256: str,
    ) -> None:
        self.channel = channel
        self.reason = reason
        self.error = error
        self.source = source
        self.command_id = command_id
        self.command_type = command_type
        self.key_id = key_id
        self.body_sha256 = body_sha256
