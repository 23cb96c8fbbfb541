"""Commands from other services, decided without a broker: each message is applied once with
its receipt in the same write, or gets a dead-letter reason and an error a person can act on,
and then the store is exactly as it was."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from domain.intake import CommandReceipt, receipt_id
from infra.audit.chain import Head
from infra.audit.verification import open_source
from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.cloudevent import DeadLetterReason
from infra.kafka.intake import CommandMessage, IntakeDecision, _report, decide
from services.application import Backcheck
from services.dto import RequestConsent
from services.errors import CommandAlreadyAppliedError, ConcurrentChangeError
from services.intake import CommandIntake
from services.unit import Delivery, ReceiptError
from tests.commands import (
    ATS,
    ESIGN,
    body,
    grant_consent,
    headers,
    message,
    register,
    request_consent,
)
from tests.conftest import PG_URL, FakeClock
from tests.story import NOW


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


@pytest.fixture
def intake(app: Backcheck) -> CommandIntake:
    return CommandIntake(app)


def head(settings: Settings) -> tuple[int, Head]:
    with open_source(settings) as source:
        return source.count(), source.head()


def consents_of(app: Backcheck, candidate_id: UUID) -> list[UUID]:
    return [
        e.originator_id
        for e in app.iter_events(candidate_id)
        if e.aggregate == "Consent" and e.event == "Requested"
    ]


def applied(intake: CommandIntake, msg: CommandMessage) -> IntakeDecision:
    outcome = decide(intake, msg)
    assert outcome.applied, f"{outcome.reason}: {outcome.error}"
    return outcome


def test_a_command_is_applied_with_its_receipt_in_the_same_write(
    intake: CommandIntake, app: Backcheck, settings: Settings
) -> None:
    candidate = uuid4()
    outcome = applied(
        intake, message(body(register(candidate)), headers("register-candidate", "c-1"))
    )

    assert outcome.result is not None
    assert outcome.result["candidate_id"] == str(candidate)
    events = list(app.iter_events(candidate))
    assert [(e.aggregate, e.event) for e in events] == [
        ("Candidate", "Registered"),
        ("CommandReceipt", "Applied"),
    ]
    receipt = events[1]
    assert receipt.originator_id == receipt_id(ATS, "c-1")
    # Which service sent which command for whom, through which channel — never a value.
    assert receipt.data == {
        "candidate_id": str(candidate),
        "source": ATS,
        "command_id": "c-1",
        "command_type": "register-candidate",
        "actor": "hr:li.na",
        "channel": "backcheck.commands.v1/0@0",
        "events": [f"{candidate}:1"],  # what the command stored with it (v2)
    }
    assert receipt.timestamp == events[0].timestamp == NOW
    assert head(settings)[0] == 2
    entry = [e for e in app.timeline(candidate) if e.event == "CommandReceipt.Applied"]
    assert entry[0].who == f"service {ATS}"
    assert "'c-1' (register-candidate) on behalf of hr:li.na" in entry[0].what


def test_the_same_command_delivered_twice_is_applied_once(
    intake: CommandIntake, app: Backcheck, settings: Settings
) -> None:
    candidate = uuid4()
    applied(intake, message(body(register(candidate)), headers("register-candidate", "r-1")))
    ask = body(request_consent(candidate))
    applied(intake, message(ask, headers("request-consent", "q-1"), offset=1))
    before = head(settings)

    again = decide(intake, message(ask, headers("request-consent", "q-1"), offset=2))

    assert again.reason is DeadLetterReason.DUPLICATE
    assert again.error is not None
    assert "'q-1' from 'ats.example' (request-consent) was already applied" in again.error
    assert "backcheck.commands.v1/0@1" in again.error
    assert head(settings) == before
    assert len(consents_of(app, candidate)) == 1


def test_the_same_command_id_from_another_service_is_another_command(
    intake: CommandIntake, app: Backcheck
) -> None:
    candidate = uuid4()
    applied(intake, message(body(register(candidate)), headers("register-candidate", "r-1")))
    ask = body(request_consent(candidate))
    applied(intake, message(ask, headers("request-consent", "7", source=ATS), offset=1))
    applied(intake, message(ask, headers("request-consent", "7", source=ESIGN), offset=2))

    assert len(consents_of(app, candidate)) == 2


def test_the_same_message_delivered_again_after_a_restart_is_no_dead_letter(
    intake: CommandIntake, settings: Settings
) -> None:
    msg = message(body(register(uuid4())), headers("register-candidate"), offset=41)
    applied(intake, msg)
    before = head(settings)

    again = decide(intake, msg)

    assert again.applied
    assert again.redelivered
    assert again.result is None
    assert head(settings) == before


@pytest.mark.parametrize(
    ("value", "header_list", "mention"),
    [
        (b"{not json", headers("register-candidate"), "the value is not JSON"),
        (None, headers("register-candidate"), "no value"),
        (
            body(register(uuid4())),
            [h for h in headers("register-candidate") if h[0] != "ce_id"],
            "missing or empty header(s) ce_id",
        ),
        (
            body(register(uuid4())),
            [h for h in headers("register-candidate") if h[0] not in ("ce_type", "ce_source")],
            "ce_source, ce_type",
        ),
        (
            body(register(uuid4())),
            [*headers("register-candidate")[1:], ("ce_specversion", b"0.3")],
            "only CloudEvents 1.0",
        ),
        (
            body(register(uuid4())),
            [*headers("register-candidate")[:-1], ("content-type", b"text/plain")],
            "commands are application/json",
        ),
        (
            body(register(uuid4())),
            [*headers("register-candidate"), ("ce_id", b"another")],
            "ce_id is given twice",
        ),
        (
            body(register(uuid4())),
            [*headers("register-candidate")[:-1], ("content-type", b"\xff\xfe")],
            "content-type is not UTF-8",
        ),
    ],
)
def test_a_message_that_is_no_command_event_is_malformed(
    intake: CommandIntake,
    settings: Settings,
    value: bytes | None,
    header_list: list[tuple[str, bytes]],
    mention: str,
) -> None:
    before = head(settings)

    outcome = decide(intake, message(value, header_list))

    assert outcome.reason is DeadLetterReason.MALFORMED
    assert outcome.error is not None
    assert mention in outcome.error
    assert head(settings) == before


def test_a_json_charset_is_still_json(intake: CommandIntake) -> None:
    header_list = [
        *headers("register-candidate")[:-1],
        ("content-type", b"application/json; charset=utf-8"),
    ]
    applied(intake, message(body(register(uuid4())), header_list))


def test_a_type_that_names_no_use_case_is_unknown(
    intake: CommandIntake, settings: Settings
) -> None:
    before = head(settings)

    outcome = decide(intake, message(body(register(uuid4())), headers("hire-candidate")))

    assert outcome.reason is DeadLetterReason.UNKNOWN_TYPE
    assert outcome.error is not None
    assert "'hire-candidate' is not a use case" in outcome.error
    assert head(settings) == before


@pytest.mark.parametrize(
    ("command_type", "document", "mention"),
    [
        (
            "read-profile",
            {
                "candidate_id": str(uuid4()),
                "principal": "hr:li.na",
                "role": "recruiter",
                "purpose": "pre-employment screening",
            },
            "a read returns personal data to a person",
        ),
        (
            "read-access-log",
            {
                "candidate_id": str(uuid4()),
                "principal": "compliance:zhou",
                "role": "compliance",
                "purpose": "audit",
            },
            "a read returns personal data to a person",
        ),
        (
            "erase-subject",
            {"candidate_id": str(uuid4()), "reason": "asked", "actor": "compliance"},
            "backcheck subject erase",
        ),
        (
            "add-principal",
            {"name": "svc:intruder", "role": "compliance", "actor": "svc:ats"},
            "a token is shown once to whoever asks for it",
        ),
        (
            "issue-portal-link",
            {"candidate_id": str(uuid4()), "actor": "svc:ats"},
            "a command topic has no one to hand it to",
        ),
        (
            "rotate-principal",
            {"name": "hr:li.na", "actor": "svc:ats"},
            "a token is shown once to whoever asks for it",
        ),
        (
            "revoke-principal",
            {"name": "hr:li.na", "reason": "spite", "actor": "svc:ats"},
            "never by an asserted one",
        ),
    ],
)
def test_reads_erasure_and_principals_are_not_taken_from_services(
    intake: CommandIntake,
    settings: Settings,
    command_type: str,
    document: dict[str, str],
    mention: str,
) -> None:
    before = head(settings)

    outcome = decide(intake, message(body(document), headers(command_type)))

    assert outcome.reason is DeadLetterReason.REFUSED
    assert outcome.error is not None
    assert f"'{command_type}' is not accepted from other services" in outcome.error
    assert mention in outcome.error
    assert head(settings) == before


def test_a_command_its_schema_refuses_is_invalid_naming_the_field_and_rule(
    intake: CommandIntake, settings: Settings
) -> None:
    before = head(settings)
    document = {**register(uuid4()), "email": "not-an-address"}
    del document["actor"]

    outcome = decide(intake, message(body(document), headers("register-candidate")))

    assert outcome.reason is DeadLetterReason.INVALID
    assert outcome.error is not None
    assert "field email: String should match pattern" in outcome.error
    assert "field actor: Field required" in outcome.error
    assert "not-an-address" not in outcome.error  # the error never repeats the values
    assert head(settings) == before


def test_a_nul_in_a_commands_text_is_invalid_naming_the_field(
    intake: CommandIntake, settings: Settings
) -> None:
    """PostgreSQL's jsonb refuses NUL: stored in an event, it would break every view write."""
    before = head(settings)
    document = {**register(uuid4()), "actor": "ats:hire\u0000flow"}

    outcome = decide(intake, message(body(document), headers("register-candidate")))

    assert outcome.reason is DeadLetterReason.INVALID
    assert outcome.error is not None
    assert "field actor: control character U+0000" in outcome.error
    assert head(settings) == before


