"""Projection workers: the read views built from the Kafka events topic, in faust.

Each worker of the consumer group takes some partitions of `backcheck.events.v1` and runs the
*same* projection as the in-process runner (`projections/read_views.py`) through the same view
stores (`infra/views/runner.py`), into a table of its own. A message is the stored event as the
relay published it (binary-mode CloudEvents: the state as value, the topic in `ce_type`, the log
position in `ce_position`); the worker turns it back into the domain event with the store's
mapper, so sealed personal values open only while the subject's keys exist.

A message whose `ce_prevposition` is beyond what its partition's views hold follows a gap
(a broker that lost messages, a consumer that resumed at an offset past the views). The
partition is held there and read again from its start outside the consumer group, in log
position order (`GapRecovery`), until the missing events are applied; the group's consumer
is never moved, so messages it already has in flight cannot undo the re-read. A partition whose
views stand still below what the relay delivered there is read again the same way
(`StallWatch`): the consumer may have dropped messages with none after them to show the gap.

Tracking is per partition and by log position, written in the same transaction as the rows:
a redelivered message (a restarted worker, a rebalance, the relay's resent tail) has a
position at or below what its partition has applied, and changes nothing. Positions rather
than offsets, because offsets start again if the broker loses a topic; log positions never do.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from infra.config import Settings
from infra.kafka.topics import (
    EVENTS_TOPIC,
    dead_letter_topic,
    ensure_topics,
    kafka_consumer,
    refuse_topic_auto_creation,
)
from infra.store.pool import Datastore
from infra.views.codec import Codec
from infra.views.postgres import PostgresViewStore
from infra.views.sqlite import SQLiteViewStore
from infra.views.store import ViewStore
from projections.read_views import ReadViews

logger = logging.getLogger(__name__)
T = TypeVar("T")


class BadEventMessageError(ValueError):
    """A message on the events topic that is not a stored event as the relay publishes it."""


@dataclass(frozen=True)
class Record:
    """What the worker needs of one Kafka message."""

    partition: int
    offset: int
    value: bytes
    headers: dict[str, bytes]


def _header(record: Record, name: str) -> bytes:
    found = record.headers.get(name)
    if found is None:
        raise BadEventMessageError(
            f"partition {record.partition} offset {record.offset}: no {name} header"
        )
    return found


class Decoded(NamedTuple):
    position: int
    previous: int | None  # the position before it on its partition; None: not said
    stored: StoredEvent


def stored_event_of(record: Record) -> Decoded:
    """The log position, the previous position on the partition and the stored event of a
    relay message."""
    ce_id = _header(record, "ce_id").decode()
    ce_position = _header(record, "ce_position")
    ce_type = _header(record, "ce_type").decode()
    ce_prev = record.headers.get("ce_prevposition")
    originator, _, version = ce_id.rpartition(":")
    try:
        position = int(ce_position)
        previous = int(ce_prev) if ce_prev is not None else None
        stored = StoredEvent(
            originator_id=UUID(originator),
            originator_version=int(version),
            topic=ce_type,
            state=record.value,
        )
    except ValueError as e:
        raise BadEventMessageError(
            f"partition {record.partition} offset {record.offset}: ce_id {ce_id!r} or "
            f"ce_position is not what the relay writes ({e})"
        ) from None
    return Decoded(position, previous, stored)


class GapError(RuntimeError):
    """Events are missing before a message: applying it would skip them."""


class StreamProjection:
    """Applies batches of relay messages to a view store, once each (idempotent)."""

    def __init__(
        self,
        app: Application[UUID],
        store: ViewStore,
        topic: str = EVENTS_TOPIC,
        projection: ReadViews | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.topic = topic
        self.projection = projection or ReadViews()
        self._applied: dict[int, int] = {}  # partition -> highest log position applied
        self._lock = threading.Lock()
        self.applied_events = 0
        self.partitions_applied: set[int] = set()

    def tracking_name(self, partition: int) -> str:
        return f"{self.topic}/{partition}"

    def applied(self, partition: int) -> int:
        if partition not in self._applied:
            found = self.store.max_tracking_id(self.tracking_name(partition))
            self._applied[partition] = found or 0
        return self._applied[partition]

    def apply(
        self,
        records: Iterable[Record],
        on_bad: Callable[[Record, str], None] | None = None,
        on_gap: Callable[[int, str], None] | None = None,
    ) -> int:
        """Applies what is new in `records`, every partition of the batch in one transaction
        (with each partition's tracking record); returns how many events that was.

        A record that is not a relay message goes to `on_bad` with the reason. A record whose
        previous position on the partition was not applied (messages lost or skipped before
        it) is not applied, nor is anything after it on that partition in this batch: the
        partition goes to `on_gap` with the reason, to be read again. Without the handlers,
        both are errors (a gap raised once the rest of the batch is applied)."""
        by_partition: dict[int, list[Record]] = {}
        for record in records:
            by_partition.setdefault(record.partition, []).append(record)
        with self._lock:
            decoded = {
                partition: self._decode(found, on_bad)
                for partition, found in sorted(by_partition.items())
            }
            done, gaps = self._apply_decoded(decoded)
        self.applied_events += done
        for partition, gap in gaps.items():
            if on_gap is None:
                raise GapError(gap)
            on_gap(partition, gap)
        return done

    @staticmethod
    def _decode(
        records: Sequence[Record], on_bad: Callable[[Record, str], None] | None
    ) -> list[tuple[Record, Decoded]]:
        decoded: list[tuple[Record, Decoded]] = []
        for record in records:
            try:
                decoded.append((record, stored_event_of(record)))
            except BadEventMessageError as e:
                if on_bad is None:
                    raise
                on_bad(record, str(e))
        return decoded

    def _apply_decoded(
        self, decoded: dict[int, list[tuple[Record, Decoded]]]
    ) -> tuple[int, dict[int, str]]:
        """(events applied, the gap of each partition that has one)."""
        for attempt in (1, 2):
            runs: list[tuple[list[tuple[int, Any]], Tracking]] = []
            gaps: dict[int, str] = {}
            reached: dict[int, int] = {}
            for partition, items in decoded.items():
                events, last, gap = self._new_events(partition, items)
                if events:
                    runs.append((events, Tracking(self.tracking_name(partition), last)))
                    reached[partition] = last
                if gap is not None:
                    gaps[partition] = gap
            if runs:
                try:
                    self.store.apply_tracked(runs, self.projection)
                except IntegrityError:
                    # another worker applied one of these partitions meanwhile (a rebalance in
                    # flight): what it applied is in the views; read how far it got, apply the rest
                    for partition in reached:
                        self._applied.pop(partition, None)
                    if attempt == 2:
                        raise
                    continue
                self._applied.update(reached)
                self.partitions_applied.update(reached)
            return sum(len(events) for events, _ in runs), gaps
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _new_events(
        self, partition: int, items: list[tuple[Record, Decoded]]
    ) -> tuple[list[tuple[int, Any]], int, str | None]:
        """The events of `items` past what the partition's views hold, up to a gap if there is
        one: (events, the last position among them, the gap)."""
        last = self.applied(partition)
        events: list[tuple[int, Any]] = []
        for record, (position, previous, stored) in items:
            if position <= last:
                continue  # delivered before: already in the views
            if previous is not None and previous > last:
                gap = (
                    f"partition {partition} offset {record.offset}: position {position} "
                    f"follows {previous}, but this partition's views stand at {last}"
                )
                return events, last, gap
            events.append((position, self.app.mapper.to_domain_event(stored)))
            last = position
        return events, last, None


def _position_or_none(record: Record) -> int | None:
    try:
        return int(record.headers["ce_position"])
    except (KeyError, ValueError):
        return None


class PartitionReader:
    """Reads one partition of the events topic from its start to its current end, assigned
    (no consumer group): how a worker reads a partition again without moving its own
    consumer."""

    def __init__(self, bootstrap: str, topic: str, timeout: float = 60.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.timeout = timeout
        self._consumer: Any = None

    def __call__(self, partition: int) -> list[Record]:
        from kafka import TopicPartition

        if self._consumer is None:
            self._consumer = kafka_consumer(
                bootstrap_servers=self.bootstrap.split(","), enable_auto_commit=False
            )
        consumer, tp = self._consumer, TopicPartition(self.topic, partition)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        found: list[Record] = []
        deadline = time.monotonic() + self.timeout
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"partition {partition}: read {len(found)} of {end} messages in "
                    f"{self.timeout:.0f} s"
                )
            for messages in consumer.poll(timeout_ms=500).values():
                found += [
                    Record(
                        partition=m.partition,
                        offset=m.offset,
                        value=m.value,
                        headers={k: bytes(v) for k, v in m.headers},
                    )
                    for m in messages
                ]
        return found

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


@dataclass
class _Held:
    reason: str
    standing: int  # the partition's views' position when it was last read again
    tries: int
    due: float  # monotonic time of the next read


class GapRecovery:
    """The partitions held at a gap, and reading them again until the gap is filled.

    A partition is read again from its start (`read`) and its messages applied in log
    position order, so the missing events come first wherever they sit on the partition (a
    message the broker took late is at its end). What stays missing is read again after
    `retry` seconds, doubling up to `max_retry`; at once when the partition's views moved on
    meanwhile (the missing message was delivered)."""

    def __init__(
        self,
        projection: StreamProjection,
        read: Callable[[int], list[Record]],
        retry: float = 1.0,
        max_retry: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.projection = projection
        self.read = read
        self.retry = retry
        self.max_retry = max_retry
        self.clock = clock
        self.held: dict[int, _Held] = {}
        self._lock = threading.Lock()

    def hold(self, partition: int, reason: str) -> None:
        """A gap before a message of `partition`: read it again at the next `recover`."""
        with self._lock:
            if partition in self.held:
                return
            logger.warning("gap: %s; reading partition %s again from its start", reason, partition)
            standing = self.projection.applied(partition)
            self.held[partition] = _Held(reason, standing, 0, self.clock())

    def release(self, partitions: Iterable[int]) -> None:
        """Partitions no longer this worker's (a rebalance): their gaps are another's now."""
        with self._lock:
            for partition in partitions:
                self.held.pop(partition, None)

    def recover(self) -> int:
        """Reads again each held partition that is due; returns how many events that applied."""
        with self._lock:
            now = self.clock()
            due = [
                p
                for p, held in self.held.items()
                if held.due <= now or self.projection.applied(p) != held.standing
            ]
            return sum(self._read_again(p) for p in due)

    def _read_again(self, partition: int) -> int:
        held = self.held[partition]
        try:
            records = self.read(partition)
        except Exception as e:  # a broker away: try again later
            logger.error("partition %s could not be read again: %s", partition, e)
            self._later(partition, held)
            return 0
        records = [r for r in records if r.partition == partition]
        records.sort(key=lambda r: (_position_or_none(r) or 0, r.offset))
        gaps: dict[int, str] = {}
        applied = self.projection.apply(records, lambda record, reason: None, gaps.__setitem__)
        if partition not in gaps:
            logger.warning(
                "partition %s: gap filled; read %s messages again, applied %s events",
                partition,
                len(records),
                applied,
            )
            del self.held[partition]
            return applied
        held.reason = gaps[partition]
        self._later(partition, held)
        logger.error(
            "partition %s still has a gap after reading it again (%s); trying again in %.0f s",
            partition,
            held.reason,
            held.due - self.clock(),
        )
        return applied

    def _later(self, partition: int, held: _Held) -> None:
        held.tries += 1
        held.standing = self.projection.applied(partition)
        held.due = self.clock() + min(self.max_retry, self.retry * 2 ** (held.tries - 1))


class StallWatch:
    """This worker's partitions whose views stand still below what the relay delivered there.

    A gap shows when a message arrives after lost ones (`GapRecovery`). But a consumer can
    fetch messages and drop them unseen: faust drops the rest of a fetch when a rebalance starts
    during it and seeks back to the committed offset, which a broker that lost the topic no
    longer has. With no later message on that partition, nothing shows a gap. The relay records,
    per partition, the last position the broker acknowledged (`delivered`); a partition whose
    views stay below it, without moving, for `stall` seconds is named, to be read again."""

    def __init__(
        self,
        projection: StreamProjection,
        delivered: Callable[[], dict[int, int]],
        stall: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.projection = projection
        self.delivered = delivered
        self.stall = stall
        self.clock = clock
        self._still: dict[int, tuple[int, float]] = {}  # partition -> (views' position, since)

    def stalled(self, partitions: Iterable[int]) -> dict[int, str]:
        """The partitions among `partitions` stalled below what was delivered, with why."""
        delivered, now = self.delivered(), self.clock()
        found: dict[int, str] = {}
        for partition in partitions:
            standing, target = self.projection.applied(partition), delivered.get(partition, 0)
            was = self._still.get(partition)
            if standing >= target:
                self._still.pop(partition, None)
            elif was is None or was[0] != standing:
                self._still[partition] = (standing, now)
            elif now - was[1] >= self.stall:
                found[partition] = (
                    f"partition {partition}: its views stand at {standing} for "
                    f"{now - was[1]:.0f} s, below {target}, which the relay delivered there"
                )
                self._still[partition] = (standing, now)  # named again after another stall
        return found

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._still.pop(partition, None)


STREAM_VIEWS_TABLE = "backcheck_stream_views"


def worker_views(app: Application[UUID], settings: Settings) -> ViewStore:
    """Where the workers write their views: on PostgreSQL the table `backcheck_stream_views`
    (tracking in `backcheck_stream_views_tracking`) beside the store; on the embedded store a
    SQLite file of their own next to it. Never the in-process runner's views."""
    assert app.mapper is not None
    codec = Codec(app.mapper.sealer)  # type: ignore[attr-defined]
    store: SQLiteViewStore | PostgresViewStore
    if settings.backend == "postgres":
        datastore = app.recorder.datastore  # type: ignore[attr-defined]
        store = PostgresViewStore(datastore, codec, table=STREAM_VIEWS_TABLE)
    else:
        store = SQLiteViewStore(Datastore(str(settings.stream_views_path), lock_timeout=10), codec)
    store.create_table()
    return store


@dataclass(frozen=True)
class WorkerOptions:
    """How one projection worker joins the consumer group."""

    bootstrap: str
    group: str = "backcheck-views"
    partitions: int = 6
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
    driver.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer


def faust_app(
    projection: StreamProjection, options: WorkerOptions, watch: StallWatch | None = None
) -> Any:
    """The faust application of one worker: one agent over the events topic, applying what
    arrives in batches (up to `batch` messages or `within` seconds) off the event loop; a
    message that is not the relay's goes to the events dead-letter topic with the reason.
    With `watch`, a partition that stalls below what the relay delivered is read again."""
    import faust

    _fetch_max_wait(options.fetch_max_wait)
    refuse_topic_auto_creation()
    app = faust.App(
        options.group,
        broker=f"kafka://{options.bootstrap}",
        store="memory://",
        datadir=options.datadir or f"{options.group}-data",
        web_enabled=False,
        topic_partitions=options.partitions,
        topic_allow_declare=False,  # created with their partitions by `ensure_topics`
        topic_disable_leader=True,  # no leader election here, so no `{group}-__assignor-__leader`
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=options.session_timeout,
        broker_heartbeat_interval=options.heartbeat_interval,
        broker_max_poll_interval=options.max_poll_interval,
        broker_rebalance_timeout=options.max_poll_interval,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw"}
    events = app.topic(projection.topic, **raw, value_serializer="raw")
    dead = app.topic(dead_letter_topic(projection.topic), **raw, value_serializer="raw")

    @app.on_partitions_assigned.connect  # type: ignore[misc]
    async def assigned(sender: Any, assigned: Any, **_: Any) -> None:
        mine = sorted(tp.partition for tp in assigned if tp.topic == projection.topic)
        print(f"assigned partitions {mine} of {projection.topic}", file=sys.stderr, flush=True)

    recovery = GapRecovery(projection, PartitionReader(options.bootstrap, projection.topic))
    mine: set[int] = set()

    @app.on_partitions_assigned.connect  # type: ignore[misc]
    async def track_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        mine.update(tp.partition for tp in assigned if tp.topic == projection.topic)

    @app.on_partitions_revoked.connect  # type: ignore[misc]
    async def revoked(sender: Any, revoked: Any, **_: Any) -> None:
        gone = [tp.partition for tp in revoked if tp.topic == projection.topic]
        mine.difference_update(gone)
        recovery.release(gone)
        if watch is not None:
            watch.forget(gone)

    @app.timer(interval=2.0)  # type: ignore[misc]
    async def read_stalled_partitions_again() -> None:
        if watch is None or not mine:
            return
        stalled = await _until_done(
            functools.partial(watch.stalled, sorted(mine)), "looking for stalled partitions"
        )
        for partition, reason in stalled.items():
            recovery.hold(partition, reason)

    @app.timer(interval=1.0)  # type: ignore[misc]
    async def read_held_partitions_again() -> None:
        if recovery.held:
            await _until_done(recovery.recover, "reading held partitions again")

    @app.agent(events)  # type: ignore[misc]
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
            if recovery.held:
                await _until_done(recovery.recover, "reading held partitions again")
            for record, reason in bad:
                logger.error("dead-lettered: %s", reason)
                await dead.send(
                    value=record.value,
                    headers=[
                        *record.headers.items(),
                        ("dlq_reason", b"malformed"),
                        ("dlq_error", reason.encode()),
                        ("dlq_topic", projection.topic.encode()),
                        ("dlq_partition", str(record.partition).encode()),
                        ("dlq_offset", str(record.offset).encode()),
                    ],
                )

    return app


def _apply_batch(
    projection: StreamProjection, records: list[Record]
) -> tuple[list[tuple[Record, str]], dict[int, str]]:
    """Applies a batch; (the records that are not the relay's, with why; each gap)."""
    bad: list[tuple[Record, str]] = []
    gaps: dict[int, str] = {}
    projection.apply(records, _collect(bad), gaps.__setitem__)
    return bad, gaps


async def _until_done(work: Callable[[], T], what: str, first_delay: float = 1.0) -> T:
    """Runs `work` off the event loop until it succeeds. A failure here is the view store's
    (locked, unreachable), not a message's: the batch is applied again after a pause,
    doubling up to 30 s, never passed over (applying is idempotent), and the worker stays up."""
    delay = first_delay
    while True:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, work)
        except Exception:
            logger.exception("%s failed; trying again in %.0f s", what, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def _collect(into: list[tuple[Record, str]]) -> Callable[[Record, str], None]:
    return lambda record, reason: into.append((record, reason))


def run_worker(
    projection: StreamProjection, options: WorkerOptions, watch: StallWatch | None = None
) -> int:
    """Runs one worker until SIGINT/SIGTERM; returns its exit code."""
    from faust.worker import Worker

    topic = projection.topic
    ensure_topics(options.bootstrap, options.partitions, topic, dead_letter_topic(topic))
    if options.datadir:
        Path(options.datadir).mkdir(parents=True, exist_ok=True)
    worker = Worker(
        faust_app(projection, options, watch),
        loglevel="warning",
        quiet=True,
        redirect_stdouts=False,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as stopped:
        return int(stopped.code or 0)
    return 0
