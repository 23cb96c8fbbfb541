"""Command messages as other services send them: CloudEvents in Kafka binary mode.

Shared by the intake tests with and without a broker.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from infra.kafka.intake import CommandMessage
from tests.story import DOCUMENT_SHA256, PURPOSE, RECRUITER

ATS = "ats.example"
ESIGN = "esign.example"
TERMS: dict[str, Any] = {
    "purposes": [PURPOSE],
    "check_types": ["employment", "reference"],
    "referee_roles": ["direct_supervisor", "hr", "peer"],
}


def headers(
    command_type: str, command_id: str | None = None, source: str = ATS
) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", (command_id or str(uuid4())).encode()),
        ("ce_source", source.encode()),
        ("ce_type", command_type.encode()),
        ("ce_time", b"2026-03-02T09:00:00+00:00"),
        ("content-type", b"application/json"),
    ]


def body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def register(candidate_id: UUID, name: str = "Zhou Min") -> dict[str, Any]:
    return {
        "candidate_id": str(candidate_id),
        "name": name,
        "email": "zhou.min@example.cn",
        "actor": RECRUITER,
    }


def request_consent(candidate_id: UUID, **terms: Any) -> dict[str, Any]:
    return {"candidate_id": str(candidate_id), "terms": {**TERMS, **terms}, "actor": RECRUITER}


def grant_consent(consent_id: UUID, now: datetime) -> dict[str, Any]:
    return {
        "consent_id": str(consent_id),
        "terms": TERMS,
        "document_sha256": DOCUMENT_SHA256,
        "signature_method": "e_signature",
        "valid_from": now.isoformat(),
        "valid_until": (now + timedelta(days=90)).isoformat(),
        "actor": "candidate",
    }


def message(
    value: bytes | None,
    header_list: list[tuple[str, bytes]],
    key: bytes | None = None,
    offset: int = 0,
    partition: int = 0,
    topic: str = "backcheck.commands.v1",
) -> CommandMessage:
    return CommandMessage(topic, partition, offset, key, value, tuple(header_list))
