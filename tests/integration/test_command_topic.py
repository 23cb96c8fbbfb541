"""The command topic end to end: `backcheck ingest` as a process, a real broker, commands sent
as another service would send them. Good commands are applied, in order, once; each bad one
lands on the dead-letter topic once, byte for byte, with its reason — and leaves no trace in
the store, whose hash chain still verifies."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from domain.principal import portal_name, principal_id
from infra.audit.verification import open_source, verify
from infra.bootstrap import build_app
from infra.config import Settings
from services.application import Backcheck
from tests.commands import ESIGN, body, grant_consent, headers, register, request_consent
from tests.kafka import GROUP_SETTINGS, Broker, topic_name

pytestmark = pytest.mark.kafka

PARTITIONS = 3


@dataclass
class Sent:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class Intake:
    settings: Settings
    bootstrap: str
    topic: str
    dlq_topic: str
    log: Path
    env: dict[str, str]
    group: str
    workers: list[Worker] = field(default_factory=list)

    def start(self) -> Worker:
        worker = start_worker(self, self.group, self.env)
        self.workers.append(worker)
        return worker

    def send(self, messages: list[Sent]) -> None:
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True
        )
        for m in messages:
            producer.send(self.topic, key=m.key, value=m.value, headers=m.headers)
        producer.flush(timeout=30)
        producer.close()

    def dead_letters(self, expected: int, timeout: float = 60.0) -> list[Any]:
        """Every message on the dead-letter topic, once `expected` of them have arrived."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        partitions = [TopicPartition(self.dlq_topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(found) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                found += records
        # Anything more (a second dead letter for one message) would show up here too.
        for records in consumer.poll(timeout_ms=1500).values():
            found += records
        consumer.close()
        assert len(found) >= expected, f"{len(found)} dead letters; worker log:\n{self.tail()}"
        return found

    def tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else "(no log)"