def test_a_command_whose_event_would_be_too_large_is_invalid(
    tmp_path: Path, clock: FakeClock
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'bounded.sqlite'}",
        data_dir=tmp_path,
        max_event_bytes=2_000,
    )
    bounded = build_app(settings, clock=clock)
    try:
        document = {**register(uuid4()), "name": "Zhou " + "x" * 1_900}
        outcome = decide(
            CommandIntake(bounded), message(body(document), headers("register-candidate"))
        )
        assert bounded.recorder.max_notification_id() is None  # nothing stored
    finally:
        bounded.close()

    assert outcome.reason is DeadLetterReason.INVALID
    assert outcome.error is not None
    assert outcome.error.startswith("EventTooLarge: the Candidate.Registered event this command")
    assert "above the 2,000 bytes one event may take" in outcome.error


def test_a_json_document_that_is_not_an_object_is_invalid(intake: CommandIntake) -> None:
    outcome = decide(intake, message(b"[1, 2]", headers("register-candidate")))

    assert outcome.reason is DeadLetterReason.INVALID


def test_data_the_domain_cannot_accept_is_invalid(
    intake: CommandIntake, app: Backcheck, settings: Settings
) -> None:
    candidate = uuid4()
    applied(intake, message(body(register(candidate)), headers("register-candidate")))
    applied(intake, message(body(request_consent(candidate)), headers("request-consent")))
    consent = consents_of(app, candidate)[0]
    document = grant_consent(consent, NOW)
    document["valid_until"] = document["valid_from"]
    before = head(settings)

    outcome = decide(intake, message(body(document), headers("grant-consent", source=ESIGN)))

    assert outcome.reason is DeadLetterReason.INVALID
    assert outcome.error is not None
    assert "valid_until must be later than valid_from" in outcome.error
    assert head(settings) == before


