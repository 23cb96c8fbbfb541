"""Outcomes and dead letters end to end, on a real broker and each store: `backcheck ingest`
answers every command on the outcomes topic; a command refused because its candidate was not
registered yet is listed and shown by `backcheck dlq`, redriven once the candidate is, applied,
and answered again; the redrive is recorded, and a second one refused without --force. Each
fault is one line and its exit code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.topics import ensure_topics
from services.application import Backcheck
from tests.commands import body, headers, register, request_consent
from tests.kafka import BACKCHECK, GROUP_SETTINGS, Broker, every_record, topic_name

pytestmark = pytest.mark.kafka

PARTITIONS = 2
PROBLEMS = "tag:backcheck.invalid,2026:problems/"


@dataclass
class Pipeline:
    settings: Settings
    bootstrap: str
    commands: str
    dead_letters: str
    outcomes: str
    env: dict[str, str]
    log: Path

    def send(self, command_type: str, command_id: str, document: dict[str, Any], key: UUID) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        producer.send(
            self.commands,
            key=str(key).encode(),
            value=body(document),
            headers=headers(command_type, command_id),
        )
        producer.flush(timeout=30)
        producer.close()

    def answers(self, expected: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Every outcome so far (headers and body), once `expected` have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            records = every_record(self.bootstrap, self.outcomes, quiet=1.0)
            if len(records) >= expected or time.monotonic() > deadline:
                break
        assert len(records) >= expected, f"{len(records)} outcomes; ingest log:\n{self.tail()}"
        return [{"headers": dict(r.headers), "key": r.key, **json.loads(r.value)} for r in records]

    def dlq(self, *args: str) -> subprocess.CompletedProcess[str]:
        where = ["--bootstrap-servers", self.bootstrap]
        if "--topic" not in args:
            where += ["--topic", self.dead_letters]
        if args[0] == "redrive":
            where += ["--to-topic", self.commands]
        return subprocess.run(
            [BACKCHECK, "dlq", *args, *where],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else "(no log)"


@pytest.fixture
def pipeline(kafka_broker: Broker, settings: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    found = Pipeline(
        settings,
        kafka_broker.bootstrap,
        topic_name("backcheck.commands"),
        topic_name("backcheck.commands.dlq"),
        topic_name("backcheck.command-outcomes"),
        {
            **os.environ,
            "BACKCHECK_DATABASE_URL": str(settings.database_url),
            "BACKCHECK_DATA_DIR": str(settings.data_dir),
            "BACKCHECK_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
            "BACKCHECK_KAFKA_PARTITIONS": str(PARTITIONS),
        },
        tmp_path / "ingest.log",
    )
    command = [
        BACKCHECK,
        "ingest",
        *("--topic", found.commands, "--dlq-topic", found.dead_letters),
        *("--outcomes-topic", found.outcomes, "--group", f"intake-{uuid4().hex[:8]}"),
        # outcomes and redrives, not signatures, are what is tested here
        # (tests/integration/test_signed_command_topic.py tests those)
        "--accept-unsigned",
        *(f"--{name[:-3].replace('_', '-')}-ms={value}" for name, value in GROUP_SETTINGS.items()),
    ]
    with found.log.open("ab") as log:
        process = subprocess.Popen(command, env=found.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wanted = {found.commands, found.dead_letters, found.outcomes}
        deadline = time.monotonic() + 60
        while not wanted <= set(_topics(found.bootstrap)):  # made by the intake as it starts
            assert process.poll() is None, f"ingest exited: {found.tail()}"
            assert time.monotonic() < deadline, f"no topics made: {found.tail()}"
            time.sleep(0.25)
        yield found
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _topics(bootstrap: str) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return list(admin.list_topics())
    finally:
        admin.close()


@pytest.fixture
def app(pipeline: Pipeline) -> Iterator[Backcheck]:
    application = build_app(pipeline.settings)
    yield application
    application.close()


def of(answers: list[dict[str, Any]], command_id: str) -> list[dict[str, Any]]:
    return [a for a in answers if a["command"]["id"] == command_id]


def positions(app: Backcheck) -> dict[str, int]:
    return {
        f"{n.originator_id}:{n.originator_version}": n.id
        for n in app.recorder.select_notifications(start=1, limit=1000)
    }


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_refused_command_is_answered_listed_redriven_after_the_fix_and_applied(
    pipeline: Pipeline, app: Backcheck
) -> None:
    # given: a consent requested for a candidate not registered yet, and one that is fine
    early, known = uuid4(), uuid4()
    pipeline.send("register-candidate", "reg-known", register(known), known)
    pipeline.send("request-consent", "ask-early", request_consent(early), early)

    # then: each is answered, keyed like the command, correlated by its id and source
    answers = pipeline.answers(2)
    (accepted,) = of(answers, "reg-known")
    (refused,) = of(answers, "ask-early")
    assert accepted["outcome"] == "accepted"
    assert accepted["key"] == str(known).encode()
    assert accepted["headers"]["ce_correlationid"] == b"reg-known"
    assert accepted["headers"]["ce_correlationsource"] == b"ats.example"
    assert accepted["headers"]["ce_type"] == b"backcheck.command.accepted.v1"
    stored = positions(app)
    assert [(e["id"], e["position"]) for e in accepted["events"]] == [
        (f"{known}:1", stored[f"{known}:1"])
    ]
    assert stored[accepted["receipt"]["id"]] == accepted["receipt"]["position"]
    assert refused["outcome"] == "refused"
    assert refused["key"] == str(early).encode()
    assert refused["problem"]["type"] == PROBLEMS + "AggregateMissing"
    assert refused["problem"]["rule"] == "AggregateMissing"
    assert refused["problem"]["status"] == 404
    letter = f"{refused['dead_letter']['partition']}@{refused['dead_letter']['offset']}"
    assert refused["dead_letter"]["topic"] == pipeline.dead_letters

    # when: the operator lists and reads the dead letters
    listed = pipeline.dlq("list", "--json")
    assert listed.returncode == 0, listed.stderr
    page = json.loads(listed.stdout)
    assert page["next"] is None
    (row,) = page["letters"]
    assert (row["letter"], row["reason"], row["type"], row["id"], row["redriven"]) == (
        letter,
        "refused",
        "request-consent",
        "ask-early",
        0,
    )
    table = pipeline.dlq("list")
    assert table.returncode == 0, table.stderr
    assert letter in table.stdout
    assert "request-consent" in table.stdout
    shown = pipeline.dlq("show", letter)
    assert shown.returncode == 0, shown.stderr
    assert "dlq_reason" in shown.stdout
    assert "refused" in shown.stdout
    assert f'"candidate_id": "{early}"' in shown.stdout  # the body, indented

    # and fixes the cause (the candidate registered), then sends the letter back
    pipeline.send("register-candidate", "reg-early", register(early), early)
    assert of(pipeline.answers(3), "reg-early")[0]["outcome"] == "accepted"
    redriven = pipeline.dlq("redrive", letter)

    # then: it is applied and answered again, accepted, with its consent's event
    assert redriven.returncode == 0, redriven.stderr
    assert f"redriven {letter} (request-consent ask-early)" in redriven.stdout
    answers = pipeline.answers(4)
    again = [a for a in of(answers, "ask-early") if a["outcome"] == "accepted"]
    assert len(again) == 1, answers
    consent = next(
        e.originator_id
        for e in app.iter_events(early)
        if (e.aggregate, e.event) == ("Consent", "Requested")
    )
    assert again[0]["events"][0]["id"] == f"{consent}:1"
    # and the redrive is recorded: who, which letter, when
    (record,) = [
        n
        for n in app.recorder.select_notifications(start=1, limit=1000)
        if n.topic == "domain.redrive:DeadLetterRedrive.Redriven"
    ]
    event = app.mapper.to_domain_event(record)
    # the letter: where it lay, and its fingerprint (a letter later at that place is another)
    place, _, fingerprint = event.letter.partition("#")  # type: ignore[attr-defined]
    assert place == f"{pipeline.dead_letters}/{letter}"
    assert len(fingerprint) == 16
    assert event.redriven_by == "operator"  # type: ignore[attr-defined]
    assert event.command_id == "ask-early"  # type: ignore[attr-defined]
    assert event.timestamp is not None

    # when: redriven a second time without --force: refused, nothing sent
    second = pipeline.dlq("redrive", letter)
    assert second.returncode == 3
    assert "was redriven before (1 time(s), last by operator)" in one_line(second)
    assert "--force" in one_line(second)
    listed_again = json.loads(pipeline.dlq("list", "--json").stdout)
    assert listed_again["letters"][0]["redriven"] == 1
    forced = pipeline.dlq("redrive", letter, "--force", "--actor", "ops:wang")
    assert forced.returncode == 0, forced.stderr
    # the command was applied: sent again, it is a duplicate, answered as one
    duplicate = [
        a
        for a in of(pipeline.answers(5), "ask-early")
        if a["outcome"] == "refused" and a["reason"] == "duplicate"
    ]
    assert duplicate
    assert duplicate[0]["problem"]["rule"] == "CommandAlreadyApplied"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unknown_letter_and_a_broker_down_are_one_line_each_with_their_exit_codes(
    pipeline: Pipeline, app: Backcheck
) -> None:
    pipeline.send("request-consent", "ask-nobody", request_consent(uuid4()), uuid4())
    pipeline.answers(1)

    unknown = pipeline.dlq("show", "0@9999")
    assert unknown.returncode == 4
    assert "no dead letter at 0@9999" in one_line(unknown)
    bare = pipeline.dlq("show", "7")
    assert bare.returncode == 2
    assert "PARTITION@OFFSET" in bare.stderr
    nothing = pipeline.dlq("redrive", "1@9999")
    assert nothing.returncode == 4
    assert "no dead letter at 1@9999" in one_line(nothing)

    down = subprocess.run(
        [BACKCHECK, "dlq", "list", "--bootstrap-servers", f"127.0.0.1:{_closed_port()}"],
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 69
    assert "no Kafka broker answered" in one_line(down)
    missing = pipeline.dlq("list", "--topic", "backcheck.nothing.here")
    assert missing.returncode == 69
    assert "no topic backcheck.nothing.here" in one_line(missing)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("show", "bad"), "LETTER: 'bad' is not PARTITION@OFFSET (e.g. 2@17;"),
        (("show", "1@-2"), "LETTER: '1@-2': partitions and offsets are not negative"),
        (("list", "--from", "x@1"), "--from: 'x@1' is not PARTITION@OFFSET (e.g. 2@17;"),
        (("redrive", "0@7", "1@x"), "LETTER: '1@x' is not PARTITION@OFFSET (e.g. 2@17;"),
    ],
    ids=["show", "show-negative", "list-from", "redrive"],
)
def test_a_letter_named_wrongly_is_refused_before_any_broker_is_asked(
    tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    """No broker needed: none answers on the port, and the name is refused first (exit 2,
    not 69 for the broker)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env["BACKCHECK_DATA_DIR"] = str(tmp_path / "data")

    refused = subprocess.run(
        [BACKCHECK, "dlq", *args, "--bootstrap-servers", f"127.0.0.1:{_closed_port()}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    assert one_line(refused).startswith(f"Invalid input (input): {said}")


def test_a_sender_waiting_for_its_answer_reads_it_with_the_exit_code_of_its_outcome(
    pipeline: Pipeline,
) -> None:
    def send(command_type: str, document: dict[str, Any], *more: str) -> Any:
        return subprocess.run(
            [
                BACKCHECK,
                "send-command",
                command_type,
                json.dumps(document),
                *("--topic", pipeline.commands, "--outcomes-topic", pipeline.outcomes),
                *("--bootstrap-servers", pipeline.bootstrap, "--source", "ats.example"),
                *more,
            ],
            env=pipeline.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    candidate = uuid4()
    accepted = send("register-candidate", register(candidate), "--wait", "60", "--id", "w-1")
    assert accepted.returncode == 0, accepted.stderr
    answer = json.loads(accepted.stdout.splitlines()[-1])
    assert answer["outcome"] == "accepted"
    assert answer["command"]["id"] == "w-1"
    assert answer["events"][0]["id"] == f"{candidate}:1"

    refused = send("request-consent", request_consent(uuid4()), "--wait", "60", "--id", "w-2")
    assert refused.returncode == 4  # as `backcheck do` would exit for something missing
    assert json.loads(refused.stdout.splitlines()[-1])["problem"]["rule"] == "AggregateMissing"
    assert one_line(refused).startswith("refused (AggregateMissing): no candidate with id")

    # a command topic nobody reads: no answer, said in one line
    unread = topic_name("backcheck.commands")
    ensure_topics(pipeline.bootstrap, 1, unread)
    silent = subprocess.run(
        [
            BACKCHECK,
            "send-command",
            "register-candidate",
            json.dumps(register(uuid4())),
            *("--topic", unread, "--outcomes-topic", pipeline.outcomes),
            *("--bootstrap-servers", pipeline.bootstrap, "--wait", "2"),
        ],
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert silent.returncode == 75
    assert "no answer to the command at" in one_line(silent)


def test_a_letter_kept_without_its_value_is_not_sent_back(
    pipeline: Pipeline, app: Backcheck
) -> None:
    """A command too large for its dead letter is dead-lettered without its value: sent back,
    the empty value was refused again (a signed one as a forgery, `bad-signature`, recorded
    against its sender), and the redrive recorded as if it had been one."""
    candidate = uuid4()
    oversized = body(register(candidate, "x" * 1_500_000))
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap, max_request_size=4_000_000)
    producer.send(
        pipeline.commands,
        key=str(candidate).encode(),
        value=oversized,
        headers=headers("register-candidate", "too-big"),
    )
    producer.flush(timeout=30)
    producer.close()
    [refused] = pipeline.answers(1)
    letter = refused["dead_letter"]
    name = f"{letter['partition']}@{letter['offset']}"
    before = app.recorder.max_notification_id()

    sent = pipeline.dlq("redrive", name)

    assert sent.returncode == 65, sent.stderr
    assert one_line(sent) == (
        f"letter {name} holds no value (its command was too large to keep: see its "
        "dlq_error); nothing was sent: its sender sends the command again"
    )
    assert app.recorder.max_notification_id() == before  # no redrive recorded
    assert len(every_record(pipeline.bootstrap, pipeline.commands, quiet=1.0)) == 1
