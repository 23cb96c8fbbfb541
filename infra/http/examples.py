"""The OpenAPI document's examples: one request body per command, query values per read, one
problem per status.

Hand-written, and one story: recruiter Li Na checks Li Lei's employment at Harbour Systems
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

JSON = dict[str, Any]

# Placeholders for the ids a body names (each from an earlier answer).
CANDIDATE_ID = "5f0c3a1e-8b2d-4c6a-9e71-0d4b2a7c9f10"  # register-candidate's answer
CONSENT_ID = "a3e9d2c4-1f7b-4e08-b5a6-7c2d9e0f4b21"  # request-consent's answer
CHECK_ID = "c81f4b07-3d5e-4a92-8c1b-6e0a7d3f2b32"  # plan-investigation's answer: checks[0]
REPORT_DISPUTE_ID = "e2b7a9d1-6c4f-4f13-a0d8-9b5e1c7a3d43"  # dispute-report's answer
PLACEHOLDERS = (CANDIDATE_ID, CONSENT_ID, CHECK_ID, REPORT_DISPUTE_ID)

PURPOSE = "pre-employment screening"
EMPLOYER = "Harbour Systems Ltd"
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
        "his employment at Harbour Systems, under his consent",
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
                            "value": "Backend Engineer",
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
            "process": "phone calls to your former supervisor and HR at Harbour Systems",
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
            "notes": "Confirms Backend Engineer, 2019-07 to 2025-12; would rehire.",
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
        {"reason": "candidate-request"},
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


# --- answers --------------------------------------------------------------------------------

INVESTIGATION_ID = "0e4d8c2b-7a61-4f3e-9b05-3c8a1d6e2f54"
REPORT_ID = "7b1e6f3a-2c9d-4e5b-8a07-d4f2c1b9e376"
_ACCESS_ID = "4c7a2e91-5d3b-4f80-a6e2-1b9d8c3f7a87"

# A few commands' and reads' answers: name -> (summary, body).
RESULTS: dict[str, tuple[str, JSON]] = {
    "register-candidate": (
        "registered: no claims yet",
        {
            "candidate_id": CANDIDATE_ID,
            "claim_ids": [],
            "categories": ["user.contact.email", "user.contact.phone", "user.name"],
            "erasure_requested": False,
            "erased": False,
            "version": 1,
        },
    ),
    "request-consent": (
        "asked for; the candidate's portal link, sent with the request, grants it",
        {
            "consent_id": CONSENT_ID,
            "candidate_id": CANDIDATE_ID,
            "status": "requested",
            "purposes": [PURPOSE],
            "check_types": [CheckType.EMPLOYMENT, CheckType.REFERENCE],
            "categories": [],
            "valid_until": None,
            "suspended_investigations": [],
            "portal_link": {
                "status": "delivered",
                "detail": f"outbox/portal-links/{CANDIDATE_ID}.json",
                "expires_at": "2026-04-01T09:00:00Z",
            },
        },
    ),
    "plan-investigation": (
        "planned: the candidate is told before it starts",
        {
            "investigation_id": INVESTIGATION_ID,
            "candidate_id": CANDIDATE_ID,
            "consent_id": CONSENT_ID,
            "status": "planned",
            "notified": False,
            "checks": [
                {
                    "check_id": CHECK_ID,
                    "check_type": CheckType.EMPLOYMENT,
                    "methods": [Method.PHONE, Method.EMAIL],
                    "findings": 0,
                    "conclusion": None,
                }
            ],
            "open_disputes": [],
            "investigators": [INVESTIGATOR],
        },
    ),
    "compile-report": (
        "a draft, to be reviewed by someone else",
        {
            "report_id": REPORT_ID,
            "candidate_id": CANDIDATE_ID,
            "investigation_id": INVESTIGATION_ID,
            "status": "draft",
            "edition": 1,
            "items": [
                {
                    "check_id": CHECK_ID,
                    "check_type": CheckType.EMPLOYMENT,
                    "outcome": Outcome.CONFIRMED,
                    "source_roles": [SourceRole.DIRECT_SUPERVISOR, SourceRole.HR],
                    "flags": [],
                    "has_note": False,
                }
            ],
            "open_disputes": [],
            "disclosures": 0,
            "legal_hold": False,
        },
    ),
    "read-consents": (
        "his consent, in force, relied on by one investigation",
        {
            "candidate_id": CANDIDATE_ID,
            "access_id": _ACCESS_ID,
            "outcome": "allowed",
            "consents": [
                {
                    "consent_id": CONSENT_ID,
                    "status": "active",
                    "requested_by": "hr:li.na",
                    "requested_at": "2026-03-02T09:00:00Z",
                    "terms": TERMS,
                    "valid_from": "2026-03-02T09:00:00Z",
                    "valid_until": "2026-05-31T09:00:00Z",
                    "withdrawn_at": None,
                    "relied_on_by": [INVESTIGATION_ID],
                    "document_sha256": "9f86d081884c7d659a2feaa0c55ad015"
                    "a3bf4f1b2b0b822cd15d6c15b0f00a08",
                }
            ],
        },
    ),
}


def answer(use_case: str, status: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` entry with the answer's example, if it has one."""
    if use_case not in RESULTS:
        return {}
    summary, value = RESULTS[use_case]
    shown = {"example": Example(summary=summary, value=value)}
    return {status: {"content": {"application/json": {"examples": shown}}}}
