"""The answer to each command, decided without a broker, on both stores: accepted with the ids
and log positions of exactly the events the command stored, refused with the problem type,
rule and field the HTTP API gives for the same error; and a message delivered again (a crash
between the write and the answer) answered the same way, from its receipt."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from domain.intake import CommandReceipt, receipt_id
from domain.principal import portal_name, principal_id
from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.cloudevent import ACCEPTED, REFUSED, DeadLetterReason
from infra.kafka.intake import CommandMessage, IntakeDecision, decide
from infra.kafka.outcome import DeadLetterPlace, outcome_of
from infra.problem import MAX_FIELD
from services.application import Backcheck
from services.intake import CommandIntake
from tests.commands import (
    ATS,
    body,
    grant_consent,
    headers,
    message,
    register,
    request_consent,
)
from tests.conftest import FakeClock

PROBLEMS = "tag:backcheck.invalid,2026:problems/"
SENT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def answer(
    msg: CommandMessage, decision: IntakeDecision, place: DeadLetterPlace | None = None
) -> tuple[dict[str, bytes], dict[str, Any]]:
    outcome = outcome_of(msg, decision, SENT, place)
    assert outcome.key == msg.key  # keyed like the command
    return dict(outcome.headers), json.loads(outcome.value)


def log_entries(app: Backcheck) -> list[tuple[str, int]]:
    """(event id, position) of every stored event, in log order."""
    found = []
    for n in app.recorder.select_notifications(start=1, limit=1000):
        found.append((f"{n.originator_id}:{n.originator_version}", n.id))
    return found


def test_an_accepted_command_is_answered_with_the_ids_and_positions_of_its_events(
    app: Backcheck,
) -> None:
    # given: a registered candidate, and something else in the log before the command
    intake = CommandIntake(app)
    candidate = uuid4()
    decide(intake, message(body(register(candidate)), headers("register-candidate"), offset=0))
    before = {i for i, _ in log_entries(app)}
    sent = message(
        body(request_consent(candidate)),
        headers("request-consent", "q-1"),
        key=str(candidate).encode(),
        offset=1,
    )
    # when
    decision = decide(intake, sent)
    found_headers, found = answer(sent, decision)
    # then: exactly the events this write stored, by their ids and positions in the log
    new = [(i, p) for i, p in log_entries(app) if i not in before]
    receipt = f"{receipt_id(ATS, 'q-1')}:1"
    assert new[-1][0] == receipt
    assert found["outcome"] == "accepted"
    assert found["command"] == {
        "id": "q-1",
        "source": ATS,
        "type": "request-consent",
        "channel": "backcheck.commands.v1/0@1",
    }
    assert [(e["id"], e["position"]) for e in found["events"]] == new[:-1]
    assert (found["receipt"]["id"], found["receipt"]["position"]) == new[-1]
    # the consent requested and the candidate's portal link, by the ids the relay gives them
    consent = next(
        e.originator_id
        for e in app.iter_events(candidate)
        if (e.aggregate, e.event) == ("Consent", "Requested")
    )
    portal = principal_id(portal_name(candidate))
    assert [e["id"] for e in found["events"]] == [f"{consent}:1", f"{portal}:1"]
    assert found_headers["ce_type"] == ACCEPTED.encode()
    assert found_headers["ce_correlationid"] == b"q-1"
    assert found_headers["ce_correlationsource"] == ATS.encode()
    assert found_headers["ce_commandtype"] == b"request-consent"
    assert found_headers["ce_specversion"] == b"1.0"
    assert found_headers["content-type"] == b"application/json"


def test_a_message_delivered_again_is_answered_the_same_way_from_its_receipt(
    app: Backcheck,
) -> None:
    # given: a command applied, its answer lost with the worker (no offset committed)
    intake = CommandIntake(app)
    candidate = uuid4()
    decide(intake, message(body(register(candidate)), headers("register-candidate"), offset=0))
    sent = message(body(request_consent(candidate)), headers("request-consent", "q-2"), offset=1)
    first = decide(intake, sent)
    first_headers, first_body = answer(sent, first)
    decide(intake, message(body(register(uuid4())), headers("register-candidate"), offset=2))
    # when: the same message comes again, after more was written
    again = decide(intake, sent)
    again_headers, again_body = answer(sent, again)
    # then: nothing stored twice, and the same answer under the same id
    assert again.redelivered
    assert again_body == first_body
    assert again_headers["ce_id"] == first_headers["ce_id"]
    assert again.stored == first.stored


def test_a_resend_of_an_applied_command_is_refused_naming_what_the_first_one_stored(
    app: Backcheck,
) -> None:
    intake = CommandIntake(app)
    candidate = uuid4()
    document = body(register(candidate))
    first = decide(intake, message(document, headers("register-candidate", "r-9"), offset=0))
    resent = message(document, headers("register-candidate", "r-9"), offset=5)

    decision = decide(intake, resent)
    found_headers, found = answer(resent, decision, DeadLetterPlace("dlq", 2, 7))

    assert decision.reason is DeadLetterReason.DUPLICATE
    assert found["outcome"] == "refused"
    assert found["problem"]["type"] == PROBLEMS + "CommandAlreadyApplied"
    assert found["problem"]["rule"] == "CommandAlreadyApplied"
    assert found["problem"]["status"] == 409
    assert [(e["id"], e["position"]) for e in found["events"]] == list(first.stored[:-1])
    assert found["dead_letter"] == {"topic": "dlq", "partition": 2, "offset": 7}
    assert found_headers["ce_type"] == REFUSED.encode()
    assert (
        found_headers["ce_id"]
        != answer(message(document, headers("register-candidate", "r-9"), offset=0), first)[0][
            "ce_id"
        ]
    )


def test_a_refused_command_is_answered_with_the_problem_type_rule_and_field(
    app: Backcheck,
) -> None:
    intake = CommandIntake(app)
    candidate = uuid4()
    decide(intake, message(body(register(candidate)), headers("register-candidate"), offset=0))
    document = request_consent(candidate, categories=["user.demographic.religious_belief"])
    sent = message(body(document), headers("request-consent", "bad-1"), offset=1)

    decision = decide(intake, sent)
    _, found = answer(sent, decision, DeadLetterPlace("backcheck.commands.dlq.v1", 0, 3))

    assert found["outcome"] == "refused"
    assert found["reason"] == "refused"
    problem = found["problem"]
    assert problem["type"] == PROBLEMS + "ProhibitedCategory"
    assert problem["rule"] == "ProhibitedCategory"
    assert problem["status"] == 409
    assert problem["field"] == "categories"
    assert "user.demographic.religious_belief" in problem["detail"]
    assert "events" not in found


def test_an_invalid_command_is_answered_with_each_field_and_its_rule(app: Backcheck) -> None:
    intake = CommandIntake(app)
    document = {**register(uuid4()), "email": "not-an-address"}
    del document["actor"]
    sent = message(body(document), headers("register-candidate", "bad-2"))

    _, found = answer(sent, decide(intake, sent))

    problem = found["problem"]
    assert found["reason"] == "invalid"
    assert problem["type"] == PROBLEMS + "validation"
    assert problem["status"] == 422
    assert problem["field"] == "email"
    assert {(e["field"], e["rule"]) for e in problem["errors"]} == {
        ("email", "string_pattern_mismatch"),
        ("actor", "missing"),
    }
    assert "not-an-address" not in json.dumps(found)  # the values are never repeated


def test_an_unknown_key_is_named_in_the_answer_bounded_however_long_it_is(
    app: Backcheck,
) -> None:
    """A command's unknown key is the sender's text: a 1 MB one was repeated whole in the
    answer's `field` and `errors`. It is cut at MAX_FIELD characters; nothing is recorded."""
    intake = CommandIntake(app)
    long_key = "k" * 1_000_000
    sent = message(body({**register(uuid4()), long_key: 1}), headers("register-candidate"))
    before = app.recorder.max_notification_id()

    decision = decide(intake, sent)
    _, found = answer(sent, decision)

    problem = found["problem"]
    assert (found["reason"], problem["rule"]) == ("invalid", "validation")
    assert problem["field"] == "k" * MAX_FIELD + "..."
    assert [e["field"] for e in problem["errors"]] == [problem["field"]]
    assert len(json.dumps(found)) < 5_000
    assert len(decision.error or "") < 1_000  # the dead letter's dlq_error
    assert app.recorder.max_notification_id() == before


