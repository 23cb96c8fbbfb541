"""Every string and every list a command takes has a bound, shown in its published schema."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services import dto
from services.catalogue import USE_CASES

UNBOUNDED_FORMATS = {"uuid", "date-time"}  # fixed-size by their format


def unbounded(schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    """The paths in a JSON schema to a string without maxLength or a list without maxItems."""
    if "$ref" in schema:
        return unbounded(defs[schema["$ref"].split("/")[-1]], defs, path)
    found = [p for branch in schema.get("anyOf", []) for p in unbounded(branch, defs, path)]
    kind = schema.get("type")
    if kind == "string" and not ({"maxLength", "enum", "const"} & schema.keys()):
        if schema.get("format") not in UNBOUNDED_FORMATS:
            found.append(path)
    elif kind == "array":
        if "maxItems" not in schema:
            found.append(path)
        found += unbounded(schema.get("items", {}), defs, f"{path}[]")
    elif kind == "object":
        assert not isinstance(schema.get("additionalProperties"), dict), f"{path}: open map"
        for name, field in schema.get("properties", {}).items():
            found += unbounded(field, defs, f"{path}.{name}")
    return found


@pytest.mark.parametrize("name", sorted(USE_CASES))
def test_every_string_and_list_of_a_command_has_a_bound(name: str) -> None:
    schema = USE_CASES[name].command.model_json_schema()

    assert unbounded(schema, schema.get("$defs", {}), name) == []


def test_the_walk_finds_an_unbounded_string_and_list() -> None:
    """The check above can fail: a schema without bounds is reported, path by path."""
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "array", "items": {"type": "string"}},
        },
    }

    assert unbounded(schema, {}, "x") == ["x.a", "x.b", "x.b[]"]


def test_a_hundred_thousand_purposes_are_refused_naming_the_field_and_the_bound() -> None:
    terms = {"purposes": ["employment screening"] * 100_000, "check_types": ["employment"]}

    with pytest.raises(ValidationError) as refused:
        dto.ConsentTermsIn.model_validate(terms)

    (error,) = refused.value.errors()
    assert error["loc"] == ("purposes",)
    assert error["type"] == "too_long"
    assert error["ctx"]["max_length"] == dto.MAX_TERMS


def test_a_five_megabyte_value_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        dto.RegisterCandidate.model_validate({"name": "x" * 5_000_000, "actor": "hr:li.na"})

    (error,) = refused.value.errors()
    assert error["loc"] == ("name",)
    assert error["type"] == "string_too_long"
