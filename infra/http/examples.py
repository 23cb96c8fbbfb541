"""The OpenAPI document's examples: one request body per command, query values per read, one
problem per status.

Hand-written, and one story: recruiter Li Na checks Li Lei's employment at Acme Logistics
under his written consent; his former supervisor confirms it by phone; he asks a question
and disputes a date; the report is reviewed, shared, amended, disclosed to the hiring manager,
held for a tribunal, destroyed; he is erased. tests/integration/test_http_examples.py posts
every example through the API in that order, so they stay valid and runnable.

An id a body refers to (his consent, the check, a dispute) is one of the placeholders below:
a client puts in the id an earlier answer gave (the test does the same).
"""

from __future__ import annotations

from typing import Any

from fastapi.openapi.models import Example

from domain.candidate import ClaimKind
from domain.check import CheckType, Method, Outcome, SourceRole
from domain.consent import SignatureMethod
from infra.http.problems import problem_type

JSON = dict[str, Any]

# Placeholders for the ids a body names (each from an earlier answer).
CANDIDATE_ID = "5f0c3a1e-8b2d-4c6a-9e71-0d4b2a7c9f10"  # register-candidate's answer
CONSENT_ID = "a3e9d2c4-1f7b-4e08-b5a6-7c2d9e0f4b21"  # request-consent's answer
CHECK_ID = "c81f4b07-3d5e-4a92-8c1b-6e0a7d3f2b32"  # plan-investigation's answer: checks[0]
REPORT_DISPUTE_ID = "e2b7a9d1-6c4f-4f13-a0d8-9b5e1c7a3d43"  # dispute-report's answer
PLACEHOLDERS = (CANDIDATE_ID, CONSENT_ID, CHECK_ID, REPORT_DISPUTE_ID)

PURPOSE = "pre-employment screening"
EMPLOYER = "Acme Logistics"
INVESTIGATOR = "investigator:wang.fang"

TERMS: JSON = {
    "purposes": [PURPOSE],
    "check_types": [CheckType.EMPLOYMENT, CheckType.REFERENCE],
    "categories": [],
    "referee_roles": [SourceRole.DIRECT_SUPERVISOR, SourceRole.HR, SourceRole.PEER],
    "excluded_organisations": ["Northwind Freight (current employer)"],
    "recording_allowed": False,
    "third_parties": [],
}

