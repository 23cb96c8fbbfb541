"""The projection as the Kafka workers run it, fed relay-shaped messages without a broker:
the same views as the in-process runner, whatever the interleaving of partitions, and a
message delivered twice changes nothing; a partition held at a gap is read again until the
gap is filled."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import OperationalError
from eventsourcing.sqlite import SQLiteDatastore

from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from infra.kafka.cloudevent import BadEventMessageError, outgoing_event
from infra.kafka.projection import Record, StreamProjection, Target
from infra.kafka.recovery import GapRecovery
from infra.kafka.worker import _until_done, worker_store, worker_targets
from infra.views.codec import Codec
from infra.views.kept import DASHBOARD, KEPT, READ
from infra.views.runner import ViewRunner
from infra.views.sqlite import SQLiteViewStore
from infra.views.store import Dumped
from projections.dashboard import CASE_VIEW, DASHBOARD_VIEW, Dashboard
from projections.read_views import ReadViews
from projections.rows import Rows
from services.application import Backcheck
from tests.conftest import PG_URL, FakeClock

PARTITIONS = 3


@pytest.fixture
def demo_app(tmp_path: Path, clock: FakeClock) -> Iterator[Backcheck]:
    app = build_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path),
        clock=clock,
    )
    tell_story(app)
    yield app
    app.close()


def apply_at_once(workers: list[StreamProjection], records: list[Record]) -> list[BaseException]:
    """Partitions 0 and 2 applied by the first worker while the second applies 1, in
    threads, a record per transaction (as many chances to collide); what either raised."""
    errors: list[BaseException] = []

    def work(worker: StreamProjection, partitions: set[int]) -> None:
        try:
            for record in (r for r in records if r.partition in partitions):
                worker.apply([record])
        except BaseException as e:
            errors.append(e)

    threads = [
        threading.Thread(target=work, args=(workers[0], {0, 2})),
        threading.Thread(target=work, args=(workers[1], {1})),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def messages(app: Backcheck) -> list[Record]:
    """The log as the relay publishes it: keyed by candidate (an event about no candidate, a
    portal link's principal, by its own id: the relay's key), so one candidate's events share
    a partition and keep their order; offsets count per partition. Keys go to the
    partitions in the order they first appear (the relay hashes the key), so the demo's two
    candidates are always on different partitions: a hash puts them together one run in three."""
    offsets = [0] * PARTITIONS
    previous = [0] * PARTITIONS
    partition_of: dict[str, int] = {}
    found = []
    for n in app.recorder.select_notifications(start=1, limit=10_000):
        key = outgoing_event(n.id, str(n.originator_id), n.originator_version, n.topic, n.state).key
        partition = partition_of.setdefault(key.decode(), len(partition_of) % PARTITIONS)
        found.append(
            Record(
                partition=partition,
                offset=offsets[partition],
                value=n.state,
                headers={
                    "ce_id": f"{n.originator_id}:{n.originator_version}".encode(),
                    "ce_type": n.topic.encode(),
                    "ce_position": str(n.id).encode(),
                    "ce_prevposition": str(previous[partition]).encode(),
                },
            )
        )
        offsets[partition] += 1
        previous[partition] = n.id
    return found


def stream_store(app: Backcheck, path: Path) -> SQLiteViewStore:
    assert app.mapper is not None
    store = SQLiteViewStore(SQLiteDatastore(str(path)), Codec(app.mapper.sealer))  # type: ignore[attr-defined]
    store.create_table()
    return store


def interleaved(records: list[Record], seed: int) -> list[list[Record]]:
    """Per-partition order kept, partitions interleaved at random, cut into random batches."""
    rng = random.Random(seed)
    queues = {p: [r for r in records if r.partition == p] for p in range(PARTITIONS)}
    merged: list[Record] = []
    while any(queues.values()):
        partition = rng.choice([p for p, q in queues.items() if q])
        merged.append(queues[partition].pop(0))
    batches, i = [], 0
    while i < len(merged):
        size = rng.randint(1, 9)
        batches.append(merged[i : i + size])
        i += size
    return batches


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_workers_projection_equals_the_in_process_views_row_for_row(
    demo_app: Backcheck, tmp_path: Path, seed: int
) -> None:
    assert isinstance(demo_app.views, ViewRunner)
    demo_app.views.catch_up()
    records = messages(demo_app)
    stream = StreamProjection(
        demo_app, [Target(stream_store(demo_app, tmp_path / f"s{seed}.sqlite"), ReadViews())]
    )

    applied = sum(stream.apply(batch) for batch in interleaved(records, seed))

    assert applied == len(records)
    assert stream.store.dump() == demo_app.views.store.dump()


def kept_targets(app: Backcheck, folder: Path) -> list[Target]:
    """Each of the kept views in a store of its own, as a worker keeps them (worker_targets)."""
    assert app.mapper is not None
    sealer = app.mapper.sealer  # type: ignore[attr-defined]
    targets = []
    for kept in KEPT:
        store = SQLiteViewStore(
            SQLiteDatastore(str(folder / f"{kept.name}.sqlite")), kept.codec(sealer)
        )
        store.create_table()
        targets.append(Target(store, kept.projection()))
    return targets


def in_process(app: Backcheck) -> list[list[Dumped]]:
    """The rows of each of the kept views as the application's runners keep them."""
    runners = [model for model in app.kept_views if isinstance(model, ViewRunner)]
    assert [runner.kept for runner in runners] == list(KEPT)
    for runner in runners:
        runner.catch_up()
    return [runner.store.dump() for runner in runners]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_workers_dashboard_equals_the_in_process_one_whatever_the_interleaving(
    demo_app: Backcheck, tmp_path: Path, seed: int
) -> None:
    """The dashboard's counts are changed by both candidates' partitions, each applied at its
    own pace: the rows come out as the runner's, which applied the log in order."""
    expected = in_process(demo_app)
    records = messages(demo_app)
    stream = StreamProjection(demo_app, kept_targets(demo_app, tmp_path))

    applied = sum(stream.apply(batch) for batch in interleaved(records, seed))

    assert applied == len(records)  # each event counted once, though both targets took it
    assert {r.partition for r in records} >= {0, 1}
    assert [target.store.dump() for target in stream.targets] == expected
    dashboard = {view for view, *_ in expected[1]}
    assert dashboard == {DASHBOARD_VIEW, CASE_VIEW}


