"""The AsyncAPI document: an AsyncAPI 3.0 document whose every reference resolves, with a
message for every event type and every command services may send, and whose schemas cannot
change without a version bump (docs/contract/fingerprints.json)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from infra.contract import fingerprints as fp
from infra.contract.asyncapi import asyncapi_document
from infra.kafka.event_types import event_types
from infra.kafka.topics import COMMANDS_TOPIC, EVENTS_TOPIC
from services.catalogue import USE_CASES
from services.intake import NOT_FROM_SERVICES

FINGERPRINTS = Path(__file__).resolve().parents[2] / "docs" / "contract" / "fingerprints.json"
COMPONENT_KEY = re.compile(r"^[a-zA-Z0-9.\-_]+$")  # AsyncAPI 3.0: keys of components
# Keywords of JSON Schema 2019-09/2020-12 that draft-07 (AsyncAPI's default) does not know.
NEWER_KEYWORDS = {"$defs", "prefixItems", "dependentRequired", "unevaluatedProperties", "$anchor"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return copy.deepcopy(dict(asyncapi_document()))


def refs(node: Any, path: str = "#") -> Iterator[tuple[str, str]]:
    """Every `$ref` in a tree, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield path, value
            else:
                yield from refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from refs(value, f"{path}/{i}")


def keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from keys(value)