# name -> (summary, body). An empty body: the path says it all (the body may be left out).
COMMANDS: dict[str, tuple[str, JSON]] = {
    "register-candidate": (
        "Li Lei, with how to reach him",
        {"name": "Li Lei", "email": "li.lei@example.com", "phone": "+86 138 0013 8000"},
    ),
    "submit-claims": (
        "his employment at Acme Logistics, under his consent",
        {
            "claims": [
                {
                    "kind": ClaimKind.EMPLOYMENT,
                    "fields": [
                        {
                            "name": "employer",
                            "category": "user.employment.employer",
                            "value": EMPLOYER,
                        },
                        {
                            "name": "title",
                            "category": "user.employment.title",
                            "value": "Senior Engineer",
                        },
                        {
                            "name": "dates",
                            "category": "user.employment.dates",
                            "value": "2019-07 to 2025-12",
                        },
                    ],
                }
            ],
            "consent_id": CONSENT_ID,
        },
    ),
    "request-consent": (
        "an employment and a reference check, referees named by role",
        {"terms": TERMS},
    ),
    "grant-consent": (
        "signed as asked, by e-signature, for 90 days",
        {
            "terms": TERMS,
            "document_sha256": "9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab",
            "signature_method": SignatureMethod.E_SIGNATURE,
            "valid_from": "2026-03-02T09:00:00Z",
            "valid_until": "2026-05-31T09:00:00Z",
        },
    ),
    "withdraw-consent": ("he accepted another offer", {"reason": "accepted another offer"}),
    "expire-consent": ("no body: the consent's validity window has passed", {}),
    "plan-investigation": (
        "one employment check by phone and email, due in two weeks",
        {
            "candidate_id": CANDIDATE_ID,
            "consent_id": CONSENT_ID,
            "purpose": PURPOSE,
            "checks": [
                {"check_type": CheckType.EMPLOYMENT, "methods": [Method.PHONE, Method.EMAIL]}
            ],
            "investigators": [INVESTIGATOR],
            "due_by": "2026-03-16T18:00:00+08:00",
        },
    ),
    "notify-candidate": (
        "what will be checked, how and how long it takes",
        {
            "purpose": PURPOSE,
            "process": "phone calls to your former supervisor and HR at Acme Logistics",
            "content": "employment dates, job title, performance",
            "time_required": "five working days",
            "channel": "email",
        },
    ),
    "start-investigation": ("no body: the consent in force is checked", {}),
    "resume-investigation": (
        "under the new consent he signed",
        {"consent_id": CONSENT_ID},
    ),
    "assign-investigator": ("a second investigator", {"investigator": "investigator:zhou.min"}),
    "record-finding": (
        "his direct supervisor confirms, by phone",
        {
            "check_id": CHECK_ID,
            "source": {
                "role": SourceRole.DIRECT_SUPERVISOR,
                "reference": "ref-supervisor-1",
                "organisation": EMPLOYER,
            },
            "method": Method.PHONE,
            "outcome": Outcome.CONFIRMED,
            "notes": "Confirms Senior Engineer, 2019-07 to 2025-12; would rehire.",
        },
    ),
    "conclude-check": ("confirmed by two independent sources", {"outcome": Outcome.CONFIRMED}),
    "raise-dispute": (
        "he disputes the end date",
        {"check_id": CHECK_ID, "statement": "My last working day was 2025-12-31."},
    ),
    "resolve-dispute": (
        "answered, not upheld: his statement goes on file",
        {
            "upheld": False,
            "response": "Both sources give 2025-12 as your last month; your statement will be "
            "shown with the report.",
        },
    ),
    "give-feedback": ("a question", {"text": "When will the check be finished?"}),
    "answer-feedback": ("the answer", {"answer": "Within two working days."}),
    "complete-investigation": ("no body: every check is concluded", {}),
    "cancel-investigation": (
        "he withdrew his application",
        {"reason": "the candidate withdrew his application"},
    ),
    "compile-report": ("no body: compiled from the concluded checks", {}),
    "review-report": (
        "approved by someone other than its author",
        {"approve": True, "comments": "two independent sources; no flags"},
    ),
    "share-report": ("no body: his copy", {}),
    "dispute-report": (
        "he disputes the employment item",
        {"check_id": CHECK_ID, "statement": "Please add that I left on good terms."},
    ),
    "reject-report-dispute": (
        "answered without a change",
        {"response": "The report states outcomes, not reasons for leaving; nothing to change."},
    ),
    "amend-report": (
        "a note on the employment item, resolving his dispute (edition 2)",
        {
            "amendments": [
                {
                    "check_id": CHECK_ID,
                    "outcome": Outcome.CONFIRMED,
                    "note": "The candidate states his last working day was 2025-12-31.",
                }
            ],
            "reason": "candidate dispute",
            "resolves": [REPORT_DISPUTE_ID],
        },
    ),
    "reissue-report": ("no body: the reviewed edition goes to him", {}),
    "disclose-report": (
        "to the hiring manager, for the purpose he consented to",
        {"recipient": "manager:chen.jie", "recipient_role": "hiring manager", "purpose": PURPOSE},
    ),
    "place-legal-hold": (
        "an employment tribunal claim",
        {"reason": "employment tribunal claim 2026-014: keep until it is decided"},
    ),
    "release-legal-hold": ("no body: the claim is decided", {}),
    "destroy-report": (
        "at the end of its retention",
        {"reason": "retention ended: 12 months after the hiring decision"},
    ),
    "request-erasure": (
        "he asks to be forgotten",
        {"reason": "I withdrew my application; please erase my data"},
    ),
    "erase-subject": (
        "his request, carried out (crypto-shredding)",
        {"reason": "the candidate's erasure request (PIPL art. 47)"},
    ),
}

# The read's query values, by parameter: (summary, value). A read of personal values is
# for a purpose the candidate's consent names.
_PURPOSES = {
    "read-profile": ("a purpose his consent names", PURPOSE),
    "read-consents": ("before planning a check", "which consent applies"),
    "read-access-log": ("an audit of who read about him", "audit"),
    "read-timeline": ("an audit of his case", "audit"),
    "read-as-of": ("a complaint about a past decision", "complaint review"),
    "read-investigation": ("a purpose his consent names", PURPOSE),
    "read-report": ("a purpose his consent names", PURPOSE),
}
BREAK_GLASS = (
    "compliance only, recorded with the read",
    "regulator inquiry 2026-07: the candidate's complaint about the disclosure",
)
AT = ("the morning of the check", "2026-03-02T18:00:00+08:00")


def body(use_case: str) -> dict[str, Example]:
    """A command's `openapi_examples`."""
    summary, value = COMMANDS[use_case]
    return {"example": Example(summary=summary, value=value)}


def query(use_case: str, parameter: str) -> dict[str, Example] | None:
    """A read's query parameter's `openapi_examples` (none for a parameter it lacks)."""
    found = {"purpose": _PURPOSES.get(use_case), "break_glass": BREAK_GLASS, "at": AT}
    example = found.get(parameter)
    if example is None:
        return None
    summary, value = example
    return {"example": Example(summary=summary, value=value)}


def query_value(use_case: str, parameter: str) -> Any:
    examples = query(use_case, parameter)
    return None if examples is None else examples["example"].get("value")


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
            "with `backcheck events`)",
            f"{_UNKNOWN}/consents",
            rule="AggregateMissing",
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
