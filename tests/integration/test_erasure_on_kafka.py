"""Issue 21 on the distribution side: a candidate's whole story relayed to a real broker
(Tansu) and projected by a `backcheck worker`, then erased. Neither the topic nor the
workers' views hold any value the candidate gave (tests/marked_story.py), sealed from the
start and unreadable after; the workers' views are overwritten by the erasure as the
in-process ones are. The store side of the same story: tests/integration/test_erasure.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.relay import Relay
from infra.kafka.topics import dead_letter_topic, ensure_topics
from infra.kafka.worker import worker_store
from infra.views.kept import KEPT
from infra.views.runner import ViewRunner
from infra.views.store import Dumped
from services.application import Backcheck
from services.dto import EraseSubject
from tests import marked_story as ms
from tests.conftest import FakeClock
from tests.kafka import (
    GROUP_SETTINGS,
    Broker,
    Processes,
    every_record,
    store_env,
    topic_name,
    wait_for,
    worker_command,
)

pytestmark = pytest.mark.kafka

PARTITIONS = 3


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    running = Processes(store_env(settings), tmp_path)
    yield running
    running.stop()


def relay_all(app: Backcheck, settings: Settings, broker: Broker, topic: str) -> int:
    relay = Relay(app, settings, topic=topic, bootstrap=broker.bootstrap, partitions=PARTITIONS)
    try:
        return relay.run(once=True)
    finally:
        relay.close()


def on_topic(broker: Broker, topic: str) -> bytes:
    """Every message the broker holds on `topic`: keys, headers and values."""
    return b"\n".join(
        b"".join([r.key or b"", r.value or b"", *(k.encode() + v for k, v in r.headers or [])])
        for r in every_record(broker.bootstrap, topic, quiet=1.0)
    )


def test_after_erasure_neither_the_topic_nor_the_workers_views_hold_what_the_subject_gave(
    kafka_broker: Broker, app: Backcheck, settings: Settings, workers: Processes
) -> None:
    topic, group = topic_name("backcheck.events"), topic_name("views")
    ensure_topics(kafka_broker.bootstrap, PARTITIONS, topic, dead_letter_topic(topic))
    marked = ms.tell(app)
    runners = [model for model in app.kept_views if isinstance(model, ViewRunner)]
    stores = [worker_store(kept, app, settings) for kept in KEPT]

    def in_process() -> list[list[Dumped]]:
        for runner in runners:
            runner.catch_up()
        return [runner.store.dump() for runner in runners]

    def in_workers() -> list[list[Dumped]]:
        return [store.dump() for store in stores]

    # the story relayed and projected by a worker: sealed on the topic from the start
    workers.start(worker_command(kafka_broker.bootstrap, topic, group, PARTITIONS))
    time.sleep(GROUP_SETTINGS["session_timeout_ms"] / 1000)  # in the group
    sent = relay_all(app, settings, kafka_broker, topic)
    expected = in_process()
    wait_for(lambda: in_workers() == expected, 90, "the worker's views", workers)
    assert ms.found_in(repr(in_workers())) != []  # the worker's views open to the values
    assert ms.found_in(on_topic(kafka_broker, topic)) == []

    app.erase_subject(
        EraseSubject(candidate_id=marked.candidate_id, reason="candidate request", actor="dpo")
    )
    sent += relay_all(app, settings, kafka_broker, topic)
    expected = in_process()
    wait_for(lambda: in_workers() == expected, 90, "the worker to apply the erasure", workers)
    workers.stop()

    assert sent == app.recorder.max_notification_id()
    messages = on_topic(kafka_broker, topic)
    assert ms.AGENT.encode() in messages  # the scan sees what is sent in the clear
    assert ms.found_in(messages) == []
    assert ms.found_in(repr(in_workers())) == []  # opened: nothing of the subject's left
    assert ms.found_in(ms.raw_bytes(settings)) == []  # the workers' stores' bytes too