def test_it_has_what_an_asyncapi_3_document_must(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"]
    assert document["info"]["version"]
    for section in ("channels", "operations", "components"):
        assert isinstance(document[section], dict), section
    for server in document["servers"].values():
        assert server["host"]
        assert server["protocol"] == "kafka"
    for kind in ("messages", "schemas"):
        for key in document["components"][kind]:
            assert COMPONENT_KEY.match(key), key
    for channel in document["channels"].values():
        assert isinstance(channel["address"], str)
    for name, operation in document["operations"].items():
        assert operation["action"] in ("send", "receive"), name


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    found = list(refs(document))
    assert len(found) > 200
    for where, ref in found:
        assert isinstance(fp.resolve(document, ref), dict), (where, ref)


def test_the_resolver_refuses_what_points_nowhere(document: dict[str, Any]) -> None:
    with pytest.raises(KeyError, match="resolves to nothing"):
        fp.resolve(document, "#/components/schemas/nothing.here")
    with pytest.raises(KeyError, match="only references inside the document"):
        fp.resolve(document, "https://example.com/schema.json")


def test_every_channels_messages_are_messages_and_operations_pick_among_them(
    document: dict[str, Any],
) -> None:
    for channel in document["channels"].values():
        for ref in channel["messages"].values():
            assert ref["$ref"].startswith("#/components/messages/")
            message = fp.resolve(document, ref["$ref"])
            assert {"name", "payload", "headers", "contentType"} <= set(message)
            assert message["headers"]["type"] == "object"
    for operation in document["operations"].values():
        channel_ref = operation["channel"]["$ref"]
        channel = fp.resolve(document, channel_ref)
        for message in operation["messages"]:
            # AsyncAPI 3: an operation's messages are its channel's, referred to there
            assert message["$ref"].startswith(f"{channel_ref}/messages/")
            assert message["$ref"].rpartition("/")[2] in channel["messages"]


def test_every_schema_is_a_draft_07_schema(document: dict[str, Any]) -> None:
    for name, schema in document["components"]["schemas"].items():
        jsonschema.Draft7Validator.check_schema(schema)
        assert not NEWER_KEYWORDS & set(keys(schema)), name


def test_every_event_type_and_every_command_from_services_is_a_message(
    document: dict[str, Any],
) -> None:
    by_address = {c["address"]: c for c in document["channels"].values()}
    events = set(by_address[EVENTS_TOPIC]["messages"])
    assert events == {kind.public for kind in event_types().values()}
    commands = set(by_address[COMMANDS_TOPIC]["messages"])
    assert commands == set(USE_CASES) - set(NOT_FROM_SERVICES)
    addresses = set(by_address)
    assert {"backcheck.events.dlq.v1", "backcheck.commands.dlq.v1"} <= addresses
    assert "backcheck.command-outcomes.v1" in addresses
    # no internal name leaks: the stored topics (module paths) appear nowhere
    text = json.dumps(document)
    assert not re.search(r"domain\.[a-z]+:", text)


def test_no_schema_changed_without_a_version_bump(document: dict[str, Any]) -> None:
    differences = fp.differences(fp.load(FINGERPRINTS), fp.fingerprints(document))
    assert not differences, "\n".join(differences)


def test_a_changed_event_schema_asks_for_a_version_bump_and_is_not_recorded(
    document: dict[str, Any], tmp_path: Path
) -> None:
    recorded = tmp_path / "fingerprints.json"
    assert len(fp.record(recorded, fp.fingerprints(document))) == len(fp.fingerprints(document))
    before = recorded.read_text()
    granted = document["components"]["schemas"]["backcheck.consent.granted.v4"]
    granted["properties"]["recorded_by"] = {"type": "integer"}
    changed = fp.fingerprints(document)

    lines = fp.differences(fp.load(recorded), changed)

    assert lines == [
        "backcheck.events.v1/backcheck.consent.granted.v4: its schema changed without a "
        "version bump: bump the `class_version` of the event class published as "
        "backcheck.consent.granted.v4 and add its `upcast_vN_vN+1` (the relay publishes the "
        "new version, old records upcast)"
    ]
    with pytest.raises(ValueError, match="changed without a version bump"):
        fp.record(recorded, changed)
    assert recorded.read_text() == before


def test_a_shared_shape_changed_changes_every_message_that_holds_it(
    document: dict[str, Any],
) -> None:
    before = fp.fingerprints(document)
    terms = document["components"]["schemas"]["domain.consent_terms.ConsentTerms"]
    terms["properties"]["purposes"] = {"type": "string"}
    after = fp.fingerprints(document)
    changed = {key.rpartition("/")[2] for key in before if before[key] != after[key]}
    assert {"backcheck.consent.granted.v4", "backcheck.consent.requested.v3"} <= changed


def test_a_new_version_is_recorded_beside_the_old_one(tmp_path: Path) -> None:
    recorded = tmp_path / "fingerprints.json"
    fp.record(recorded, {"backcheck.events.v1/backcheck.x.y.v1": "a"})
    added = fp.record(recorded, {"backcheck.events.v1/backcheck.x.y.v2": "b"})
    assert added == ["backcheck.events.v1/backcheck.x.y.v2"]
    assert fp.load(recorded) == {
        "backcheck.events.v1/backcheck.x.y.v1": "a",
        "backcheck.events.v1/backcheck.x.y.v2": "b",
    }


def test_rewording_a_description_changes_no_fingerprint_a_property_named_so_does(
    document: dict[str, Any],
) -> None:
    before = fp.fingerprints(document)
    schemas = document["components"]["schemas"]
    schemas["backcheck.consent.granted.v4"]["description"] = "said otherwise"
    schemas["domain.PersonalValue"]["description"] = "said otherwise"
    assert fp.fingerprints(document) == before

    compiled = schemas["backcheck.report.compiled.v2"]["properties"]
    compiled["description"] = {"type": "string"}  # a property, not an annotation
    compiled_key = "backcheck.events.v1/backcheck.report.compiled.v2"
    assert fp.fingerprints(document)[compiled_key] != before[compiled_key]


def test_a_service_learns_the_data_categories_and_the_id_rule_from_the_document_alone(
    document: dict[str, Any],
) -> None:
    """A category not among the known ones is refused (`UnknownDataCategory`), and a
    candidate id that is no version 4 UUID too; the document said only `^user(\\.[a-z_]+)+$`
    and `format: uuid`, and pointed nowhere a service can look (`backcheck categories` runs on
    the operator's machine)."""
    from domain.classification import CATEGORIES

    schemas = document["components"]["schemas"]
    category = schemas["command.PersonalFieldIn"]["properties"]["category"]["description"]
    for key, known in CATEGORIES.items():
        assert f"{key} ({known.tier.value})" in category
    terms = schemas["command.ConsentTermsIn"]["properties"]["categories"]["items"]
    assert terms["description"] == category
    candidate_id = schemas["command.RegisterCandidate"]["properties"]["candidate_id"]
    assert "version 4" in candidate_id["description"]


def test_answers_and_dead_letters_say_their_key_may_be_null_and_their_value_empty(
    document: dict[str, Any],
) -> None:
    """A command sent without a key is answered and dead-lettered without one, and a command
    too large for its dead letter is dead-lettered without its value: a team validating what
    it read found a null key where the document said only `type: string`."""
    messages = document["components"]["messages"]
    for name in (
        "backcheck.command.accepted.v1",
        "backcheck.command.refused.v1",
        "dead-letter.command-dead-letters",
    ):
        key = messages[name]["bindings"]["kafka"]["key"]
        assert "none (a null key) when" in key["description"], name
    payload = messages["dead-letter.command-dead-letters"]["payload"]["description"]
    assert "a command whose dead letter would be larger than a message may take" in payload


def test_a_commands_headers_say_what_a_signed_sender_must_send(
    document: dict[str, Any],
) -> None:
    """The headers' schema leaves ce_time, ce_keyid and ce_signature optional (an intake run
    with --accept-unsigned takes neither), and `ce_source` read "the sending service": a team
    sent a CloudEvents source URI and no signature, both valid by the schema, both refused."""
    header = document["components"]["messages"]["register-candidate"]["headers"]["properties"]
    assert "principal holding a sender key" in header["ce_source"]["description"]
    assert "`unknown-sender`" in header["ce_source"]["description"]
    assert "Required of a signed command" in header["ce_time"]["description"]
    assert "Required, with ce_signature" in header["ce_keyid"]["description"]
    assert "Required, with ce_keyid" in header["ce_signature"]["description"]
