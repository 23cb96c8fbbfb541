"""A command's caller is checked before anything of its request is parsed, on both backends.

Without a valid token a command is a 401 whatever its body, path or headers say: the caller
learns nothing of the body's rules, and the server parses none of it. A caller with a valid
token whose role may not run the command is a 403, also before the body is looked at. Only
a caller who may run it is told, with 422, which field broke which rule."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from infra.http import routes
from services.dto import RevokePrincipal
from tests.http import COMPLIANCE, Served, problem
from tests.story import INVESTIGATOR, RECRUITER, register, request_consent

PORTAL = {"X-Backcheck-Portal": "1"}
JSON = {"content-type": "application/json"}
NOT_JSON = b"{not json"
# (path, body bytes): a body that is not JSON, one that is not UTF-8, one that breaks the
# DTO's rules, and a required body left out; an id that is no id; each on a command route
MALFORMED = (
    ("/v1/candidates", NOT_JSON),
    ("/v1/candidates", b"\x1d\xef\xbf\xbdl\x10\xff"),
    ("/v1/candidates", b'{"name": "", "actor": "compliance:wu.min", "role": "compliance"}'),
    ("/v1/candidates", b""),
    ("/v1/candidates/not-an-id/consents", NOT_JSON),
    (f"/v1/consents/{uuid4()}/expiry", NOT_JSON),
)


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths whose command requests were parsed (infra/http/command_input.py)."""
    seen: list[str] = []
    read = routes.read_command

    def counting(request: Any, *args: Any) -> Any:
        seen.append(request.url.path)
        return read(request, *args)

    monkeypatch.setattr(routes, "read_command", counting)
    return seen


