"""The Kafka daemons stop when asked: SIGTERM or SIGINT ends `backcheck worker`, `ingest` and
`relay` within seconds, exit code 0, no traceback; while idle, while a batch is being retried,
and with the broker gone or not answering. Nothing is lost: what was not acknowledged is sent
again when the daemon starts again."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from infra.kafka.cloudevent import command_headers
from infra.kafka.intake import send_command
from infra.kafka.relay_store import RelayState
from infra.kafka.topics import (
    COMMANDS_TOPIC,
    dead_letter_topic,
    ensure_topics,
    kafka_producer,
    missing_topics,
)
from infra.kafka.worker import worker_store
from infra.views.kept import KEPT, READ
from infra.views.runner import ViewRunner
from services.application import Backcheck
from tests.commands import ATS, body, register
from tests.conftest import FakeClock
from tests.integration.test_stream_projection import PARTITIONS
from tests.integration.test_worker import publish
from tests.kafka import (
    BACKCHECK,
    Broker,
    read_topic,
    relay_command,
    store_env,
    topic_name,
    worker_command,
)

pytestmark = pytest.mark.kafka

WITHIN = 10.0  # seconds a daemon may take to stop once asked
LOCKED = "database is locked"  # the batch failed on the locked views
Story = tuple[Backcheck, Settings]


class Daemon:
    """One `backcheck` daemon, its standard error kept in a file."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as err:
            self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.process.poll() is not None:
                raise AssertionError(f"exited with {self.process.returncode}:\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.stderr()}")
            time.sleep(0.2)

    def stop(self, number: signal.Signals = signal.SIGTERM) -> tuple[int | None, float]:
        """Sends `number`; (the exit code, or None if it still ran after WITHIN seconds; the
        seconds it took)."""
        started = time.monotonic()
        self.process.send_signal(number)
        try:
            code: int | None = self.process.wait(timeout=WITHIN)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


@pytest.fixture
def story(tmp_path: Path, clock: FakeClock) -> Iterator[Story]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    tell_story(app)
    yield app, settings
    app.close()


def start_worker(
    broker: Broker, settings: Settings, daemons: list[Daemon], log: Path, topic: str
) -> Daemon:
    ensure_topics(broker.bootstrap, PARTITIONS, topic, dead_letter_topic(topic))
    command = worker_command(broker.bootstrap, topic, topic_name("views"), PARTITIONS)
    worker = Daemon(command, store_env(settings), log)
    daemons.append(worker)
    worker.wait_for(lambda: "assigned partitions" in worker.stderr(), "its partitions")
    return worker


def assert_stopped_cleanly(worker: Daemon, code: int | None, took: float) -> None:
    assert code == 0, f"exit {code} after {took:.1f} s:\n{worker.stderr()}"
    assert "Traceback" not in worker.stderr(), worker.stderr()


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=lambda n: n.name)
def test_a_worker_stops_when_asked(
    kafka_broker: Broker,
    story: Story,
    daemons: list[Daemon],
    tmp_path: Path,
    number: signal.Signals,
) -> None:
    app, settings = story
    topic = topic_name("backcheck.events")
    worker = start_worker(kafka_broker, settings, daemons, tmp_path / "worker.log", topic)
    streams = [worker_store(kept, app, settings) for kept in KEPT]
    runners = [model for model in app.kept_views if isinstance(model, ViewRunner)]
    for runner in runners:
        runner.catch_up()
    expected = [runner.store.dump() for runner in runners]
    sent = publish(kafka_broker.bootstrap, topic, app)
    # both stores, the dashboard's too: each batch is counted once it is in both
    worker.wait_for(lambda: [s.dump() for s in streams] == expected, "the views built")

    code, took = worker.stop(number)

    assert_stopped_cleanly(worker, code, took)
    assert f"worker stopped: applied {sent} events" in worker.stderr()


def test_a_worker_retrying_a_batch_its_views_cannot_take_stops_when_asked(
    kafka_broker: Broker, story: Story, daemons: list[Daemon], tmp_path: Path
) -> None:
    app, settings = story
    topic = topic_name("backcheck.events")
    worker = start_worker(kafka_broker, settings, daemons, tmp_path / "worker.log", topic)
    views = sqlite3.connect(READ.stream_path(settings), isolation_level=None)
    views.execute("BEGIN EXCLUSIVE")  # another process holds the worker's views
    try:
        publish(kafka_broker.bootstrap, topic, app)
        worker.wait_for(
            lambda: LOCKED in worker.stderr(),
            "the batch to fail on the locked views",
        )
        code, took = worker.stop()
    finally:
        views.rollback()
        views.close()

    assert_stopped_cleanly(worker, code, took)


UNREACHABLE = "Unable connect to node with id"  # aiokafka's, on each retry


