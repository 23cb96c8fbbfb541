"""Signed commands decided without a broker, on each backend: a command its registered sender
signed is applied; one that is unsigned, from an unknown sender, signed with another key,
replayed, stale, out of its sender's scope or acting for someone it may not is refused with a
reason of its own, and the only thing written is the refusal — which the chain covers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from uuid import uuid4

import pytest

from domain.errors import InvalidPrincipalError
from domain.sender import SenderRefusal, refusal_id
from infra.audit.verification import open_source, verify
from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.cloudevent import DeadLetterReason
from infra.kafka.intake import CommandMessage, IntakeDecision, decide
from infra.kafka.outcome import outcome_of
from infra.kafka.senders import SenderCheck
from infra.kafka.signatures import public_text
from services.application import Backcheck
from services.intake import CommandIntake
from services.senders import IssueSenderKey, RevokeSenderKey
from tests.commands import body, headers, message, register, request_consent
from tests.conftest import FakeClock
from tests.senders import (
    ATS_SENDER,
    ESIGN_SENDER,
    Registered,
    new_signer,
    register_sender,
)
from tests.story import NOW


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


@pytest.fixture
def ats(app: Backcheck) -> Registered:
    return register_sender(app, ATS_SENDER)


@pytest.fixture
def esign(app: Backcheck) -> Registered:
    return register_sender(app, ESIGN_SENDER, use_cases=["register-candidate"])


class Intake:
    def __init__(self, app: Backcheck, accept_unsigned: bool = False) -> None:
        self.app = app
        self.intake = CommandIntake(app)
        # recheck 0: each message sees the principal as it stands (a revocation at once)
        self.senders = SenderCheck(app, accept_unsigned=accept_unsigned, recheck=0)
        self.offset = 0

    def decide(self, value: bytes, header_list: list[tuple[str, bytes]]) -> IntakeDecision:
        self.offset += 1
        return self.again(message(value, header_list, offset=self.offset))

    def again(self, msg: CommandMessage) -> IntakeDecision:
        return decide(self.intake, msg, senders=self.senders)


@pytest.fixture
def intake(app: Backcheck) -> Intake:
    return Intake(app)


def written_since(app: Backcheck, position: int) -> list[str]:
    return [n.topic for n in app.recorder.select_notifications(start=position + 1, limit=100)]


def head_position(app: Backcheck) -> int:
    return app.recorder.max_notification_id() or 0


def refused(
    intake: Intake, value: bytes, header_list: list[tuple[str, bytes]], reason: DeadLetterReason
) -> str:
    """Decides the message, expecting `reason`; checks that only its refusal was written."""
    before = head_position(intake.app)
    decision = intake.decide(value, header_list)
    assert decision.reason is reason, f"{decision.reason}: {decision.error}"
    assert written_since(intake.app, before) == ["domain.sender:SenderRefusal.Refused"]
    assert decision.error is not None
    return decision.error


def test_a_command_signed_by_its_registered_sender_is_applied(
    intake: Intake, app: Backcheck, ats: Registered
) -> None:
    candidate = uuid4()
    value = body(register(candidate))

    decision = intake.decide(value, ats.signed("register-candidate", value, "c-1"))

    assert decision.applied, f"{decision.reason}: {decision.error}"
    assert [(e.aggregate, e.event) for e in app.iter_events(candidate)] == [
        ("Candidate", "Registered"),
        ("CommandReceipt", "Applied"),
    ]


def test_an_unsigned_command_is_refused_and_only_its_refusal_recorded(
    intake: Intake, app: Backcheck, ats: Registered, settings: Settings
) -> None:
    candidate = uuid4()
    value = body(register(candidate))

    error = refused(
        intake, value, headers("register-candidate", source=ATS_SENDER), DeadLetterReason.UNSIGNED
    )

    assert "no ce_keyid and ce_signature headers" in error
    assert list(app.iter_events(candidate)) == []
    refusal = app.load(SenderRefusal, refusal_id("backcheck.commands.v1/0@1"))
    assert (refusal.reason, refusal.source, refusal.command_type) == (
        "unsigned",
        ATS_SENDER,
        "register-candidate",
    )
    assert "Zhou" not in repr(vars(refusal))  # the value is kept as its hash only
    with open_source(settings) as source:
        verdict = verify(source, [])
    assert verdict.intact, verdict.problems


def test_a_command_signed_with_another_services_key_is_refused(
    intake: Intake, ats: Registered, esign: Registered
) -> None:
    value = body(register(uuid4()))
    forged = esign.signed("register-candidate", value, source=ATS_SENDER)

    error = refused(intake, value, forged, DeadLetterReason.BAD_SIGNATURE)

    assert f"does not verify with {ATS_SENDER}'s current sender key" in error


def test_a_command_changed_after_it_was_signed_is_refused(intake: Intake, ats: Registered) -> None:
    value = body(register(uuid4()))
    signed = ats.signed("register-candidate", value)

    refused(intake, body(register(uuid4(), "Wang Fang")), signed, DeadLetterReason.BAD_SIGNATURE)


@pytest.mark.parametrize(
    "garbled",
    [
        lambda sig: b"not base64!",
        lambda sig: sig[:-4],  # base64, but no longer 64 bytes
        lambda sig: sig[:20] + b" " + sig[20:],  # a space inside
        lambda sig: sig.rstrip(b"=") + b"AA==",  # the right length, other bytes
        lambda sig: b"",
    ],
)
def test_a_signature_that_is_no_base64_of_64_bytes_is_refused_as_one_that_does_not_verify(
    intake: Intake, ats: Registered, garbled: Callable[[bytes], bytes]
) -> None:
    value = body(register(uuid4()))
    signed = ats.signed("register-candidate", value)
    changed = [(n, garbled(v) if n == "ce_signature" else v) for n, v in signed]

    refused(intake, value, changed, DeadLetterReason.BAD_SIGNATURE)


def test_a_command_from_a_service_that_holds_no_sender_key_is_refused(intake: Intake) -> None:
    stranger = Registered("svc:stranger", new_signer())
    value = body(register(uuid4()))

    error = refused(
        intake,
        value,
        stranger.signed("register-candidate", value),
        DeadLetterReason.UNKNOWN_SENDER,
    )

    assert "'svc:stranger' is no service holding a sender key" in error


def test_a_command_applied_once_and_sent_again_from_another_message_is_a_replay(
    intake: Intake, app: Backcheck, ats: Registered
) -> None:
    candidate = uuid4()
    intake.decide(body(register(candidate)), headers("x", "unused"))  # an unsigned one first
    value = body(register(candidate))
    signed = ats.signed("register-candidate", value, "c-7")
    assert intake.decide(value, signed).applied

    error = refused(intake, value, signed, DeadLetterReason.REPLAYED)

    assert "'c-7' from svc:ats was applied from backcheck.commands.v1/0@2" in error
    assert len(list(app.iter_events(candidate))) == 2


def test_the_very_same_message_delivered_again_is_passed_over_not_dead_lettered(
    intake: Intake, clock: FakeClock, ats: Registered
) -> None:
    value = body(register(uuid4()))
    msg = message(value, ats.signed("register-candidate", value), offset=40)
    assert intake.again(msg).applied
    clock.advance(hours=1)  # long past the skew: redelivery is still no replay

    again = intake.again(msg)

    assert again.redelivered
    assert again.applied


@pytest.mark.parametrize(
    ("off", "reason", "said"),
    [
        (timedelta(minutes=-6), DeadLetterReason.EXPIRED, "more than 300 s before"),
        (timedelta(minutes=6), DeadLetterReason.FUTURE, "more than 300 s after"),
    ],
)
def test_a_command_sent_beyond_the_clock_skew_is_refused(
    intake: Intake, ats: Registered, off: timedelta, reason: DeadLetterReason, said: str
) -> None:
    value = body(register(uuid4()))

    error = refused(intake, value, ats.signed("register-candidate", value, time=NOW + off), reason)

    assert said in error


def test_a_refused_message_delivered_again_is_refused_again_and_recorded_once(
    intake: Intake, app: Backcheck, ats: Registered
) -> None:
    value = body(register(uuid4()))
    msg = message(value, ats.signed("register-candidate", value, time=NOW + timedelta(minutes=6)))
    assert intake.again(msg).reason is DeadLetterReason.FUTURE
    before = head_position(app)

    again = intake.again(msg)

    assert again.reason is DeadLetterReason.FUTURE
    assert written_since(app, before) == []


def test_an_applied_message_delivered_again_after_its_senders_scope_shrank_is_passed_over(
    intake: Intake, app: Backcheck, clock: FakeClock, ats: Registered
) -> None:
    value = body(register(uuid4()))
    msg = message(value, ats.signed("register-candidate", value), offset=50)
    assert intake.again(msg).applied
    app.issue_sender_key(
        IssueSenderKey(
            name=ATS_SENDER,
            public_key=public_text(ats.signer.private.public_key()),
            use_cases=["request-consent"],
            acts_for=["self"],
            actor="operator",
        )
    )
    clock.advance(minutes=10)

    again = intake.again(msg)

    assert again.redelivered


def test_a_use_case_outside_the_senders_scope_is_refused(
    intake: Intake, esign: Registered, app: Backcheck
) -> None:
    candidate = uuid4()
    value = body(request_consent(candidate))

    error = refused(
        intake,
        value,
        esign.signed("request-consent", value),
        DeadLetterReason.OUT_OF_SCOPE,
    )

    assert "'request-consent' is not among the use cases svc:esign may send" in error


@pytest.mark.parametrize("actor", ["hr:zhao.lei", None])
def test_an_actor_the_sender_may_not_act_for_is_refused(
    intake: Intake, ats: Registered, actor: str | None
) -> None:
    document = register(uuid4())
    if actor is None:
        del document["actor"]
    else:
        document["actor"] = actor
    value = body(document)

    error = refused(
        intake, value, ats.signed("register-candidate", value), DeadLetterReason.ACTOR_NOT_ALLOWED
    )

    assert error.startswith("field 'actor': ")


def test_a_sender_may_name_itself_as_actor_when_it_acts_for_self(
    intake: Intake, ats: Registered
) -> None:
    value = body({**register(uuid4()), "actor": ATS_SENDER})

    assert intake.decide(value, ats.signed("register-candidate", value)).applied


def test_the_word_self_as_actor_is_refused_naming_how_the_sender_names_itself(
    intake: Intake, ats: Registered
) -> None:
    """`self` in acts-for stands for the sender; taken as an actor it was recorded as
    `registered_by: self`, a principal that is no one."""
    candidate = uuid4()
    value = body({**register(candidate), "actor": "self"})

    error = refused(
        intake, value, ats.signed("register-candidate", value), DeadLetterReason.ACTOR_NOT_ALLOWED
    )

    assert error == (
        f"field 'actor': 'self' is no principal; a command {ATS_SENDER} sends for itself "
        f"names it: {ATS_SENDER!r}"
    )


def test_a_value_that_is_no_object_is_refused_by_the_schema_not_for_its_actor(
    intake: Intake, ats: Registered
) -> None:
    """A JSON array was refused as `actor-not-allowed`, 'names whom it acts for': a team
    looked for an actor where the whole shape was wrong."""
    value = b'[{"name": "Zhou Min", "actor": "hr:li.na"}]'

    decision = intake.decide(value, ats.signed("register-candidate", value))

    assert decision.reason is DeadLetterReason.INVALID, f"{decision.reason}: {decision.error}"
    assert decision.error == (
        "validation: field (body): the command is a JSON object of its fields, not an array"
    )
    sent = message(value, ats.signed("register-candidate", value), offset=99)
    answer = json.loads(outcome_of(sent, intake.again(sent), NOW, None).value)
    assert answer["problem"]["errors"] == [
        {
            "field": "(body)",
            "rule": "model_type",
            "message": "the command is a JSON object of its fields, not an array",
        }
    ]


def test_an_actor_that_is_no_text_is_refused_saying_so(intake: Intake, ats: Registered) -> None:
    value = body({**register(uuid4()), "actor": 42})

    error = refused(
        intake, value, ats.signed("register-candidate", value), DeadLetterReason.ACTOR_NOT_ALLOWED
    )

    assert error == f"field 'actor': a text naming whom {ATS_SENDER} acts for, not int"


def test_a_senders_refusal_is_answered_naming_the_header_or_field_at_fault(
    intake: Intake, ats: Registered, clock: FakeClock
) -> None:
    """The answer's problem said `field: null` for every sender's refusal, though each is
    about one header (or the actor) alone."""
    value = body(register(uuid4()))
    other_actor = body({**register(uuid4()), "actor": "hr:zhao.lei"})
    unsigned = [
        (n, v)
        for n, v in ats.signed("register-candidate", value)
        if n not in ("ce_keyid", "ce_signature")
    ]
    cases = {
        "ce_signature": (value, unsigned),
        "ce_source": (value, ats.signed("register-candidate", value, source="svc:nobody")),
        "ce_time": (
            value,
            ats.signed("register-candidate", value, time=clock.now - timedelta(hours=1)),
        ),
        "ce_type": (value, ats.signed("destroy-report", value)),
        "actor": (other_actor, ats.signed("register-candidate", other_actor)),
    }
    for offset, (field, (sent_value, header_list)) in enumerate(cases.items()):
        sent = message(sent_value, header_list, offset=offset)
        decision = intake.again(sent)
        assert decision.reason is not None, field

        problem = json.loads(outcome_of(sent, decision, clock.now, None).value)["problem"]

        assert problem["field"] == field, (field, problem)

    applied = ats.signed("register-candidate", value, "c-once")
    assert intake.again(message(value, applied, offset=10)).applied
    again = message(value, applied, offset=11)  # the same command from another message
    decision = intake.again(again)
    assert decision.reason is DeadLetterReason.REPLAYED
    assert json.loads(outcome_of(again, decision, clock.now, None).value)["problem"]["field"] == (
        "ce_id"
    )


def test_each_senders_refusal_names_the_header_that_refused_it_and_writes_only_the_refusal(
    intake: Intake, ats: Registered, clock: FakeClock
) -> None:
    """A refusal of the sender's check whose reason covers more than one header (a signature
    without its key id, a key id not the sender's, a header given twice, a `ce_time` that is no
    time) said `field: null`, or the other header: it names the one at fault; its reason is
    unchanged, and nothing but the refusal is written."""
    value = body(register(uuid4()))
    signed = ats.signed("register-candidate", value)

    def without(name: str) -> list[tuple[str, bytes]]:
        return [(n, v) for n, v in signed if n != name]

    def replaced(name: str, raw: bytes) -> list[tuple[str, bytes]]:
        return [(n, raw if n == name else v) for n, v in signed]

    untimed = [
        (n, b"yesterday at noon" if n == "ce_time" else v)
        for n, v in headers("register-candidate", source=ATS_SENDER)
    ]
    cases = [
        ("ce_keyid", DeadLetterReason.UNSIGNED, value, without("ce_keyid")),
        ("ce_signature", DeadLetterReason.UNSIGNED, value, without("ce_signature")),
        ("ce_keyid", DeadLetterReason.BAD_SIGNATURE, value, replaced("ce_keyid", b"k-other")),
        (
            "ce_signature",
            DeadLetterReason.BAD_SIGNATURE,
            body(register(uuid4(), "Wang Fang")),  # changed after it was signed
            signed,
        ),
        ("ce_type", DeadLetterReason.MALFORMED, value, [*signed, ("ce_type", b"destroy-report")]),
        ("ce_time", DeadLetterReason.MALFORMED, value, ats.signer.headers(untimed, value)),
    ]
    for field, reason, sent_value, header_list in cases:
        before = head_position(intake.app)
        sent = message(sent_value, header_list, offset=intake.offset + 100)
        intake.offset += 1

        decision = intake.again(sent)

        assert (decision.reason, decision.field) == (reason, field), decision.error
        assert written_since(intake.app, before) == ["domain.sender:SenderRefusal.Refused"]
        problem = json.loads(outcome_of(sent, decision, clock.now, None).value)["problem"]
        assert (problem["field"], problem["rule"]) == (field, reason.value), problem


def test_after_a_rotation_the_old_key_is_refused_and_after_revocation_every_key(
    intake: Intake, app: Backcheck, ats: Registered
) -> None:
    rotated = new_signer()
    app.issue_sender_key(
        IssueSenderKey(
            name=ATS_SENDER,
            public_key=public_text(rotated.private.public_key()),
            use_cases=["register-candidate"],
            acts_for=["self"],
            actor="operator",
        )
    )
    value = body({**register(uuid4()), "actor": ATS_SENDER})
    refused(intake, value, ats.signed("register-candidate", value), DeadLetterReason.BAD_SIGNATURE)
    now_signed = Registered(ATS_SENDER, rotated)
    assert intake.decide(value, now_signed.signed("register-candidate", value)).applied

    app.revoke_sender_key(RevokeSenderKey(name=ATS_SENDER, reason="leaked", actor="operator"))
    other = body({**register(uuid4()), "actor": ATS_SENDER})

    refused(
        intake,
        other,
        now_signed.signed("register-candidate", other),
        DeadLetterReason.UNKNOWN_SENDER,
    )


def test_accepting_unsigned_commands_leaves_them_to_the_intake_but_checks_signed_ones(
    app: Backcheck, esign: Registered
) -> None:
    lenient = Intake(app, accept_unsigned=True)
    value = body(register(uuid4()))

    assert lenient.decide(value, headers("register-candidate")).applied
    forged = esign.signed("register-candidate", value, source=ATS_SENDER)
    assert lenient.decide(value, forged).reason is DeadLetterReason.UNKNOWN_SENDER


@pytest.mark.parametrize(
    ("use_case", "said"),
    [
        ("read-profile", "is not accepted from services"),
        ("no-such-thing", "is no use case"),
    ],
)
def test_a_sender_is_given_only_use_cases_of_the_table_accepted_from_services(
    app: Backcheck, use_case: str, said: str
) -> None:
    with pytest.raises(InvalidPrincipalError, match=said):
        register_sender(app, "svc:greedy", use_cases=["register-candidate", use_case])

    assert app.sender("svc:greedy") is None


def test_the_intake_sees_a_revocation_once_its_recheck_has_passed(
    app: Backcheck, ats: Registered
) -> None:
    intake = Intake(app)
    intake.senders = SenderCheck(app, recheck=0.2)
    value = body({**register(uuid4()), "actor": ATS_SENDER})
    assert intake.decide(value, ats.signed("register-candidate", value)).applied
    app.revoke_sender_key(RevokeSenderKey(name=ATS_SENDER, reason="leaked", actor="operator"))
    time.sleep(0.3)
    other = body({**register(uuid4()), "actor": ATS_SENDER})

    decision = intake.decide(other, ats.signed("register-candidate", other))

    assert decision.reason is DeadLetterReason.UNKNOWN_SENDER


def test_a_signed_dead_letter_an_operator_sent_back_is_applied_past_the_clock_skew(
    intake: Intake, app: Backcheck, ats: Registered
) -> None:
    """`backcheck dlq redrive` sends a letter back hours after its sender signed it: the
    redrive's record in the store, for this very command, stands for its freshness."""
    from infra.kafka.dead_letters import REDRIVEN_FROM
    from services.redrives import RecordRedrive

    value = body(register(uuid4()))
    late = ats.signed("register-candidate", value, "ats-late", time=NOW - timedelta(hours=2))
    letter = "backcheck.commands.dlq.v1/0@7"
    redriven = [*late, (REDRIVEN_FROM, letter.encode())]

    # the header alone is nobody's word: without a recorded redrive, it is stale
    refused(intake, value, redriven, DeadLetterReason.EXPIRED)

    def record(command_id: str, at: str) -> None:
        app.record_redrive(
            RecordRedrive(
                letter=at,
                command_id=command_id,
                command_source=ats.name,
                command_type="register-candidate",
                to_topic="backcheck.commands.v1",
                actor="operator",
            )
        )

    # a redrive recorded for another command at that place does not vouch for this one
    record("ats-other", letter)
    refused(intake, value, redriven, DeadLetterReason.EXPIRED)

    elsewhere = "backcheck.commands.dlq.v1/1@3"
    record("ats-late", elsewhere)
    decision = intake.decide(value, [*late, (REDRIVEN_FROM, elsewhere.encode())])
    assert decision.applied, f"{decision.reason}: {decision.error}"

    # and once applied, the same letter sent back again is a replay, not a second application
    again = intake.decide(value, [*late, (REDRIVEN_FROM, elsewhere.encode())])
    assert again.reason is DeadLetterReason.REPLAYED


