"""What a request must look like before its values are read (infra/http/request_shape.py):
which media types are JSON, and where a JSON body names a member twice."""

from __future__ import annotations

from infra.http.request_shape import duplicate_keys, is_json


def test_json_is_application_json_or_a_json_type_and_nothing_said_is_not_json() -> None:
    for said in ("application/json", "Application/JSON; charset=utf-8", "application/cloud+json"):
        assert is_json(said), said
    for said in (None, "", "text/plain", "application/x-www-form-urlencoded", "text/json"):
        assert not is_json(said), said


def test_each_member_named_twice_is_found_with_its_path_in_document_order() -> None:
    raw = b'[{"a": 1, "a": 2}, {"b": {"c": 1, "c": 2, "c": 3}, "d": [{"e": 0, "e": 0}]}]'
    assert [(e["type"], e["loc"]) for e in duplicate_keys(raw)] == [
        ("duplicate_key", ("body", 0, "a")),
        ("duplicate_key", ("body", 1, "b", "c")),
        ("duplicate_key", ("body", 1, "d", 0, "e")),
    ]
    assert duplicate_keys(b'{"a": {"a": 1}, "b": [1, 1]}') == []


def test_a_body_that_is_not_json_is_left_to_its_parser_and_one_too_deep_is_said_so() -> None:
    assert duplicate_keys(b"{not json") == []
    deep = b'{"a": ' * 1000 + b"1" + b"}" * 1000
    [error] = duplicate_keys(deep)
    assert (error["type"], error["loc"]) == ("json_invalid", ("body",))
