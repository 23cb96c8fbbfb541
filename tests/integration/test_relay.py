"""The relay against a real broker: every stored event once, in each candidate's order, keyed
by candidate, as a CloudEvent the official SDK parses; a page the broker did not acknowledge is
not recorded; one relay per store and topic."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from kafka.errors import NotEnoughReplicasError
from kafka.future import Future

from domain.candidate import Candidate
from domain.classification import PersonalField
from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from infra.kafka import relay as relay_module
from infra.kafka.cloudevent import DeadLetterReason, dead_letter_of
from infra.kafka.event_types import accepted_types, event_types
from infra.kafka.relay import PartitionCountError, Relay, RelayBusyError, RelayFailedError
from infra.kafka.topics import dead_letter_topic, ensure_topics
from infra.store.transcoder import typed_mapper
from services.application import Backcheck
from tests import story as s
from tests.conftest import FakeClock
from tests.kafka import Broker, every_record, read_topic, topic_name

pytestmark = pytest.mark.kafka

NOT_REPORTED = (  # Tansu reports no configuration
    "the broker does not report the largest message it takes (max.message.bytes of {topic}); "
    "assuming Kafka's default, 1,048,588 bytes (--max-message-bytes if it takes less)"
)


def relay_for(
    app: Backcheck, settings: Settings, broker: Broker, topic: str, **kw: object
) -> Relay:
    return Relay(app, settings, topic=topic, bootstrap=broker.bootstrap, partitions=3, **kw)  # type: ignore[arg-type]


def subject_of(topic: str, state: bytes, originator_id: object) -> bytes:
    """The candidate an event is about; a principal (a portal link's, sent with a consent
    request), about no one, by its own id."""
    candidate = orjson.loads(state).get("candidate_id")
    if candidate is None:
        assert topic.startswith("domain.principal:Principal."), topic
        return str(originator_id).encode()
    return str(candidate).encode()


def test_every_event_once_in_each_candidates_order_keyed_by_candidate(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings
) -> None:
    topic = topic_name("backcheck.events")
    relay = relay_for(demo_app, settings, kafka_broker, topic, page=7)
    try:
        sent = relay.run(once=True)
        position = relay.position
    finally:
        relay.close()
    stored = list(demo_app.recorder.select_notifications(start=1, limit=10_000))
    received = read_topic(kafka_broker.bootstrap, topic, expect=len(stored))

    assert sent == len(stored) == len(received) == position == stored[-1].id
    by_id = {f"{n.originator_id}:{n.originator_version}": n for n in stored}
    partition_of: dict[bytes, int] = {}
    last_position: dict[bytes, int] = {}
    for record in received:
        headers = dict(record.headers)
        stored_event = by_id.pop(headers["ce_id"].decode())
        candidate = subject_of(stored_event.topic, stored_event.state, stored_event.originator_id)
        assert record.key == headers["ce_subject"] == candidate
        assert record.value == stored_event.state  # as stored: personal values still sealed
        # its public name (every demo event is of its class's current version: not upcast)
        assert headers["ce_type"] == event_types()[stored_event.topic].public.encode()
        position_now = int(headers["ce_position"])
        assert position_now == stored_event.id
        assert partition_of.setdefault(candidate, record.partition) == record.partition
        assert position_now > last_position.get(candidate, 0)  # the candidate's order kept
        last_position[candidate] = position_now
    assert by_id == {}  # every stored event arrived, none twice
    assert b"Zhou" not in b"".join(r.value for r in received)  # no plaintext name


def test_messages_parse_as_cloudevents_with_the_official_sdk(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings
) -> None:
    topic = topic_name("backcheck.events")
    relay = relay_for(demo_app, settings, kafka_broker, topic)
    try:
        relay.run(once=True)
    finally:
        relay.close()
    stored = list(demo_app.recorder.select_notifications(start=1, limit=10_000))
    received = read_topic(kafka_broker.bootstrap, topic, expect=len(stored))
    assert len(received) == len(stored)

    for record in received:
        message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
        event = from_binary(message, JSONFormat())
        state = orjson.loads(record.value)
        assert event.get_specversion() == "1.0"
        assert event.get_id() == dict(record.headers)["ce_id"].decode()
        stored_topic = accepted_types()[event.get_type()]  # a public name, of this version
        assert event.get_type() == event_types()[stored_topic].public
        assert event.get_source() == "/backcheck"
        originator_id = event.get_id().partition(":")[0]
        subject = subject_of(stored_topic, record.value, originator_id)
        assert event.get_subject() == subject.decode()
        assert event.get_time() == datetime.fromisoformat(state["timestamp"])
        assert event.get_datacontenttype() == "application/json"
        assert event.get_extension("position") == dict(record.headers)["ce_position"].decode()
        assert event.get_data() == state


def test_a_second_relay_on_the_same_store_and_topic_is_refused(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings
) -> None:
    topic = topic_name("backcheck.events")
    first = relay_for(demo_app, settings, kafka_broker, topic)
    try:
        with pytest.raises(RelayBusyError, match=f"another relay already publishes .* to {topic}"):
            relay_for(demo_app, settings, kafka_broker, topic)
        other = relay_for(demo_app, settings, kafka_broker, topic_name("backcheck.events"))
        other.close()  # another topic is another relay's business
    finally:
        first.close()
    relay_for(demo_app, settings, kafka_broker, topic).close()  # free again once closed


def test_a_topic_with_another_partition_count_than_configured_gets_nothing(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings
) -> None:
    topic = topic_name("backcheck.events")
    ensure_topics(kafka_broker.bootstrap, 4, topic)  # as a broker's own default would make it
    relay = relay_for(demo_app, settings, kafka_broker, topic)  # configured: 3
    try:
        with pytest.raises(PartitionCountError, match=f"{topic} has 4 partitions, not the 3 "):
            relay.run(once=True)
        assert relay.position == relay.sent == 0
    finally:
        relay.close()
    assert every_record(kafka_broker.bootstrap, topic, quiet=1.0) == []


def test_a_page_the_broker_did_not_acknowledge_is_not_recorded(
    own_kafka_broker: Broker, tmp_path: Path, clock: FakeClock
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    tell_story(app)
    topic = topic_name("backcheck.events")
    relay = relay_for(app, settings, own_kafka_broker, topic, page=10, delivery_timeout=3.0)
    notices: list[str] = []
    relay.on_notice = notices.append
    head = app.recorder.max_notification_id() or 0
    try:
        assert relay.publish_page() == 10
        assert relay.position == 10
        own_kafka_broker.stop()
        with pytest.raises(RelayFailedError, match=r"did not acknowledge events 11\.\.20"):
            relay.publish_page()
        assert relay.position == 10  # nothing recorded past what was acknowledged
        # a new broker (Tansu keeps nothing): the topic is gone with the 10 it acknowledged,
        # so the relay makes it again and publishes the whole log
        own_kafka_broker.start()
        assert relay.run(once=True) == 10 + head
        assert relay.position == head
    finally:
        relay.close()
        app.close()
    assert notices == [
        NOT_REPORTED.format(topic=topic),
        f"{topic} is empty but 10 events were published to it: the broker has lost them; "
        "publishing the log again from the start",
    ]
    received = read_topic(own_kafka_broker.bootstrap, topic, expect=head)
    assert sorted(int(dict(r.headers)["ce_position"]) for r in received) == list(
        range(1, head + 1)
    )  # every event on the new broker, once


def test_each_message_names_the_previous_position_on_its_partition(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings
) -> None:
    topic = topic_name("backcheck.events")
    relay = relay_for(demo_app, settings, kafka_broker, topic, page=4)
    try:
        relay.run(once=True)
    finally:
        relay.close()
    head = demo_app.recorder.max_notification_id() or 0
    received = read_topic(kafka_broker.bootstrap, topic, expect=head)
    previous: dict[int, int] = {}
    for record in received:  # in partition, then offset order
        headers = dict(record.headers)
        assert int(headers["ce_prevposition"]) == previous.get(record.partition, 0)
        previous[record.partition] = int(headers["ce_position"])
    assert len(received) == head


def test_a_relay_that_died_before_recording_an_acknowledged_page_sends_only_that_page_again(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings
) -> None:
    topic = topic_name("backcheck.events")
    head = demo_app.recorder.max_notification_id() or 0
    relay = relay_for(demo_app, settings, kafka_broker, topic, page=10)
    assert relay.publish_page() == 10  # sent, acknowledged, recorded
    page = relay._send_page()  # the next page sent and acknowledged ...
    assert page is not None
    relay._producer.flush()
    assert all(f.succeeded() for f in page.futures)
    relay.close()  # ... and the process gone before recording it

    restarted = relay_for(demo_app, settings, kafka_broker, topic, page=10)
    try:
        assert restarted.position == 10
        assert restarted.run(once=True) == head - 10
    finally:
        restarted.close()

    received = read_topic(kafka_broker.bootstrap, topic, expect=head + 10)
    positions = sorted(int(dict(r.headers)["ce_position"]) for r in received)
    assert positions == sorted([*range(1, head + 1), *range(11, 21)])  # events 11..20 twice


class _HeldSend(Future):  # type: ignore[misc]  # (kafka-python is untyped)
    """A send the broker has not answered yet."""

    def get(self, timeout: float | None = None) -> object:
        if self.exception is not None:
            raise self.exception
        return self.value


class _ProducerRefusingOne:
    """The relay's producer, but the message at log position `refused` never reaches the
    broker: its send is held, and refused once the message at `refused_when` was sent and every
    send before it acknowledged (so pages after the refused one are on the broker by then)."""

    def __init__(self, producer: Any, refused: int, refused_when: int) -> None:
        self.producer = producer
        self.refused, self.refused_when = refused, refused_when
        self.held = _HeldSend()

    def send(self, topic: str, **message: Any) -> Any:
        position = int(dict(message["headers"])["ce_position"])
        if position == self.refused:
            return self.held
        sent = self.producer.send(topic, **message)
        if position == self.refused_when:
            self.producer.flush()
            self.held.failure(NotEnoughReplicasError("refused by the broker"))
        return sent

    def close(self, timeout: float | None = None) -> None:
        self.producer.close(timeout=timeout)


@pytest.mark.parametrize("look_every", [2, relay_module.LOOK_EVERY])
def test_a_refused_send_among_pages_in_flight_holds_the_position_before_it_and_nothing_is_lost(
    kafka_broker: Broker,
    demo_app: Backcheck,
    settings: Settings,
    look_every: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pages are sent while earlier ones await their acknowledgement: one message of the third
    page refused after the fourth and fifth pages were acknowledged, the position recorded
    stays at the end of the second page; a restarted relay sends from there, so every event
    arrives, and only events after the recorded position may arrive twice. (Looking at the
    answers every 2 messages, the refusal is seen while later pages are sent, and the answered
    futures let go; every LOOK_EVERY (100), only when the page of 5 is settled.)"""
    monkeypatch.setattr(relay_module, "LOOK_EVERY", look_every)
    topic = topic_name("backcheck.events")
    head = demo_app.recorder.max_notification_id() or 0
    assert head > 40
    relay = relay_for(demo_app, settings, kafka_broker, topic, page=5)
    relay._producer = _ProducerRefusingOne(relay.connect(), refused=13, refused_when=23)
    try:
        with pytest.raises(RelayFailedError, match=r"did not acknowledge events 11\.\.15"):
            relay.publish(in_flight=4)
        assert relay.position == 10
    finally:
        relay.close()
    acknowledged = {
        int(dict(r.headers)["ce_position"]) for r in every_record(kafka_broker.bootstrap, topic)
    }
    assert set(range(1, 23)) - acknowledged == {13}  # pages after it were on the broker

    restarted = relay_for(demo_app, settings, kafka_broker, topic, page=5)
    try:
        assert restarted.position == 10  # as recorded: not past the refused send
        assert restarted.run(once=True) == head - 10
        assert restarted.position == head
    finally:
        restarted.close()
    received = every_record(kafka_broker.bootstrap, topic)
    counts = Counter(int(dict(r.headers)["ce_position"]) for r in received)
    assert set(counts) == set(range(1, head + 1))  # no gap
    assert counts[13] == 1
    assert all(n == 1 for p, n in counts.items() if p <= 10)  # nothing recorded sent again


