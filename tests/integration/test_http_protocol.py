"""The API as RFC 9110 has HTTP, on both backends: a body's media type said and held to;
HEAD answered as GET, recorded as GET; If-Match compared strongly, and never ignored; a JSON
object names each member once; the query names only what an operation takes, once; who may
ask, before what was asked."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx

from services.access import Role
from services.dto import ReadAccessLog
from tests.http import COMPLIANCE, WAIT, Served, listening, problem
from tests.story import (
    INVESTIGATOR,
    PURPOSE,
    RECRUITER,
    REVIEWER,
    consented_candidate,
    register,
)

NAME = b'{"name": "Li Lei"}'
JSON = "application/json"


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


# --- HEAD -----------------------------------------------------------------------------------


def reads_of(api: Served, candidate: UUID, view: str) -> list[tuple[str, str]]:
    log = api.app.read_access_log(
        ReadAccessLog(
            candidate_id=candidate, principal=COMPLIANCE, role=Role.COMPLIANCE, purpose="audit"
        )
    )
    return [(e.principal, e.outcome) for e in log.entries if e.view == view]


def test_head_answers_as_get_without_the_body_and_is_recorded_as_the_read(api: Served) -> None:
    candidate = consented_candidate(api.app).candidate_id
    path = f"/v1/candidates/{candidate}/profile"
    got = api.get(RECRUITER, path, purpose=PURPOSE)
    assert got.status_code == 200, got.text
    head = api.client.head(path, params={"purpose": PURPOSE}, headers=api.as_(RECRUITER))
    assert head.status_code == 200
    assert head.content == b""
    for header in ("etag", "content-type", "cache-control"):
        assert head.headers[header] == got.headers[header], header
    # the answer told the reader something (they may read, and the version): recorded
    assert reads_of(api, candidate, "profile") == [(RECRUITER, got.json()["outcome"])] * 2


def test_a_refused_head_is_refused_and_recorded_as_its_get(api: Served) -> None:
    candidate = register(api.app)  # no consent: the recruiter may not read the profile
    path = f"/v1/candidates/{candidate}/profile"
    head = api.client.head(path, params={"purpose": PURPOSE}, headers=api.as_(RECRUITER))
    assert head.status_code == 403
    assert head.headers["content-type"] == "application/problem+json"
    assert head.content == b""
    assert reads_of(api, candidate, "profile") == [(RECRUITER, "refused")]
    assert api.client.head(path, params={"purpose": PURPOSE}).status_code == 401


def test_head_is_answered_on_every_kind_of_get_route(api: Served) -> None:
    for path, params in (
        ("/v1/me", {}),
        ("/v1/candidates", {}),
        ("/v1/dashboard/summary", {}),
        ("/v1/audit/violations", {}),
        ("/openapi.json", {}),
        ("/dashboard", {}),
    ):
        got = api.client.get(path, params=params, headers=api.as_(COMPLIANCE))
        head = api.client.head(path, params=params, headers=api.as_(COMPLIANCE))
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-type"] == got.headers["content-type"], path


def test_head_on_a_path_with_no_get_is_405_and_allow_says_so(api: Served) -> None:
    candidate = register(api.app)
    head = api.client.head(
        f"/v1/candidates/{candidate}/erasure-request", headers=api.as_(RECRUITER)
    )
    assert (head.status_code, head.headers["allow"], head.content) == (405, "POST", b"")


def test_head_on_the_dashboard_stream_opens_nothing(api: Served) -> None:
    streams = api.client.app.state.dashboard_streams  # type: ignore[attr-defined]
    head = api.client.head("/v1/dashboard/stream", headers=api.as_(COMPLIANCE))
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.content == b""
    assert streams.open == 0
    api.issue("service:intake", Role.SERVICE)
    refused = api.client.head("/v1/dashboard/stream", headers=api.as_("service:intake"))
    assert (refused.status_code, refused.content) == (403, b"")


def test_head_over_a_real_server_ends_its_answer_and_keeps_the_connection(api: Served) -> None:
    """A server frames a HEAD's answer itself (no body, the GET's Content-Length): the next
    request on the same connection is answered."""
    candidate = consented_candidate(api.app).candidate_id
    path = f"/v1/candidates/{candidate}/consents"
    with listening(api) as base, httpx.Client(base_url=base, timeout=WAIT) as client:
        answers: list[Any] = [
            client.request(method, path, params={"purpose": PURPOSE}, headers=api.as_(RECRUITER))
            for method in ("HEAD", "GET", "HEAD")
        ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].content == answers[2].content == b""
    assert answers[0].headers["etag"] == answers[1].headers["etag"]
    assert answers[0].headers["content-length"] == str(len(answers[1].content))


# --- If-Match -------------------------------------------------------------------------------


def test_a_weak_tag_in_if_match_never_matches_not_even_the_current_version(api: Served) -> None:
    candidate = register(api.app)
    path = f"/v1/candidates/{candidate}/erasure-request"
    head = api.head()
    weak = api.post(RECRUITER, path, {"reason": "asked"}, **{"If-Match": 'W/"1"'})
    body = problem(weak, 412, "version-mismatch")
    assert "weak tag" in body["detail"]
    assert api.head() == head
    strong = api.post(RECRUITER, path, {"reason": "asked"}, **{"If-Match": '"1"'})
    assert strong.status_code == 200, strong.text


def test_a_weak_tag_on_an_id_that_names_nothing_is_still_not_found(api: Served) -> None:
    r = api.post(
        RECRUITER,
        f"/v1/candidates/{uuid4()}/erasure-request",
        {"reason": "x"},
        **{"If-Match": 'W/"1"'},
    )
    problem(r, 404)


def test_if_match_on_a_creation_is_412_not_ignored(api: Served) -> None:
    story = consented_candidate(api.app)
    plan = {
        "candidate_id": str(story.candidate_id),
        "consent_id": str(story.consent_id),
        "purpose": PURPOSE,
        "checks": [{"check_type": "employment", "methods": ["phone"]}],
        "investigators": [INVESTIGATOR],
        "due_by": (api.app.clock() + timedelta(days=14)).isoformat(),
    }
    head = api.head()
    for path, body in (("/v1/candidates", {"name": "Li Lei"}), ("/v1/investigations", plan)):
        for tag in ("*", '"1"', 'W/"1"'):
            r = api.post(RECRUITER, path, body, **{"If-Match": tag})
            answer = problem(r, 412, "no-current-version")
            assert "creates its resource" in answer["detail"], (path, tag)
    assert api.head() == head
    assert api.post(RECRUITER, "/v1/investigations", plan).status_code == 201


def test_if_match_star_on_a_resource_that_is_there_applies(api: Served) -> None:
    candidate = register(api.app)
    path = f"/v1/candidates/{candidate}/erasure-request"
    r = api.post(RECRUITER, path, {"reason": "asked"}, **{"If-Match": "*"})
    assert r.status_code == 200, r.text


# --- a JSON body's members ------------------------------------------------------------------


def duplicated(api: Served, path: str, raw: bytes, name: str = RECRUITER) -> list[Any]:
    r = api.client.post(path, content=raw, headers=api.as_(name, **{"content-type": JSON}))
    errors = problem(r, 422, "validation")["errors"]
    return [(e["field"], e["rule"]) for e in errors]


def test_a_member_named_twice_is_422_naming_its_path(api: Served) -> None:
    candidate = register(api.app)
    head = api.head()
    assert duplicated(api, "/v1/candidates", b'{"name": "a", "name": "b"}') == [
        ("name", "duplicate_key")
    ]
    # the same name, once escaped: the same member
    assert duplicated(api, "/v1/candidates", b'{"name": "a", "n\\u0061me": "b"}') == [
        ("name", "duplicate_key")
    ]
    nested = (
        b'{"terms": {"purposes": ["pre-employment screening"], "purposes": ["marketing"],'
        b' "check_types": ["employment"], "categories": []}}'
    )
    assert duplicated(api, f"/v1/candidates/{candidate}/consents", nested) == [
        ("terms.purposes", "duplicate_key")
    ]
    in_a_list = (
        b'{"claims": [{"kind": "employment", "fields": [{"name": "employer", "category": '
        b'"user.employment", "value": "Acme", "value": "Initech"}]}]}'
    )
    assert duplicated(api, f"/v1/candidates/{candidate}/claims", in_a_list) == [
        ("claims.0.fields.0.value", "duplicate_key")
    ]
    assert api.head() == head


def test_the_evidence_export_refuses_a_member_named_twice_too(api: Served) -> None:
    candidate = register(api.app)
    raw = b'{"recipient": "county court", "recipient": "someone else", "purpose": "legal"}'
    path = f"/v1/candidates/{candidate}/evidence"
    assert duplicated(api, path, raw, COMPLIANCE) == [("recipient", "duplicate_key")]


# --- the query ------------------------------------------------------------------------------


def fields_and_rules(response: Any) -> list[tuple[str, str]]:
    return [(e["field"], e["rule"]) for e in problem(response, 422, "validation")["errors"]]


def test_an_unknown_or_repeated_query_parameter_is_422_naming_it(api: Served) -> None:
    typo = api.get(RECRUITER, "/v1/candidates", limt=5)
    assert fields_and_rules(typo) == [("limt", "unknown_parameter")]
    assert "cursor, limit, status" in typo.json()["errors"][0]["message"]
    twice = api.client.get("/v1/candidates?limit=5&limit=6", headers=api.as_(RECRUITER))
    assert fields_and_rules(twice) == [("limit", "repeated_parameter")]
    command = api.client.post(
        "/v1/candidates?dry_run=1", json={"name": "Li Lei"}, headers=api.as_(RECRUITER)
    )
    assert fields_and_rules(command) == [("dry_run", "unknown_parameter")]


def test_a_read_with_a_stray_parameter_is_refused_before_it_is_decided(api: Served) -> None:
    candidate = consented_candidate(api.app).candidate_id
    path = f"/v1/candidates/{candidate}/profile"
    head = api.head()
    twice = api.client.get(
        f"{path}?purpose=screening&purpose=marketing", headers=api.as_(RECRUITER)
    )
    assert fields_and_rules(twice) == [("purpose", "repeated_parameter")]
    stray = api.get(RECRUITER, path, purpose=PURPOSE, break_glas="x")
    assert fields_and_rules(stray) == [("break_glas", "unknown_parameter")]
    assert api.head() == head  # nothing decided, nothing recorded
    problem(api.client.get(f"{path}?purpose=x&purpose=y"), 401)  # the caller first


def test_every_api_operation_refuses_a_parameter_it_does_not_take(api: Served) -> None:
    candidate = register(api.app)
    api.portal(candidate)
    api.issue("service:intake", Role.SERVICE)
    callers = (COMPLIANCE, RECRUITER, INVESTIGATOR, REVIEWER, "service:intake")
    callers += (f"candidate:{candidate}",)
    document = api.client.get("/openapi.json").json()
    operations = [
        (method, path)
        for path, ops in document["paths"].items()
        for method in ops
        if path.startswith("/v1/")
    ] + [("get", "/v1/dashboard/stream")]
    assert len(operations) > 50
    for method, path in operations:
        url = re.sub(r"\{[a-z_]+\}", lambda _: str(uuid4()), path)
        for caller in callers:
            r = api.client.request(
                method.upper(), url, params={"zzz": "1"}, headers=api.as_(caller)
            )
            if r.status_code != 403:
                break
        errors = problem(r, 422, "validation")["errors"]
        assert ("zzz", "unknown_parameter") in [(e["field"], e["rule"]) for e in errors], url


# --- who before what ------------------------------------------------------------------------


def test_a_compliance_only_route_refuses_other_roles_before_judging_the_query(
    api: Served,
) -> None:
    for path, params in (
        ("/v1/audit/as-of", {"at": "yesterday"}),
        ("/v1/audit/violations", {"verbose": "1"}),
        ("/v1/audit/verification", {"at": "now"}),
        ("/v1/dashboard/refusals", {"day": "soon", "limit": "0"}),
    ):
        refused = api.client.get(path, params=params, headers=api.as_(RECRUITER))
        body = problem(refused, 403, "use-case-not-permitted")
        assert "errors" not in body, path
        told = api.client.get(path, params=params, headers=api.as_(COMPLIANCE))
        problem(told, 422, "validation")


def test_a_list_refuses_a_caller_who_may_not_list_before_judging_the_query(
    api: Served,
) -> None:
    candidate = register(api.app)
    api.portal(candidate)
    api.issue("hr:scoped", Role.RECRUITER, assignments=(candidate,))
    bad = {"limit": "0", "status": "nowhere"}
    problem(api.get(f"candidate:{candidate}", "/v1/candidates", **bad), 403)
    problem(api.get("hr:scoped", "/v1/reports", **bad), 403, "outside-assignments")
    problem(api.get(RECRUITER, "/v1/candidates", **bad), 422, "validation")