def test_a_command_without_a_credential_is_401_before_its_body_is_parsed(
    api: Served, parsed: list[str]
) -> None:
    head = api.head()
    for path, body in MALFORMED:
        r = api.client.post(path, content=body, headers=JSON)
        problem(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"] == 'Bearer realm="backcheck"', path
        assert "errors" not in r.json()
    bad_key = api.client.post(
        "/v1/candidates", content=NOT_JSON, headers={**JSON, "Idempotency-Key": "a key"}
    )
    problem(bad_key, 401, "unauthenticated")
    assert parsed == []
    assert api.head() == head


def test_a_command_with_a_wrong_token_is_401_before_its_body_is_parsed(
    api: Served, parsed: list[str]
) -> None:
    head = api.head()
    unknown = "bck_" + "0" * 32 + "_" + "A" * 43
    changed = api.tokens[RECRUITER][:-1] + ("B" if api.tokens[RECRUITER][-1] != "B" else "C")
    for token in (unknown, changed, "not-a-token"):
        for path, body in MALFORMED:
            r = api.client.post(
                path, content=body, headers={**JSON, "Authorization": f"Bearer {token}"}
            )
            answer = problem(r, 401, "unauthenticated")
            assert 'error="invalid_token"' in r.headers["www-authenticate"]
            assert "errors" not in answer
            assert api.tokens[RECRUITER] not in answer["detail"]
    assert parsed == []
    assert api.head() == head


def test_a_revoked_token_is_401_whatever_the_body(api: Served, parsed: list[str]) -> None:
    api.app.revoke_principal(RevokePrincipal(name=RECRUITER, reason="left", actor="operator"))
    r = api.client.post("/v1/candidates", content=NOT_JSON, headers=api.as_(RECRUITER, **JSON))
    assert "revoked" in problem(r, 401, "unauthenticated")["detail"]
    assert parsed == []


def test_a_valid_token_with_a_body_that_is_not_json_is_422_naming_the_rule(
    api: Served,
) -> None:
    head = api.head()
    r = api.client.post("/v1/candidates", content=NOT_JSON, headers=api.as_(RECRUITER, **JSON))
    body = problem(r, 422, "validation")
    assert body["rule"] == "validation"
    [error] = body["errors"]
    assert (error["field"], error["rule"]) == ("(body)", "json_invalid")
    assert error["message"].startswith("the body is not JSON: ")
    assert api.head() == head


def test_a_valid_token_is_told_every_broken_field_of_path_headers_and_body(api: Served) -> None:
    r = api.client.post(
        "/v1/candidates/not-an-id/consents",
        json={"terms": {}, "actor": "someone else"},
        headers=api.as_(RECRUITER, **{"Idempotency-Key": "a key", "If-Match": "yesterday"}),
    )
    body = problem(r, 422, "validation")
    rules = {(e["field"], e["rule"]) for e in body["errors"]}
    assert ("candidate_id", "uuid_parsing") in rules
    assert ("Idempotency-Key", "string_pattern_mismatch") in rules
    assert ("If-Match", "string_pattern_mismatch") in rules
    assert ("actor", "extra_forbidden") in rules
    assert any(f.startswith("terms.") and rule == "missing" for f, rule in rules)
    missing = api.client.post("/v1/candidates", headers=api.as_(RECRUITER))
    assert [(e["field"], e["rule"]) for e in problem(missing, 422)["errors"]] == [
        ("(body)", "missing")
    ]
    form = api.client.post(
        "/v1/candidates", content=b"name=x", headers=api.as_(RECRUITER, **{"content-type": "a/b"})
    )
    # not JSON at all: not read, so no field of it is judged (test_http_protocol.py)
    assert problem(form, 415, "unsupported-media-type")["rule"] == "unsupported-media-type"


def test_a_role_that_may_not_run_the_command_is_403_before_its_body_is_parsed(
    api: Served, parsed: list[str]
) -> None:
    head = api.head()
    r = api.client.post("/v1/candidates", content=NOT_JSON, headers=api.as_(INVESTIGATOR, **JSON))
    problem(r, 403, "use-case-not-permitted")
    assert parsed == []
    assert api.head() == head


def test_a_body_over_the_limit_is_413_before_anything_else(api: Served) -> None:
    """The bound on bodies stands in front of every route (infra/http/bodies.py): a declared
    length over it is refused unread, with or without a token."""
    big = b'{"name": "' + b"x" * 2_000_000 + b'"}'
    for headers in (JSON, api.as_(RECRUITER, **JSON)):
        problem(api.client.post("/v1/candidates", content=big, headers=headers), 413)


def test_the_portal_cookie_is_a_credential_only_with_the_portal_header(api: Served) -> None:
    candidate = register(api.app)
    consent = request_consent(api.app, candidate)
    token = api.portal(candidate)
    opened = api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {token}", **PORTAL}
    )
    assert opened.status_code == 200, opened.text
    path = f"/v1/consents/{consent}/withdrawal"
    head = api.head()
    no_header = api.client.post(path, content=NOT_JSON, headers=JSON)
    problem(no_header, 403, "portal-header-missing")
    with_header = api.client.post(path, content=NOT_JSON, headers={**JSON, **PORTAL})
    [error] = problem(with_header, 422, "validation")["errors"]
    assert error["rule"] == "json_invalid"
    assert api.head() == head
    withdrawn = api.client.post(path, json={"reason": "changed my mind"}, headers=PORTAL)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    api.app.revoke_principal(
        RevokePrincipal(name=f"candidate:{candidate}", reason="leaked", actor="operator")
    )
    after = api.client.post(path, content=NOT_JSON, headers={**JSON, **PORTAL})
    problem(after, 401, "unauthenticated")


def test_the_evidence_export_checks_its_caller_before_its_body_too(api: Served) -> None:
    """The one route FastAPI itself serves with a body (infra/http/compliance.py)."""
    candidate = register(api.app)
    path = f"/v1/candidates/{candidate}/evidence"
    head = api.head()
    problem(api.client.post(path, content=NOT_JSON, headers=JSON), 401, "unauthenticated")
    wrong = {**JSON, "Authorization": "Bearer bck_" + "0" * 32 + "_" + "A" * 43}
    problem(api.client.post(path, content=NOT_JSON, headers=wrong), 401, "unauthenticated")
    problem(
        api.client.post("/v1/candidates/x/evidence", content=NOT_JSON, headers=JSON),
        401,
        "unauthenticated",
    )
    refused = api.client.post(path, content=NOT_JSON, headers=api.as_(RECRUITER, **JSON))
    problem(refused, 403, "use-case-not-permitted")
    told = api.client.post(path, content=NOT_JSON, headers=api.as_(COMPLIANCE, **JSON))
    assert [e["rule"] for e in problem(told, 422, "validation")["errors"]] == ["json_invalid"]
    assert api.head() == head
