"""`backcheck send-command --wait` on a real broker exits with the code the problem table
gives the kind of problem its answer carries, as the command line exits for the same problem,
in one line on stderr: it took the code from the answer's HTTP status, so a configuration
error (503 since CONFIG_STATUS) or a busy store (503) exited 1, and an unauthenticated
caller (401) 5.

The intake raises such errors and tries the message again rather than answering them, so
here the answer is made by the outcome module's own builder, as an intake answering that
problem would make it, from a real error, and sent on the outcomes topic by a stand-in for
the intake that reads the command off the command topic."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from kafka import KafkaProducer

from infra.config import ConfigError
from infra.kafka.cloudevent import DeadLetterReason
from infra.kafka.intake import CommandMessage, IntakeDecision
from infra.kafka.outcome import outcome_of
from infra.kafka.topics import ensure_topics
from services.errors import AuthenticationError
from tests.commands import register
from tests.kafka import BACKCHECK, Broker, read_topic, topic_name
from tests.unit.test_refusal_exit_codes import _busy

pytestmark = pytest.mark.kafka


def answer_the_command(
    bootstrap: str, commands: str, outcomes: str, error: Exception, failed: list[BaseException]
) -> threading.Thread:
    """A stand-in for the intake: the one command sent to `commands`, refused with `error`
    on `outcomes`."""

    def answer() -> None:
        try:
            [record] = read_topic(bootstrap, commands, expect=1, timeout=60)
            message = CommandMessage(
                record.topic,
                record.partition,
                record.offset,
                record.key,
                record.value,
                tuple((k, bytes(v)) for k, v in record.headers),
            )
            decision = IntakeDecision(
                "register-candidate", DeadLetterReason.REFUSED, str(error), cause=error
            )
            outcome = outcome_of(message, decision, datetime.now(UTC))
            producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
            producer.send(
                outcomes, key=outcome.key, value=outcome.value, headers=list(outcome.headers)
            )
            producer.flush(timeout=30)
            producer.close()
        except BaseException as e:
            failed.append(e)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


CASES: dict[str, tuple[Callable[[Path], Exception], str, int]] = {
    "config": (lambda _: ConfigError("BACKCHECK_X: not a setting"), "config", 78),
    "store-busy": (_busy, "store-busy", 75),
    "unauthenticated": (lambda _: AuthenticationError("unknown token"), "unauthenticated", 77),
}


@pytest.mark.parametrize(("made", "kind", "code"), CASES.values(), ids=CASES.keys())
def test_send_command_exits_with_the_code_of_the_problem_its_answer_carries(
    kafka_broker: Broker,
    tmp_path: Path,
    made: Callable[[Path], Exception],
    kind: str,
    code: int,
) -> None:
    bootstrap = kafka_broker.bootstrap
    commands, outcomes = topic_name("backcheck.commands"), topic_name("backcheck.outcomes")
    ensure_topics(bootstrap, 1, commands, outcomes)
    failed: list[BaseException] = []
    answering = answer_the_command(bootstrap, commands, outcomes, made(tmp_path), failed)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env["BACKCHECK_DATA_DIR"] = str(tmp_path / "data")

    sent = subprocess.run(
        [
            *(BACKCHECK, "send-command", "register-candidate", json.dumps(register(uuid4()))),
            *("--topic", commands, "--outcomes-topic", outcomes),
            *("--bootstrap-servers", bootstrap, "--wait", "60"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    answering.join(timeout=60)

    assert not failed, failed
    assert sent.returncode == code, sent.stdout + sent.stderr
    answer = json.loads(sent.stdout.splitlines()[-1])
    assert answer["outcome"] == "refused"
    assert answer["problem"]["rule"] == kind
    [line] = sent.stderr.splitlines()
    assert line.startswith(f"refused ({kind}): ")
    assert "Traceback" not in sent.stderr
