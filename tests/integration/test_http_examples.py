"""The OpenAPI document's examples are honest: every command and read has one, each is valid
against its own schema, and they run: posted through the API in story order on a fresh store
(the ids earlier answers gave put in for the placeholders), every one answers 2xx. Each problem
example is what the API really answers for its status.

Li Lei's story (`test_the_examples_run_as_one_background_check`) runs every command but four;
Liu Yang's (`test_the_examples_run_as_a_withdrawal_a_new_consent_and_a_cancellation`) runs
withdraw-consent, resume-investigation, cancel-investigation and, 91 days on by the clock,
expire-consent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import TypeAdapter

from infra.config import Settings
from infra.http import examples, problem_examples
from infra.http.problems import PROBLEM_JSON, problem_type
from infra.http.routes import body_model, result_model
from infra.http.table import COMMANDS, READS
from infra.problem import problem_for
from infra.store.server import StoreUnreachableError
from services.access import Role
from services.catalogue import USE_CASES
from tests.conftest import FakeClock
from tests.http import COMPLIANCE, STAFF, Served, problem
from tests.story import INVESTIGATOR, RECRUITER, REVIEWER

ESIGN = "svc:esign"  # the e-signature service: it records a document signed elsewhere

ROUTES = {route.use_case: route for route in COMMANDS}
READ_ROUTES = {route.use_case: route for route in READS}
# Operations built outside the table, by their owner's module: their examples are theirs.
ELSEWHERE: set[tuple[str, str]] = set()  # every operation with a body shows an example

LI_LEI = {name for name in examples.COMMANDS} - {
    "withdraw-consent",
    "resume-investigation",
    "cancel-investigation",
    "expire-consent",
}
LIU_YANG = {
    "register-candidate",
    "request-consent",
    "grant-consent",
    "plan-investigation",
    "notify-candidate",
    "start-investigation",
    "withdraw-consent",
    "resume-investigation",
    "cancel-investigation",
    "expire-consent",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)


@pytest.fixture
def document(api: Served) -> dict[str, Any]:
    r = api.client.get("/openapi.json")
    assert r.status_code == 200
    document: dict[str, Any] = r.json()
    return document


# --- (a) there, and valid -----------------------------------------------------------------------


def test_every_command_has_a_body_example_valid_against_its_own_body(
    document: dict[str, Any],
) -> None:
    assert set(examples.COMMANDS) == set(ROUTES)
    for route in COMMANDS:
        operation = document["paths"][route.path]["post"]
        shown = operation["requestBody"]["content"]["application/json"]["examples"]
        assert shown, route.use_case
        model = body_model(USE_CASES[route.use_case], route.path_ids)
        for example in shown.values():
            assert example["summary"]
            model.model_validate(example["value"])


def test_the_answers_shown_are_valid_answers(document: dict[str, Any]) -> None:
    routes = {r.use_case: (r.path, "post", "201" if r.created else "200") for r in COMMANDS}
    routes |= {r.use_case: (r.path, "get", "200") for r in READS}
    for use_case, (summary, value) in examples.RESULTS.items():
        path, method, status = routes[use_case]
        content = document["paths"][path][method]["responses"][status]["content"]
        assert content["application/json"]["schema"], use_case  # beside the answer's schema
        assert content["application/json"]["examples"]["example"]["summary"] == summary
        TypeAdapter(result_model(USE_CASES[use_case])).validate_python(value)


def test_every_operation_with_a_body_shows_an_example(document: dict[str, Any]) -> None:
    without = {
        (method, path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
        and not any(c.get("examples") for c in operation["requestBody"]["content"].values())
    }
    assert without <= ELSEWHERE


def test_every_read_shows_its_query_values_and_they_make_a_valid_read(
    document: dict[str, Any],
) -> None:
    for route in READS:
        operation = document["paths"][route.path]["get"]
        query = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
        assert "purpose" in query
        assert ("break_glass" in query) == route.values
        for name, parameter in query.items():
            assert parameter["examples"], (route.use_case, name)
        values = {name: next(iter(p["examples"].values()))["value"] for name, p in query.items()}
        ids = {p.split("}")[0]: str(uuid4()) for p in route.path.split("{")[1:]}
        USE_CASES[route.use_case].command.model_validate(
            {**values, **ids, "principal": COMPLIANCE, "role": Role.COMPLIANCE}
        )


def test_every_problem_status_shows_an_example_of_its_own_status(
    document: dict[str, Any],
) -> None:
    """On every route of the table; another module's route, where it shows one (lists.py
    declares its own problems, without examples)."""
    ours = {(r.path, "post") for r in COMMANDS} | {(r.path, "get") for r in READS}
    shown = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith(("4", "5")):
                    continue
                content = response["content"][PROBLEM_JSON]
                if (path, method) in ours:
                    assert content.get("examples"), (method, path, status)
                for example in content.get("examples", {}).values():
                    body = example["value"]
                    assert body["status"] == int(status)
                    assert body["type"].startswith("tag:backcheck.invalid,2026:problems/")
                    assert body["title"]
                    assert body["detail"]
                    assert body["instance"]
                    shown += 1
    assert shown >= len(ours) * 8


# --- (b) they run ---------------------------------------------------------------------------------


class Teller:
    """Posts the examples in story order, each as a principal whose role may run it, with the
    ids the earlier answers gave in place of the placeholders."""

    def __init__(self, api: Served) -> None:
        self.api = api
        self.ids: dict[str, str] = {}  # path id -> the story's
        self.put_in: dict[str, str] = {}  # placeholder -> the story's id
        self.ran: set[str] = set()  # the examples run as they are (reads too)

    def __call__(self, who: str, use_case: str, **changes: Any) -> dict[str, Any]:
        role = STAFF.get(who) or (Role.SERVICE if who == ESIGN else Role.CANDIDATE)
        assert role in USE_CASES[use_case].roles, (who, use_case)
        route = ROUTES[use_case]
        body = {**_put_in(examples.COMMANDS[use_case][1], self.put_in), **changes}
        r = self.api.post(who, route.path.format(**self.ids), body)
        assert r.status_code in (200, 201), (use_case, r.text)
        if not changes:
            self.ran.add(use_case)
        answer: dict[str, Any] = r.json()
        if not changes:
            _like_its_example(use_case, answer)
        return answer

    def read(self, who: str, use_case: str, *parameters: str) -> dict[str, Any]:
        route = READ_ROUTES[use_case]
        query = {name: examples.query_value(use_case, name) for name in ("purpose", *parameters)}
        r = self.api.get(who, route.path.format(**self.ids), **query)
        assert r.status_code == 200, (use_case, who, r.text)
        answer: dict[str, Any] = r.json()
        assert answer["outcome"] != "refused", (use_case, answer)
        _like_its_example(use_case, answer)
        self.ran.add(use_case)
        return answer

    def have(self, placeholder: str | None = None, **ids: Any) -> None:
        for name, value in ids.items():
            self.ids[name] = str(value)
            if placeholder is not None:
                self.put_in[placeholder] = str(value)


def _like_its_example(use_case: str, answer: dict[str, Any]) -> None:
    """An answer shown in the document has the real answer's members, status and outcome."""
    if use_case not in examples.RESULTS:
        return
    _, shown = examples.RESULTS[use_case]
    assert set(shown) == set(answer), use_case
    for member in ("status", "outcome", "edition", "notified", "legal_hold"):
        assert shown.get(member) == answer.get(member), (use_case, member)


