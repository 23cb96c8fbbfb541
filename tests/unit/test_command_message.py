"""Reading a command message: the CloudEvents headers and the JSON value, without a store or a
broker. What a message that is no command event is told."""

from __future__ import annotations

from uuid import uuid4

import pytest

from infra.kafka.cloudevent import MAX_ID_LENGTH, MalformedCommandError
from infra.kafka.intake import delivery_of
from services.unit import Delivery
from tests.commands import ATS, body, headers, message, register


def test_a_command_event_names_its_sender_id_type_and_place() -> None:
    candidate = uuid4()
    msg = message(
        body(register(candidate)), headers("register-candidate", "c-1"), offset=9, partition=2
    )

    delivery, document = delivery_of(msg)

    assert delivery == Delivery(ATS, "c-1", "register-candidate", "backcheck.commands.v1/2@9")
    assert document == register(candidate)


def test_a_header_repeated_with_the_same_value_is_one_header() -> None:
    msg = message(body({}), [*headers("register-candidate", "c-1"), ("ce_id", b"c-1")])

    delivery, _ = delivery_of(msg)

    assert delivery.command_id == "c-1"


def test_headers_other_than_the_command_event_s_are_left_alone() -> None:
    msg = message(body({}), [*headers("register-candidate"), ("traceparent", b"\xff")])

    delivery_of(msg)


@pytest.mark.parametrize("name", ["ce_id", "ce_source", "ce_type"])
def test_an_overlong_identifier_is_malformed(name: str) -> None:
    too_long = ("x" * (MAX_ID_LENGTH + 1)).encode()
    header_list = [(k, too_long if k == name else v) for k, v in headers("register-candidate")]

    with pytest.raises(MalformedCommandError, match=f"{name} is longer than {MAX_ID_LENGTH}"):
        delivery_of(message(body({}), header_list))


def test_a_blank_header_counts_as_missing() -> None:
    header_list = [(k, b"  " if k == "ce_source" else v) for k, v in headers("register-candidate")]

    with pytest.raises(MalformedCommandError, match=r"missing or empty header\(s\) ce_source"):
        delivery_of(message(body({}), header_list))