def test_a_worker_whose_broker_went_away_stops_when_asked(
    own_kafka_broker: Broker,
    story: Story,
    daemons: list[Daemon],
    tmp_path: Path,
) -> None:
    _, settings = story
    topic = topic_name("backcheck.events")
    worker = start_worker(own_kafka_broker, settings, daemons, tmp_path / "worker.log", topic)
    own_kafka_broker.stop()
    worker.wait_for(lambda: UNREACHABLE in worker.stderr(), "the consumer to notice")
    time.sleep(3)  # dozens a second of the same failure, before they were held back

    code, took = worker.stop()

    assert_stopped_cleanly(worker, code, took)
    # the Kafka client's failure written once, not once a retry (infra/ops/logs.py Repeats)
    assert worker.stderr().count(UNREACHABLE) == 1, worker.stderr()[-3000:]


def test_the_intake_whose_broker_went_away_stops_when_asked(
    own_kafka_broker: Broker, story: Story, daemons: list[Daemon], tmp_path: Path
) -> None:
    app, settings = story
    command = [
        BACKCHECK,
        "ingest",
        "--bootstrap-servers",
        own_kafka_broker.bootstrap,
        "--accept-unsigned",  # its commands are unsigned: senders are not what this is about
    ]
    intake = Daemon(command, store_env(settings), tmp_path / "intake.log")
    daemons.append(intake)
    before = app.recorder.max_notification_id() or 0
    candidate = uuid4()
    intake.wait_for(
        lambda: missing_topics(own_kafka_broker.bootstrap, COMMANDS_TOPIC) == set(), "its topics"
    )
    send_command(
        own_kafka_broker.bootstrap,
        COMMANDS_TOPIC,
        "register-candidate",
        str(candidate),
        ATS,
        body(register(candidate)),
    )
    intake.wait_for(lambda: (app.recorder.max_notification_id() or 0) > before, "a command applied")
    own_kafka_broker.stop()
    time.sleep(3)

    code, took = intake.stop()

    assert_stopped_cleanly(intake, code, took)


def test_the_relay_whose_broker_stopped_answering_stops_when_asked_and_loses_nothing(
    own_kafka_broker: Broker,
    story: Story,
    daemons: list[Daemon],
    tmp_path: Path,
) -> None:
    app, settings = story
    topic = topic_name("backcheck.events")
    env = store_env(settings)
    relay = Daemon(relay_command(own_kafka_broker.bootstrap, topic, 3), env, tmp_path / "r.log")
    daemons.append(relay)
    state = RelayState(app, settings, f"relay:{topic}")
    try:
        first = app.recorder.max_notification_id() or 0
        relay.wait_for(lambda: state.load()[0] == first, "the story relayed")
        own_kafka_broker.pause()
        tell_story(app)  # more events, which the broker does not acknowledge
        time.sleep(2)
        code, took = relay.stop()
        own_kafka_broker.resume()
        assert_stopped_cleanly(relay, code, took)
        assert state.load()[0] == first  # nothing recorded past what was acknowledged

        again = subprocess.run(
            [*relay_command(own_kafka_broker.bootstrap, topic, 3), "--once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        head = app.recorder.max_notification_id() or 0
        received = read_topic(own_kafka_broker.bootstrap, topic, expect=head)
    finally:
        state.close()

    assert again.returncode == 0, again.stderr
    assert {int(dict(r.headers)["ce_position"]) for r in received} == set(range(1, head + 1))


def test_the_intake_stopped_in_a_burst_loses_no_command_and_applies_none_twice(
    own_kafka_broker: Broker, story: Story, daemons: list[Daemon], tmp_path: Path
) -> None:
    """Asked to stop in the middle of a burst of commands, the intake finishes the message it
    took or leaves it uncommitted: started again, it applies every command that was sent,
    each once."""
    app, settings = story
    bootstrap = own_kafka_broker.bootstrap
    command = [BACKCHECK, "ingest", "--bootstrap-servers", bootstrap, "--accept-unsigned"]
    first = Daemon(command, store_env(settings), tmp_path / "intake-1.log")
    daemons.append(first)
    first.wait_for(lambda: missing_topics(bootstrap, COMMANDS_TOPIC) == set(), "its topics")
    candidates = [uuid4() for _ in range(500)]  # more than it applies before it stops
    producer = kafka_producer(bootstrap_servers=bootstrap, acks="all")
    for candidate in candidates:
        headers = command_headers("register-candidate", str(candidate), ATS, app.clock())
        value = body(register(candidate))
        producer.send(COMMANDS_TOPIC, key=str(candidate).encode(), value=value, headers=headers)
    producer.flush()
    producer.close()

    def applied() -> int:
        return sum(1 for c in candidates if app.version_of(c) is not None)

    first.wait_for(lambda: applied() > 0, "the first commands applied")
    code, took = first.stop()
    assert_stopped_cleanly(first, code, took)
    stopped_at = applied()
    assert stopped_at < len(candidates), "stopped after the burst: nothing was in flight"

    second = Daemon(command, store_env(settings), tmp_path / "intake-2.log")
    daemons.append(second)
    second.wait_for(lambda: applied() == len(candidates), "every command applied", timeout=120)
    code, took = second.stop()
    assert_stopped_cleanly(second, code, took)

    for candidate in candidates:  # each registered once, with its one receipt
        assert [(e.aggregate, e.event) for e in app.iter_events(candidate)] == [
            ("Candidate", "Registered"),
            ("CommandReceipt", "Applied"),
        ]
