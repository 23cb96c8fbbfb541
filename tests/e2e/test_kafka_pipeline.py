"""The scale-out path end to end, every part a process of its own as deployed:
`backcheck demo` → store → `backcheck relay` → Kafka (Tansu) → two `backcheck worker`s → views
(the read views and the dashboard), compared row for row with the views the in-process runners
build from the same store.

The outage test kills the relay mid-stream (SIGKILL: no flush, no clean shutdown) and stops the
broker while the store goes on. Tansu keeps topics in memory, so the restarted broker starts
empty, a harsher outage than a real Kafka's (which keeps its log on disk): the restarted relay
finds its topic empty and publishes the log again, and the workers, whose consumers may fetch
the new topic from their old offsets, notice the gap by `ce_prevposition` and read again."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from kafka.admin import KafkaAdminClient

from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.relay_store import RelayState
from infra.kafka.topics import ensure_topics
from infra.kafka.worker import worker_store
from infra.views.kept import KEPT
from infra.views.runner import ViewRunner
from infra.views.store import Dumped, ViewStore
from projections.access_log import READS_PREFIX, REFUSAL_PREFIX
from projections.dashboard import CASE_VIEW, DASHBOARD_VIEW
from projections.listing import LIST_VIEWS
from projections.read_views import VIEWS
from services.application import Backcheck
from tests.kafka import (
    BACKCHECK,
    Broker,
    Processes,
    every_record,
    partition_contents,
    read_topic,
    relay_command,
    store_env,
    topic_name,
    wait_for,
    worker_command,
)

pytestmark = pytest.mark.kafka
PARTITIONS = 3


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    running = Processes(store_env(settings), tmp_path)
    yield running
    running.stop()


def demo(settings: Settings) -> None:
    subprocess.run([BACKCHECK, "demo"], env=store_env(settings), check=True, capture_output=True)


def in_process_views(settings: Settings) -> list[list[Dumped]]:
    """The rows of each of the kept views (the read views, the dashboard) as the in-process
    runners build them from the store as it is now."""
    app = build_app(settings)
    try:
        runners = [model for model in app.kept_views if isinstance(model, ViewRunner)]
        assert [runner.kept for runner in runners] == list(KEPT)
        for runner in runners:
            runner.catch_up()
        return [runner.store.dump() for runner in runners]
    finally:
        app.close()


def workers_views(app: Backcheck, settings: Settings) -> list[ViewStore]:
    """Each of the kept views as the workers keep them."""
    return [worker_store(kept, app, settings) for kept in KEPT]


def views_match(settings: Settings, streams: list[ViewStore]) -> bool:
    return [stream.dump() for stream in streams] == in_process_views(settings)


@dataclass
class RelayedStore:
    """A store with the demo in it, the views the workers write, and how far the relay got."""

    app: Backcheck
    streams: list[ViewStore]  # the workers' stores: the read views', the dashboard's
    state: RelayState
    head: int  # the log's last position once the demos had run

    def relayed(self) -> int:
        return self.state.load()[0]


@contextmanager
def relayed_store(settings: Settings, topic: str, demos: int) -> Iterator[RelayedStore]:
    """Runs the demo `demos` times on the store, then opens it as the relay tests watch it."""
    for _ in range(demos):
        demo(settings)
    app = build_app(settings)
    state = RelayState(app, settings, f"relay:{topic}")
    try:
        head = app.recorder.max_notification_id() or 0
        yield RelayedStore(app, workers_views(app, settings), state, head)
    finally:
        state.close()
        app.close()


def where_things_stand(store: RelayedStore, bootstrap: str, topic: str) -> str:
    """For a failure message: each partition's position in the workers' views, what the relay
    recorded, and what the broker holds."""
    position, last = store.state.load()
    views = {
        kept.name: {
            p: stream.max_tracking_id(f"{topic}/{p}")
            for p in sorted(set(range(PARTITIONS)) | set(last))
        }
        for kept, stream in zip(KEPT, store.streams, strict=True)
    }
    return (
        f"log head {store.app.recorder.max_notification_id()}; relay recorded {position}, "
        f"last sent to each partition {last}; the workers' views stand at {views}\n"
        + partition_contents(bootstrap, topic)
    )


def start_two_workers(processes: Processes, bootstrap: str, topic: str, group: str) -> None:
    """Two workers in one group, started and assigned their partitions."""
    workers = [
        processes.start(worker_command(bootstrap, topic, group, PARTITIONS)) for _ in range(2)
    ]
    wait_for(
        lambda: all("assigned partitions" in processes.output(w) for w in workers),
        60,
        "the workers to join their group",
        processes,
    )


def kill_relay_mid_stream(
    processes: Processes, bootstrap: str, topic: str, relayed: Callable[[], int], head: int
) -> int:
    """Starts a relay that records a page per event, SIGKILLs it once 15 are recorded;
    returns the position it had recorded."""
    one_per_page = relay_command(bootstrap, topic, PARTITIONS, "--batch", "1")
    processes.start(one_per_page, "relay")
    deadline = time.monotonic() + 60
    while relayed() < 15 and time.monotonic() < deadline:
        time.sleep(0.005)
    processes.kill("relay")
    killed_at = relayed()
    assert 15 <= killed_at < head, "the relay was not killed mid-stream"
    return killed_at


def test_the_demo_through_relay_broker_and_two_workers_gives_the_in_process_views(
    kafka_broker: Broker, settings: Settings, processes: Processes
) -> None:
    topic, group = topic_name("backcheck.events"), topic_name("views")
    demo(settings)
    for _ in range(2):
        processes.start(worker_command(kafka_broker.bootstrap, topic, group, PARTITIONS))
    processes.start(relay_command(kafka_broker.bootstrap, topic, PARTITIONS), name="relay")
    demo(settings)  # a second story while the relay follows the log
    app = build_app(settings)
    streams = workers_views(app, settings)
    try:
        wait_for(lambda: views_match(settings, streams), 120, "equal views", processes)
        head = app.recorder.max_notification_id()
        rows, dashboard = [stream.dump() for stream in streams]
    finally:
        app.close()
    outputs = processes.stop()

    assert [rows, dashboard] == in_process_views(settings)
    assert {view for view, *_ in dashboard} == {DASHBOARD_VIEW, CASE_VIEW}
    views = {view for view, *_ in rows}
    refusals = {v for v in views if v.startswith(REFUSAL_PREFIX)}
    reads = {v for v in views if v.startswith(READS_PREFIX)}  # `audit reads`' lists
    # the six read views (a principal's row among them), the list views the demo's cases
    # fill, its refused reads by day
    assert views - LIST_VIEWS - refusals - reads == set(VIEWS)
    assert READS_PREFIX in reads  # every read by time
    assert refusals, "the demo's refused reads are listed by day by the workers too"
    assert views & LIST_VIEWS, "the demo's cases are listed by the workers too"
    applied = [int(o.split("applied ")[1].split()[0]) for o in outputs if "worker stopped" in o]
    assert len(applied) == 2
    assert sum(applied) == head  # each event counted once, though read views and dashboard took it


def test_relay_killed_and_broker_restarted_lose_nothing_and_the_views_stay_identical(
    own_kafka_broker: Broker, settings: Settings, processes: Processes
) -> None:
    broker, topic, group = own_kafka_broker, topic_name("backcheck.events"), topic_name("views")
    with relayed_store(settings, topic, demos=3) as store:
        start_two_workers(processes, broker.bootstrap, topic, group)
        kill_relay_mid_stream(processes, broker.bootstrap, topic, store.relayed, store.head)
        broker.stop()  # with what the workers had not consumed yet
        demo(settings)  # the store goes on while Kafka is down
        broker.start()
        processes.start(relay_command(broker.bootstrap, topic, PARTITIONS), "relay")
        wait_for(
            lambda: views_match(settings, store.streams),
            180,
            "equal views again",
            processes,
            lambda: where_things_stand(store, broker.bootstrap, topic),
        )
        final_head = store.app.recorder.max_notification_id() or 0
        assert store.relayed() == final_head
    processes.stop()

    # the restarted broker had lost the topic; the relay, finding it empty, published the
    # whole log again: every event once, each candidate's in order on one partition
    received = read_topic(broker.bootstrap, topic, expect=final_head)
    positions = [int(dict(r.headers)["ce_position"]) for r in received]
    assert sorted(positions) == list(range(1, final_head + 1))
    assert {r.partition for r in received} <= set(range(PARTITIONS))
    last: dict[bytes, tuple[int, int]] = {}
    for record, position in zip(received, positions, strict=True):
        partition, before = last.get(record.key, (record.partition, 0))
        assert partition == record.partition
        assert position > before
        headers = dict(record.headers)
        # keyed by the candidate; a portal link's principal (sent with a consent request),
        # about no candidate, by its own id
        subject = orjson.loads(record.value).get("candidate_id")
        if subject is None:
            assert headers["ce_type"].startswith(b"backcheck.principal."), headers
            subject = headers["ce_id"].decode().partition(":")[0]
        assert subject.encode() == record.key
        last[record.key] = (record.partition, position)


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # about Kafka, not the store
def test_a_lost_topic_back_with_another_partition_count_holds_the_relay_until_recreated(
    own_kafka_broker: Broker, settings: Settings, processes: Processes
) -> None:
    """The broker loses the topic and it comes back with another partition count (a client
    that let the broker create it with its default: Tansu's 4, Apache Kafka's 1). Seen in CI:
    the relay spread the log over 4 partitions, the workers read their 3, the views stalled.
    Now the relay publishes nothing and says why until the topic has the count configured
    (here an operator deletes it and the relay recreates it); then the views catch up."""
    broker, topic, group = own_kafka_broker, topic_name("backcheck.events"), topic_name("views")
    with relayed_store(settings, topic, demos=2) as store:
        start_two_workers(processes, broker.bootstrap, topic, group)
        processes.start(relay_command(broker.bootstrap, topic, PARTITIONS), "relay")
        wait_for(lambda: views_match(settings, store.streams), 120, "equal views", processes)
        processes.kill("relay")
        broker.stop()
        demo(settings)
        broker.start()
        ensure_topics(broker.bootstrap, PARTITIONS + 1, topic)  # as a broker's default would
        processes.start(relay_command(broker.bootstrap, topic, PARTITIONS), "relay")
        refusal = f"has {PARTITIONS + 1} partitions, not the {PARTITIONS} configured"
        wait_for(
            lambda: refusal in " ".join(processes.output("relay").split()),
            60,
            "the relay to refuse the topic",
            processes,
        )
        time.sleep(2)  # it keeps trying, and keeps refusing
        assert every_record(broker.bootstrap, topic, quiet=1.0) == []
        assert store.relayed() == store.head  # its position stays where it was
        assert " ".join(processes.output("relay").split()).count(refusal) == 1  # said once

        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()
        wait_for(
            lambda: views_match(settings, store.streams),
            150,
            "equal views again",
            processes,
            lambda: where_things_stand(store, broker.bootstrap, topic),
        )
        relay_output = " ".join(processes.output("relay").split())
    processes.stop()

    assert "the broker has lost them; publishing the log again from the start" in relay_output
    assert {r.partition for r in every_record(broker.bootstrap, topic)} <= set(range(PARTITIONS))


def test_a_relay_killed_mid_stream_sends_again_only_what_it_had_not_recorded(
    kafka_broker: Broker, settings: Settings, processes: Processes
) -> None:
    """The broker keeps everything (no outage): a relay killed mid-stream sends again, when
    restarted, at most the pages it had in flight and not recorded (often none: the window
    between an acknowledgement and its record is short; `test_relay.py` shows such a page
    sent again), never what it had recorded; the workers' views come out identical."""
    topic, group = topic_name("backcheck.events"), topic_name("views")
    bootstrap = kafka_broker.bootstrap
    with relayed_store(settings, topic, demos=2) as store:
        head = store.head
        start_two_workers(processes, bootstrap, topic, group)
        killed_at = kill_relay_mid_stream(processes, bootstrap, topic, store.relayed, head)
        processes.start(relay_command(bootstrap, topic, PARTITIONS), "relay")
        wait_for(
            lambda: store.relayed() == head, 60, "the restarted relay to reach the head", processes
        )
        wait_for(lambda: views_match(settings, store.streams), 120, "equal views", processes)
    processes.stop()

    received = every_record(kafka_broker.bootstrap, topic)
    positions = [int(dict(r.headers)["ce_position"]) for r in received]
    counts = Counter(positions)
    assert set(counts) == set(range(1, head + 1))  # every event arrived
    again = sorted(p for p, n in counts.items() if n > 1)
    assert max(counts.values()) <= 2
    assert all(p > killed_at for p in again), (killed_at, again)  # nothing it had recorded
    assert len(again) <= 4  # at most the pages it had in flight, of one event each
    for partition in {r.partition for r in received}:  # each partition in log order, resent
        firsts = list(
            dict.fromkeys(
                p for r, p in zip(received, positions, strict=True) if r.partition == partition
            )
        )
        assert firsts == sorted(firsts)
