"""Schemathesis against the served OpenAPI document: for every operation, requests drawn from
its own schema (valid and invalid) find no server error and no answer outside what the
document declares (status codes, content types, response schemas). Run with each kind of
principal's token, on a store the demo story filled."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from infra.audit.trail import key_pair
from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from infra.http.app import create_app
from infra.http.auth import Authenticator
from infra.http.idempotency import SQLiteIdempotency
from infra.http.table import COMMANDS, READS
from services.access import Role
from services.dto import AddPrincipal, IssuePortalLink
from tests.story import PURPOSE

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
TOKENS: dict[str, str] = {}
KNOWN: dict[str, str] = {}  # path parameter -> an id of the demo's


@pytest.fixture(scope="module")
def served_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("schemathesis")
    store = Settings(database_url=f"sqlite:///{data / 'store.sqlite'}", data_dir=data)
    key_pair(store.signing_key_path.parent)
    app = build_app(store)
    told = tell_story(app)
    for name, role in (
        ("hr:st", Role.RECRUITER),
        ("compliance:st", Role.COMPLIANCE),
        ("investigator:st", Role.INVESTIGATOR),
    ):
        TOKENS[name] = app.add_principal(AddPrincipal(name=name, role=role, actor="op")).token
    ids = told.as_json()
    KNOWN.update(
        candidate_id=str(ids["candidate_id"]),
        consent_id=str(ids["consent_id"]),
        investigation_id=str(ids["investigation_id"]),
        report_id=str(ids["report_id"]),
        check_id=str(ids["employment_check_id"]),
        dispute_id=str(ids["dispute_id"]),
        feedback_id=str(ids["feedback_id"]),
    )
    candidate: UUID = told.consent.candidate_id
    TOKENS["candidate"] = app.issue_portal_link(
        IssuePortalLink(candidate_id=candidate, actor="op")
    ).token
    kept = SQLiteIdempotency(Path(data) / "answers.sqlite")
    http = create_app(app, Authenticator(app), kept, settings=store)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", http)
    finally:
        kept.close()
        app.close()


def test_every_operation_answers_within_its_document(served_schema: Any) -> None:
    """Each operation in turn, its cases drawn by Hypothesis from the operation's schema
    (schemathesis' own pytest plugin does not run on this pytest, so the loop is here)."""
    operations = [result.ok() for result in served_schema.get_all_operations()]
    # every command and read of the table, who-am-I, the four compliance routes, three lists,
    # the subject's visibility and access package, the dashboard's summary and refusals (its
    # stream is not in the document: it never ends)
    assert len(operations) == len(COMMANDS) + len(READS) + 1 + 4 + 3 + 2 + 2
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
