"""A compliance token scoped to some candidates (`--assign`) learns nothing of the others from
the whole store's looks, on both backends (review, fourteenth session: `GET
/v1/audit/violations` answered it the violations of every candidate, by id, and
`/v1/audit/verification` the store's size, head and every problem, a missing key's naming its
candidate; the refused reads' drill-down listed every refused read's candidate, and the
dashboard's refusals by principal named candidates' portal links). The chain's verification,
the rule check and the drill-down refuse it before anything is read, as the lists and the
case overview do (403 `outside-assignments`, naming no one, recording nothing; decision
0063); the dashboard answers it the refusals without their principals, as to other staff."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from domain.access import Access
from infra.config import Settings
from services.access import Role
from tests import story as s
from tests.conftest import FakeClock
from tests.http import COMPLIANCE, Served, problem
from tests.keys import delete_keys

SCOPED = "compliance:scoped"
PURPOSE = "complaint review"


def store_with_someone_outside_the_scope(api: Served, settings: Settings) -> tuple[UUID, UUID]:
    """Two candidates, the scoped token assigned to the first (`mine`) alone; each met by
    something every whole-store look names: a refused read (by the other's own portal link,
    and by the scoped token), a read that returned values with no consent (written around
    the read path, as a buggy reader would: a violation), and a data key deleted with no
    erasure recorded (a problem of the verification)."""
    mine, other = s.register(api.app), s.register(api.app, "Han Meimei")
    api.issue(SCOPED, Role.COMPLIANCE, assignments=(mine,))
    api.portal(other)
    theirs = api.get(f"candidate:{other}", f"/v1/candidates/{mine}/profile", purpose=PURPOSE)
    assert theirs.status_code == 403, theirs.text
    outside = api.get(SCOPED, f"/v1/candidates/{other}/profile", purpose=PURPOSE)
    assert outside.status_code == 403, outside.text
    for candidate in (mine, other):
        api.app.save(outside_consent(candidate))
        delete_keys(settings, candidate)
    return mine, other


def outside_consent(candidate: UUID) -> Access:
    return Access.record(  # type: ignore[no-any-return]
        candidate,
        s.RECRUITER,
        "recruiter",
        PURPOSE,
        "profile",
        ("user.name",),
        (),
        "allowed",
        ("recruiter-reads-general-of-own-candidates",),
        "x",
        (),
        authentication="operator",
    )


WHOLE_STORE = {
    "/v1/audit/violations": {},
    "/v1/audit/verification": {},
    "/v1/dashboard/refusals": {"day": "2026-03-02"},
}


@pytest.mark.parametrize("path", list(WHOLE_STORE))
def test_a_scoped_compliance_token_is_refused_the_whole_stores_looks_naming_no_one(
    api: Served, settings: Settings, clock: FakeClock, path: str
) -> None:
    mine, other = store_with_someone_outside_the_scope(api, settings)
    query: dict[str, Any] = WHOLE_STORE[path]
    # what it tells a compliance officer not so scoped: the candidate outside, by id
    unscoped = api.get(COMPLIANCE, path, **query)
    assert unscoped.status_code == 200, unscoped.text
    assert str(other) in unscoped.text
    head = api.head()

    refused = api.get(SCOPED, path, **query)
    # asked before its query is looked at: a query it would refuse changes nothing
    unjudged = api.get(SCOPED, path, **query, verbose="1")

    body = problem(refused, 403, "outside-assignments")
    assert str(other) not in refused.text
    assert str(mine) not in refused.text
    assert "whole store" in body["detail"]
    assert problem(unjudged, 403, "outside-assignments") == {
        **body,
        "instance": problem(unjudged, 403)["instance"],
    }
    assert api.head() == head, "nothing was read, so nothing was recorded"


def test_a_scoped_compliance_tokens_dashboard_counts_refusals_without_naming_who(
    api: Served, settings: Settings
) -> None:
    mine, other = store_with_someone_outside_the_scope(api, settings)
    unscoped = api.get(COMPLIANCE, "/v1/dashboard/summary")
    assert unscoped.status_code == 200, unscoped.text
    assert f"candidate:{other}" in unscoped.json()["refusals"]["by_principal"]

    scoped = api.get(SCOPED, "/v1/dashboard/summary")

    assert scoped.status_code == 200, scoped.text
    assert str(other) not in scoped.text
    assert str(mine) not in scoped.text
    refusals = scoped.json()["refusals"]
    assert refusals["total"] == unscoped.json()["refusals"]["total"] == 2
    assert refusals["by_principal"] == {}
    assert all(day["by_principal"] == {} for day in refusals["days"])
