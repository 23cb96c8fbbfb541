"""Fuzzing the command topic's parser and intake: any message — bytes, headers, a command drawn
from its schema and then broken — is applied with its receipt, passed over as this very
message's redelivery, or dead-lettered with a reason and an error; never a crash, and a
dead-lettered message writes nothing."""

from __future__ import annotations

import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from infra.config import Settings
from infra.kafka.cloudevent import DeadLetter, DeadLetterReason, dead_letter_of
from infra.kafka.intake import CommandMessage, decide
from services.application import Backcheck
from services.catalogue import USE_CASES
from services.intake import NOT_FROM_SERVICES, CommandIntake
from tests.commands import headers
from tests.fuzz import ANY_JSON, HOSTILE, TEXT, command
from tests.integration.test_fuzz_commands import FUZZ, assert_store_whole, ids_in

ACCEPTED = sorted(name for name in USE_CASES if name not in NOT_FROM_SERVICES)
SOURCES = ["ats.example", "esign.example", "ats:eu", "a%3Ab"]
HEADER_NAMES = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"]


@st.composite
def header_list(draw: st.DrawFn, command_type: str) -> list[tuple[str, bytes]]:
    """The headers a sender would send, often with one dropped, repeated, retyped or garbled."""
    found = headers(command_type, draw(TEXT | st.uuids().map(str)), draw(st.sampled_from(SOURCES)))
    how = draw(st.sampled_from(["as sent"] * 12 + ["drop", "repeat", "garble", "hostile"]))
    at = draw(st.integers(0, len(found) - 1))
    name, _ = found[at]
    if how == "drop":
        del found[at]
    elif how == "repeat":
        found.append((name, draw(st.binary(max_size=20))))
    elif how == "garble":
        found[at] = (name, draw(st.binary(max_size=300)))
    elif how == "hostile":
        found[at] = (name, ("x" + draw(HOSTILE)).encode("utf-8", "surrogatepass"))
    return found


@st.composite
def command_message(draw: st.DrawFn, ids: dict[str, list[object]], offset: int) -> CommandMessage:
    # mostly the use cases services may send (the rest are refused by their name alone, a
    # path a few draws cover); now and then a name that is no use case at all
    kind = draw(st.sampled_from(["accepted"] * 5 + ["not from services", "unknown"]))
    name = draw(
        st.sampled_from(ACCEPTED)
        if kind == "accepted"
        else st.sampled_from(sorted(NOT_FROM_SERVICES))
        if kind == "not from services"
        else TEXT
    )
    schema = USE_CASES[name].command.model_json_schema() if name in USE_CASES else {}
    document = draw(command(schema, ids)) if schema else draw(ANY_JSON)
    how = draw(st.sampled_from(["json"] * 10 + ["bytes", "none"]))
    value = {"json": json.dumps(document).encode(), "none": None}.get(how)
    if how == "bytes":
        value = draw(st.binary(max_size=200))
    key = draw(st.none() | st.binary(max_size=40))
    return CommandMessage(
        "backcheck.commands.v1", 0, offset, key, value, tuple(draw(header_list(name)))
    )


def test_any_message_is_applied_or_dead_lettered_with_its_reason(
    demo_app: Backcheck, settings: Settings
) -> None:
    intake = CommandIntake(demo_app)
    ids = ids_in(demo_app)
    offsets = itertools.count()
    reasons: dict[str, int] = {}

    @FUZZ
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        message = data.draw(command_message(ids, next(offsets)), label="message")
        before = demo_app.recorder.max_notification_id() or 0

        decision = decide(intake, message)

        after = demo_app.recorder.max_notification_id() or 0
        if decision.applied:
            assert decision.redelivered or after > before, decision
            reasons["applied"] = reasons.get("applied", 0) + 1
            return
        assert after == before, decision  # a dead letter wrote nothing
        assert decision.reason in DeadLetterReason
        assert decision.error, decision
        # the dead letter keeps the message's headers and says why, in a form that parses
        letter = dead_letter_of(message.dead_letter_headers(decision, demo_app.clock()))
        assert isinstance(letter, DeadLetter)
        assert letter.reason is decision.reason
        reasons[decision.reason] = reasons.get(decision.reason, 0) + 1

    one()
    assert reasons.get("applied", 0) > 0, reasons
    assert {"malformed", "invalid", "unknown-type"} <= reasons.keys(), reasons
    assert_store_whole(demo_app, settings)
