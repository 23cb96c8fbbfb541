"""The relay: every stored event, in log order, to the Kafka events topic.

It follows the notification log from the position it last recorded, publishes each event with
kafka-python's idempotent producer (acks=all) and records the position of a page of events only
once the broker has acknowledged all of it and every page before it (with the last position
sent to each partition: `RelayState`, beside the store; pages acknowledged together in one
save). Pages are sent while earlier ones await their acknowledgement (`publish`: up to four
unacknowledged), so reading the store overlaps the broker's round trips. A crash or an outage
therefore loses nothing; on restart the relay sends again at most the pages that were in flight,
and the projection workers absorb those duplicates (they track positions).

A message is a stored event as a CloudEvent (`cloudevent.py`), keyed by candidate, personal values
sealed, under its type's public name and in its current version (`event_types.py`: upcast).

The relay picks each message's partition itself (CRC-32 of the key). If it finds the topic
empty although it had published to it, the broker has lost it (deleted, or a broker without
storage): the relay publishes the log again from the start, since the store, not Kafka, is the
source of truth.

An event larger than the broker takes as one message (`infra/kafka/message_limit.py`) goes to
the events dead-letter topic instead, with the reason, and the relay goes on.

Only one relay may publish a store's events to a topic: it holds a lock for as long as it runs
(a PostgreSQL advisory lock, or a lock file next to the SQLite store).
"""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from infra.config import Settings
from infra.kafka.cloudevent import (
    SOURCE,
    DeadLetterReason,
    OutgoingEvent,
    event_headers,
    event_key,
    unpublishable_event,
)
from infra.kafka.event_types import published
from infra.kafka.message_limit import MessageLimit
from infra.kafka.relay_pages import LOOK_EVERY, Page, producer_settings
from infra.kafka.relay_store import RelayLock, log_rows
from infra.kafka.relay_store import RelayState as RelayState  # where the CLI and tests find it
from infra.kafka.topics import (
    close_producer,
    dead_letter_topic,
    ensure_topics,
    kafka_producer,
    topic_is_empty,
    unanswered,
)
from infra.ops import metrics


class RelayBusyError(RuntimeError):
    """Another relay already publishes this store's events to the topic."""


class PartitionCountError(RuntimeError):
    """The topic has another number of partitions than configured: nothing is published,
    since a candidate's events would go to partitions the workers may not be reading."""


class RelayFailedError(RuntimeError):
    """The broker did not acknowledge a page of events; its position was not recorded."""


STOP_WAIT = 2.0  # seconds the relay, told to stop, still waits for pages in flight


class _StopRequestedError(Exception):
    """The relay was told to stop, and the broker has not answered since."""


