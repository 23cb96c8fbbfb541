"""Impersonation on the command topic, end to end: `backcheck ingest` as a process on each
backend, a real broker, and services that lie about who they are. A command its registered
sender signed is applied; unsigned, wrongly signed, unknown, replayed, stale, out-of-scope and
wrong-actor commands each land on the dead-letter topic once, byte for byte, with a reason of
their own — and the store holds nothing of them but their refusals, its chain intact. The
operator's side runs through the CLI: `principals keygen`, `principals add --public-key`,
`send-command --signing-key`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from infra.audit.verification import open_source, verify
from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.cloudevent import dead_letter_of
from services.application import Backcheck
from tests.commands import body, headers, register, request_consent
from tests.kafka import (
    BACKCHECK,
    GROUP_SETTINGS,
    Broker,
    Processes,
    every_record,
    read_topic,
    store_env,
    topic_name,
    wait_for,
)
from tests.senders import ATS_SENDER, ESIGN_SENDER, Registered, new_signer, register_sender

pytestmark = pytest.mark.kafka

PARTITIONS = 3


@pytest.fixture
def app(settings: Settings) -> Iterator[Backcheck]:
    application = build_app(settings)  # the system clock: the intake judges ce_time by it
    yield application
    application.close()


@pytest.fixture
def processes(settings: Settings, kafka_broker: Broker, tmp_path: Path) -> Iterator[Processes]:
    env = store_env(settings) | {
        "BACKCHECK_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
        "BACKCHECK_KAFKA_PARTITIONS": str(PARTITIONS),
    }
    running = Processes(env, tmp_path)
    yield running
    running.stop()


def run(processes: Processes, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [BACKCHECK, *args], env=processes.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"backcheck {' '.join(args)}: {done.stderr}"
    return done


def start_intake(processes: Processes, bootstrap: str, topic: str, dlq: str) -> None:
    processes.start(
        [
            BACKCHECK,
            "ingest",
            *("--topic", topic, "--dlq-topic", dlq, "--group", f"intake-{uuid4().hex[:8]}"),
            *(f"--{k[:-3].replace('_', '-')}-ms={v}" for k, v in GROUP_SETTINGS.items()),
        ],
        name="ingest",
    )
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        wait_for(
            lambda: {topic, dlq} <= set(admin.list_topics()), 60, "the intake's topics", processes
        )
    finally:
        admin.close()


def signed_at(sender: Registered, kind: str, value: bytes, **more: Any) -> list[tuple[str, bytes]]:
    return sender.signed(kind, value, time=more.pop("time", datetime.now(UTC)), **more)


def test_impersonating_services_are_dead_lettered_each_with_its_reason_and_nothing_is_stored(
    app: Backcheck, processes: Processes, kafka_broker: Broker, settings: Settings, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    topic, dlq = topic_name("backcheck.commands"), topic_name("backcheck.commands.dlq")
    ats = register_sender(app, ATS_SENDER)
    esign = register_sender(app, ESIGN_SENDER, use_cases=["register-candidate"])
    stranger = Registered("svc:stranger", new_signer())
    # the operator's way: a key pair made and registered through the CLI
    key = tmp_path / "hris.key"
    run(processes, "principals", "keygen", str(key))
    run(
        processes,
        *("principals", "add", "svc:hris", "--role", "service", "--kind", "service"),
        *("--public-key", f"{key}.pub", "--use-cases", "register-candidate", "--acts-for", "self"),
    )
    start_intake(processes, bootstrap, topic, dlq)
    good, by_cli, *bad = (uuid4() for _ in range(9))
    now = datetime.now(UTC)

    def reg(candidate: UUID, actor: str = "hr:li.na") -> bytes:
        return body({**register(candidate), "actor": actor})

    applied = reg(good)
    applied_headers = signed_at(ats, "register-candidate", applied, command_id="good-1")
    messages: list[tuple[str, bytes, list[tuple[str, bytes]]]] = [
        ("applied", applied, applied_headers),
        ("unsigned", reg(bad[0]), headers("register-candidate", source=ATS_SENDER)),
        (
            "bad-signature",
            reg(bad[1]),
            signed_at(esign, "register-candidate", reg(bad[1]), source=ATS_SENDER),
        ),
        ("unknown-sender", reg(bad[2]), signed_at(stranger, "register-candidate", reg(bad[2]))),
        ("replayed", applied, applied_headers),
        (
            "expired",
            reg(bad[3]),
            signed_at(ats, "register-candidate", reg(bad[3]), time=now - timedelta(minutes=10)),
        ),
        (
            "future",
            reg(bad[4]),
            signed_at(ats, "register-candidate", reg(bad[4]), time=now + timedelta(minutes=10)),
        ),
        (
            "out-of-scope",
            body(request_consent(good)),
            signed_at(esign, "request-consent", body(request_consent(good))),
        ),
        (
            "actor-not-allowed",
            reg(bad[5], "hr:zhao.lei"),
            signed_at(ats, "register-candidate", reg(bad[5], "hr:zhao.lei")),
        ),
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    for _, value, header_list in messages:  # one key: one partition, in this order
        producer.send(topic, key=str(good).encode(), value=value, headers=header_list)
    producer.flush(timeout=30)
    producer.close()
    document = register(by_cli)
    document["actor"] = "svc:hris"
    sent = run(
        processes,
        *("send-command", "register-candidate", body(document).decode()),
        *("--source", "svc:hris", "--signing-key", str(key), "--topic", topic),
    )
    assert ", signed with key " in sent.stdout

    letters = read_topic(bootstrap, dlq, expect=len(messages) - 1, timeout=90)
    letters = every_record(bootstrap, dlq, quiet=2.0)  # and nothing more arrives

    reasons = [dead_letter_of(r.headers).reason.value for r in letters]
    assert sorted(reasons) == sorted(name for name, _, _ in messages[1:]), processes.tails()
    sent_as = {name: (value, header_list) for name, value, header_list in messages}
    for record, reason in zip(letters, reasons, strict=True):
        value, header_list = sent_as[reason]
        assert record.value == value
        assert list(record.headers)[: len(header_list)] == header_list  # byte for byte
        assert dead_letter_of(record.headers).error
    wait_for(lambda: len(list(app.iter_events(by_cli))) == 2, 60, "the CLI's command", processes)
    assert [(e.aggregate, e.event) for e in app.iter_events(good)] == [
        ("Candidate", "Registered"),
        ("CommandReceipt", "Applied"),
    ]
    for candidate in bad:
        assert list(app.iter_events(candidate)) == []
    refusals = [
        n.topic
        for n in app.recorder.select_notifications(start=1, limit=1000)
        if n.topic.startswith("domain.sender:")
    ]
    assert len(refusals) == len(messages) - 1
    with open_source(settings) as source:
        verdict = verify(source, [])
    assert verdict.intact, verdict.problems
