"""Master key rotations: every data key rewrapped under a new master key, as the audit keeps it.

A rotation is recorded when it starts (from which key to which, by key id: a short name derived
from the key's check value, never the key) and when it ends (how many data keys it rewrapped).
Its id is derived from the key it rotates to, so running it again after a crash finds the
unfinished one and finishes it. (A rotation to another key while one is unfinished is refused
by the key store, which finds data keys wrapped by a key that is neither.) One whose new key is
lost can only be given up: recorded as abandoned (how many data keys lose their wrapping by it),
after which the store stays on its key and a rotation to another may start.

A rotation is about no data subject: it holds key ids and counts, never a personal value.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.errors import InvalidInputError, RuleBrokenError
from domain.subject import RecordedAggregate

# Fixed for ever: the ids of rotations already recorded are derived from it.
ROTATION_NAMESPACE = UUID("6b1d2f0e-57c4-4a8e-9c3b-0f7e2d9a4c61")
KEY_ID = re.compile(r"[a-z0-9]{1,20}:[0-9a-f]{8,64}")


def rotation_id(to_key: str) -> UUID:
    """The one id the rotation to `to_key` is stored under."""
    return uuid5(ROTATION_NAMESPACE, f"master-key-rotation:{to_key}")


def _check_key(name: str, value: str) -> None:
    if not isinstance(value, str) or not KEY_ID.fullmatch(value):
        raise InvalidInputError(f"field {name!r}: a key id, KIND:HEX", field=name)


class RotationUnfinishedError(RuleBrokenError):
    """A rotation left unfinished is finished to the key it started to, not another."""

    def __init__(self, to_key: str) -> None:
        super().__init__(
            f"a rotation to master key {to_key} is not finished: run it again to {to_key} to "
            "finish it, or, if that key is lost, give it up with `backcheck keys rotate-master "
            "--abandon` (the store stays on its current key)",
            to_key=to_key,
        )


class NothingToAbandonError(RuleBrokenError):
    """Only a rotation left unfinished before its switch can be given up. One cut off after
    it (`switched`: its key, the store's now) is finished by running it again."""

    def __init__(self, key_id: str, switched: str | None = None) -> None:
        if switched is None:
            message = (
                "no rotation is unfinished: every data key is wrapped by the store's master "
                f"key {key_id} alone; nothing to abandon"
            )
        else:
            message = (
                f"the rotation to master key {switched} is not recorded as finished, but it "
                f"switched the store to that key, the store's now: run it again to {switched} "
                "to record its finish; nothing to abandon"
            )
        super().__init__(message)


class RotationFinishedError(RuleBrokenError):
    def __init__(self, rotation: UUID, to_key: str) -> None:
        super().__init__(
            f"the rotation to master key {to_key} was finished already", rotation=rotation
        )


class MasterKeyRotation(RecordedAggregate):
    @classmethod
    def start(cls, from_key: str, to_key: str, pending: int) -> MasterKeyRotation:
        """A rotation from `from_key` to `to_key` with `pending` data keys to rewrap."""
        _check_key("from_key", from_key)
        _check_key("to_key", to_key)
        if from_key == to_key:
            raise InvalidInputError("field 'to_key': the key the store has already", field="to_key")
        return cls._create(
            cls.Started,  # type: ignore[attr-defined]
            from_key=from_key,
            to_key=to_key,
            pending=pending,
        )

    @staticmethod
    def create_id(to_key: str, **_: Any) -> UUID:
        return rotation_id(to_key)

    @event("Started")
    def __init__(self, from_key: str, to_key: str, pending: int) -> None:
        self.from_key = from_key
        self.to_key = to_key
        self.pending = pending
        self.rounds = 1
        self.finished = False
        self.abandoned = False
        self.rewrapped = 0
        self.unreadable = 0

    def again(self, from_key: str, pending: int) -> bool:
        """Whether this is a new round (the store comes back to `to_key` after rotating away
        from it, or after the rotation to it was abandoned): recorded as started again. An
        unfinished one is resumed (nothing recorded)."""
        _check_key("from_key", from_key)
        if not self.finished and not self.abandoned:
            return False
        self._started_again(from_key=from_key, pending=pending)
        return True

    @event("StartedAgain")
    def _started_again(self, from_key: str, pending: int) -> None:
        self.from_key = from_key
        self.pending = pending
        self.rounds += 1
        self.finished = False
        self.abandoned = False
        self.rewrapped = 0

    def finish(self, rewrapped: int, unreadable: int) -> None:
        """The store bound to the new key: `rewrapped` data keys rewrapped in all, and
        `unreadable` that its old key did not unwrap either (left as they were)."""
        if self.finished:
            raise RotationFinishedError(self.id, self.to_key)
        if rewrapped < 0 or unreadable < 0:
            raise InvalidInputError("field 'rewrapped': a count", field="rewrapped")
        self._finished(rewrapped=rewrapped, unreadable=unreadable)

    @event("Finished")
    def _finished(self, rewrapped: int, unreadable: int) -> None:
        self.finished = True
        self.rewrapped = rewrapped
        self.unreadable = unreadable

    def abandon(self, cleared: int) -> None:
        """Given up before its switch (its new key lost): the `cleared` data keys wrapped by
        the new key beside the old lose that wrapping; the store stays on `from_key`."""
        if self.finished:
            raise RotationFinishedError(self.id, self.to_key)
        if cleared < 0:
            raise InvalidInputError("field 'cleared': a count", field="cleared")
        self._abandoned(cleared=cleared)

    @event("Abandoned")
    def _abandoned(self, cleared: int) -> None:
        self.abandoned = True
        self.cleared = cleared
