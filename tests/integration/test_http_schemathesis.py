"""Schemathesis against the served OpenAPI document: for every operation, requests drawn from
its own schema (valid and invalid) find no server error and no answer outside what the
document declares (status codes, content types, response schemas). Run with each kind of
principal's token, on a store the demo story filled."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from infra.http.table import COMMANDS, READS
from services.access import Role
from tests.conformance import CHECKS
from tests.http import demo_served
from tests.story import PURPOSE

STREAM = "/v1/dashboard/stream"
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
STAFF = {
    "hr:st": Role.RECRUITER,
    "compliance:st": Role.COMPLIANCE,
    "investigator:st": Role.INVESTIGATOR,
}
TOKENS: dict[str, str] = {}
KNOWN: dict[str, str] = {}  # path parameter -> an id of the demo's


@pytest.fixture(scope="module")
def served_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with demo_served(tmp_path_factory.mktemp("schemathesis"), STAFF) as demo:
        TOKENS.update(demo.tokens)
        KNOWN.update(demo.known)
        schema = schemathesis.openapi.from_asgi("/openapi.json", demo.http)
        yield schema.exclude(path=STREAM)  # it never ends (test_dashboard_http reads it)


def test_every_operation_answers_within_its_document(served_schema: Any) -> None:
    """Each operation in turn, its cases drawn by Hypothesis from the operation's schema
    (schemathesis' own pytest plugin does not run on this pytest, so the loop is here)."""
    operations = [result.ok() for result in served_schema.get_all_operations()]
    # every command and read of the table, who-am-I, the four compliance routes, three lists,
    # the subject's visibility and access package, the dashboard's summary and refusals (its
    # stream is left out: it never ends), the Kafka topics' AsyncAPI document, the portal's
    # session opened and closed
    assert len(operations) == len(COMMANDS) + len(READS) + 1 + 4 + 3 + 2 + 2 + 1 + 2
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_within_its_document(case: Any) -> None:
            for token in TOKENS.values():
                case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
            # the same case on the demo's own resources, so answers other than "not found"
            # are drawn too (drawn ids name nothing in the store)
            if case.path_parameters:
                case.path_parameters = {k: KNOWN[k] for k in case.path_parameters}
                if isinstance(case.query, dict) and "purpose" in case.query:
                    case.query = {**case.query, "purpose": PURPOSE}
                for token in TOKENS.values():
                    case.call_and_validate(
                        headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
                    )

        answers_within_its_document()
