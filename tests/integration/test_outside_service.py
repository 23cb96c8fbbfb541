"""An outside service, as a new team would write one: it knows backcheck only through the
published AsyncAPI document. It registers its Ed25519 key with an operator, builds a signed
command from the document's schemas and its description of the signature, sends it with a plain
Kafka client, reads its answer on the outcomes topic, and consumes the events it caused, each
checked against the document's schemas. Nothing of backcheck's own code builds, signs or reads
a message here: only the document, jsonschema and kafka-python.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka import KafkaConsumer, KafkaProducer

from tests.kafka import BACKCHECK, Broker, Processes

pytestmark = pytest.mark.kafka
SERVICE = "svc:ats"
WITHIN = 120.0  # seconds for an answer or an event to arrive


def _netstring(data: bytes) -> bytes:
    return str(len(data)).encode() + b":" + data + b","


class Document:
    """The AsyncAPI document, read as any consumer of it would."""

    def __init__(self, text: str) -> None:
        self.doc: dict[str, Any] = json.loads(text)
        assert self.doc["asyncapi"].startswith("3.")

    def address(self, channel: str) -> str:
        return str(self.doc["channels"][channel]["address"])

    def message(self, channel: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.doc["channels"][channel]["messages"][name]
        ref = found.get("$ref")
        if ref is not None:
            found = self.doc["components"]["messages"][ref.rsplit("/", 1)[-1]]
        return found

    def check(self, schema: dict[str, Any], instance: object) -> None:
        """`instance` against `schema`, its $refs resolved in the document."""
        jsonschema.validate(instance, {**schema, "components": self.doc["components"]})

    def check_message(self, channel: str, name: str, headers: dict[str, str], value: bytes) -> None:
        message = self.message(channel, name)
        self.check(message["headers"], headers)
        self.check(message["payload"], json.loads(value))


def _headers(record: Any) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def _wait_for_topics(bootstrap: str, topics: set[str], processes: Processes) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + WITHIN
        while not topics <= consumer.topics():
            processes.check_alive()
            assert time.monotonic() < deadline, f"topics {topics} never made"
            time.sleep(0.5)
    finally:
        consumer.close()


def _read_until(bootstrap: str, topic: str, done: Any, processes: Processes) -> list[Any]:
    """Every record on `topic` from its start, until `done(records)` holds."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    try:
        found: list[Any] = []
        deadline = time.monotonic() + WITHIN
        while not done(found):
            processes.check_alive()
            assert time.monotonic() < deadline, f"{len(found)} records on {topic}, not enough"
            for records in consumer.poll(timeout_ms=500).values():
                found += records
        return found
    finally:
        consumer.close()


def test_an_outside_service_works_from_the_published_document_alone(
    own_kafka_broker: Broker, tmp_path: Path
) -> None:
    bootstrap = own_kafka_broker.bootstrap
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")} | {
        "BACKCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite'}",
        "BACKCHECK_DATA_DIR": str(tmp_path),
        "BACKCHECK_KAFKA_BOOTSTRAP": bootstrap,
        "BACKCHECK_KAFKA_PARTITIONS": "2",
    }

    def backcheck(*args: str) -> str:
        done = subprocess.run(
            [BACKCHECK, *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    # the service makes its own key; an operator registers its public half
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    (tmp_path / "ats.pub").write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    backcheck(
        *("principals", "add", SERVICE, "--role", "service", "--kind", "service"),
        *("--public-key", str(tmp_path / "ats.pub")),
        *("--use-cases", "register-candidate", "--acts-for", "self"),
    )
    backcheck("contract", "--output", str(tmp_path / "asyncapi.json"))
    document = Document((tmp_path / "asyncapi.json").read_text())

    processes = Processes(env, tmp_path)
    try:
        processes.start([BACKCHECK, "ingest"], name="ingest")
        processes.start([BACKCHECK, "relay"], name="relay")
        commands = document.address("commands")
        outcomes = document.address("command-outcomes")
        events = document.address("events")
        _wait_for_topics(bootstrap, {commands, outcomes, events}, processes)

        # the command, from the document: its payload schema and its headers' rules
        candidate = str(uuid4())
        payload = {"candidate_id": candidate, "name": "Outside Service", "actor": SERVICE}
        register = document.message("commands", "register-candidate")
        document.check(register["payload"], payload)
        value = json.dumps(payload).encode()
        headers = {
            "ce_specversion": "1.0",
            "ce_id": "ats-0001",
            "ce_source": SERVICE,
            "ce_type": "register-candidate",
            "ce_time": datetime.now(UTC).isoformat(),
            "content-type": "application/json",
        }
        # the signature, as the document's description of ce_signature and ce_keyid says
        rules = register["headers"]["properties"]
        assert "backcheck-command-signature-v1" in rules["ce_signature"]["description"]
        signed = b"".join(
            _netstring(part)
            for part in (
                b"backcheck-command-signature-v1",
                *(headers[n].encode() for n in ("ce_id", "ce_source", "ce_type", "ce_time")),
                value,
            )
        )
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        headers["ce_keyid"] = hashlib.sha256(raw).digest()[:16].hex()
        headers["ce_signature"] = base64.b64encode(key.sign(signed)).decode()
        document.check(register["headers"], headers)

        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        producer.send(
            commands,
            key=candidate.encode(),
            value=value,
            headers=[(n, v.encode()) for n, v in headers.items()],
        ).get(timeout=30)
        producer.close()

        # its answer, correlated by the command's id, as the document describes it
        def answered(records: list[Any]) -> bool:
            return any(_headers(r).get("ce_correlationid") == "ats-0001" for r in records)

        answers = _read_until(bootstrap, outcomes, answered, processes)
        (answer,) = [r for r in answers if _headers(r).get("ce_correlationid") == "ats-0001"]
        answer_type = _headers(answer)["ce_type"]
        assert answer_type == "backcheck.command.accepted.v1", answer.value
        document.check_message("command-outcomes", answer_type, _headers(answer), answer.value)
        assert answer.key == candidate.encode()
        stored = {event["id"] for event in json.loads(answer.value)["events"]}
        assert stored

        # the events it caused, each checked against the schema of its published type
        def relayed(records: list[Any]) -> bool:
            return stored <= {_headers(r)["ce_id"] for r in records}

        published = _read_until(bootstrap, events, relayed, processes)
        for record in published:
            found = _headers(record)
            document.check_message("events", found["ce_type"], found, record.value)
        mine = {
            _headers(r)["ce_type"]: r for r in published if _headers(r)["ce_subject"] == candidate
        }
        # the candidate registered, and the command's receipt (which names its subject)
        assert set(mine) == {
            "backcheck.candidate.registered.v2",
            "backcheck.command-receipt.applied.v2",
        }
        registered = mine["backcheck.candidate.registered.v2"]
        assert json.loads(registered.value)["candidate_id"] == candidate
        assert "Outside Service" not in registered.value.decode()  # the name travels sealed
    finally:
        processes.stop()