def test_a_dashboard_a_worker_lacks_is_filled_from_its_partitions_read_again(
    demo_app: Backcheck, tmp_path: Path
) -> None:
    """Workers that kept the read views alone, restarted keeping the dashboard too: its store
    stands at nothing, so the next message of each partition shows a gap there (not in the read
    views, which take it); read again from its start, the partition fills the dashboard."""
    expected = in_process(demo_app)
    records = messages(demo_app)
    read, dashboard = kept_targets(demo_app, tmp_path)
    # restarted where each partition still has a message to come (or no gap would show)
    last = {r.partition: i for i, r in enumerate(records)}
    half = min(last.values())
    StreamProjection(demo_app, [read]).apply(records[:half])
    stream = StreamProjection(demo_app, [Target(read.store, ReadViews()), dashboard])
    broker = Partition(records)
    recovery = GapRecovery(stream, broker, clock=Clock())
    gaps: dict[int, str] = {}

    stream.apply(records[half:], on_gap=gaps.__setitem__)
    assert read.store.dump() == expected[0]  # the read views took the rest at once
    held = {r.partition for r in records[:half]}
    assert held
    assert set(gaps) == held
    # nothing of those partitions in the dashboard yet (one first seen in the rest has all)
    assert not {stream.tracking_name(p) for p in held} & set(dashboard.store.progress())
    for partition, reason in gaps.items():
        recovery.hold(partition, reason)
    recovery.recover()

    assert recovery.held == {}
    assert [read.store.dump(), dashboard.store.dump()] == expected


