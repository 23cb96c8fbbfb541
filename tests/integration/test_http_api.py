"""The HTTP API on both backends: every error class as problem+json, commands applied once per
Idempotency-Key, If-Match against the aggregate's version, and every read recorded under the
authenticated principal (never one the request names)."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from uuid import uuid4

import pytest

from infra.http.command_input import KEY_HEADER
from infra.http.idempotency import MAX_KEY, Kept
from infra.problem import MAX_DETAIL, MAX_ERRORS, MAX_FIELD, MAX_MESSAGE
from infra.store.server import StoreUnreachableError
from services.access import Role
from services.dto import ReadAccessLog
from tests.http import COMPLIANCE, Served, listening, problem
from tests.story import (
    INVESTIGATOR,
    PURPOSE,
    RECRUITER,
    portal_grant,
    terms_in,
)


def register(api: Served, name: str = "Li Lei") -> str:
    r = api.post(RECRUITER, "/v1/candidates", {"name": name, "email": "li.lei@example.com"})
    assert r.status_code == 201, r.text
    return str(r.json()["candidate_id"])


def consented(api: Served) -> tuple[str, str]:
    """A candidate who granted, from their portal link, the consent a recruiter asked for."""
    candidate = register(api)
    asked = api.post(
        RECRUITER,
        f"/v1/candidates/{candidate}/consents",
        {"terms": terms_in().model_dump(mode="json")},
    )
    assert asked.status_code == 201, asked.text
    consent = asked.json()["consent_id"]
    api.portal(candidate)
    start = api.app.clock()
    granted = api.post(
        f"candidate:{candidate}",
        f"/v1/consents/{consent}/grant",
        portal_grant(consent, start.isoformat(), (start + timedelta(days=90)).isoformat()),
    )
    assert granted.status_code == 200, granted.text
    return candidate, consent


def access_log(api: Served, candidate: str) -> list[dict[str, object]]:
    log = api.app.read_access_log(
        ReadAccessLog(
            candidate_id=candidate, principal=COMPLIANCE, role=Role.COMPLIANCE, purpose="audit"
        )
    )
    return [e.model_dump(mode="json") for e in log.entries]


def test_a_creation_answers_201_with_its_location_and_version(api: Served) -> None:
    r = api.post(RECRUITER, "/v1/candidates", {"name": "Li Lei"})
    assert r.status_code == 201, r.text
    candidate = r.json()["candidate_id"]
    assert r.headers["location"] == f"/v1/candidates/{candidate}/profile"
    assert r.headers["etag"] == '"1"'
    # every Location answers: the profile and the consents, read for a purpose
    asked = api.post(
        RECRUITER, f"/v1/candidates/{candidate}/consents", {"terms": terms_in().model_dump()}
    )
    assert asked.status_code == 201, asked.text
    assert asked.headers["location"] == f"/v1/candidates/{candidate}/consents"
    for location in (r.headers["location"], asked.headers["location"]):
        read = api.client.get(location, params={"purpose": PURPOSE}, headers=api.as_(COMPLIANCE))
        assert read.status_code != 404, (location, read.text)
        assert read.headers["content-type"].startswith("application/"), location


def test_a_read_is_recorded_under_the_authenticated_principal(api: Served) -> None:
    candidate, _ = consented(api)
    r = api.get(RECRUITER, f"/v1/candidates/{candidate}/profile", purpose=PURPOSE)
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] in ("allowed", "partial")
    reads = [e for e in access_log(api, candidate) if e["view"] == "profile"]
    assert [(e["principal"], e["role"], e["authentication"]) for e in reads] == [
        (RECRUITER, "recruiter", "token")
    ]


def test_no_credential_or_a_bad_one_is_401_with_a_challenge(api: Served) -> None:
    bare = api.client.post("/v1/candidates", json={"name": "Li Lei"})
    assert problem(bare, 401, "unauthenticated")
    assert bare.headers["www-authenticate"] == 'Bearer realm="backcheck"'
    for header in (
        "Bearer bck_" + "0" * 32 + "_" + "A" * 43,  # well formed, no such principal
        "Bearer not-a-token",
        "Basic dXNlcjpwYXNz",
        "Bearer " + api.tokens[RECRUITER][:-1] + "B",  # one character changed
    ):
        r = api.client.post("/v1/candidates", json={"name": "x"}, headers={"Authorization": header})
        body = problem(r, 401, "unauthenticated")
        assert api.tokens[RECRUITER] not in body["detail"]
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert api.head() == 4  # the four principals issued, nothing else


def test_a_revoked_token_signs_no_one_in(api: Served) -> None:
    from services.dto import RevokePrincipal

    assert api.get(RECRUITER, "/v1/me").status_code == 200
    api.app.revoke_principal(RevokePrincipal(name=RECRUITER, reason="left", actor="operator"))
    problem(api.get(RECRUITER, "/v1/me"), 401, "unauthenticated")


def test_a_refused_read_is_403_and_recorded(api: Served) -> None:
    candidate = register(api)  # no consent: the recruiter may not read the profile
    r = api.get(RECRUITER, f"/v1/candidates/{candidate}/profile", purpose=PURPOSE)
    body = problem(r, 403, "AccessRefused")
    assert "recorded" in body["detail"]
    refused = [e for e in access_log(api, candidate) if e["outcome"] == "refused"]
    assert [(e["principal"], e["authentication"]) for e in refused] == [(RECRUITER, "token")]


def test_a_role_that_may_not_run_a_command_is_403_and_nothing_is_recorded(api: Served) -> None:
    head = api.head()
    problem(api.post(INVESTIGATOR, "/v1/candidates", {"name": "x"}), 403, "use-case-not-permitted")
    assert api.head() == head


def test_an_unknown_id_is_404(api: Served) -> None:
    r = api.get(INVESTIGATOR, f"/v1/investigations/{uuid4()}", purpose=PURPOSE)
    problem(r, 404)
    problem(api.client.get("/v1/nowhere", headers=api.as_(RECRUITER)), 404, "not-found")


def test_an_unknown_id_sent_with_a_command_is_404_naming_the_field_that_held_it(
    api: Served,
) -> None:
    """The id came in the path (its parameter's name is the field) or in the body; a 404
    said `field` for neither, so a client could not tell which of its ids names nothing."""
    in_path = api.post(
        RECRUITER,
        f"/v1/candidates/{uuid4()}/consents",
        {"terms": terms_in().model_dump(mode="json")},
    )
    assert problem(in_path, 404, "AggregateMissing")["field"] == "candidate_id"
    candidate = register(api)
    in_body = api.post(
        RECRUITER,
        "/v1/investigations",
        {
            "candidate_id": candidate,
            "consent_id": str(uuid4()),
            "purpose": PURPOSE,
            "checks": [{"check_type": "employment", "methods": ["phone"]}],
            "investigators": [INVESTIGATOR],
            "due_by": (api.app.clock() + timedelta(days=14)).isoformat(),
        },
    )
    assert problem(in_body, 404, "AggregateMissing")["field"] == "consent_id"
    read = api.get(INVESTIGATOR, f"/v1/investigations/{uuid4()}", purpose=PURPOSE)
    assert problem(read, 404, "AggregateMissing")["field"] == "investigation_id"


def test_an_unknown_id_is_told_over_http_with_the_route_that_lists_its_kind(
    api: Served,
) -> None:
    """An API client is told where its API lists the ids of that kind, never a command of the
    operator's machine (review, fourteenth session: every 404 said "list with `backcheck
    events`")."""
    nobody = uuid4()
    answers = {
        "candidate": api.get(COMPLIANCE, f"/v1/candidates/{nobody}/profile", purpose=PURPOSE),
        "investigation": api.get(INVESTIGATOR, f"/v1/investigations/{nobody}", purpose=PURPOSE),
        "report": api.get(COMPLIANCE, f"/v1/reports/{nobody}", purpose=PURPOSE),
        "consent": api.post(RECRUITER, f"/v1/consents/{nobody}/expiry"),
    }
    listed = {
        "candidate": "`GET /v1/candidates`",
        "investigation": "`GET /v1/investigations`",
        "report": "`GET /v1/reports`",
        "consent": "`GET /v1/candidates/{candidate_id}/consents`",
    }

    for kind, answer in answers.items():
        detail = problem(answer, 404, "AggregateMissing")["detail"]
        assert detail == f"no {kind} with id {nobody}; check the id (list with {listed[kind]})"
        assert "backcheck" not in detail


def test_a_broken_rule_is_409_and_records_nothing(api: Served) -> None:
    candidate = register(api)
    first = api.post(RECRUITER, f"/v1/candidates/{candidate}/erasure-request", {"reason": "asked"})
    assert first.status_code == 200, first.text
    head = api.head()
    again = api.post(RECRUITER, f"/v1/candidates/{candidate}/erasure-request", {"reason": "again"})
    body = problem(again, 409, "ErasureAlreadyRequested")
    assert body["rule"] == "ErasureAlreadyRequested"
    assert api.head() == head


def test_if_match_on_another_version_is_412_and_the_right_one_applies(api: Served) -> None:
    candidate = register(api)
    path = f"/v1/candidates/{candidate}/erasure-request"
    head = api.head()
    stale = api.post(RECRUITER, path, {"reason": "asked"}, **{"If-Match": '"7"'})
    body = problem(stale, 412, "version-mismatch")
    assert "version 1, not 7" in body["detail"]
    assert api.head() == head
    fresh = api.post(RECRUITER, path, {"reason": "asked"}, **{"If-Match": '"1"'})
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["etag"] == '"2"'
    problem(api.post(RECRUITER, path, {"reason": "x"}, **{"If-Match": "yesterday"}), 422)


def test_the_document_says_how_to_authenticate_every_operation_that_can_answer_401(
    api: Served,
) -> None:
    document = api.client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert (schemes["portalSession"]["type"], schemes["portalSession"]["in"]) == (
        "apiKey",
        "cookie",
    )
    guarded = {
        (path, method): op
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if "401" in op["responses"]
    }
    assert len(guarded) > 40
    # opening the portal's session takes the link's token, never the cookie it sets
    own = {("/portal/session", "post"): [{"bearer": []}]}
    both = [{"bearer": []}, {"portalSession": []}]
    assert all(op["security"] == own.get(key, both) for key, op in guarded.items())


def test_the_document_has_the_dashboard_stream_and_the_portal_session(api: Served) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    stream = paths["/v1/dashboard/stream"]
    assert set(stream) == {"get"}
    answers = stream["get"]["responses"]
    assert set(answers["200"]["content"]) == {"text/event-stream"}
    assert "summary" in answers["200"]["description"]
    assert {"401", "403", "422", "503"} <= set(answers)
    session = paths["/portal/session"]
    assert set(session) == {"post", "delete"}  # no GET: /v1/me says who a session is
    opened = session["post"]
    assert opened["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PortalSession"
    }
    assert "Set-Cookie" in opened["responses"]["200"]["headers"]
    assert {"401", "403", "503"} <= set(opened["responses"])
    closed = session["delete"]
    assert set(closed["responses"]) == {"204", "403", "503"}  # 503: the sign-out not recorded
    for operation in (opened, closed):
        [header] = [p for p in operation["parameters"] if p["in"] == "header"]
        assert (header["name"], header["required"]) == ("X-Backcheck-Portal", True)
        assert operation["description"]


def test_a_body_over_the_limit_is_413(api: Served) -> None:
    head = api.head()
    r = api.client.post(
        "/v1/candidates",
        content=b'{"name": "' + b"x" * 2_000_000 + b'"}',
        headers=api.as_(RECRUITER, **{"content-type": "application/json"}),
    )
    problem(r, 413, "body-too-large")
    assert api.head() == head


def test_invalid_input_is_422_naming_each_field_and_rule(api: Served) -> None:
    r = api.post(RECRUITER, "/v1/candidates", {"name": "", "email": "x" * 3000, "nick": "y"})
    body = problem(r, 422, "validation")
    rules = {(e["field"], e["rule"]) for e in body["errors"]}
    assert rules == {
        ("name", "string_too_short"),
        ("email", "string_too_long"),
        ("nick", "extra_forbidden"),
    }
    bad_json = api.client.post(
        "/v1/candidates",
        content=b"{not json",
        headers=api.as_(RECRUITER, **{"content-type": "application/json"}),
    )
    problem(bad_json, 422, "validation")


def test_an_unknown_key_is_named_in_the_problem_bounded_however_long_it_is(api: Served) -> None:
    """A body's unknown key is the sender's text: a 1 MB one was repeated whole, twice (in
    `errors` and the detail). It is cut at MAX_FIELD characters, and past MAX_ERRORS fields
    the rest are counted, not listed; nothing is recorded."""
    head = api.head()
    long_key = "k" * 1_000_000
    extra = {f"unknown{i:03d}": 1 for i in range(MAX_ERRORS + 20)}

    r = api.post(RECRUITER, "/v1/candidates", {long_key: 1, "name": "Li Lei", **extra})

    body = problem(r, 422, "validation")
    fields = [e["field"] for e in body["errors"]]
    assert "k" * MAX_FIELD + "..." in fields
    assert len(fields) == MAX_ERRORS
    assert all(len(f) <= MAX_FIELD + 3 for f in fields)
    assert len(r.content) < 20_000
    assert body["detail"].endswith("more field(s) not listed")
    assert api.head() == head


def test_a_100_kb_string_sent_in_a_field_is_answered_with_a_small_problem(api: Served) -> None:
    """A message may repeat what was sent: a member named twice, or a query parameter the
    operation does not take, was quoted whole in its message, so a 100 kB name came back
    twice (in `errors` and the detail). Each message is cut at MAX_MESSAGE characters and the
    detail at MAX_DETAIL, the field still named (cut at MAX_FIELD) with its rule; a 100 kB
    value is refused by the field's own bound; nothing is recorded."""
    head = api.head()
    long = "k" * 100_000
    sent = {
        "member named twice": api.client.post(
            "/v1/candidates",
            content=f'{{"name": "Li Lei", "{long}": 1, "{long}": 2}}'.encode(),
            headers=api.as_(RECRUITER, **{"content-type": "application/json"}),
        ),
        "query parameter": api.client.get(
            "/v1/candidates",
            params={long[:50_000]: "1"},  # a URL's own bound: 64 kB in the test client
            headers=api.as_(RECRUITER),
        ),
        "value": api.post(RECRUITER, "/v1/candidates", {"name": long}),
    }
    rules = {"member named twice": "duplicate_key", "query parameter": "unknown_parameter"}

    for what, r in sent.items():
        body = problem(r, 422, "validation")
        assert len(r.content) < 2_000, (what, len(r.content))
        [error] = body["errors"]
        field = "name" if what == "value" else "k" * MAX_FIELD + "..."
        assert error["field"] == field, what
        assert error["rule"] == rules.get(what, "string_too_long"), what
        assert len(error["message"]) <= MAX_MESSAGE + 3, what
        assert body["detail"].startswith(f"field {field}: "), what
        assert len(body["detail"]) <= MAX_DETAIL, what
    assert "more than once" in sent["member named twice"].json()["errors"][0]["message"]
    assert "takes no such parameter" in sent["query parameter"].json()["errors"][0]["message"]
    assert "at most 2000 characters" in sent["value"].json()["errors"][0]["message"]
    assert api.head() == head


def test_a_json_body_that_is_not_utf8_is_422_not_an_undocumented_400(api: Served) -> None:
    """Found by the stateful schemathesis run: FastAPI answered 400 ("There was an error
    parsing the body"), a status no operation documents, for bytes that cannot be text."""
    head = api.head()
    for path in ("/v1/candidates", f"/v1/consents/{uuid4()}/expiry"):  # body required, optional
        r = api.client.post(
            path,
            content=b"\x1d\xef\xbf\xbdl\x10\xff",
            headers=api.as_(RECRUITER, **{"content-type": "application/json"}),
        )
        body = problem(r, 422, "validation")
        assert body["errors"] == [
            {"field": "(body)", "rule": "json_invalid", "message": body["errors"][0]["message"]}
        ]
        assert "UTF-8" in body["errors"][0]["message"]
    assert api.head() == head


def test_an_idempotency_key_applies_a_command_once_and_replays_its_answer(api: Served) -> None:
    body = {"name": "Li Lei"}
    first = api.post(RECRUITER, "/v1/candidates", body, **{"Idempotency-Key": "ats-7"})
    assert first.status_code == 201, first.text
    head = api.head()
    again = api.post(RECRUITER, "/v1/candidates", body, **{"Idempotency-Key": "ats-7"})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"] == '"1"'
    assert again.headers["idempotent-replayed"] == "true"
    assert api.head() == head
    other = api.post(RECRUITER, "/v1/candidates", {"name": "Wu"}, **{"Idempotency-Key": "ats-7"})
    problem(other, 422, "idempotency-key-reused")
    assert api.head() == head


def test_a_key_whose_kept_answer_expired_is_still_never_applied_twice(api: Served) -> None:
    """The kept answers are a convenience; the receipt stored with the events is the guard."""
    body = {"name": "Li Lei"}
    first = api.post(RECRUITER, "/v1/candidates", body, **{"Idempotency-Key": "ats-8"})
    assert first.status_code == 201, first.text
    head = api.head()
    api.kept.ttl = timedelta(0)  # the kept answer has expired
    again = api.post(RECRUITER, "/v1/candidates", body, **{"Idempotency-Key": "ats-8"})
    problem(again, 409, "CommandAlreadyApplied")
    assert api.head() == head


def _answers_lost_once(api: Served, monkeypatch: pytest.MonkeyPatch) -> list[Kept]:
    """The kept answers' store goes away once, after a command's write and before its answer
    is kept (as a server stopped there would leave it): the answer it was to keep is noted."""
    keep, lost = api.kept.put, []

    def put(principal: str, key: str, kept: Kept) -> None:
        if kept.status >= 200 and not lost:
            lost.append(kept)
            raise StoreUnreachableError("the kept answers' store does not answer")
        keep(principal, key, kept)

    monkeypatch.setattr(api.kept, "put", put)
    return lost


def test_a_keyed_command_whose_answer_was_lost_after_its_write_is_answered_as_applied(
    api: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its retry with the same key found the receipt and no kept answer, and was answered 409
    CommandAlreadyApplied, though the write was that very request's."""
    lost = _answers_lost_once(api, monkeypatch)
    body = {"name": "Li Lei"}
    first = api.post(RECRUITER, "/v1/candidates", body, **{"Idempotency-Key": "ats-9"})
    assert first.status_code == 201, first.text  # answered, though its answer was not kept
    candidate = json.loads(lost[0].body)["candidate_id"]  # the write was made
    head = api.head()

    again = api.post(RECRUITER, "/v1/candidates", body, **{"Idempotency-Key": "ats-9"})

    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == f"/v1/candidates/{candidate}/profile"
    assert again.headers["etag"] == '"1"'
    answer = again.json()
    assert answer["outcome"] == "applied-before"
    assert answer["command_type"] == "register-candidate"
    assert f"{candidate}:1" in [e["id"] for e in answer["events"]]
    assert answer["receipt"]["id"].endswith(":1")
    assert api.head() == head  # nothing applied again
    assert api.post(RECRUITER, "/v1/candidates", body, **{"Idempotency-Key": "ats-9"}).json() == (
        answer
    )
    other = api.post(RECRUITER, "/v1/candidates", {"name": "Wu"}, **{"Idempotency-Key": "ats-9"})
    problem(other, 422, "idempotency-key-reused")
    assert api.head() == head


def test_a_keyed_command_on_a_path_whose_answer_was_lost_is_answered_with_its_route_s_status(
    api: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    candidate = register(api)
    lost = _answers_lost_once(api, monkeypatch)
    terms = {"terms": terms_in().model_dump(mode="json")}
    path = f"/v1/candidates/{candidate}/consents"
    assert api.post(RECRUITER, path, terms, **{"Idempotency-Key": "q-1"}).status_code == 201
    consent = json.loads(lost[0].body)["consent_id"]
    erasure = f"/v1/candidates/{candidate}/erasure-request"
    lost.clear()
    reason = {"reason": "asked"}
    assert api.post(RECRUITER, erasure, reason, **{"Idempotency-Key": "e-1"}).status_code == 200
    head = api.head()

    asked = api.post(RECRUITER, path, terms, **{"Idempotency-Key": "q-1"})
    erased = api.post(RECRUITER, erasure, reason, **{"Idempotency-Key": "e-1"})

    assert asked.status_code == 201, asked.text
    assert asked.headers["location"] == f"/v1/candidates/{candidate}/consents"
    assert f"{consent}:1" in [e["id"] for e in asked.json()["events"]]
    assert erased.status_code == 200, erased.text
    assert "location" not in erased.headers
    assert erased.json()["outcome"] == "applied-before"
    assert erased.headers["idempotent-replayed"] == "true"
    assert api.head() == head


def _raw_post(url: str, token: str, header: bytes) -> tuple[int, str]:
    """POST a registration with `header` written as given (an HTTP client would not send a
    value with spaces around it): the status and body uvicorn answers."""
    body = b'{"name": "Li Lei"}'
    host, _, port = url.removeprefix("http://").partition(":")
    request = b"\r\n".join(
        (
            b"POST /v1/candidates HTTP/1.1",
            b"Host: " + host.encode(),
            b"Content-Type: application/json",
            b"Authorization: Bearer " + token.encode(),
            header,
            b"Content-Length: " + str(len(body)).encode(),
            b"Connection: close",
            b"",
            body,
        )
    )
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, text = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), text.decode()


def test_an_empty_idempotency_key_is_refused_not_taken_as_no_key(api: Served) -> None:
    """`Idempotency-Key:` with nothing after it (or only spaces) is a key gone missing, not a
    command sent without one: taken as none, the same body sent twice would make two
    candidates. It is refused as an over-long key is, 422 naming the header and the rule,
    over a real connection too; nothing is applied."""
    head = api.head()
    body = {"name": "Li Lei"}

    def refused(status: int, text: str) -> None:
        assert status == 422, text
        sent = json.loads(text)
        assert sent["type"].endswith("/validation")
        assert [(e["field"], e["rule"]) for e in sent["errors"]] == [
            (KEY_HEADER, "string_too_short")
        ]
        assert "an empty one is refused, not taken as no key" in sent["detail"]

    with listening(api) as url:
        for value in (b"", b"   ", b"\t"):
            for _ in range(2):
                r = api.client.post(
                    "/v1/candidates",
                    json=body,
                    headers=api.as_(RECRUITER, **{KEY_HEADER: value.decode()}),
                )
                refused(r.status_code, r.text)
                refused(*_raw_post(url, api.tokens[RECRUITER], KEY_HEADER.encode() + b":" + value))
    too_long = api.post(RECRUITER, "/v1/candidates", body, **{KEY_HEADER: "k" * (MAX_KEY + 1)})
    assert [(e["field"], e["rule"]) for e in problem(too_long, 422, "validation")["errors"]] == [
        (KEY_HEADER, "string_too_long")
    ]
    assert api.head() == head


def test_the_same_key_from_two_principals_is_two_commands(api: Served) -> None:
    api.issue("hr:zhou", Role.RECRUITER)
    a = api.post(RECRUITER, "/v1/candidates", {"name": "A"}, **{"Idempotency-Key": "k"})
    b = api.post("hr:zhou", "/v1/candidates", {"name": "B"}, **{"Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 201
    assert a.json()["candidate_id"] != b.json()["candidate_id"]


def test_a_method_no_route_of_the_path_takes_is_405_naming_those_they_take(api: Served) -> None:
    candidate = register(api)
    for path, allowed in (
        ("/v1/candidates", "GET, HEAD, POST"),  # the list and the registration: two routes
        (f"/v1/candidates/{candidate}/consents", "GET, HEAD, POST"),
        (f"/v1/candidates/{candidate}/profile", "GET, HEAD"),  # HEAD: wherever GET is
    ):
        r = api.client.delete(path, headers=api.as_(RECRUITER))
        problem(r, 405, "method-not-allowed")
        assert r.headers["allow"] == allowed, path
