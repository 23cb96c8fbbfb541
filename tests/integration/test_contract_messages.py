"""Real messages match the published contract: the demo's story, relayed to a real broker and
read back, every message's value and headers valid against the AsyncAPI document's schemas
of its `ce_type`; and an event stored by older code goes out upcast, as its current version,
which a projection worker reads as the store would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from domain.classification import ORGANISATION
from domain.investigation import STATEMENT
from domain.subject import UNRECORDED_ACTOR
from infra.config import Settings
from infra.contract.asyncapi import asyncapi_document
from infra.kafka.event_types import event_types
from infra.kafka.projection import Record
from infra.kafka.relay import Relay
from infra.store.transcoder import typed_mapper
from services.application import Backcheck
from tests.kafka import Broker, every_record, topic_name

pytestmark = pytest.mark.kafka

DOCUMENT = "urn:backcheck:contract"
GRANTED = "domain.consent:Consent.Granted"
FEEDBACK = "domain.investigation:Investigation.FeedbackGiven"
FEEDBACK_TEXT = "The dates of my second job are right; the registrar has them wrong."
FORMATS = FormatChecker()


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    from uuid import UUID

    return not isinstance(value, str) or str(UUID(value)) == value


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return "T" in value and datetime.fromisoformat(value).tzinfo is not None


class Contract:
    """The served document's schemas, by message name."""

    def __init__(self) -> None:
        self.document = asyncapi_document()
        resource = Resource.from_contents(dict(self.document), default_specification=DRAFT7)
        self.registry: Registry[Any] = Registry().with_resource(DOCUMENT, resource)
        self.events = self.document["channels"]["events"]["messages"]

    def validator(self, message: str, part: str) -> Draft7Validator:
        ref = f"{DOCUMENT}#/components/messages/{message}/{part}"
        return Draft7Validator({"$ref": ref}, registry=self.registry, format_checker=FORMATS)

    def check(self, record: Any) -> str:
        """Validates one Kafka record against the message its ce_type names; returns that."""
        headers = {name: raw.decode() for name, raw in record.headers}
        assert len(headers) == len(record.headers), "a header given twice"
        ce_type = headers["ce_type"]
        assert ce_type in self.events, f"{ce_type} is not a message of the events channel"
        for part, value in (("headers", headers), ("payload", orjson.loads(record.value))):
            errors = [
                f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in self.validator(ce_type, part).iter_errors(value)
            ]
            assert not errors, f"{ce_type} {part}: {errors[:5]}"
        key = self.document["components"]["messages"][ce_type]["bindings"]["kafka"]["key"]
        Draft7Validator(key, format_checker=FORMATS).validate(record.key.decode())
        return str(ce_type)


def relayed(app: Backcheck, settings: Settings, broker: Broker) -> list[Any]:
    topic = topic_name("backcheck.events")
    relay = Relay(app, settings, topic=topic, bootstrap=broker.bootstrap, partitions=3)
    try:
        sent = relay.run(once=True)
    finally:
        relay.close()
    received = every_record(broker.bootstrap, topic, quiet=2.0)
    assert len(received) == sent
    return received


def test_every_message_of_the_demo_is_valid_against_its_published_schema(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings
) -> None:
    contract = Contract()
    received = relayed(demo_app, settings, kafka_broker)

    seen = {contract.check(record) for record in received}

    assert len(received) == len(list(demo_app.recorder.select_notifications(1, 10_000)))
    assert len(seen) >= 25  # the story shows most kinds of event
    assert all(name.startswith("backcheck.") for name in seen)


def stored_as_v1(app: Backcheck, topic: str, v1: Callable[[dict[str, Any]], None]) -> StoredEvent:
    """An event of `topic` as v1 code would have stored it (`v1` takes the later versions'
    fields away, and turns what they hold as personal values back into text), stored after
    the demo's: a copy of the demo's first such event, at a version of its own. v1 sealed
    nothing of it (a sealed value is bound to its event's version: it would not open here),
    so its personal values are stored in clear, as a store written then holds them."""
    model = next(n for n in app.recorder.select_notifications(1, 10_000) if n.topic == topic)
    sealer = typed_mapper(app.mapper).sealer
    assert sealer is not None
    state = sealer.open_state(
        event_types()[topic].cls,
        orjson.loads(model.state),
        model.originator_id,
        model.originator_version,
    )
    assert state.pop("class_version") == event_types()[topic].version
    v1(state)
    version = model.originator_version + 100
    old = StoredEvent(model.originator_id, version, topic, orjson.dumps(state))
    app.recorder.insert_events([old])
    return old


def published_as(received: list[Any], stored: StoredEvent) -> Any:
    ce_id = f"{stored.originator_id}:{stored.originator_version}".encode()
    (record,) = [r for r in received if dict(r.headers)["ce_id"] == ce_id]
    return record


def read_by_a_worker(app: Backcheck, record: Any, topic: str) -> Any:
    """The event as a projection worker reads the message: its public name mapped back to
    the stored topic, the state through the store's mapper."""
    incoming = Record(record.partition, record.offset, record.value, dict(record.headers)).event()
    assert incoming.stored.topic == topic
    event = app.mapper.to_domain_event(incoming.stored)
    assert type(event) is event_types()[topic].cls
    return event


def test_an_event_stored_by_older_code_is_published_upcast_and_read_as_the_store_reads_it(
    kafka_broker: Broker, demo_app: Backcheck, settings: Settings
) -> None:
    app = demo_app
    granted = stored_as_v1(app, GRANTED, v1_granted)  # no actor, organisations as text
    feedback = stored_as_v1(app, FEEDBACK, plain_feedback)  # its text as a plain string

    received = relayed(app, settings, kafka_broker)

    contract = Contract()
    record = published_as(received, granted)
    assert contract.check(record) == "backcheck.consent.granted.v4"
    sent = orjson.loads(record.value)
    old = orjson.loads(granted.state)
    assert old["terms"]["excluded_organisations"] == ["Nimbus Tech"]  # the demo's, as text
    assert sent == {
        **old,
        "terms": {
            **old["terms"],
            "excluded_organisations": [
                {"name": "excluded_organisation", "category": ORGANISATION, "value": "Nimbus Tech"}
            ],
        },
        "recorded_by": UNRECORDED_ACTOR,
        "authenticated": {"principal": "unknown", "method": "unknown"},
        "class_version": 4,
    }
    assert read_by_a_worker(app, record, GRANTED).recorded_by == UNRECORDED_ACTOR

    record = published_as(received, feedback)
    assert contract.check(record) == "backcheck.investigation.feedback-given.v2"
    text = orjson.loads(record.value)["text"]
    assert text == {"name": "feedback", "category": STATEMENT, "value": FEEDBACK_TEXT}
    assert read_by_a_worker(app, record, FEEDBACK).text.value == FEEDBACK_TEXT


def v1_granted(state: dict[str, Any]) -> None:
    state.pop("recorded_by")
    state.pop("authenticated")  # v4: how the caller was authenticated
    for field in ("excluded_organisations", "third_parties"):
        state["terms"][field] = [value["value"] for value in state["terms"][field]]


def plain_feedback(state: dict[str, Any]) -> None:
    state["text"] = FEEDBACK_TEXT
