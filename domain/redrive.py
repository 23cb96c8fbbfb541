"""Redrives: a dead-lettered command sent back to the command topic by an operator.

A command refused for a reason that has since been fixed (the candidate it names registered
meanwhile, a sender's scope widened, a bug mended) can be sent again as it came, without
asking its sender. That puts a command on the topic that nobody sent just now, so each redrive
is a fact for the audit trail: who sent which dead letter back, to where, when. And a letter is
sent back once: redriving it again (the operator's `--force`) is its own, recorded, decision.

One aggregate per dead letter, its id derived from the letter's identity (`letter`:
`topic/partition@offset#fingerprint`, infra/kafka/dead_letters.py), so two operators redriving
the same letter at once collide in the store and only one of them sends it, and a new letter
where an old one lay (its topic made again) is not taken for the old one. Redrives recorded
before letters had fingerprints are under the place alone (`LetterKey`). About no data subject:
a dead letter may name none.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.errors import InvalidInputError, RuleBrokenError
from domain.subject import (
    RecordedAggregate,
    RecordedCalledSinceV2,
    RecordedCreatedCalledSinceV2,
)

# Fixed for ever: the ids of letters already redriven are derived from it.
REDRIVE_NAMESPACE = UUID("8a2e6f5c-1b3d-4e7f-a9c0-5d4b3a2f1e60")
MAX_TEXT = 256  # a letter's place, its command's id, source and type, the actor, the topic


def redrive_id(letter: str) -> UUID:
    """The one id the redrives of the dead letter `letter` are stored under."""
    return uuid5(REDRIVE_NAMESPACE, letter)


@dataclass(frozen=True)
class LetterKey:
    """How a dead letter's redrives are found: under its `identity` (place and fingerprint);
    or, recorded before letters had fingerprints, under its `place` alone, which count only
    for the same command (its `command_source` and `command_id`)."""

    identity: str
    place: str
    command_source: str
    command_id: str

    def names(self) -> tuple[str, ...]:
        return (self.identity, self.place) if self.place != self.identity else (self.identity,)

    def is_of(self, key: str, redrive: DeadLetterRedrive) -> bool:
        """Whether `redrive`, found under `key`, was of this letter."""
        same_command = (redrive.command_source, redrive.command_id) == (
            self.command_source[:MAX_TEXT],
            self.command_id[:MAX_TEXT],
        )
        return key == self.identity or same_command


def letter_key(letter: str, command_source: str, command_id: str) -> LetterKey:
    """The key of a letter named by its identity (or, sent back before, by its place)."""
    return LetterKey(letter, letter.partition("#")[0], command_source, command_id)


class LetterAlreadyRedrivenError(RuleBrokenError):
    def __init__(self, letter: str, times: int, last_by: str) -> None:
        place = letter.partition("#")[0]
        super().__init__(
            f"the dead letter {place} was redriven before ({times} time(s), last by "
            f"{last_by}); it is sent back once: add --force to send it again",
            letter=letter,
            times=times,
            last_by=last_by,
        )


def _check(**texts: str) -> None:
    for name, value in texts.items():
        if not value.strip():
            raise InvalidInputError(f"field {name!r}: a redrive names its {name}", field=name)
        if len(value) > MAX_TEXT:
            raise InvalidInputError(f"field {name!r}: at most {MAX_TEXT} characters", field=name)


class DeadLetterRedrive(RecordedAggregate):
    # v2 of each: who called it, as authenticated (`authenticated`, domain/caller.py)
    class Redriven(RecordedCreatedCalledSinceV2):
        letter: str
        command_id: str
        command_source: str
        command_type: str
        to_topic: str
        redriven_by: str

    class RedrivenAgain(RecordedCalledSinceV2):
        to_topic: str
        redriven_by: str

    @classmethod
    def first(
        cls,
        letter: str,
        command_id: str,
        command_source: str,
        command_type: str,
        to_topic: str,
        redriven_by: str,
    ) -> DeadLetterRedrive:
        """The letter's first redrive: `command_*` as its headers name the command (empty
        where they do not)."""
        _check(letter=letter, to_topic=to_topic, redriven_by=redriven_by)
        return cls(
            letter=letter,
            command_id=command_id[:MAX_TEXT],
            command_source=command_source[:MAX_TEXT],
            command_type=command_type[:MAX_TEXT],
            to_topic=to_topic,
            redriven_by=redriven_by,
        )

    @staticmethod
    def create_id(letter: str, **_: str) -> UUID:
        return redrive_id(letter)

    @event(Redriven)
    def __init__(
        self,
        letter: str,
        command_id: str,
        command_source: str,
        command_type: str,
        to_topic: str,
        redriven_by: str,
    ) -> None:
        self.letter = letter
        self.command_id = command_id
        self.command_source = command_source
        self.command_type = command_type
        self.times = 1
        self.last_by = redriven_by

    def again(self, to_topic: str, redriven_by: str, forced: bool) -> None:
        """Sent back once more: only when the operator says so (`forced`)."""
        if not forced:
            raise LetterAlreadyRedrivenError(self.letter, self.times, self.last_by)
        _check(to_topic=to_topic, redriven_by=redriven_by)
        self._redriven_again(to_topic=to_topic, redriven_by=redriven_by)

    @event(RedrivenAgain)
    def _redriven_again(self, to_topic: str, redriven_by: str) -> None:
        self.times += 1
        self.last_by = redriven_by
