"""A master key rotation's own rules (domain/master_key.py): given up only while unfinished,
and a rotation to the same key after it starts a new round."""

from __future__ import annotations

import pytest

from domain.master_key import MasterKeyRotation, RotationFinishedError

OLD, NEW = "file:0011223344556677", "file:8899aabbccddeeff"


def test_an_abandoned_rotation_is_started_again_as_a_new_round() -> None:
    rotation = MasterKeyRotation.start(OLD, NEW, pending=10)

    rotation.abandon(cleared=4)

    assert rotation.abandoned
    assert not rotation.finished
    assert rotation.cleared == 4
    assert rotation.again(OLD, pending=10)  # recorded as started again, not resumed
    assert not rotation.abandoned
    assert rotation.rounds == 2
    names = [type(e).__name__ for e in rotation.collect_events()]
    assert names == ["Started", "Abandoned", "StartedAgain"]


def test_a_finished_rotation_cannot_be_abandoned() -> None:
    rotation = MasterKeyRotation.start(OLD, NEW, pending=1)
    rotation.finish(rewrapped=1, unreadable=0)

    with pytest.raises(RotationFinishedError):
        rotation.abandon(cleared=0)
