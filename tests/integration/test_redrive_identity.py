"""A dead letter's redrives belong to that letter, not to the place it lies at: a dead-letter
topic made again (or a broker that lost its data) starts its offsets again, and the new letter
at `0@0` was taken for the old one, listed as redriven and refused without --force. Redrives
are recorded under the place and a fingerprint of the letter (infra/kafka/dead_letters.py
`Letter.identity`); those recorded before, under the place alone, still count for the same
command."""

from __future__ import annotations

import pytest

from domain.redrive import LetterAlreadyRedrivenError
from infra.kafka.dead_letters import Letter
from services.application import Backcheck
from services.redrives import RecordRedrive

TOPIC = "backcheck.commands.dlq.v1"


def letter(command_id: str, written_ms: int, partition: int = 0, offset: int = 0) -> Letter:
    headers = (
        ("ce_id", command_id.encode()),
        ("ce_source", b"ats.example"),
        ("ce_type", b"request-consent"),
        ("dlq_reason", b"refused"),
    )
    return Letter(TOPIC, partition, offset, b"key", b'{"x": 1}', headers, written_ms)


def redrive(app: Backcheck, at: str, found: Letter, force: bool = False) -> int:
    command = found.command
    return app.record_redrive(
        RecordRedrive(
            letter=at,
            command_id=command["ce_id"],
            command_source=command["ce_source"],
            command_type=command["ce_type"],
            to_topic="backcheck.commands.v1",
            actor="operator",
            force=force,
        )
    ).times


def test_a_letters_identity_is_its_place_and_what_it_holds() -> None:
    old, same = letter("ask-1", 1_000), letter("ask-1", 1_000)
    new_at_the_same_place = letter("ask-2", 9_000)
    same_command_written_later = letter("ask-1", 9_000)

    assert old.identity == same.identity
    assert old.identity.startswith(f"{TOPIC}/0@0#")
    assert len({old.identity, new_at_the_same_place.identity}) == 2
    assert len({old.identity, same_command_written_later.identity}) == 2
    assert old.place == new_at_the_same_place.place  # what the place alone confused


def test_a_new_letter_where_a_redriven_one_lay_is_not_taken_for_it(sqlite_app: Backcheck) -> None:
    old, new = letter("ask-1", 1_000), letter("ask-2", 9_000)
    assert redrive(sqlite_app, old.identity, old) == 1

    assert sqlite_app.redriven([old.redrives, new.redrives]) == {old.identity: 1}
    sqlite_app.refuse_redriven([new.redrives])  # nothing raised: never sent back
    with pytest.raises(LetterAlreadyRedrivenError, match=f"dead letter {TOPIC}/0@0 was"):
        sqlite_app.refuse_redriven([old.redrives])
    assert redrive(sqlite_app, new.identity, new) == 1  # its own first redrive, not a second
    assert sqlite_app.redrive_recorded(new.identity, "ats.example", "ask-2")
    assert not sqlite_app.redrive_recorded(new.identity, "ats.example", "ask-1")


def test_redrives_recorded_under_the_place_alone_still_count_for_the_same_command(
    sqlite_app: Backcheck,
) -> None:
    before = letter("ask-1", 1_000)
    assert redrive(sqlite_app, before.place, before) == 1  # as recorded before fingerprints
    other_command_there = letter("ask-2", 9_000)

    assert sqlite_app.redriven([before.redrives, other_command_there.redrives]) == {
        before.identity: 1
    }
    with pytest.raises(LetterAlreadyRedrivenError):
        sqlite_app.refuse_redriven([before.redrives])
    with pytest.raises(LetterAlreadyRedrivenError):  # not a first redrive under the new name
        redrive(sqlite_app, before.identity, before)
    assert redrive(sqlite_app, before.identity, before, force=True) == 2  # the same record
    # a message sent back then names the place; one sent back now, the identity
    assert sqlite_app.redrive_recorded(before.place, "ats.example", "ask-1")
    assert sqlite_app.redrive_recorded(before.identity, "ats.example", "ask-1")
