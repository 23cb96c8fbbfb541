"""The public event names: one for every stored topic, none shared, never moving with the code;
a stored event of an older class version goes out upcast, one already current untouched."""

from __future__ import annotations

import json
import re
from pathlib import Path
from uuid import uuid4

import orjson

from domain.subject import UNRECORDED_ACTOR
from infra.kafka.event_types import PUBLIC_NAMES, accepted_types, event_types, published
from projections.events import stored_event_types

FINGERPRINTS = Path(__file__).resolve().parents[2] / "docs" / "contract" / "fingerprints.json"
GRANTED = "domain.consent:Consent.Granted"  # class_version 2: v1 did not record who acted


def test_every_stored_topic_has_exactly_one_public_name_and_none_is_shared() -> None:
    assert set(PUBLIC_NAMES) == set(stored_event_types())
    assert len(set(PUBLIC_NAMES.values())) == len(PUBLIC_NAMES)
    for name in PUBLIC_NAMES.values():
        assert re.fullmatch(r"backcheck(\.[a-z][a-z-]*){2}", name), name


def test_a_public_name_carries_the_class_version() -> None:
    assert event_types()[GRANTED].public == "backcheck.consent.granted.v4"
    assert published("domain.candidate:Candidate.Registered", b"{}")[0] == (
        "backcheck.candidate.registered.v2"
    )


def test_workers_take_every_version_up_to_the_current_and_the_stored_topics() -> None:
    accepted = accepted_types()
    assert accepted["backcheck.consent.granted.v1"] == GRANTED
    assert accepted["backcheck.consent.granted.v2"] == GRANTED
    assert accepted["backcheck.consent.granted.v3"] == GRANTED
    assert accepted["backcheck.consent.granted.v4"] == GRANTED
    assert accepted[GRANTED] == GRANTED
    assert "backcheck.consent.granted.v5" not in accepted
    assert "os:system" not in accepted


def test_a_current_state_goes_out_as_stored_an_older_one_upcast() -> None:
    current = orjson.dumps({"candidate_id": str(uuid4()), "recorded_by": "x", "class_version": 4})
    spaced = current.replace(b'"class_version":4', b'"class_version": 4')  # PostgreSQL's jsonb
    assert published(GRANTED, current)[1] is current
    assert published(GRANTED, spaced)[1] is spaced

    older = orjson.dumps({"candidate_id": str(uuid4()), "timestamp": "2026-01-01T00:00:00+00:00"})
    ce_type, sent = published(GRANTED, older)
    assert ce_type == "backcheck.consent.granted.v4"
    assert orjson.loads(sent) == {
        **orjson.loads(older),
        "recorded_by": UNRECORDED_ACTOR,
        "authenticated": {"principal": "unknown", "method": "unknown"},
        "class_version": 4,
    }
    # a v2 record's terms name organisations in clear: v3 holds them as personal values
    terms = {"excluded_organisations": ["Acme"], "third_parties": ["Aegis"]}
    v2 = orjson.dumps({"recorded_by": "x", "terms": terms, "class_version": 2})
    ce_type, sent = published(GRANTED, v2)
    assert ce_type == "backcheck.consent.granted.v4"
    assert orjson.loads(sent)["terms"] == {
        "excluded_organisations": [
            {"name": "excluded_organisation", "category": "user.organisation", "value": "Acme"}
        ],
        "third_parties": [
            {"name": "third_party", "category": "user.organisation", "value": "Aegis"}
        ],
    }


def test_a_name_once_published_is_published_still() -> None:
    """Every event name with a recorded fingerprint (docs/contract/fingerprints.json) is still
    a public name, at a version the workers take: a name is never renamed or dropped."""
    recorded = json.loads(FINGERPRINTS.read_text())
    accepted = accepted_types()
    names = [key.partition("/")[2] for key in recorded if key.startswith("backcheck.events.v1/")]
    assert len(names) >= len(PUBLIC_NAMES)
    for name in names:
        assert name in accepted, f"{name} was published and is no longer taken"
