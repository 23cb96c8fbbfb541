"""The OpenAPI document's problem examples: one per status, each the body the API answers
(tests/integration/test_http_examples.py provokes each and compares), about Li Lei's check
(infra/http/examples.py)."""

from __future__ import annotations

from typing import Any

from fastapi.openapi.models import Example

from infra.http.examples import CANDIDATE_ID, CONSENT_ID, JSON
from infra.http.problems import problem_type


def _problem(status: int, title: str, kind: str, detail: str, path: str, **more: Any) -> JSON:
    return {
        "type": problem_type(kind),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": path,
        **more,
    }


_CANDIDATE = f"/v1/candidates/{CANDIDATE_ID}"
_INVESTIGATION = "/v1/investigations/0e4d8c2b-7a61-4f3e-9b05-3c8a1d6e2f54"
_UNKNOWN = "/v1/candidates/7d2e9f40-1b3c-4a5d-8e6f-9a0b1c2d3e65"

# status -> (summary, problem body), as the API answers them
PROBLEMS: dict[int, tuple[str, JSON]] = {
    401: (
        "no bearer token",
        _problem(
            401,
            "Unauthenticated",
            "unauthenticated",
            "no credential: send `Authorization: Bearer <token>`",
            f"{_CANDIDATE}/consents",
        ),
    ),
    403: (
        "a read the access policies refused (the refusal is recorded)",
        _problem(
            403,
            "Forbidden",
            "AccessRefused",
            f"reading the profile of candidate {CANDIDATE_ID} was refused "
            "(no-read-without-active-consent); the refusal was recorded",
            f"{_CANDIDATE}/profile",
            rule="AccessRefused",
        ),
    ),
    404: (
        "no such candidate",
        _problem(
            404,
            "Not found",
            "AggregateMissing",
            "no candidate with id 7d2e9f40-1b3c-4a5d-8e6f-9a0b1c2d3e65; check the id (list "
            "with `GET /v1/candidates`)",
            f"{_UNKNOWN}/consents",
            rule="AggregateMissing",
            field="candidate_id",
        ),
    ),
    409: (
        "a business rule refused the command",
        _problem(
            409,
            "Rule broken",
            "ConsentNotActive",
            f"consent {CONSENT_ID} is requested, not active; a new, granted consent is needed",
            f"{_INVESTIGATION}/start",
            rule="ConsentNotActive",
        ),
    ),
    412: (
        "If-Match names a version the resource is no longer at",
        _problem(
            412,
            "Precondition failed",
            "version-mismatch",
            f"{CANDIDATE_ID} is at version 3, not 2 as If-Match says: someone changed it "
            "since you read it; nothing was recorded — read it again and decide anew",
            f"{_CANDIDATE}/erasure-request",
            rule="version-mismatch",
        ),
    ),
    413: (
        "the body is over the server's limit",
        _problem(
            413,
            "Body too large",
            "body-too-large",
            "the request body is over 1,048,576 bytes (or its Content-Length is not a "
            "number); nothing was read or recorded",
            f"{_CANDIDATE}/claims",
        ),
    ),
    415: (
        "a body not said to be JSON",
        _problem(
            415,
            "Unsupported media type",
            "unsupported-media-type",
            "the body was sent as 'text/plain'; this API takes JSON: send it with "
            "`Content-Type: application/json`. Nothing was read or recorded",
            f"{_CANDIDATE}/consents",
            rule="unsupported-media-type",
            accepted=["application/json"],
        ),
    ),
    422: (
        "a field breaks its rule",
        _problem(
            422,
            "Invalid input",
            "validation",
            "field terms.check_types.0: Input should be 'identity', 'education', "
            "'employment', 'reference', 'credential', 'criminal_record', 'drug_test' or "
            "'health'",
            f"{_CANDIDATE}/consents",
            rule="validation",
            errors=[
                {
                    "field": "terms.check_types.0",
                    "rule": "enum",
                    "message": "Input should be 'identity', 'education', 'employment', "
                    "'reference', 'credential', 'criminal_record', 'drug_test' or 'health'",
                }
            ],
        ),
    ),
    503: (
        "the store is away: try again after Retry-After",
        _problem(
            503,
            "Store unreachable",
            "store-unreachable",
            "PostgreSQL at db.internal:5432 does not answer: connection refused; answered "
            "without trying while the server is away (it is tried again every second)",
            f"{_CANDIDATE}/consents",
        ),
    ),
}


def problem(status: int) -> dict[str, Example]:
    """The `examples` of a problem response of `status`."""
    summary, value = PROBLEMS[status]
    return {str(value["type"]).rsplit("/", 1)[1]: Example(summary=summary, value=value)}