def test_a_command_a_rule_refuses_is_refused_naming_the_rule(
    intake: CommandIntake, settings: Settings
) -> None:
    candidate = uuid4()
    applied(intake, message(body(register(candidate)), headers("register-candidate")))
    before = head(settings)
    document = request_consent(candidate, categories=["user.demographic.religious_belief"])

    outcome = decide(intake, message(body(document), headers("request-consent", "bad-1")))

    assert outcome.reason is DeadLetterReason.REFUSED
    assert outcome.error is not None
    assert "user.demographic.religious_belief" in outcome.error
    assert "prohibited" in outcome.error
    assert head(settings) == before
    # Refused commands leave no receipt: the same id may be sent again, corrected.
    fixed = request_consent(candidate)
    applied(intake, message(body(fixed), headers("request-consent", "bad-1"), offset=2))


def test_a_command_about_something_missing_is_refused(intake: CommandIntake) -> None:
    outcome = decide(intake, message(body(request_consent(uuid4())), headers("request-consent")))

    assert outcome.reason is DeadLetterReason.REFUSED
    assert outcome.error is not None
    assert "no candidate with id" in outcome.error


def test_a_service_asking_outside_its_scope_is_refused(app: Backcheck, settings: Settings) -> None:
    scoped = CommandIntake(app, scopes={ESIGN: frozenset({"grant-consent"})})
    before = head(settings)

    outcome = decide(scoped, message(body(register(uuid4())), headers("register-candidate")))
    other = decide(
        scoped, message(body(register(uuid4())), headers("register-candidate", source=ESIGN))
    )

    for refused in (outcome, other):
        assert refused.reason is DeadLetterReason.REFUSED
        assert refused.error is not None
        assert "outside the scope of the sending service" in refused.error
    assert head(settings) == before