# --- the signature decides first ---------------------------------------------------------------
# A message whose signature does not verify is refused for that, whatever else is wrong with it
# or would be decided of it: no other refusal is recorded, and nothing written.


def test_a_forged_command_that_is_also_invalid_is_refused_for_its_signature(
    intake: Intake, ats: Registered, esign: Registered
) -> None:
    value = body({**register(uuid4()), "email": "not an address"})
    forged = esign.signed("register-candidate", value, source=ATS_SENDER)

    refused(intake, value, forged, DeadLetterReason.BAD_SIGNATURE)


@pytest.mark.parametrize("forger", ["another key", "the sender's key, another ce_id"])
def test_a_forged_copy_of_an_applied_command_is_refused_for_its_signature_not_as_a_replay(
    intake: Intake, app: Backcheck, ats: Registered, esign: Registered, forger: str
) -> None:
    candidate = uuid4()
    value = body(register(candidate))
    assert intake.decide(value, ats.signed("register-candidate", value, "c-9")).applied
    if forger == "another key":
        forged = esign.signed("register-candidate", value, "c-9", source=ATS_SENDER)
    else:  # the right key id, a signature made for c-10: only verifying it tells
        signed = ats.signed("register-candidate", value, "c-10")
        forged = [(k, b"c-9" if k == "ce_id" else v) for k, v in signed]

    refused(intake, value, forged, DeadLetterReason.BAD_SIGNATURE)

    assert len(list(app.iter_events(candidate))) == 2  # the candidate and its one receipt