class DashboardByVersion2(Dashboard):
    """The dashboard as version 2 kept a candidate's state row: with no stage in it, and
    none moved (version 3 moves a candidate's count by their stage)."""

    version = 2

    def process(self, event: Any, rows: Rows, position: int) -> None:
        super().process(event, rows, position)
        subject = getattr(event, "candidate_id", None)
        if isinstance(subject, UUID) and (doc := rows.get(CASE_VIEW, f"candidate:{subject}")):
            doc.pop("stage", None)
            rows.put(CASE_VIEW, f"candidate:{subject}", subject, doc)

    def _stage(self, event: Any, rows: Rows) -> None:
        pass


def test_workers_of_a_new_dashboard_version_fill_a_store_of_their_own_from_the_start(
    settings: Settings, clock: FakeClock
) -> None:
    """Workers kept the dashboard by version 2 through part of the log, upgraded then to this
    version. They never apply an event to the rows version 2 made (this version fails on
    them): they keep it in this version's store, empty at first, so each partition shows a
    gap there and is read again from its start; it ends as the in-process dashboard, and
    version 2's store stays as it was. The read views, their version unchanged, go on."""
    app = build_app(settings, clock=clock)
    try:
        tell_story(app)
        expected = in_process(app)
        records = messages(app)
        last = {r.partition: i for i, r in enumerate(records)}
        half = min(last.values())  # each partition still has a message to come
        # given the workers' stores as version 2's workers left them
        read = worker_store(READ, app, settings)
        old = worker_store(DASHBOARD, app, settings, DashboardByVersion2.version)
        by_version_2 = [Target(read, ReadViews()), Target(old, DashboardByVersion2())]
        StreamProjection(app, by_version_2).apply(records[:half])
        old_rows, old_progress, read_progress = old.dump(), old.progress(), read.progress()
        assert old_rows
        assert old_progress == read_progress != {}
        with pytest.raises(KeyError, match="stage"):  # what this version makes of its rows
            StreamProjection(app, [Target(old, Dashboard())]).apply(records[half:])

        # when this version's workers start
        stream = StreamProjection(app, worker_targets(app, settings))
        current, dashboard = (target.store for target in stream.targets)
        assert (dashboard.dump(), dashboard.progress()) == ([], {})
        assert current.progress() == read_progress
        broker = Partition(records)
        recovery = GapRecovery(stream, broker, clock=Clock())
        gaps: dict[int, str] = {}
        stream.apply(records[half:], on_gap=gaps.__setitem__)
        for partition, reason in gaps.items():
            recovery.hold(partition, reason)
        recovery.recover()

        # then each partition read before was read again from its start, into the new store
        held = {r.partition for r in records[:half]}
        assert held
        assert set(gaps) == held
        assert broker.reads == len(held)
        assert recovery.held == {}
        assert [current.dump(), dashboard.dump()] == expected
        assert old.dump() == old_rows
        assert old.progress() == old_progress
    finally:
        app.close()