def test_an_event_too_large_for_the_broker_is_dead_lettered_and_the_rest_published(
    kafka_broker: Broker, tmp_path: Path, clock: FakeClock
) -> None:
    """An event stored before writes were bounded, larger than Kafka's default limit (1 MiB, as
    the broker does not report its own): the relay used to die on it at every start."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    typed_mapper(app.mapper).max_event_bytes = None  # as before BACKCHECK_MAX_EVENT_BYTES
    tell_story(app)
    large = Candidate.register(
        uuid4(), (PersonalField("name", "user.name", "x" * 1_200_000),), s.RECRUITER
    )
    app.save(large)  # type: ignore[arg-type]  # written around the use case, as it once was
    too_large = app.recorder.max_notification_id() or 0
    for name in ("Li Lei", "Han Meimei", "Wang Fang"):
        s.register(app, name)  # events after it, on its partition too
    head = app.recorder.max_notification_id() or 0
    topic = topic_name("backcheck.events")
    notices: list[str] = []
    relay = relay_for(app, settings, kafka_broker, topic)
    relay.on_notice = notices.append
    try:
        relay.run(once=True)
        assert (relay.position, relay.sent, relay.dead_lettered) == (head, head - 1, 1)
    finally:
        relay.close()
    again = relay_for(app, settings, kafka_broker, topic)  # restarted: nothing left to do
    try:
        assert again.run(once=True) == 0
        assert again.dead_lettered == 0
    finally:
        again.close()
        app.close()

    received = read_topic(kafka_broker.bootstrap, topic, expect=head - 1)
    positions = sorted(int(dict(r.headers)["ce_position"]) for r in received)
    assert positions == [p for p in range(1, head + 1) if p != too_large]
    previous: dict[int, int] = {}
    for record in received:  # each partition's chain skips it: no gap for the workers
        headers = dict(record.headers)
        assert int(headers["ce_prevposition"]) == previous.get(record.partition, 0)
        previous[record.partition] = int(headers["ce_position"])
    dead = read_topic(kafka_broker.bootstrap, dead_letter_topic(topic), expect=1)
    assert len(dead) == 1
    letter = dead_letter_of(dead[0].headers)
    headers = dict(dead[0].headers)
    assert dead[0].value == b""  # it would not fit either: it stays in the store
    assert dead[0].key == str(large.id).encode()
    assert int(headers["ce_position"]) == too_large
    assert "ce_prevposition" not in headers
    assert letter.reason is DeadLetterReason.TOO_LARGE
    assert (letter.topic, letter.offset) == (topic, -1)
    assert letter.error.startswith(f"event {large.id}:1 at position {too_large} is ")
    assert letter.error.endswith(
        "bytes as a message, above the 1,048,588 the broker takes: not published (it stays in "
        "the store)"
    )
    assert notices == [
        NOT_REPORTED.format(topic=topic),
        f"dead-lettered to {dead_letter_topic(topic)}: {letter.error}",
    ]


def test_a_relay_says_when_the_event_bound_lets_through_more_than_the_broker_takes(
    kafka_broker: Broker, tmp_path: Path
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=tmp_path)
    app = build_app(settings)
    s.register(app)
    topic = topic_name("backcheck.events")
    notices: list[str] = []
    relay = relay_for(app, settings, kafka_broker, topic, max_message_bytes=500_000)
    relay.on_notice = notices.append
    try:
        assert relay.run(once=True) == 1  # and goes on
    finally:
        relay.close()
        app.close()
    assert notices == [
        "BACKCHECK_MAX_EVENT_BYTES (900,000) lets the store take events larger than "
        "--max-message-bytes allows (500,000 bytes a message, 498,976 for the event): those are "
        "dead-lettered, not published; lower BACKCHECK_MAX_EVENT_BYTES to 498,976 or raise the "
        "broker's limit"
    ]