def until(condition: Callable[[], bool], intake: Intake, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{intake.tail()}")


@dataclass
class Worker:
    """One `backcheck ingest` process."""

    process: subprocess.Popen[bytes]

    def stop(self, kill: bool = False) -> int | None:
        """The exit code, or None when it had to be killed after not stopping in time."""
        if self.process.poll() is not None:
            return self.process.returncode
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


def start_worker(intake: Intake, group: str, env: dict[str, str]) -> Worker:
    command = [
        str(Path(sys.executable).with_name("backcheck")),
        "ingest",
        "--accept-unsigned",  # the signed senders' tests are test_signed_command_topic.py
        "--topic",
        intake.topic,
        "--dlq-topic",
        intake.dlq_topic,
        "--group",
        group,
        "--session-timeout-ms",
        str(GROUP_SETTINGS["session_timeout_ms"]),
        "--heartbeat-interval-ms",
        str(GROUP_SETTINGS["heartbeat_interval_ms"]),
        "--max-poll-interval-ms",
        str(GROUP_SETTINGS["max_poll_interval_ms"]),
    ]
    with intake.log.open("ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    worker = Worker(process)
    admin = KafkaAdminClient(bootstrap_servers=intake.bootstrap)
    try:
        until(
            lambda: (
                {intake.topic, intake.dlq_topic} <= set(admin.list_topics())
                or process.poll() is not None
            ),
            intake,
            "the worker to create its topics",
        )
        assert process.poll() is None, f"ingest exited: {intake.tail()}"
        described = admin.describe_topics([intake.topic, intake.dlq_topic])
        assert [len(t["partitions"]) for t in described] == [PARTITIONS, PARTITIONS]
    except BaseException:
        worker.stop()
        raise
    finally:
        admin.close()
    return worker


@pytest.fixture
def intake(kafka_broker: Broker, tmp_path: Path) -> Iterator[Intake]:
    store = tmp_path / "store.sqlite"
    found = Intake(
        Settings(database_url=f"sqlite:///{store}", data_dir=tmp_path),
        kafka_broker.bootstrap,
        topic_name("backcheck.commands"),
        topic_name("backcheck.commands.dlq"),
        tmp_path / "ingest.log",
        env={
            **os.environ,
            "BACKCHECK_DATABASE_URL": f"sqlite:///{store}",
            "BACKCHECK_DATA_DIR": str(tmp_path),
            "BACKCHECK_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
            "BACKCHECK_KAFKA_PARTITIONS": str(PARTITIONS),
        },
        group=f"intake-{uuid4().hex[:8]}",
    )
    yield found
    for worker in found.workers:
        worker.stop()


def events_of(app: Backcheck, candidate: UUID) -> list[tuple[str, str]]:
    return [(e.aggregate, e.event) for e in app.iter_events(candidate)]


def consent_of(app: Backcheck, candidate: UUID) -> UUID | None:
    for e in app.iter_events(candidate):
        if (e.aggregate, e.event) == ("Consent", "Requested"):
            return e.originator_id
    return None


def test_good_commands_are_applied_once_and_each_bad_one_is_dead_lettered_with_its_reason(
    intake: Intake,
) -> None:
    intake.start()
    zhou, wang = uuid4(), uuid4()
    key_zhou, key_wang = str(zhou).encode(), str(wang).encode()
    now = datetime.now(UTC)

    # Wave 1: a candidate registered and asked for consent, bad commands around them.
    good_1 = {
        "register zhou": Sent(key_zhou, body(register(zhou)), headers("register-candidate")),
        "request consent": Sent(
            key_zhou, body(request_consent(zhou)), headers("request-consent", "consent-1")
        ),
        "register wang": Sent(
            key_wang, body(register(wang, "Wang Fang")), headers("register-candidate")
        ),
    }
    bad_1 = {
        "malformed": Sent(key_zhou, b'{"candidate_id": ', headers("request-consent")),
        "no ce_id": Sent(
            key_wang,
            body(register(uuid4())),
            [h for h in headers("register-candidate") if h[0] != "ce_id"],
        ),
        "invalid": Sent(
            key_wang,
            body({**register(uuid4()), "email": "not-an-address"}),
            headers("register-candidate"),
        ),
        "unknown-type": Sent(key_zhou, body(register(uuid4())), headers("hire-candidate")),
        "read": Sent(
            key_zhou,
            body(
                {
                    "candidate_id": str(zhou),
                    "principal": "hr:li.na",
                    "role": "recruiter",
                    "purpose": "pre-employment screening",
                }
            ),
            headers("read-profile"),
        ),
        "rule-breaking": Sent(
            key_wang,
            body(request_consent(wang, categories=["user.demographic.religious_belief"])),
            headers("request-consent"),
        ),
    }
    order_1 = [
        good_1["register zhou"],
        bad_1["malformed"],
        bad_1["unknown-type"],
        good_1["request consent"],
        bad_1["read"],
        bad_1["no ce_id"],
        good_1["register wang"],
        bad_1["invalid"],
        bad_1["rule-breaking"],
    ]
    intake.send(order_1)
    app = build_app(intake.settings)
    try:
        until(
            lambda: consent_of(app, zhou) is not None and bool(events_of(app, wang)),
            intake,
            "the first good commands",
        )
        consent = consent_of(app, zhou)
        assert consent is not None

        # Wave 2: the consent signed; the consent request delivered again; a grant for a
        # consent no longer pending; and one more good command after them.
        good_2 = {
            "grant": Sent(
                key_zhou, body(grant_consent(consent, now)), headers("grant-consent", source=ESIGN)
            ),
            "request wang": Sent(
                key_wang, body(request_consent(wang)), headers("request-consent", "consent-2")
            ),
        }
        bad_2 = {
            "duplicate": Sent(
                key_zhou, good_1["request consent"].value, headers("request-consent", "consent-1")
            ),
            "grant again": Sent(
                key_zhou, body(grant_consent(consent, now)), headers("grant-consent", source=ESIGN)
            ),
        }
        intake.send(
            [good_2["grant"], bad_2["duplicate"], bad_2["grant again"], good_2["request wang"]]
        )
        bad = {**bad_1, **bad_2}
        letters = intake.dead_letters(len(bad))
        until(lambda: consent_of(app, wang) is not None, intake, "the last good command")

        # Exactly one dead letter per bad command: the original bytes and headers, and why.
        assert len(letters) == len(bad), [dict(r.headers).get("dlq_error") for r in letters]
        by_value = {(r.value, r.headers[0]): r for r in letters}
        expected_reasons = {
            "malformed": ("malformed", "the value is not JSON"),
            "no ce_id": ("malformed", "missing or empty header(s) ce_id"),
            "invalid": ("invalid", "field email: String should match pattern"),
            "unknown-type": ("unknown-type", "'hire-candidate' is not a use case"),
            "read": ("refused", "'read-profile' is not accepted from other services"),
            "rule-breaking": ("refused", "user.demographic.religious_belief"),
            "duplicate": ("duplicate", "'consent-1' from 'ats.example' (request-consent)"),
            "grant again": ("refused", "only a requested consent can be granted"),
        }
        for name, sent in bad.items():
            letter = by_value.get((sent.value, sent.headers[0]))
            assert letter is not None, f"no dead letter for {name}"
            assert letter.key == sent.key
            assert letter.headers[: len(sent.headers)] == sent.headers
            extra = dict(letter.headers[len(sent.headers) :])
            reason, mention = expected_reasons[name]
            assert extra["dlq_reason"].decode() == reason, name
            assert mention in extra["dlq_error"].decode(), (name, extra["dlq_error"])
            assert extra["dlq_topic"].decode() == intake.topic
            assert int(extra["dlq_partition"]) in range(PARTITIONS)
            assert int(extra["dlq_offset"]) >= 0
            assert datetime.fromisoformat(extra["dlq_time"].decode()) >= now
        # Each at a distinct place in the command topic.
        places = {
            (dict(r.headers)["dlq_partition"], dict(r.headers)["dlq_offset"]) for r in letters
        }
        assert len(places) == len(bad)

        # The good commands applied, each once, with its receipt; nothing else stored.
        assert events_of(app, zhou) == [
            ("Candidate", "Registered"),
            ("CommandReceipt", "Applied"),
            ("Consent", "Requested"),
            ("CommandReceipt", "Applied"),
            ("Consent", "Granted"),
            ("CommandReceipt", "Applied"),
        ]
        assert events_of(app, wang) == [
            ("Candidate", "Registered"),
            ("CommandReceipt", "Applied"),
            ("Consent", "Requested"),
            ("CommandReceipt", "Applied"),
        ]
        # and the portal link sent with each consent request: a principal, about no subject
        links = [
            (e.event, e.originator_id) for e in app.iter_events() if e.aggregate == "Principal"
        ]
        assert links == [
            ("Added", principal_id(portal_name(zhou))),
            ("Added", principal_id(portal_name(wang))),
        ]
        assert app.recorder.max_notification_id() == 12
        # handed on by the intake process, as any process that requests consent does
        for candidate in (zhou, wang):
            sent = intake.settings.outbox_dir / "portal-links" / f"{candidate}.json"
            assert f"/portal#token=bck_{principal_id(portal_name(candidate)).hex}_" in (
                sent.read_text()
            )
        assert app.get_consent(consent).status == "active"
        receipts = [
            (e.data["source"], e.data["command_type"])
            for e in app.iter_events()
            if e.aggregate == "CommandReceipt"
        ]
        assert sorted(receipts) == sorted(
            [
                ("ats.example", "register-candidate"),
                ("ats.example", "request-consent"),
                ("esign.example", "grant-consent"),
                ("ats.example", "register-candidate"),
                ("ats.example", "request-consent"),
            ]
        )
        with open_source(intake.settings) as source:
            verdict = verify(source, [])
        assert verdict.intact, verdict.problems
        assert verdict.checked == 12
    finally:
        app.close()


def test_a_worker_restarted_in_the_group_carries_on_where_the_last_one_stopped(
    intake: Intake,
) -> None:
    first = intake.start()
    zhou, wang = uuid4(), uuid4()
    key = str(zhou).encode()
    intake.send(
        [
            Sent(key, body(register(zhou)), headers("register-candidate")),
            Sent(key, b"not json", headers("register-candidate")),
            Sent(key, body(request_consent(zhou)), headers("request-consent")),
        ]
    )
    app = build_app(intake.settings)
    try:
        until(lambda: consent_of(app, zhou) is not None, intake, "the first worker's commands")
        assert len(intake.dead_letters(1)) == 1
        assert first.stop() is not None, "the worker did not stop on SIGTERM"

        intake.start()
        sent = subprocess.run(
            [
                str(Path(sys.executable).with_name("backcheck")),
                "send-command",
                "register-candidate",
                "--id",
                "ats-4711",
                "--source",
                "ats.example",
                "--key",
                str(wang),
                "--topic",
                intake.topic,
                "-",
            ],
            input=body(register(wang, "Wang Fang")),
            env=intake.env,
            capture_output=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr.decode()
        until(lambda: bool(events_of(app, wang)), intake, "the second worker's command")

        # Nothing the first worker handled was handled again.
        assert len(intake.dead_letters(1)) == 1
        assert events_of(app, zhou) == [
            ("Candidate", "Registered"),
            ("CommandReceipt", "Applied"),
            ("Consent", "Requested"),
            ("CommandReceipt", "Applied"),
        ]
        receipts = [e.data for e in app.iter_events(wang) if e.aggregate == "CommandReceipt"]
        assert [(r["source"], r["command_id"]) for r in receipts] == [("ats.example", "ats-4711")]
    finally:
        app.close()


def test_a_worker_killed_before_committing_its_offsets_applies_nothing_twice(
    intake: Intake,
) -> None:
    first = intake.start()
    candidates = [uuid4() for _ in range(12)]
    bad = Sent(b"bad", b"{", headers("register-candidate"))
    intake.send(
        [
            Sent(str(c).encode(), body(register(c)), headers("register-candidate"))
            for c in candidates
        ]
        + [bad]
    )
    app = build_app(intake.settings)
    try:
        until(lambda: all(events_of(app, c) for c in candidates), intake, "the first commands")
        intake.dead_letters(1)
        first.stop(kill=True)  # no chance to commit what it handled since its last commit

        intake.start()
        # One more command on every partition: once each is applied, whatever the second
        # worker was given again before it on that partition has been handled too.
        markers = [uuid4() for _ in range(PARTITIONS)]
        producer = KafkaProducer(bootstrap_servers=intake.bootstrap, acks="all")
        for partition, marker in enumerate(markers):
            producer.send(
                intake.topic,
                partition=partition,
                key=str(marker).encode(),
                value=body(register(marker)),
                headers=headers("register-candidate"),
            )
        producer.flush(timeout=30)
        producer.close()
        until(lambda: all(events_of(app, m) for m in markers), intake, "the markers")

        for c in [*candidates, *markers]:
            assert events_of(app, c) == [("Candidate", "Registered"), ("CommandReceipt", "Applied")]
        letters = intake.dead_letters(1)
        # At least once: the bad message may be dead-lettered again after the kill, but a
        # command applied before it is recognised by its place and never called a duplicate.
        assert 1 <= len(letters) <= 2
        assert {r.value for r in letters} == {b"{"}
        assert {dict(r.headers)["dlq_reason"] for r in letters} == {b"malformed"}
    finally:
        app.close()


def test_a_worker_writes_no_escape_codes_where_its_output_is_no_terminal(intake: Intake) -> None:
    worker = intake.start()  # standard output and error to a file
    intake.send([Sent(b"bad", b"{", headers("register-candidate"))])
    intake.dead_letters(1)
    until(lambda: "dead-lettered" in intake.log.read_text(), intake, "the dead letter logged")
    assert worker.stop() is not None, "the worker did not stop on SIGTERM"

    log = intake.log.read_text()
    assert "dead-lettered backcheck.commands" in log
    assert "\x1b" not in log, repr(log[-2000:])


def test_a_command_too_large_for_its_dead_letter_is_dead_lettered_without_its_value(
    intake: Intake,
) -> None:
    """The broker took it, but its dead letter (its bytes and the dlq_* headers) is more than a
    message may take: it used to stop the intake at that message, for good (every restart
    read it again), so no service's command was applied after it."""
    intake.start()
    big, zhou = uuid4(), uuid4()
    oversized = body(register(big, "x" * 1_500_000))
    producer = KafkaProducer(bootstrap_servers=intake.bootstrap, max_request_size=4_000_000)
    sent = [
        Sent(str(big).encode(), oversized, headers("register-candidate")),
        Sent(str(zhou).encode(), body(register(zhou)), headers("register-candidate")),
    ]
    for m in sent:
        producer.send(intake.topic, key=m.key, value=m.value, headers=m.headers)
    producer.flush(timeout=30)
    producer.close()
    app = build_app(intake.settings)
    try:
        until(lambda: bool(events_of(app, zhou)), intake, "the command after the large one")
        [letter] = intake.dead_letters(1)
        why = dict(letter.headers)
        assert why["dlq_reason"] == b"invalid"
        assert b"field name: String should have at most 2000 characters" in why["dlq_error"]
        assert (
            f"the value, {len(oversized):,} bytes, is not kept here".encode() in (why["dlq_error"])
        )
        assert letter.value in (None, b"")
        assert letter.key == str(big).encode()
        assert [h for h in letter.headers if not h[0].startswith("dlq_")] == sent[0].headers
        assert events_of(app, big) == []
        assert all(w.process.poll() is None for w in intake.workers), intake.tail()
    finally:
        app.close()