def test_a_message_delivered_again_changes_nothing(demo_app: Backcheck, tmp_path: Path) -> None:
    records = messages(demo_app)
    stream = StreamProjection(
        demo_app, [Target(stream_store(demo_app, tmp_path / "s.sqlite"), ReadViews())]
    )
    stream.apply(records)
    before = stream.store.dump()
    # a new worker on the same views
    restarted = StreamProjection(demo_app, [Target(stream.store, ReadViews())])

    assert restarted.apply(records[len(records) // 2 :]) == 0
    assert restarted.apply(records) == 0
    assert stream.store.dump() == before


def test_a_message_without_the_relays_headers_is_refused_with_the_reason(
    demo_app: Backcheck, tmp_path: Path
) -> None:
    stream = StreamProjection(
        demo_app, [Target(stream_store(demo_app, tmp_path / "s.sqlite"), ReadViews())]
    )
    bad = Record(partition=1, offset=7, value=b"{}", headers={"ce_id": b"x:1"})

    with pytest.raises(BadEventMessageError, match="partition 1 offset 7: no ce_position"):
        stream.apply([bad])
    assert stream.store.dump() == []


def test_a_message_after_lost_ones_is_held_back_until_they_arrive(
    demo_app: Backcheck, tmp_path: Path
) -> None:
    assert isinstance(demo_app.views, ViewRunner)
    demo_app.views.catch_up()
    records = messages(demo_app)
    first = [r for r in records if r.partition == records[0].partition]
    lost = first[3]  # a broker lost it, or a consumer skipped it
    stream = StreamProjection(
        demo_app, [Target(stream_store(demo_app, tmp_path / "s.sqlite"), ReadViews())]
    )
    gaps: list[tuple[int, str]] = []

    applied = stream.apply([r for r in records if r is not lost], on_gap=lambda *g: gaps.append(g))

    position = int(lost.headers["ce_position"])
    before = int(first[2].headers["ce_position"])
    assert gaps == [
        (
            lost.partition,
            f"partition {lost.partition} offset {first[4].offset}: position "
            f"{int(first[4].headers['ce_position'])} follows {position}, but this "
            f"partition's views stand at {before}",
        )
    ]
    assert stream.applied(lost.partition) == before  # nothing past the gap
    assert applied == len(records) - (len(first) - 3)

    # the partition read again from its start, the lost message with it this time
    stream.apply(first, on_gap=lambda *g: gaps.append(g))
    assert len(gaps) == 1
    assert stream.store.dump() == demo_app.views.store.dump()


class Partition:
    """What a broker holds of one partition, for `GapRecovery` to read again."""

    def __init__(self, records: list[Record]) -> None:
        self.records = list(records)
        self.reads = 0
        self.away = False

    def __call__(self, partition: int) -> list[Record]:
        self.reads += 1
        if self.away:
            raise ConnectionError("no broker")
        return [r for r in self.records if r.partition == partition]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_held_partition_read_again_applies_a_late_message_where_it_belongs(
    demo_app: Backcheck, tmp_path: Path
) -> None:
    """The broker took the lost message late: it sits at the partition's end, after the ones
    it comes before. Read again in log position order, the partition's views are complete."""
    assert isinstance(demo_app.views, ViewRunner)
    demo_app.views.catch_up()
    records = messages(demo_app)
    first = [r for r in records if r.partition == records[0].partition]
    lost = first[3]
    on_broker = [r for r in records if r is not lost]
    stream = StreamProjection(
        demo_app, [Target(stream_store(demo_app, tmp_path / "s.sqlite"), ReadViews())]
    )
    clock = Clock()
    broker = Partition(on_broker)
    recovery = GapRecovery(stream, broker, retry=1.0, max_retry=4.0, clock=clock)
    gaps: dict[int, str] = {}
    stream.apply(on_broker, on_gap=gaps.__setitem__)
    for partition, reason in gaps.items():
        recovery.hold(partition, reason)
    held_at = int(first[2].headers["ce_position"])

    # not on the broker yet: still held, read again after 1, 2, 4, 4 s
    assert recovery.recover() == 0
    assert set(recovery.held) == {lost.partition}
    assert stream.applied(lost.partition) == held_at
    waits = []
    for _ in range(4):
        due = recovery.held[lost.partition].due
        waits.append(due - clock.now)
        clock.now = due - 0.01
        assert recovery.recover() == 0  # not due yet: not read
        clock.now = due
        assert recovery.recover() == 0
    assert waits == [1.0, 2.0, 4.0, 4.0]
    assert broker.reads == 5

    broker.away = True  # a broker outage: held, tried again later
    clock.now = recovery.held[lost.partition].due
    assert recovery.recover() == 0
    assert lost.partition in recovery.held

    broker.away = False
    broker.records.append(Record(lost.partition, first[-1].offset + 1, lost.value, lost.headers))
    clock.now = recovery.held[lost.partition].due
    applied = recovery.recover()

    assert applied == len(first) - 3
    assert recovery.held == {}
    assert stream.store.dump() == demo_app.views.store.dump()


def test_a_held_partition_is_read_again_at_once_when_its_views_move_on(
    demo_app: Backcheck, tmp_path: Path
) -> None:
    """The missing message came through the group's consumer: the partition's views moved, so
    what was held back after it is read again without waiting out the retry."""
    assert isinstance(demo_app.views, ViewRunner)
    demo_app.views.catch_up()
    records = messages(demo_app)
    first = [r for r in records if r.partition == records[0].partition]
    lost = first[3]
    stream = StreamProjection(
        demo_app, [Target(stream_store(demo_app, tmp_path / "s.sqlite"), ReadViews())]
    )
    clock = Clock()
    broker = Partition([r for r in records if r is not lost])
    recovery = GapRecovery(stream, broker, retry=30.0, clock=clock)
    gaps: dict[int, str] = {}
    stream.apply(broker.records, on_gap=gaps.__setitem__)
    recovery.hold(lost.partition, gaps[lost.partition])
    assert recovery.recover() == 0
    assert recovery.recover() == 0  # due only in 30 s
    assert broker.reads == 1

    assert stream.apply([lost]) == 1  # delivered late by the group's consumer
    broker.records.append(lost)
    assert recovery.recover() == len(first) - 4
    assert broker.reads == 2
    assert recovery.held == {}
    assert stream.store.dump() == demo_app.views.store.dump()


def test_a_partition_taken_by_another_worker_is_no_longer_held_here(
    demo_app: Backcheck, tmp_path: Path
) -> None:
    stream = StreamProjection(
        demo_app, [Target(stream_store(demo_app, tmp_path / "s.sqlite"), ReadViews())]
    )
    broker = Partition(messages(demo_app))
    recovery = GapRecovery(stream, broker, clock=Clock())
    recovery.hold(1, "a gap")
    recovery.hold(2, "a gap")
    recovery.release([1])
    assert set(recovery.held) == {2}


def test_two_workers_writing_one_views_file_wait_for_each_other(
    demo_app: Backcheck, tmp_path: Path
) -> None:
    """Workers on the embedded store share one SQLite file, each through its own connections
    (as separate processes do). A batch reads rows before it writes them; another worker's
    commit in between must make it wait, not fail with "database is locked"."""
    assert isinstance(demo_app.views, ViewRunner)
    demo_app.views.catch_up()
    records = messages(demo_app)
    path = tmp_path / "shared.sqlite"
    workers = [
        StreamProjection(demo_app, [Target(stream_store(demo_app, path), ReadViews())])
        for _ in range(2)
    ]
    assert apply_at_once(workers, records) == []
    assert workers[0].store.dump() == demo_app.views.store.dump()


def test_a_batch_the_view_store_fails_is_applied_again_not_passed_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise OperationalError("database is locked")
        return "applied"

    assert asyncio.run(_until_done(flaky, "applying 5 messages", first_delay=0.01)) == "applied"
    assert len(attempts) == 3
    failed = "applying 5 messages failed (OperationalError: database is locked); trying again"
    assert caplog.text.count(failed) == 2
    assert "Traceback" not in caplog.text  # one line each


@pytest.mark.postgres
def test_two_workers_on_postgresql_lose_no_count_of_the_dashboard(
    pg_schema: str, clock: FakeClock, tmp_path: Path
) -> None:
    """On PostgreSQL workers lock only the partitions they apply, so two apply at once. The
    dashboard's counts are read, changed and written back by both candidates' partitions: it
    is applied one writer at a time (`shared_rows`), or a count would be lost."""
    settings = Settings(database_url=f"{PG_URL}?schema={pg_schema}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    try:
        tell_story(app)
        tell_story(app)  # four candidates: more runs of either partition to collide
        expected = in_process(app)
        records = messages(app)
        workers = [StreamProjection(app, worker_targets(app, settings)) for _ in range(2)]
        assert apply_at_once(workers, records) == []
        assert [target.store.dump() for target in workers[0].targets] == expected
    finally:
        app.close()
