"""Errors as RFC 9457 problem+json: one body for every failure an HTTP client can meet.

The status, title and kind come from the problem table the command line reports by
(infra/problem.py); the `type` is an absolute URI naming the kind, stable across hosts:
`tag:backcheck.invalid,2026:problems/<kind>` (RFC 4151 tag URIs: names, not links). Invalid
input lists each field with the rule it broke. Anything the table does not know is a bug:
logged with its traceback on the server, answered as a 500 problem without one. A problem
the table knows that is the server's (5xx: the views failed, the store full, busy or away) is
logged too, one line at error level naming it, the request and the detail, no traceback: the
client is told, and so is whoever runs the server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from infra.problem import (
    EX_CONFIG,
    MAX_DETAIL,
    MAX_ERRORS,
    bounded,
    field_name,
    invalid_detail,
    problem_for,
    told_away_from_the_store,
)
from infra.problem import problem_type as problem_type

PROBLEM_JSON = "application/problem+json"
MAX_LOGGED = 1_000  # characters of a problem's detail in the server's log line, then "..."
log = logging.getLogger("backcheck.http")


PROBLEMS_DOC = """
Problem types (each `tag:backcheck.invalid,2026:problems/` followed by the kind):

| status | kind | when |
|---|---|---|
| 401 | `unauthenticated` | no bearer token, or one that is unknown, revoked or expired |
| 403 | `AccessRefused` | the access policies refused the read; the refusal is recorded |
| 403 | `use-case-not-permitted` | your role may not run this command |
| 403 | `outside-assignments` | your token is scoped to other subjects |
| 403 | `not-a-portal-link` | only a candidate's portal link opens a portal session |
| 403 | `portal-header-missing` | a cookie call, sign-in or sign-out lacks `X-Backcheck-Portal: 1` |
| 404 | `not-found`, `AggregateMissing`, … | no such resource (`field`: what held its id) |
| 409 | the rule's name, e.g. `ConsentNotActive` | a business rule refused the command |
| 409 | `CommandAlreadyApplied` | this key's command was applied (a retry after 24 h, or a race) |
| 412 | `version-mismatch` | `If-Match` names a version no longer current, or a weak tag |
| 412 | `no-current-version` | `If-Match` on a command that creates its resource |
| 413 | `body-too-large` | the body is over the server's limit |
| 415 | `unsupported-media-type` | a body sent without `Content-Type: application/json` |
| 422 | `validation`, `InvalidInput` (a cursor, …): each with `errors` | field, rule, message |
| 422 | `idempotency-key-reused` | the key was sent before with another request |
| 500 | `views-failed` | the kept views could not catch up, or lack a table; no `Retry-After` |
| 500 | `chain-broken`, `unknown-event-type` | records stored around the recorder: `audit verify` |
| 503 | `store-unreachable`, `store-busy` | try again (`Retry-After`) |
| 503 | `too-many-streams` | the dashboard's live streams are all taken; try again (`Retry-After`) |
| 503 | `config`, `wrong-master-key`, … | the server's settings cannot be used; no `Retry-After` |
"""


def problem_body(
    status: int,
    title: str,
    kind: str,
    detail: str,
    request: Request | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A problem's members (RFC 9457), as `problem_response` answers them."""
    body: dict[str, Any] = {
        "type": problem_type(kind),
        "title": title,
        "status": status,
        "detail": bounded(detail, MAX_DETAIL),  # it may quote what was sent
    }
    if request is not None:
        body["instance"] = request.url.path
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def problem_response(
    status: int,
    title: str,
    kind: str,
    detail: str,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(status, title, kind, detail, request, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return field_name(parts)


# pydantic's words for these name the server's own class ("… instance of GiveFeedbackBody")
_WORDED = {"model_type": "must be a JSON object", "model_attributes_type": "must be a JSON object"}


def field_errors(errors: list[Any]) -> list[dict[str, str]]:
    """Each broken field with its rule (pydantic's error type) and what it says, its message
    cut at MAX_MESSAGE characters (it may quote what was sent; pydantic's `input` is never
    repeated)."""
    return [
        {
            "field": _field(e.get("loc", ())),
            "rule": str(e.get("type", "")),
            "message": bounded(_WORDED.get(str(e.get("type", "")), e["msg"])),
        }
        for e in errors
    ]


def _invalid_body(request: Request, errors: list[dict[str, str]]) -> dict[str, Any]:
    listed = errors[:MAX_ERRORS]
    detail = invalid_detail(((e["field"], e["message"]) for e in listed), errors)
    return problem_body(
        422, "Invalid input", "validation", detail, request, rule="validation", errors=listed
    )


def invalid(request: Request, errors: list[dict[str, str]]) -> JSONResponse:
    """The 422 of invalid input: its first MAX_ERRORS fields listed, the rest counted."""
    return JSONResponse(_invalid_body(request, errors), status_code=422, media_type=PROBLEM_JSON)


@dataclass(frozen=True)
class ErrorProblem:
    """The problem an error is answered with: its status, its members, its headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] | None = None


def error_problem(
    request: Request, error: Exception, *, answered: str = "answered"
) -> ErrorProblem:
    """The problem for an expected error, by its row in the problem table; a 500 for a bug.
    The server's own (5xx) is logged: a bug with its traceback, one the table knows in one
    line naming the request, how it was `answered` and the problem."""
    if isinstance(error, ValidationError):
        return ErrorProblem(422, _invalid_body(request, field_errors(list(error.errors()))))
    error = told_away_from_the_store(error)  # an unknown id: the route that lists its kind
    breaker = getattr(request.app.state, "breaker", None)
    if breaker is not None:
        breaker.saw(error)  # infra/http/breaker.py: a store gone is said at once from now on
    problem = problem_for(error)
    if problem is None:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return ErrorProblem(
            500,
            problem_body(
                500,
                "Internal error",
                "internal",
                "the server met an error it does not know; nothing about it is in this "
                "answer, and it is in the server's log",
                request,
            ),
        )
    if problem.status >= 500:
        log.error(
            "%s %s %s %d %s: %s",
            request.method,
            request.url.path,
            answered,
            problem.status,
            problem.type,
            bounded(" ".join(problem.detail.split()), MAX_LOGGED),  # one line
        )
    # a configuration error is 503 too, but waiting cures nothing: no Retry-After
    retry = problem.status == 503 and problem.exit_code != EX_CONFIG
    field = problem.field
    # invalid input always lists its fields as `errors`, whichever check found it (a cursor, a
    # pair of filters, a stated principal): a client reads one shape for every 422
    listed = (
        [{"field": field, "rule": problem.type, "message": bounded(problem.detail)}]
        if field is not None and problem.status == 422
        else None
    )
    body = problem_body(
        problem.status,
        problem.title,
        problem.type,
        problem.detail,
        request,
        rule=problem.type,
        field=field,
        errors=listed,
    )
    return ErrorProblem(problem.status, body, {"Retry-After": "5"} if retry else None)


def error_response(request: Request, error: Exception) -> JSONResponse:
    """The problem for an expected error, by its row in the problem table; a 500 for a bug
    (`error_problem`, which logs the server's own)."""
    answer = error_problem(request, error)
    return JSONResponse(
        answer.body, status_code=answer.status, media_type=PROBLEM_JSON, headers=answer.headers
    )


_NOT_UTF8 = {
    "field": "(body)",
    "rule": "json_invalid",
    "message": "the body is not JSON: JSON is text in UTF-8 (RFC 8259), and these bytes are not",
}


def _allowed(request: Request) -> str:
    """The methods every route of the path takes (Starlette names those of the first route
    that matched it alone: `DELETE /v1/candidates` was told POST, though GET lists them);
    HEAD wherever GET is (infra/http/head.py answers it)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if (
            isinstance(route, Route)
            and route.methods
            and route.matches(request.scope)[0] != Match.NONE
        ):
            methods |= route.methods
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    """Every error the framework or the use cases raise, answered as problem+json."""

    async def on_request_invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return invalid(request, field_errors(list(error.errors())))

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        if isinstance(error.__cause__, UnicodeDecodeError):
            # FastAPI's 400 for a JSON body it cannot decode as text: invalid input, as a
            # body that is not JSON at all is (422, json_invalid)
            return invalid(request, [_NOT_UTF8])
        kind = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code, "http")
        headers = dict(error.headers) if error.headers else {}
        if error.status_code == 405:
            headers["Allow"] = _allowed(request)
        return problem_response(
            error.status_code,
            "Not found" if error.status_code == 404 else str(error.detail),
            kind,
            "no such resource" if error.status_code == 404 else str(error.detail),
            request,
            headers or None,
        )

    async def on_error(request: Request, error: Exception) -> JSONResponse:
        return error_response(request, error)

    app.add_exception_handler(RequestValidationError, on_request_invalid)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_error)
