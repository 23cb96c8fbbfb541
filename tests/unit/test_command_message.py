"""Reading a command message: the CloudEvents headers and the JSON value, without a store or a
broker. What a message that is no command event is told."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from infra.kafka.cloudevent import MAX_ID_LENGTH, DeadLetterReason, MalformedCommandError
from infra.kafka.intake import CommandMessage, IntakeDecision, delivery_of
from infra.kafka.intake import _report as report
from infra.kafka.outcome import outcome_of
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


def _with_id(command_id: str) -> CommandMessage:
    header_list = [
        (k, command_id.encode() if k == "ce_id" else v) for k, v in headers("register-candidate")
    ]
    return message(body({}), header_list)


def test_a_command_id_as_long_as_the_contract_allows_is_logged_and_answered_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The contract bounds ce_id at MAX_ID_LENGTH characters; the log line's correlation id
    was cut at 200, so a longer id the intake applied was logged under another id (and two
    ids alike in their first 200 characters under the same one)."""
    command_id = "c" * (MAX_ID_LENGTH - 1) + "9"
    msg = _with_id(command_id)
    decision = IntakeDecision("register-candidate")

    with caplog.at_level(logging.INFO, logger="backcheck.intake"):
        report(msg, decision)

    (record,) = caplog.records
    assert (record.event_id, record.correlation_id) == (command_id, command_id)
    answer = outcome_of(msg, decision, datetime.now(UTC))
    assert json.loads(answer.value)["command"]["id"] == command_id
    assert dict(answer.headers)["ce_correlationid"] == command_id.encode()


def test_a_command_id_longer_than_the_contract_allows_is_refused_and_never_logged_cut(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refused as malformed, naming the bound; its log line and answer name no id rather than
    a prefix of it, which could be another command's."""
    msg = _with_id("c" * (MAX_ID_LENGTH + 1))
    with pytest.raises(MalformedCommandError, match=f"ce_id is longer than {MAX_ID_LENGTH}"):
        delivery_of(msg)
    decision = IntakeDecision(
        "register-candidate", DeadLetterReason.MALFORMED, f"ce_id is longer than {MAX_ID_LENGTH}"
    )

    with caplog.at_level(logging.INFO, logger="backcheck.intake"):
        report(msg, decision)

    (record,) = caplog.records
    assert not hasattr(record, "correlation_id")
    assert not hasattr(record, "event_id")
    answer = outcome_of(msg, decision, datetime.now(UTC))
    assert json.loads(answer.value)["command"]["id"] is None
