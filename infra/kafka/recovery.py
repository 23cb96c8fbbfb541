"""Reading a partition again: the worker's recovery from messages it never applied.

A message whose `ce_prevposition` is beyond what its partition's views hold follows a gap
(a broker that lost messages, a consumer that resumed at an offset past the views). The
partition is held there and read again from its start outside the consumer group, in log
position order (`GapRecovery` with a `PartitionReader`), until the missing events are applied;
the group's consumer is never moved, so messages it already has in flight cannot undo the
re-read. A partition whose views stand still below what the relay delivered there is read again
the same way (`StallWatch`): the consumer may have dropped messages with none after them to
show the gap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from infra.kafka.cloudevent import position_or_none
from infra.kafka.projection import Record, StreamProjection
from infra.kafka.topics import kafka_consumer

logger = logging.getLogger(__name__)


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
        records.sort(key=lambda r: (position_or_none(r.headers) or 0, r.offset))
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
