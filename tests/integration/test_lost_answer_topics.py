"""The intake whose broker lost its answer topics (a broker that lost its data, the topics
deleted by hand) makes them again and answers: before, faust's producer waited up to 20
minutes for a topic the broker did not have, and every command meanwhile was applied and
answered nothing, with no line in the log. Lost while the intake runs, after it has answered:
its producer still knew the topics, sent to them, and Tansu acknowledged answers it kept in no
topic (decision 0054)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from uuid import uuid4

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from infra.config import Settings
from tests.commands import body, headers, register, request_consent
from tests.kafka import BACKCHECK, GROUP_SETTINGS, Broker, every_record, topic_name

pytestmark = pytest.mark.kafka


def _topics(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def _answers(bootstrap: str, outcomes: str, expect: int, timeout: float) -> dict[str, str]:
    """Each command's outcome on `outcomes`, once `expect` are there (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    answers: dict[str, str] = {}
    while len(answers) < expect and time.monotonic() < deadline:
        if outcomes in _topics(bootstrap):
            for record in every_record(bootstrap, outcomes, quiet=1.0):
                answer = json.loads(record.value)
                answers[answer["command"]["id"]] = answer["outcome"]
        time.sleep(0.5)
    return answers


def _send(bootstrap: str, topic: str, *commands: tuple[str, str, dict[str, object], str]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for kind, command_id, document, key in commands:
        producer.send(
            topic, key=key.encode(), value=body(document), headers=headers(kind, command_id)
        )
    producer.flush(timeout=30)
    producer.close()


def test_answer_topics_the_broker_lost_are_made_again_and_every_command_answered(
    kafka_broker: Broker, settings: Settings, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    commands = topic_name("backcheck.commands")
    dead_letters = topic_name("backcheck.commands.dlq")
    outcomes = topic_name("backcheck.command-outcomes")
    env = {
        **os.environ,
        "BACKCHECK_DATABASE_URL": str(settings.database_url),
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
        "BACKCHECK_KAFKA_PARTITIONS": "2",
    }
    log = tmp_path / "ingest.log"
    command = [
        BACKCHECK,
        "ingest",
        *("--bootstrap-servers", bootstrap, "--topic", commands, "--dlq-topic", dead_letters),
        *("--outcomes-topic", outcomes, "--group", f"intake-{uuid4().hex[:8]}"),
        "--accept-unsigned",  # what is tested is the answers, not the senders
        "--answer-timeout-ms=2000",
        *(f"--{name[:-3].replace('_', '-')}-ms={value}" for name, value in GROUP_SETTINGS.items()),
    ]
    with log.open("ab") as out:
        intake = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not {commands, dead_letters, outcomes} <= _topics(bootstrap):
            assert intake.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.25)
        # given: an intake that has answered (its producer knows the answer topics, as a
        # running intake's does), and a broker that then loses both answer topics
        before = uuid4()
        _send(
            bootstrap, commands, ("register-candidate", "reg-before", register(before), str(before))
        )
        assert _answers(bootstrap, outcomes, 1, 60) == {"reg-before": "accepted"}, log.read_text()
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.delete_topics([outcomes, dead_letters])
        finally:
            admin.close()
        assert not {outcomes, dead_letters} & _topics(bootstrap)

        # when: a command that is applied and one that is refused arrive
        fine, early = uuid4(), uuid4()
        _send(
            bootstrap,
            commands,
            ("register-candidate", "reg-fine", register(fine), str(fine)),
            ("request-consent", "ask-early", request_consent(early), str(early)),
        )

        # then: both answer topics are made again, and each command is answered
        answers = _answers(bootstrap, outcomes, 2, 90)
        assert answers == {"reg-fine": "accepted", "ask-early": "refused"}, log.read_text()
        letters = every_record(bootstrap, dead_letters, quiet=1.0)
        assert [dict(r.headers)["ce_id"] for r in letters] == [b"ask-early"]
        said = log.read_text()
        assert f"the broker had lost {outcomes}: made again with 2 partitions" in said
        assert f"the broker had lost {dead_letters}: made again with 2 partitions" in said
        assert "Traceback" not in said
    finally:
        intake.terminate()
        try:
            intake.wait(timeout=30)
        except subprocess.TimeoutExpired:
            intake.kill()
            intake.wait()