def test_a_dead_letter_keeps_the_original_headers_and_says_why() -> None:
    original = [*headers("register-candidate", "c-9"), ("trace", b"abc"), ("trace", b"def")]
    msg = message(b"{not json", original, key=b"k", offset=17, partition=3)
    outcome = IntakeDecision(None, DeadLetterReason.MALFORMED, "the value is not JSON: ...")

    found = msg.dead_letter_headers(outcome, NOW)

    assert found[: len(original)] == original
    assert found[len(original) :] == [
        ("dlq_reason", b"malformed"),
        ("dlq_error", b"the value is not JSON: ..."),
        ("dlq_topic", b"backcheck.commands.v1"),
        ("dlq_partition", b"3"),
        ("dlq_offset", b"17"),
        ("dlq_time", b"2026-03-02T09:00:00+00:00"),
    ]


def test_an_applied_command_has_no_dead_letter() -> None:
    with pytest.raises(ValueError, match="no dead letter"):
        message(b"{}", []).dead_letter_headers(IntakeDecision("register-candidate"), NOW)


# --- the receipt guards the write itself, whatever was checked before ----------------------------


def _delivery(command_id: str) -> Delivery:
    return Delivery(ATS, command_id, "request-consent", "test")


def _request(app: Backcheck, candidate: UUID) -> RequestConsent:
    document = request_consent(candidate)
    return RequestConsent.model_validate(document)


def _registered(intake: CommandIntake) -> UUID:
    candidate = uuid4()
    applied(intake, message(body(register(candidate)), headers("register-candidate")))
    return candidate