def test_a_message_that_is_no_command_is_answered_with_what_could_be_read_of_it(
    app: Backcheck,
) -> None:
    intake = CommandIntake(app)
    sent = message(b"{not json", headers("register-candidate", "m-1"), key=b"k")

    found_headers, found = answer(sent, decide(intake, sent))

    assert found["reason"] == "malformed"
    assert found["problem"]["type"] == PROBLEMS + "malformed"
    assert found["problem"]["status"] == 400
    assert "the value is not JSON" in found["problem"]["detail"]
    assert found_headers["ce_correlationid"] == b"m-1"
    # without a readable id there is no correlation header, but still an answer
    bare = message(b"{}", [("ce_type", b"register-candidate")])
    bare_headers, bare_body = answer(bare, decide(intake, bare))
    assert "ce_correlationid" not in bare_headers
    assert bare_body["command"]["channel"] == "backcheck.commands.v1/0@0"


def test_a_command_naming_a_record_that_is_not_there_is_answered_naming_its_field(
    app: Backcheck,
) -> None:
    """A consent id that names nothing was answered `"field": null`: the sender could not
    tell which of its command's ids was at fault."""
    intake = CommandIntake(app)
    sent = message(body(grant_consent(uuid4(), SENT)), headers("grant-consent", "g-1"))

    _, found = answer(sent, decide(intake, sent))

    assert found["reason"] == "refused"
    assert found["problem"]["rule"] == "AggregateMissing"
    assert found["problem"]["status"] == 404
    assert found["problem"]["field"] == "consent_id"


