"""Projection workers: the kept views (the read views, the dashboard) built from the Kafka
events topic, in faust.

Each worker of the consumer group takes some partitions of `backcheck.events.v1` and applies
what arrives with a `StreamProjection` (`infra/kafka/projection.py`), in batches, off the event
loop. A partition held at a gap, or stalled below what the relay delivered there, is read
again (`infra/kafka/recovery.py`). A message that is not the relay's goes to the events
dead-letter topic with the reason.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresDatastore

from infra.config import Settings
from infra.kafka.cloudevent import BadEventMessageError
from infra.kafka.projection import Record, StreamProjection, Target
from infra.kafka.recovery import GapRecovery, PartitionReader, StallWatch
from infra.kafka.streams import RAW, faust_app, off_the_loop, until_done
from infra.kafka.topics import EVENTS_TOPIC, dead_letter_topic
from infra.ops import logs, metrics
from infra.store.pool import Datastore
from infra.store.recorder import datastore_of
from infra.store.transcoder import typed_mapper
from infra.views.kept import KEPT, READ, Kept
from infra.views.postgres import PostgresViewStore
from infra.views.sqlite import SQLiteViewStore
from infra.views.store import ViewStore

logger = logging.getLogger(__name__)
T = TypeVar("T")


def worker_store(
    kept: Kept, app: Application[UUID], settings: Settings, version: int | None = None
) -> ViewStore:
    """Where the workers keep `kept` (infra/views/kept.py) as `version` of its projection
    (this code's, by default) makes it: on PostgreSQL its stream table beside the store
    (`backcheck_stream_dashboard_v3`; tracking in `<table>_tracking`); on the embedded store
    a SQLite file of its own next to it (`<store>.stream-dashboard-v3.sqlite`). Never the
    in-process runner's. Named by version, so a new version's workers start from an empty
    store, filled from each partition read again from its start, and never apply an event to
    rows another version made."""
    assert app.mapper is not None
    codec = kept.codec(typed_mapper(app.mapper).sealer)
    store: SQLiteViewStore | PostgresViewStore
    if settings.backend == "postgres":
        datastore = datastore_of(app.recorder)
        assert isinstance(datastore, PostgresDatastore)
        store = PostgresViewStore(datastore, codec, table=kept.stream_table(version))
    else:
        path = str(kept.stream_path(settings, version))
        store = SQLiteViewStore(Datastore(path, lock_timeout=10), codec)
    store.create_table()
    return store


def worker_store_made(kept: Kept, app: Application[UUID], settings: Settings) -> bool:
    """Whether a worker has made its store of `kept` here (this code's version): looked at
    without making it, for what only reports on it (`backcheck views status --stream`)."""
    if settings.backend != "postgres":
        return kept.stream_path(settings).exists()
    datastore = datastore_of(app.recorder)
    assert isinstance(datastore, PostgresDatastore)
    with datastore.transaction(commit=False) as curs:
        curs.execute(
            "SELECT count(*) AS found FROM information_schema.tables "
            "WHERE table_schema = %s AND table_name = %s",
            (datastore.schema, kept.stream_table()),
        )
        row = curs.fetchone()
    return bool(row and row["found"])


def worker_views(app: Application[UUID], settings: Settings) -> ViewStore:
    """The workers' read views (`worker_store` of the read views)."""
    return worker_store(READ, app, settings)


def worker_targets(app: Application[UUID], settings: Settings) -> list[Target]:
    """What a worker keeps: each of the kept views, in its workers' store of the version of
    the projection that applies to it."""
    targets = []
    for kept in KEPT:
        projection = kept.projection()
        store = worker_store(kept, app, settings, projection.version)
        targets.append(Target(store, projection))
    return targets


@dataclass(frozen=True)
class WorkerOptions:
    """How one projection worker joins the consumer group. An empty `bootstrap`, a zero
    `partitions` and no `datadir` are the settings' (`projection_worker` fills them in)."""

    bootstrap: str = ""
    topic: str = EVENTS_TOPIC
    group: str = "backcheck-views"
    partitions: int = 0
    batch: int = 500  # messages applied in one transaction, at most
    within: float = 0.05  # seconds a batch waits to fill
    session_timeout: float = 10.0
    heartbeat_interval: float = 3.0
    max_poll_interval: float = 300.0
    fetch_max_wait: float = 0.1  # seconds the broker may hold a fetch that finds nothing
    datadir: str | None = None


def _fetch_max_wait(seconds: float) -> None:
    """faust fixes its consumer's fetch wait at 1.5 s; a broker that answers an empty fetch
    only when that wait ends (Tansu does) then adds up to 1.5 s to the views' lag. Set it."""
    from faust.transport.drivers import aiokafka as driver

    create = driver.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(create, "backcheck_wait", None) == seconds:
        return

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = int(seconds * 1000)
        return consumer

    create_worker_consumer.backcheck_wait = seconds  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]


async def _until_done(work: Callable[[], T], what: str, first_delay: float = 1.0) -> T:
    """Runs `work` off the event loop until it succeeds. A failure here is the view store's
    (locked, unreachable), not a message's: the batch is applied again after a pause,
    with backoff and jitter up to 30 s, never passed over (applying is idempotent), and the
    worker stays up. A bug stops the worker (`infra/kafka/streams.py` `until_done`)."""
    return await until_done(
        off_the_loop(work), what, logger, first_delay, process="the projection worker"
    )


class _Partitions:
    """The partitions of the events topic this worker holds, its recovery of them and the
    watch for stalled ones, kept up to date by the group's assignments."""

    def __init__(
        self, projection: StreamProjection, recovery: GapRecovery, watch: StallWatch | None
    ) -> None:
        self.topic = projection.topic
        self.recovery = recovery
        self.watch = watch
        self.mine: set[int] = set()
        self.lag = 0  # the largest lag of a partition held, when last looked (`observe`)

    async def assigned(self, sender: Any, assigned: Any, **_: Any) -> None:
        mine = sorted(tp.partition for tp in assigned if tp.topic == self.topic)
        print(f"assigned partitions {mine} of {self.topic}", file=sys.stderr, flush=True)
        self.mine.update(mine)

    async def revoked(self, sender: Any, revoked: Any, **_: Any) -> None:
        gone = [tp.partition for tp in revoked if tp.topic == self.topic]
        self.mine.difference_update(gone)
        self.recovery.release(gone)
        if self.watch is not None:
            self.watch.forget(gone)

    async def read_stalled_again(self) -> None:
        if self.watch is None or not self.mine:
            return
        stalled = await _until_done(
            functools.partial(self.watch.stalled, sorted(self.mine)),
            "looking for stalled partitions",
        )
        for partition, reason in stalled.items():
            self.recovery.hold(partition, reason)
        await _until_done(self.observe, "measuring the views' positions")

    def observe(self) -> None:
        """The metrics of each partition held: its views' position, their lag behind what the
        relay delivered there."""
        if self.watch is None:
            return
        mine = sorted(self.mine)
        delivered = self.watch.delivered()
        held = {p: self.recovery.projection.applied(p) for p in mine}
        metrics.view_positions(self.topic, held, {p: delivered.get(p, 0) for p in mine})
        self.lag = max((delivered.get(p, 0) - held[p] for p in mine), default=0)

    async def read_held_again(self) -> None:
        if self.recovery.held:
            await _until_done(self.recovery.recover, "reading held partitions again")


def projection_app(
    projection: StreamProjection, options: WorkerOptions, watch: StallWatch | None = None
) -> Any:
    """The faust application of one worker: one agent over the events topic, applying what
    arrives in batches (up to `batch` messages or `within` seconds) off the event loop; a
    message that is not the relay's goes to the events dead-letter topic with the reason.
    With `watch`, a partition that stalls below what the relay delivered is read again."""
    _fetch_max_wait(options.fetch_max_wait)
    app = faust_app(
        options.group,
        options.bootstrap,
        options.partitions,
        options.datadir or f"{options.group}-data",
        session_timeout=options.session_timeout,
        heartbeat_interval=options.heartbeat_interval,
        max_poll_interval=options.max_poll_interval,
        rebalance_timeout=options.max_poll_interval,
        wait_empty=False,  # a batch being retried is read again after a restart, applied once
    )
    events = app.topic(projection.topic, **RAW)
    dead_topic = dead_letter_topic(projection.topic)
    dead = app.topic(dead_topic, **RAW)
    recovery = GapRecovery(projection, PartitionReader(options.bootstrap, projection.topic))
    partitions = _Partitions(projection, recovery, watch)
    app.on_partitions_assigned.connect(partitions.assigned)
    app.on_partitions_revoked.connect(partitions.revoked)
    app.timer(interval=2.0)(partitions.read_stalled_again)
    app.timer(interval=1.0)(partitions.read_held_again)
    app.backcheck_partitions = partitions  # for its health checks (`infra/kafka/daemon.py`)

    async def project(stream: Any) -> None:
        async for batch in stream.take_events(options.batch, within=options.within):
            records = [
                Record(
                    partition=e.message.partition,
                    offset=e.message.offset,
                    value=e.value,
                    headers={k: bytes(v) for k, v in (e.headers or {}).items()},
                )
                for e in batch
            ]
            bad, gaps = await _until_done(
                functools.partial(_apply_batch, projection, records),
                f"applying {len(records)} messages",
            )
            for partition, reason in gaps.items():
                recovery.hold(partition, reason)
            await partitions.read_held_again()
            for record, error in bad:
                ce_id = record.headers.get("ce_id", b"")[:200].decode(errors="replace")
                logger.error("dead-lettered: %s", error, extra=logs.ids(ce_id or None))
                now = datetime.now(UTC)
                headers = record.dead_letter_headers(
                    str(error), projection.topic, now, error.reason
                )
                await dead.send(value=record.value, headers=headers)
                metrics.dead_letter(dead_topic, error.reason)

    app.agent(events, name="project")(project)
    return app


def _apply_batch(
    projection: StreamProjection, records: list[Record]
) -> tuple[list[tuple[Record, BadEventMessageError]], dict[int, str]]:
    """Applies a batch; (the records that are not the relay's, with why; each gap)."""
    bad: list[tuple[Record, BadEventMessageError]] = []
    gaps: dict[int, str] = {}
    projection.apply(records, lambda record, error: bad.append((record, error)), gaps.__setitem__)
    return bad, gaps