def test_a_second_write_with_the_same_receipt_records_nothing(
    intake: CommandIntake, app: Backcheck, settings: Settings
) -> None:
    candidate = _registered(intake)
    command = _request(app, candidate)
    with app.receiving(_delivery("q-7"), "hr:li.na"):
        app.request_consent(command)
    before = head(settings)

    # As a second worker would, having looked for the receipt before the first one wrote it.
    with pytest.raises(ConcurrentChangeError), app.receiving(_delivery("q-7"), "hr:li.na"):
        app.request_consent(command)

    assert head(settings) == before
    assert len(consents_of(app, candidate)) == 1


def _race(apps: list[Backcheck], candidate: UUID, command_id: str) -> list[object]:
    """Every app applies the same delivered command at the same moment."""
    barrier = threading.Barrier(len(apps))
    results: list[object] = [None] * len(apps)
    document = json.loads(body(request_consent(candidate)))

    def run(i: int) -> None:
        intake = CommandIntake(apps[i])
        barrier.wait()
        try:
            results[i] = intake.apply(_delivery(command_id), document)
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(apps))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _applied_once(apps: list[Backcheck], settings: Settings, rounds: int = 5) -> None:
    candidate = _registered(CommandIntake(apps[0]))
    for n in range(rounds):
        count_before = head(settings)[0]
        results = _race(apps, candidate, f"race-{n}")
        duplicates = [r for r in results if isinstance(r, CommandAlreadyAppliedError)]
        done = [r for r in results if not isinstance(r, Exception)]
        assert len(done) == 1, results
        assert len(duplicates) == len(apps) - 1, results
        # one consent requested, the candidate's portal link (added, then rotated), one receipt
        assert head(settings)[0] == count_before + 3
    assert len(consents_of(apps[0], candidate)) == rounds
    assert apps[0].exists(receipt_id(ATS, "race-0"))
    assert isinstance(apps[0].load(CommandReceipt, receipt_id(ATS, "race-0")), CommandReceipt)


def test_two_workers_racing_on_sqlite_apply_a_command_once(
    settings: Settings, clock: FakeClock
) -> None:
    apps = [build_app(settings, clock=clock) for _ in range(2)]
    try:
        _applied_once(apps, settings)
    finally:
        for a in apps:
            a.close()


@pytest.mark.postgres
def test_two_workers_racing_on_postgres_apply_a_command_once(
    pg_schema: str, tmp_path: Path, clock: FakeClock
) -> None:
    settings = Settings(database_url=f"{PG_URL}?schema={pg_schema}", data_dir=tmp_path)
    apps = [build_app(settings, clock=clock) for _ in range(3)]
    try:
        _applied_once(apps, settings)
    finally:
        for a in apps:
            a.close()


def test_a_delivered_command_may_write_only_once(
    intake: CommandIntake, app: Backcheck, settings: Settings
) -> None:
    candidate = _registered(intake)
    command = _request(app, candidate)
    with app.receiving(_delivery("q-8"), "hr:li.na"):
        app.request_consent(command)
        before = head(settings)
        with pytest.raises(ReceiptError, match="wrote twice for command q-8"):
            app.request_consent(command)

    assert head(settings) == before


def test_a_request_whose_link_cannot_be_sent_is_applied_and_the_intake_says_so(
    intake: CommandIntake, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # given: a file where the outbox's folder of links must be
    candidate = _registered(intake)
    settings.outbox_dir.mkdir(parents=True, exist_ok=True)
    (settings.outbox_dir / "portal-links").write_text("in the way")
    sent = message(body(request_consent(candidate)), headers("request-consent", "consent-9"))
    # when
    with caplog.at_level("INFO", logger="backcheck.intake"):
        decision = applied(intake, sent)
        _report(sent, decision)
    # then: applied, with its receipt, and the log says the link was not sent and why
    assert decision.result is not None
    assert decision.result["portal_link"]["status"] == "undelivered"
    assert len(consents_of(intake.app, candidate)) == 1
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "the candidate's portal link was not sent (undelivered)" in warning.getMessage()
    assert f"backcheck principals portal-link {candidate}" in warning.getMessage()
    assert "bck_" not in caplog.text
