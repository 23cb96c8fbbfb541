"""A command's receipt id names its sender and its id, and no other pair."""

from __future__ import annotations

from uuid import uuid5

from domain.intake import RECEIPT_NAMESPACE, receipt_id


def test_a_colon_in_the_sender_or_the_command_id_cannot_make_two_commands_one() -> None:
    pairs = [
        ("a:b", "c"),
        ("a", "b:c"),
        ("a", "b%3Ac"),
        ("a%3Ab", "c"),
        ("a:b:c", ""),
        ("", "a:b:c"),
    ]

    ids = {receipt_id(source, command_id) for source, command_id in pairs}

    assert len(ids) == len(pairs)


def test_a_plain_command_id_keeps_the_receipt_id_stores_already_hold() -> None:
    assert receipt_id("ats.example", "c-1") == uuid5(RECEIPT_NAMESPACE, "ats.example:c-1")
    assert receipt_id("urn:ats:1", "7") == uuid5(RECEIPT_NAMESPACE, "urn:ats:1:7")
