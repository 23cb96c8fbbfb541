"""The whole store's case overview as of a moment over HTTP (`GET /v1/audit/as-of`) is the
recorded read `backcheck audit as-of` is, on both backends: a purpose is required, and one
read of each candidate shown is recorded, under the caller, before the answer leaves (review,
fourteenth session: the route answered every case unrecorded and took no purpose)."""

from __future__ import annotations

from uuid import UUID

from services.access import Role
from services.read_log import ListReads
from tests import story as s
from tests.conftest import FakeClock
from tests.http import COMPLIANCE, Served, problem

AT = "2030-01-01T00:00:00+00:00"
PURPOSE = "complaint review"


def test_the_whole_stores_case_overview_records_a_read_of_each_candidate_shown(
    api: Served, clock: FakeClock
) -> None:
    first, second = s.register(api.app), s.register(api.app, "Han Meimei")
    head = api.head()

    r = api.get(COMPLIANCE, "/v1/audit/as-of", at=AT, purpose=PURPOSE)

    assert r.status_code == 200, r.text
    answer = r.json()
    assert [UUID(c["candidate_id"]) for c in answer["cases"]] == [first, second]
    reads = api.app.list_reads(ListReads(principal=COMPLIANCE)).items
    assert [(e.candidate_id, e.view, e.outcome) for e in reads] == [
        (first, "case as of", "allowed"),
        (second, "case as of", "allowed"),
    ]
    for read in reads:
        assert (read.principal, read.role, read.authentication) == (
            COMPLIANCE,
            "compliance",
            "token",
        )
        assert read.purpose == PURPOSE
        assert (read.returned, read.withheld) == ([], [])
        assert read.position > head
    assert [UUID(i) for i in answer["access_ids"]] == [e.access_id for e in reads]
    # the subject's own access log shows it, as it shows the CLI's `audit as-of`
    logged = api.get(COMPLIANCE, f"/v1/candidates/{first}/access-log", purpose="audit")
    assert logged.status_code == 200, logged.text
    assert [
        (e["principal"], e["view"], e["purpose"])
        for e in logged.json()["entries"]
        if e["view"] == "case as of"
    ] == [(COMPLIANCE, "case as of", PURPOSE)]


def test_the_whole_stores_case_overview_without_a_purpose_is_422_naming_it_and_stores_nothing(
    api: Served,
) -> None:
    candidate = s.register(api.app)
    head = api.head()

    refused = api.get(COMPLIANCE, "/v1/audit/as-of", at=AT)
    # worded as the other recorded reads word it (the candidate's own case as of a moment)
    theirs = api.get(COMPLIANCE, f"/v1/candidates/{candidate}/as-of", at=AT)

    body = problem(refused, 422, "validation")
    assert [(e["field"], e["rule"]) for e in body["errors"]] == [("purpose", "missing")]
    assert body["detail"] == problem(theirs, 422, "validation")["detail"]
    assert body["errors"] == problem(theirs, 422, "validation")["errors"]
    assert api.head() == head, "nothing was decided, so nothing was recorded"
    assert api.app.list_reads(ListReads(principal=COMPLIANCE)).items == []


def test_a_token_scoped_to_some_candidates_is_refused_the_whole_store_before_anything_is_read(
    api: Served,
) -> None:
    """The overview names every candidate, as a list does: a compliance token confined to
    some candidates is refused it as a list (403 `outside-assignments`), before its query is
    looked at, naming no candidate and recording nothing (nothing was read)."""
    mine, other = s.register(api.app), s.register(api.app, "Han Meimei")
    api.issue("compliance:scoped", Role.COMPLIANCE, assignments=(mine,))
    head = api.head()

    refused = api.get("compliance:scoped", "/v1/audit/as-of", at=AT, purpose=PURPOSE)
    unjudged = api.get("compliance:scoped", "/v1/audit/as-of", at="yesterday")

    body = problem(refused, 403, "outside-assignments")
    assert str(other) not in refused.text
    assert str(mine) not in refused.text
    assert problem(unjudged, 403, "outside-assignments") == body
    assert api.head() == head
