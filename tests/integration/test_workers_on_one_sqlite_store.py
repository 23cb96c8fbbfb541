"""Projection workers sharing one embedded (SQLite) store, started at the same moment and
applying the same messages at the same moment (two consumer groups on one topic; one group in a
rebalance): neither stops on the other's lock or tracking record. A worker waits for the other's
write, takes what the other applied as done, and applies the rest; the views come out as one
worker's would, each event applied once. (Workers opening a new store together:
tests/integration/test_concurrent_setup.py.)"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from infra.kafka.projection import Record, StreamProjection, Target
from infra.kafka.topics import dead_letter_topic, ensure_topics
from infra.kafka.worker import worker_store, worker_targets
from infra.views.kept import KEPT
from services.application import Backcheck
from tests.conftest import FakeClock
from tests.integration.test_stream_projection import PARTITIONS, in_process, messages
from tests.kafka import Broker, Processes, store_env, topic_name, wait_for, worker_command


def at_once(works: list[Callable[[], object]]) -> list[str]:
    """Each of `works` on a thread of its own, let go together; what they raised."""
    start = threading.Barrier(len(works))
    errors: list[str] = []

    def run(work: Callable[[], object]) -> None:
        try:
            start.wait()
            work()
        except BaseException as e:
            errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def sqlite_settings(folder: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{folder / 'store.sqlite'}", data_dir=folder)


def test_two_workers_applying_the_same_messages_at_the_same_moment_apply_each_once(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Two workers on one store's views (their own connections, as two processes have), each
    given every message of the log (two consumer groups), in batches of its own sizes, let go
    together: a run the other applied while this one waited is refused by its tracking
    record, read again, and what is left applied; neither raises. Eighty rounds, the views
    emptied between them: each time the rows are the in-process runners' (events applied
    twice change the rows of both views, the dashboard's counts among them) and each
    partition's position is its last event's."""
    settings = sqlite_settings(tmp_path)
    with closing(build_app(settings, clock=clock)) as app:
        tell_story(app)
        tell_story(app)
        expected = in_process(app)
        records = messages(app)
        stores = [[t.store for t in worker_targets(app, settings)] for _ in range(2)]
        for round_ in range(80):
            for store in stores[0]:
                store.clear()
            workers = [
                StreamProjection(
                    app, [Target(s, kept.projection()) for s, kept in zip(mine, KEPT, strict=True)]
                )
                for mine in stores
            ]
            last = {
                workers[0].tracking_name(r.partition): int(r.headers["ce_position"])
                for r in records
            }
            seeds = (2 * round_, 2 * round_ + 1)

            errors = at_once(
                [
                    functools.partial(apply_in_batches, worker, records, seed)
                    for worker, seed in zip(workers, seeds, strict=True)
                ]
            )

            assert errors == [], f"round {round_}"
            assert [store.dump() for store in stores[1]] == expected, f"round {round_}"
            assert all(store.progress() == last for store in stores[1]), f"round {round_}"


def apply_in_batches(worker: StreamProjection, records: list[Record], seed: int) -> None:
    """Every record in order, in batches of 1 to 3 (as many transactions as can collide)."""
    sizes = random.Random(seed)
    i = 0
    while i < len(records):
        size = sizes.randint(1, 3)
        worker.apply(records[i : i + size])
        i += size


@pytest.mark.kafka
def test_two_workers_started_at_once_on_a_new_store_apply_the_same_messages_and_stay_up(
    kafka_broker: Broker, tmp_path: Path, clock: FakeClock
) -> None:
    """Two `backcheck worker` processes started at the same moment on a store that is not
    there yet, each of its own consumer group, so both are given every message: the story
    told in the store then, and its events published at once, are applied by both at the
    same moment, one a batch (a transaction each: as many chances to collide). Neither
    stops; both stop cleanly (exit 0) when told; their views are the in-process runners',
    each partition's position in each store."""
    settings = sqlite_settings(tmp_path)
    topic = topic_name("backcheck.events")
    ensure_topics(kafka_broker.bootstrap, PARTITIONS, topic, dead_letter_topic(topic))
    workers = Processes(store_env(settings), tmp_path)
    try:
        groups = [topic_name("views") for _ in range(2)]
        names = [
            workers.start(worker_command(kafka_broker.bootstrap, topic, group, PARTITIONS, 1))
            for group in groups
        ]
        every = f"assigned partitions {list(range(PARTITIONS))} of {topic}"
        wait_for(
            lambda: all(every in workers.output(name) for name in names),
            90,
            "both workers to be given every partition",
            workers,
        )
        with closing(build_app(settings, clock=clock)) as app:
            check_both_apply_the_stories_events(kafka_broker, app, settings, topic, groups, workers)
        processes = [workers.running[name][0] for name in names]
    finally:
        outputs = workers.stop()

    assert [process.returncode for process in processes] == [0, 0], outputs
    assert all("worker stopped: applied " in output for output in outputs), outputs


def check_both_apply_the_stories_events(
    kafka_broker: Broker,
    app: Backcheck,
    settings: Settings,
    topic: str,
    groups: list[str],
    workers: Processes,
) -> None:
    tell_story(app)
    tell_story(app)
    expected = in_process(app)
    records = messages(app)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    for record in records:
        producer.send(
            topic,
            value=record.value,
            partition=record.partition,
            headers=list(record.headers.items()),
        )
    producer.flush(timeout=30)
    producer.close()
    stores = [worker_store(kept, app, settings) for kept in KEPT]
    wait_for(
        lambda: [store.dump() for store in stores] == expected,
        90,
        "the workers' views to equal the runners'",
        workers,
    )
    sent = {p: sum(r.partition == p for r in records) for p in range(PARTITIONS)}
    wait_for(
        lambda: all(committed(kafka_broker.bootstrap, topic, group) == sent for group in groups),
        60,
        "both groups to have gone through every message",
        workers,
    )
    last = {f"{topic}/{r.partition}": int(r.headers["ce_position"]) for r in records}
    assert all(store.progress() == last for store in stores)
    assert [store.dump() for store in stores] == expected


def committed(bootstrap: str, topic: str, group: str) -> dict[int, int | None]:
    """The offset `group` committed on each partition of `topic`."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        consumer.close()