class Relay:
    """Publishes the log to `topic`, a page at a time, recording each acknowledged page."""

    def __init__(
        self,
        app: Application[UUID],
        settings: Settings,
        topic: str,
        bootstrap: str,
        partitions: int,
        page: int = 2000,
        source: str = SOURCE,
        delivery_timeout: float = 30.0,
        max_message_bytes: int | None = None,
    ) -> None:
        """`max_message_bytes`: the largest message the broker takes; None: what it reports
        (Kafka's default if it does not)."""
        self.app = app
        self.topic = topic
        self.dead_topic = dead_letter_topic(topic)
        self.limit = MessageLimit(
            bootstrap, topic, settings.max_event_bytes, max_message_bytes, self._notice
        )
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.page = page
        self.source = source
        self.delivery_timeout = delivery_timeout
        lock = RelayLock.acquire(settings, topic)
        if lock is None:
            raise RelayBusyError(
                f"another relay already publishes the events of {settings.describe()} to {topic}"
            )
        self.lock = lock
        try:
            self.state = RelayState(app, settings, f"relay:{topic}")
            self._position, self._last = self.state.load()
            self._recorded = self._position
            self._sent_through, self._sent_last = self._position, dict(self._last)
        except Exception:
            self.lock.release()
            raise
        self._partition_of: dict[bytes, int] = {}
        self._partitions = 0
        self.stop = threading.Event()
        self._stopping_since: float | None = None
        self.on_notice: Callable[[str], None] = lambda text: None
        self.sent = 0
        self.dead_lettered = 0
        self._producer: Any = None
        self._head, self._observed = self._position, 0.0

    def _notice(self, text: str) -> None:
        self.on_notice(text)

    @property
    def position(self) -> int:
        """The log position up to which the broker has acknowledged every event."""
        return self._position

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def connect(self) -> Any:
        """The producer, connected: the topic made if missing, lost messages noticed."""
        return self._connect()

    def _connect(self) -> Any:
        from kafka.errors import (
            AuthorizationError,
            KafkaTimeoutError,
            SaslAuthenticationFailedError,
        )

        if self._producer is None:
            ensure_topics(self.bootstrap, self.partitions, self.topic, self.dead_topic)
            limit = self.limit.bytes()
            try:
                producer = kafka_producer(
                    **producer_settings(self.bootstrap, self.delivery_timeout, limit)
                )
                count = len(producer.partitions_for(self.topic))
                empty = topic_is_empty(self.bootstrap, self.topic)
            except (KafkaTimeoutError, SaslAuthenticationFailedError, AuthorizationError) as e:
                raise unanswered(self.bootstrap, e) from None
            if count != self.partitions:
                close_producer(producer, timeout=1)
                raise PartitionCountError(
                    f"{self.topic} has {count} partitions, not the {self.partitions} configured "
                    "(BACKCHECK_KAFKA_PARTITIONS, --partitions); the workers read the partitions "
                    "they were assigned, so nothing is published until the two agree: recreate "
                    f"the topic with {self.partitions} partitions (a broker that lost it may have "
                    "recreated it with its own default), or configure "
                    f"{count} and restart the relay and the workers"
                )
            if count != self._partitions:
                self._partition_of.clear()
            self._partitions = count
            if empty and self._position > 0:
                # the broker lost the topic (deleted, or a broker without storage): the store
                # is the source of truth, so the whole log goes out again
                self.on_notice(
                    f"{self.topic} is empty but {self._position} events were published to it: "
                    "the broker has lost them; publishing the log again from the start"
                )
                self._position, self._last = 0, {}
                self._sent_through, self._sent_last = 0, {}
                self.state.save(0, {})
                self._recorded = 0
            self._producer = producer
        return self._producer

    def partition(self, key: bytes) -> int:
        """The key's partition (CRC-32 of the key, modulo the partitions), chosen here so the
        relay knows each message's partition and the previous position on it. (Kafka's own
        murmur2 in pure Python cost 14 µs a message, most of the relay's overhead.)"""
        found = self._partition_of.get(key)
        if found is None:
            found = zlib.crc32(key) % self._partitions
            self._partition_of[key] = found
        return found

    def _send_page(self, in_flight: Sequence[Page] = ()) -> Page | None:
        """Sends the page after what was sent last, without waiting for the broker; every
        `LOOK_EVERY` messages, lets go of what the broker answered of it and of `in_flight`."""
        producer = self._connect()
        start = self._sent_through + 1
        found = log_rows(self.app, self.state.postgres, start, self.page)
        if not found:
            return None
        page = Page(start, found[-1][0], dict(self._sent_last), [])
        last, futures = page.last, page.futures
        send, topic, source = producer.send, self.topic, self.source
        known, partition_of, public = self._partition_of, self.partition, published
        fits = self.limit.surely_fits(source)
        look = LOOK_EVERY
        for position, originator, version, topic_, stored in found:
            type_, state = public(topic_, stored)  # its public name, its current version
            key = event_key(originator, state)
            partition = known.get(key)
            if partition is None:
                partition = partition_of(key)
            headers = event_headers(
                position, originator, version, type_, state, key, last.get(partition, 0), source
            )
            if len(state) > fits:
                message = OutgoingEvent(key, state, headers)
                too_large = self.limit.too_large(message, source)
                if too_large is not None:
                    futures.append(self._dead_letter(message, partition, position, too_large))
                    page.dead += 1
                    continue
            last[partition] = position
            futures.append(send(topic, key=key, value=state, headers=headers, partition=partition))
            look -= 1
            if not look:
                look = LOOK_EVERY
                for earlier in in_flight:
                    earlier.all_answered()
                page.all_answered()
        page.count = len(found)
        self._sent_through, self._sent_last = page.end, last
        return page

    def _dead_letter(self, message: OutgoingEvent, partition: int, position: int, why: str) -> Any:
        """Sends the dead letter of an event too large to publish, instead of the event (the
        next message on its partition follows the one before it)."""
        message.headers.pop()  # its ce_prevposition: it takes no place on the partition
        ce_id = dict(message.headers)["ce_id"].decode()
        error = (
            f"event {ce_id} at position {position} is {why}: not published (it stays in the store)"
        )
        self.on_notice(f"dead-lettered to {self.dead_topic}: {error}")
        letter = unpublishable_event(message, error, self.topic, partition, datetime.now(UTC))
        return self._producer.send(
            self.dead_topic, key=letter.key, value=letter.value, headers=letter.headers
        )

    def _settle(self, page: Page) -> None:
        """Waits for the broker's acknowledgement of every message of the page, then takes the
        page's position as acknowledged (recorded by `_record`). A refusal or a timeout: nothing
        taken, sent again later. Told to stop and no answer for `STOP_WAIT` seconds:
        `_StopRequestedError`, nothing taken (sent again when the relay restarts)."""
        from kafka.errors import KafkaError, KafkaTimeoutError

        deadline = time.monotonic() + self.delivery_timeout + 5
        try:
            for future in page.futures:
                while not future.is_done:
                    now = time.monotonic()
                    if self._given_up(now):
                        raise _StopRequestedError
                    if now >= deadline:
                        raise KafkaTimeoutError(f"no answer in {self.delivery_timeout + 5:.0f} s")
                    with contextlib.suppress(KafkaTimeoutError):
                        future.get(timeout=min(deadline - now, 0.2))
            page.all_answered()  # all are, by now: takes in the refusals of those waited for
            if page.refusal is not None:
                raise page.refusal
        except KafkaError as e:
            self._drop_producer()
            self._sent_through, self._sent_last = self._position, dict(self._last)
            raise RelayFailedError(
                f"the broker did not acknowledge events {page.start}..{page.end} ({e}); "
                f"the relay stays at position {self._position} and sends them again"
            ) from e
        self._position, self._last = page.end, page.last
        self.sent += page.count - page.dead
        self.dead_lettered += page.dead
        for _ in range(page.dead):  # acknowledged: the one place the relay's are counted
            metrics.dead_letter(self.dead_topic, DeadLetterReason.TOO_LARGE.value)

    def _record(self) -> None:
        """Records the position acknowledged, if it moved since it was last recorded (once
        for pages acknowledged together)."""
        if self._position != self._recorded:
            self.state.save(self._position, self._last)
            self._recorded = self._position

    def _given_up(self, now: float) -> bool:
        """Whether the relay was told to stop `STOP_WAIT` seconds ago or more."""
        if not self.stop.is_set():
            return False
        if self._stopping_since is None:
            self._stopping_since = now
        return now - self._stopping_since >= STOP_WAIT

    def publish_page(self) -> int:
        """Publishes the next page of the log and waits for it to be acknowledged; returns how
        many events (0 at the head)."""
        page = self._send_page()
        if page is None:
            return 0
        self._producer.flush()
        try:
            self._settle(page)
        except _StopRequestedError:
            self._sent_through, self._sent_last = self._position, dict(self._last)
            return 0
        self._record()
        return page.count

    def publish(self, in_flight: int = 4) -> int:
        """Publishes up to the head, pages sent while earlier ones await their acknowledgement
        (at most `in_flight` pages unacknowledged); positions recorded in order as they are
        acknowledged, never past a page with a message not acknowledged. Returns how many
        events."""
        before = self.sent
        pending: deque[Page] = deque()
        try:
            while not self.stop.is_set():
                while pending and pending[0].all_answered():
                    self._settle(pending.popleft())
                if len(pending) >= in_flight:
                    self._settle(pending.popleft())
                    continue
                self._record()
                page = self._send_page(pending)
                if page is None:
                    break
                pending.append(page)
            while pending:
                self._settle(pending.popleft())
        except _StopRequestedError:  # what is unacknowledged is sent again when the relay restarts
            self._sent_through, self._sent_last = self._position, dict(self._last)
        finally:  # what was acknowledged before a failure or a stop
            self._record()
        return self.sent - before

    def run(
        self,
        *,
        once: bool = False,
        poll: float = 0.05,
        retry: float = 1.0,
        progress: Callable[[int, int], None] | None = None,
        on_retry: Callable[[Exception], None] | None = None,
    ) -> int:
        """Publishes up to the head (`once`), or follows the log until `stop` is set
        (`infra/kafka/relay_follow.py`); returns how many events it published."""
        from infra.kafka.relay_follow import follow

        return follow(self, once, poll, retry, progress, on_retry)

    def observe(self, done: int) -> None:
        """The relay's metrics: events relayed, its position and its lag behind the log's
        head (the head asked of the store at most once a second)."""
        now = time.monotonic()
        if done or now - self._observed >= 1.0:
            self._observed = now
            with contextlib.suppress(Exception):  # the store away: said by the next page read
                self._head = self.head()
        metrics.relayed(self.topic, done, self._position, max(self._head, self._position))

    @property
    def lag(self) -> int:
        """Events stored beyond what the broker acknowledged, when last observed."""
        return max(self._head - self._position, 0)

    def _drop_producer(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            close_producer(producer, timeout=1)

    def close(self) -> None:
        try:  # every page sent was settled or given up: nothing to wait for but a broker away
            self._drop_producer()
        finally:
            self.state.close()
            self.lock.release()