def _put_in(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _put_in(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_put_in(v, ids) for v in value]
    if isinstance(value, str) and value in examples.PLACEHOLDERS:
        assert value in ids, f"the story has no id for placeholder {value} yet"
        return ids[value]
    return value


def consented(api: Served, tell: Teller) -> str:
    """Registered, asked, granted by e-signature (the example's method: recorded by the
    e-signature service, never claimed with the candidate's own link), the portal link sent
    with the request at hand: returns the candidate's principal."""
    tell.have(
        examples.CANDIDATE_ID, candidate_id=tell(RECRUITER, "register-candidate")["candidate_id"]
    )
    tell.have(examples.CONSENT_ID, consent_id=tell(RECRUITER, "request-consent")["consent_id"])
    api.sent_link(UUID(tell.ids["candidate_id"]))
    candidate = f"candidate:{tell.ids['candidate_id']}"
    if ESIGN not in api.tokens:
        api.issue(ESIGN, Role.SERVICE)
    tell(ESIGN, "grant-consent")
    return candidate


def under_way(tell: Teller) -> None:
    planned = tell(RECRUITER, "plan-investigation")
    tell.have(investigation_id=planned["investigation_id"])
    (check,) = planned["checks"]
    tell.have(examples.CHECK_ID, check_id=check["check_id"])
    tell(RECRUITER, "notify-candidate")
    tell(RECRUITER, "start-investigation")


def test_the_examples_run_as_one_background_check(api: Served) -> None:
    tell = Teller(api)
    li_lei = consented(api, tell)
    tell(RECRUITER, "submit-claims")
    under_way(tell)
    tell(RECRUITER, "assign-investigator")
    tell(INVESTIGATOR, "record-finding")
    second = {"role": "hr", "reference": "ref-hr-1", "organisation": examples.EMPLOYER}
    tell(INVESTIGATOR, "record-finding", source=second, method="email")
    tell(INVESTIGATOR, "conclude-check")

    tell(li_lei, "give-feedback")
    (question,) = tell.read(INVESTIGATOR, "read-investigation")["feedback"]
    tell.have(feedback_id=question["id"])
    tell(RECRUITER, "answer-feedback")
    (dispute,) = tell(li_lei, "raise-dispute")["open_disputes"]
    tell.have(dispute_id=dispute)
    tell(INVESTIGATOR, "resolve-dispute")
    assert tell(INVESTIGATOR, "complete-investigation")["status"] == "completed"

    tell.have(report_id=tell(INVESTIGATOR, "compile-report")["report_id"])
    tell(REVIEWER, "review-report")
    tell(RECRUITER, "share-report")
    (rejected,) = tell(li_lei, "dispute-report")["open_disputes"]
    tell.have(dispute_id=rejected)
    assert tell(REVIEWER, "reject-report-dispute")["open_disputes"] == []
    (answered,) = tell(li_lei, "dispute-report")["open_disputes"]
    tell.have(examples.REPORT_DISPUTE_ID, dispute_id=answered)
    assert tell(INVESTIGATOR, "amend-report")["edition"] == 2
    tell.read(REVIEWER, "read-report")  # a reviewer reads a report under review
    tell(REVIEWER, "review-report")
    tell(RECRUITER, "reissue-report")
    assert tell(RECRUITER, "disclose-report")["disclosures"] == 1

    tell.read(RECRUITER, "read-profile")
    tell.read(COMPLIANCE, "read-profile", "break_glass")
    tell.read(RECRUITER, "read-consents")
    tell.read(COMPLIANCE, "read-access-log")
    tell.read(COMPLIANCE, "read-timeline")
    tell.read(COMPLIANCE, "read-as-of", "at")
    tell.read(COMPLIANCE, "read-investigation", "break_glass")
    tell.read(COMPLIANCE, "read-report", "break_glass")

    assert tell(COMPLIANCE, "place-legal-hold")["legal_hold"] is True
    assert tell(COMPLIANCE, "release-legal-hold")["legal_hold"] is False
    assert tell(COMPLIANCE, "destroy-report")["status"] == "destroyed"
    assert tell(li_lei, "request-erasure")["erasure_requested"] is True
    assert tell(COMPLIANCE, "erase-subject")["keys_destroyed"] > 0
    assert tell.ran == LI_LEI | set(READ_ROUTES)


def test_the_examples_run_as_a_withdrawal_a_new_consent_and_a_cancellation(
    api: Served, clock: FakeClock
) -> None:
    tell = Teller(api)
    liu_yang = consented(api, tell)
    under_way(tell)
    withdrawn = tell(liu_yang, "withdraw-consent")
    assert withdrawn["suspended_investigations"] == [tell.ids["investigation_id"]]
    tell.have(examples.CONSENT_ID, consent_id=tell(RECRUITER, "request-consent")["consent_id"])
    api.sent_link(UUID(tell.ids["candidate_id"]))  # the new request came with a new link
    tell(ESIGN, "grant-consent")
    assert tell(RECRUITER, "resume-investigation")["status"] == "in progress"
    assert tell(RECRUITER, "cancel-investigation")["status"] == "cancelled"
    clock.advance(days=91)  # past the granted consent's window (90 days)
    assert tell(RECRUITER, "expire-consent")["status"] == "expired"
    assert tell.ran == LIU_YANG


def test_the_two_stories_run_every_command_example() -> None:
    assert LI_LEI | LIU_YANG == set(examples.COMMANDS) == set(ROUTES)


# --- (c) the problems shown are the ones answered ---------------------------------------------


def test_each_problem_example_is_what_the_api_answers_for_its_status(api: Served) -> None:
    tell = Teller(api)
    tell.have(
        examples.CANDIDATE_ID, candidate_id=tell(RECRUITER, "register-candidate")["candidate_id"]
    )
    candidate = tell.ids["candidate_id"]
    terms = examples.COMMANDS["request-consent"][1]
    unknown = uuid4()
    answered = {
        401: api.client.post(f"/v1/candidates/{candidate}/consents", json=terms),
        403: api.get(RECRUITER, f"/v1/candidates/{candidate}/profile", purpose="screening"),
        404: api.post(RECRUITER, f"/v1/candidates/{unknown}/consents", terms),
        412: api.post(
            RECRUITER, f"/v1/candidates/{candidate}/consents", terms, **{"If-Match": '"7"'}
        ),
        413: api.client.post(
            f"/v1/candidates/{candidate}/consents",
            content=b'{"terms": "' + b"x" * 2_000_000 + b'"}',
            headers=api.as_(RECRUITER, **{"content-type": "application/json"}),
        ),
        415: api.client.post(
            f"/v1/candidates/{candidate}/consents",
            content=b"terms",
            headers=api.as_(RECRUITER, **{"content-type": "text/plain"}),
        ),
        422: api.post(
            RECRUITER,
            f"/v1/candidates/{candidate}/consents",
            {"terms": {**terms["terms"], "check_types": ["credit"]}},
        ),
    }
    tell.have(examples.CONSENT_ID, consent_id=tell(RECRUITER, "request-consent")["consent_id"])
    under = tell(RECRUITER, "plan-investigation")
    tell.have(investigation_id=under["investigation_id"])
    tell(RECRUITER, "notify-candidate")
    answered[409] = api.post(
        RECRUITER, f"/v1/investigations/{tell.ids['investigation_id']}/start", {}
    )
    for status, response in sorted(answered.items()):
        real = problem(response, status)
        _, shown = problem_examples.PROBLEMS[status]
        assert set(shown) == set(real), status
        for member in ("type", "title", "status", "rule"):
            assert shown.get(member) == real.get(member), (status, member)
        assert [(e["field"], e["rule"]) for e in shown.get("errors", [])] == [
            (e["field"], e["rule"]) for e in real.get("errors", [])
        ]
    # the unknown id's detail word for word, its id aside: it says where the API lists them
    shown_404 = problem_examples.PROBLEMS[404][1]["detail"]
    real_404 = answered[404].json()["detail"].replace(str(unknown), "ID")
    assert re.sub(r"[0-9a-f-]{36}", "ID", shown_404) == real_404
    # 503 needs PostgreSQL gone (tests/integration/test_http_store_down.py): the table's row
    _, away = problem_examples.PROBLEMS[503]
    row = problem_for(StoreUnreachableError("PostgreSQL at db.internal:5432 does not answer"))
    assert row is not None
    assert (away["type"], away["title"], away["status"]) == (problem_type(row.type), row.title, 503)
