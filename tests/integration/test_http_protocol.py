"""The API as RFC 9110 has HTTP, on both backends: a body's media type said and held to."""

from __future__ import annotations

from uuid import uuid4

from tests.http import COMPLIANCE, Served, problem
from tests.story import INVESTIGATOR, RECRUITER, register

NAME = b'{"name": "Li Lei"}'


def test_a_body_not_said_to_be_json_is_415_naming_the_type_taken(api: Served) -> None:
    head = api.head()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        r = api.client.post(
            "/v1/candidates",
            content=NAME,
            headers=api.as_(RECRUITER, **{"content-type": content_type}),
        )
        body = problem(r, 415, "unsupported-media-type")
        assert body["rule"] == "unsupported-media-type"
        assert body["accepted"] == ["application/json"]
        assert content_type in body["detail"]
        assert "Content-Type: application/json" in body["detail"]
        assert r.headers["accept-post"] == "application/json"
    assert api.head() == head


def test_a_body_with_no_content_type_is_415_not_taken_as_json(api: Served) -> None:
    head = api.head()
    for path in ("/v1/candidates", f"/v1/consents/{uuid4()}/expiry"):  # body required, optional
        r = api.client.post(path, content=NAME, headers=api.as_(RECRUITER))
        assert "content-type" not in r.request.headers
        assert "without a Content-Type" in problem(r, 415, "unsupported-media-type")["detail"]
    assert api.head() == head


def test_json_said_with_a_charset_or_as_a_json_type_is_taken(api: Served) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        r = api.client.post(
            "/v1/candidates",
            content=NAME,
            headers=api.as_(RECRUITER, **{"content-type": content_type}),
        )
        assert r.status_code == 201, r.text


def test_a_command_with_no_body_needs_no_content_type(api: Served) -> None:
    candidate = register(api.app)
    r = api.client.post(f"/v1/candidates/{candidate}/access-package", headers=api.as_(COMPLIANCE))
    assert r.status_code == 200, r.text
    missing = api.client.post("/v1/candidates", headers=api.as_(RECRUITER))
    assert [e["rule"] for e in problem(missing, 422, "validation")["errors"]] == ["missing"]


def test_the_media_type_is_judged_after_the_caller_is_known_and_permitted(api: Served) -> None:
    plain = {"content-type": "text/plain"}
    problem(api.client.post("/v1/candidates", content=NAME, headers=plain), 401)
    refused = api.client.post(
        "/v1/candidates", content=NAME, headers=api.as_(INVESTIGATOR, **plain)
    )
    problem(refused, 403, "use-case-not-permitted")


def test_the_evidence_export_takes_json_alone_too(api: Served) -> None:
    candidate = register(api.app)
    path = f"/v1/candidates/{candidate}/evidence"
    head = api.head()
    form = b"recipient=court&purpose=legal"
    for headers in ({"content-type": "application/x-www-form-urlencoded"}, {}):
        refused = api.client.post(path, content=form, headers=api.as_(RECRUITER, **headers))
        problem(refused, 403, "use-case-not-permitted")
        told = api.client.post(path, content=form, headers=api.as_(COMPLIANCE, **headers))
        problem(told, 415, "unsupported-media-type")
        assert told.headers["accept-post"] == "application/json"
    assert api.head() == head
