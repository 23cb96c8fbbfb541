"""No endpoint returns a personal value outside the recorded read path: every route of the
served OpenAPI document is called, as every kind of principal, on the demo's store, and each
answer that holds one of the demo's sealed values must be a recorded read (its access id in
the subject's access log) or a recorded disclosure."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from domain.access import AccessOutcome
from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from services.access import Role
from tests.conftest import FakeClock
from tests.http import Served, served
from tests.integration.test_views import personal_values, reference
from tests.story import PURPOSE

# every read answers with its own access id; the value reads are those meant to return values
RECORDED_READS = {
    "read_profile",
    "read_report",
    "read_investigation",
    "read_timeline",
    "read_as_of",
    "read_access_log",
    "read_consents",
}
VALUE_READS = {"read_profile", "read_report", "read_investigation"}
DISCLOSURES = {"evidence", "access_package"}  # recorded as DataDisclosed first
STREAM = "/v1/dashboard/stream"
QUERY = {"purpose": PURPOSE, "at": "2030-01-01T00:00:00+00:00"}


@pytest.fixture
def demo(settings: Settings, clock: FakeClock) -> Iterator[tuple[Served, dict[str, Any]]]:
    app = build_app(settings, clock=clock)
    try:
        from infra.audit.trail import key_pair

        key_pair(settings.signing_key_path.parent)
        told = tell_story(app).as_json()
        with served(app, settings) as api:
            # the other candidate was erased: her portal is closed for good, and no link is
            # issued for her (every route is still called about her, by everyone else)
            api.portal(UUID(str(told["candidate_id"])))
            api.issue("manager:chen.jie.http", Role.HIRING_MANAGER)
            yield api, told
    finally:
        app.close()


def fill(path: str, told: dict[str, Any], candidate: str) -> str:
    ids = {
        "candidate_id": candidate,
        "consent_id": told["consent_id"],
        "investigation_id": told["investigation_id"],
        "report_id": told["report_id"],
        "check_id": told["employment_check_id"],
        "dispute_id": told["dispute_id"],
        "feedback_id": told["feedback_id"],
    }
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


def test_no_route_answers_a_personal_value_unrecorded(
    demo: tuple[Served, dict[str, Any]],
) -> None:
    api, told = demo
    sealed = personal_values(reference(api.app))
    assert len(sealed) >= 5, sealed  # the demo's story holds personal values to look for
    spec = api.client.get("/openapi.json").json()
    answered_with_values: list[str] = []
    calls = 0
    for path, operations in spec["paths"].items():
        if path == STREAM:
            continue  # it never ends; its events are the summary's, walked as its own route
        for method, operation in operations.items():
            for candidate in (told["candidate_id"], told["other_candidate_id"]):
                url = fill(path, told, str(candidate))
                for name in api.tokens:
                    # what the operation takes of these (it refuses any other parameter)
                    taken = {p["name"] for p in operation.get("parameters", ())}
                    params = {k: v for k, v in QUERY.items() if k in taken}
                    if method == "get":
                        r = api.client.get(url, params=params, headers=api.as_(name))
                    else:
                        r = api.client.request(method, url, json={}, headers=api.as_(name))
                    calls += 1
                    assert r.status_code < 500, (method, url, name, r.text)
                    leaked = [v for v in sealed if v in r.text]
                    if not leaked:
                        continue
                    answered_with_values.append(operation["operationId"])
                    assert_recorded(api, operation, r, candidate)
    assert calls > 300
    # the value reads did answer values to someone: the walk reached them
    assert {op.split("_v1")[0] for op in answered_with_values} & VALUE_READS


def assert_recorded(api: Served, operation: dict[str, Any], r: Any, candidate: Any) -> None:
    summary = operation["operationId"]
    assert r.status_code == 200, (summary, r.status_code)
    if summary.startswith(tuple(DISCLOSURES)) or "evidence" in summary:
        disclosure = r.headers["x-disclosure-id"]
        assert disclosure, summary
        recorded = {e.access_id for e in api.app.recorded_accesses(UUID(str(candidate)))}
        assert UUID(disclosure) in recorded, summary
        return
    assert summary.split("_v1")[0] in RECORDED_READS, f"{summary} answered a personal value"
    body = r.json()
    outcome = AccessOutcome(body["outcome"])
    assert outcome in (AccessOutcome.ALLOWED, AccessOutcome.PARTIAL)
    subject = UUID(str(body.get("candidate_id") or candidate))
    recorded = {e.access_id for e in api.app.recorded_accesses(subject)}
    assert UUID(body["access_id"]) in recorded, summary