def test_an_unknown_id_is_answered_with_the_route_that_lists_its_kind_not_a_shell_command(
    app: Backcheck,
) -> None:
    """A service sending commands has no shell on the store's machine: its answer, and the
    dead letter, name the API's route that lists ids of that kind, word for word as the HTTP
    API's 404 does (review, fourteenth session: they said "list with `backcheck events`")."""
    intake = CommandIntake(app)
    nobody = uuid4()
    sent = {
        "candidate": message(body(request_consent(nobody)), headers("request-consent", "u-1")),
        "consent": message(body(grant_consent(nobody, SENT)), headers("grant-consent", "u-2")),
    }
    listed = {
        "candidate": "`GET /v1/candidates`",
        "consent": "`GET /v1/candidates/{candidate_id}/consents`",
    }

    for kind, msg in sent.items():
        decision = decide(intake, msg)
        _, found = answer(msg, decision)

        told = f"no {kind} with id {nobody}; check the id (list with {listed[kind]})"
        assert found["problem"]["rule"] == "AggregateMissing"
        assert found["problem"]["detail"] == told
        assert decision.error == f"AggregateMissing: {told}"  # the dead letter's dlq_error
        assert "backcheck events" not in json.dumps(found)


MALFORMED_AT = [
    ("ce_id", b"{}", [h for h in headers("register-candidate") if h[0] != "ce_id"]),
    (
        "ce_id",
        b"{}",
        [(k, b"x" * 257 if k == "ce_id" else v) for k, v in headers("register-candidate")],
    ),
    ("ce_type", b"{}", [h for h in headers("register-candidate") if h[0] != "ce_type"]),
    ("ce_source", b"{}", [*headers("register-candidate"), ("ce_source", b"other.example")]),
    (
        "ce_specversion",
        b"{}",
        [(k, b"0.3" if k == "ce_specversion" else v) for k, v in headers("register-candidate")],
    ),
    (
        "content-type",
        b"{}",
        [
            (k, b"text/plain" if k == "content-type" else v)
            for k, v in headers("register-candidate")
        ],
    ),
    (
        "content-type",
        b"{}",
        [(k, b"\xff" if k == "content-type" else v) for k, v in headers("register-candidate")],
    ),
    ("(body)", None, headers("register-candidate")),
    ("(body)", b"{not json", headers("register-candidate")),
]


@pytest.mark.parametrize(
    ("field", "value", "header_list"),
    MALFORMED_AT,
    ids=[f"{f}-{n}" for n, (f, _, _) in enumerate(MALFORMED_AT)],
)
def test_a_malformed_command_is_answered_naming_the_header_or_the_body_at_fault(
    app: Backcheck, field: str, value: bytes | None, header_list: list[tuple[str, bytes]]
) -> None:
    """A header missing, too long or wrong, or a value that is no JSON, was answered
    `"field": null`, though the message's fault was in one of them."""
    sent = message(value, header_list)

    _, found = answer(sent, decide(CommandIntake(app), sent))

    assert found["reason"] == "malformed"
    assert found["problem"]["field"] == field


def test_a_receipt_stored_before_v2_is_answered_with_itself_alone(app: Backcheck) -> None:
    # given: a command applied by v1 code, whose receipt named no events
    candidate = uuid4()
    intake = CommandIntake(app)
    decide(intake, message(body(register(candidate)), headers("register-candidate"), offset=0))
    channel = "backcheck.commands.v1/0@7"
    old = CommandReceipt.record(candidate, ATS, "old-1", "register-candidate", "hr:li.na", channel)
    stored = app.mapper.to_stored_event(old.collect_events()[0])
    state = orjson.loads(stored.state)
    assert state.pop("class_version") == 2
    del state["events"]
    app.recorder.insert_events(
        [StoredEvent(stored.originator_id, 1, stored.topic, orjson.dumps(state))]
    )
    assert app.load(CommandReceipt, old.id).events == ()  # upcast: none named
    # when: its message comes again
    sent = message(body(register(candidate)), headers("register-candidate", "old-1"), offset=7)
    decision = decide(intake, sent)
    _, found = answer(sent, decision)
    # then: accepted, naming the receipt and its position, and no events it cannot know
    assert decision.redelivered
    assert found["events"] == []
    assert found["receipt"] == {"id": f"{old.id}:1", "position": positions_of(app)[old.id]}


def positions_of(app: Backcheck) -> dict[UUID, int]:
    return {n.originator_id: n.id for n in app.recorder.select_notifications(start=1, limit=1000)}
