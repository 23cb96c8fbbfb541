"""Redrives of dead-lettered commands: recorded before the letter is sent back.

The operator's `backcheck dlq redrive` sends a dead letter back to the command topic after a
fix. Recording comes first, so no letter goes back unrecorded (a send that then fails is said,
and the letter is sent with --force once the broker is back); a letter already redriven is
refused unless the operator forces it, and that, too, is recorded. Not a use case of the
catalogue: no HTTP route or command message may redrive; only the operator on the store's
machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import StringConstraints

from domain.redrive import (
    MAX_TEXT,
    DeadLetterRedrive,
    LetterAlreadyRedrivenError,
    LetterKey,
    letter_key,
    redrive_id,
)
from services.dto import Actor, Command, Result
from services.errors import AggregateMissingError
from services.unit import UnitOfWork, use_case

_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]
_Said = Annotated[str, StringConstraints(max_length=MAX_TEXT)]


class RecordRedrive(Command):
    letter: _Name  # the dead letter's identity: topic/partition@offset#fingerprint
    command_id: _Said = ""  # the command's ce_id, ce_source and ce_type, as its headers say
    command_source: _Said = ""
    command_type: _Said = ""
    to_topic: _Name
    actor: Actor
    force: bool = False


class RedriveRecorded(Result):
    letter: str
    times: int  # how often it has now been sent back


class RedriveUseCases(UnitOfWork):
    @use_case
    def record_redrive(self, cmd: RecordRedrive) -> RedriveRecorded:
        """A dead letter is sent back once; again only when the operator forces it. Two
        operators redriving the same letter at once collide here: one of them is refused."""
        letter = letter_key(cmd.letter, cmd.command_source, cmd.command_id)
        redrive = self._redrives_of(letter)
        if redrive is None:
            redrive = DeadLetterRedrive.first(
                cmd.letter,
                cmd.command_id,
                cmd.command_source,
                cmd.command_type,
                cmd.to_topic,
                cmd.actor,
            )
        else:
            redrive.again(cmd.to_topic, cmd.actor, cmd.force)
        self.commit(redrive)
        return RedriveRecorded(letter=cmd.letter, times=redrive.times)

    def _redrives_of(self, letter: LetterKey) -> DeadLetterRedrive | None:
        """The redrives recorded of this letter, if any."""
        for key in letter.names():
            try:
                redrive = self.load(DeadLetterRedrive, redrive_id(key))
            except AggregateMissingError:
                continue
            if letter.is_of(key, redrive):
                return redrive
        return None

    def redrive_recorded(self, letter: str, command_source: str, command_id: str) -> bool:
        """Whether an operator recorded sending `letter` back (its identity; its place, sent
        back before letters had fingerprints), and it was this command (its source and id as
        the letter's headers said)."""
        if not letter or len(letter) > 1000:
            return False
        redrive = self._redrives_of(letter_key(letter, command_source, command_id))
        return redrive is not None and (redrive.command_source, redrive.command_id) == (
            command_source,
            command_id,
        )

    def redriven(self, letters: Iterable[LetterKey]) -> dict[str, int]:
        """How often each of these letters was sent back, by identity (those never sent back
        left out)."""
        found = {}
        for letter in letters:
            redrive = self._redrives_of(letter)
            if redrive is not None:
                found[letter.identity] = redrive.times
        return found

    def refuse_redriven(self, letters: Iterable[LetterKey]) -> None:
        """LetterAlreadyRedrivenError for the first of these letters sent back before."""
        for letter in letters:
            redrive = self._redrives_of(letter)
            if redrive is not None:
                raise LetterAlreadyRedrivenError(letter.place, redrive.times, redrive.last_by)
