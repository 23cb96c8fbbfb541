"""A moment a caller gives carries its offset, or it is refused (422 naming the field) before
anything is stored or any read is decided: a consent granted with naive times was stored, and
from then on every rule and read of it raised comparing them with aware ones (a 500, the
consent stuck). Times stored so before this rule read as UTC."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.http import COMPLIANCE, Served, problem
from tests.integration.test_http_api import access_log, consented, register
from tests.story import PURPOSE, RECRUITER, portal_grant, terms_in

NAIVE = "2026-12-05T00:00:00"
REFUSED = [
    (NAIVE, "timezone_aware"),
    ("2026-12-05", "iso_moment"),  # a date alone
    ("-1", "iso_moment"),  # pydantic would take a number as Unix time: 1969
    ("1764892800", "iso_moment"),
]


def asked(api: Served) -> tuple[str, str]:
    candidate = register(api)
    request = api.post(
        RECRUITER, f"/v1/candidates/{candidate}/consents", {"terms": terms_in().model_dump()}
    )
    assert request.status_code == 201, request.text
    api.portal(candidate)
    return candidate, request.json()["consent_id"]


def grant(api: Served, candidate: str, consent: str, valid_from: str, valid_until: str) -> Any:
    return api.post(
        f"candidate:{candidate}",
        f"/v1/consents/{consent}/grant",
        portal_grant(consent, valid_from, valid_until),
    )


@pytest.mark.parametrize(("moment", "rule"), REFUSED, ids=[r[1] + ":" + r[0] for r in REFUSED])
def test_a_grant_with_a_moment_without_offset_is_422_and_stores_nothing(
    api: Served, moment: str, rule: str
) -> None:
    candidate, consent = asked(api)
    head = api.head()

    refused = grant(api, candidate, consent, moment, "2027-03-01T00:00:00+00:00")

    body = problem(refused, 422, "validation")
    assert {(e["field"], e["rule"]) for e in body["errors"]} == {("valid_from", rule)}
    assert api.head() == head
    start = api.app.clock()
    later = grant(
        api, candidate, consent, start.isoformat(), (start + timedelta(days=90)).isoformat()
    )
    assert later.status_code == 200, later.text  # the consent is not stuck


def test_an_investigation_due_by_a_naive_moment_is_422(api: Served) -> None:
    candidate, consent = consented(api)
    head = api.head()

    refused = api.post(
        RECRUITER,
        "/v1/investigations",
        {
            "candidate_id": candidate,
            "consent_id": consent,
            "purpose": PURPOSE,
            "checks": [{"check_type": "employment", "categories": ["user.employment.employer"]}],
            "investigators": ["inv:zhao"],
            "due_by": NAIVE,
        },
    )

    body = problem(refused, 422, "validation")
    assert ("due_by", "timezone_aware") in {(e["field"], e["rule"]) for e in body["errors"]}
    assert api.head() == head


@pytest.mark.parametrize(("moment", "rule"), REFUSED, ids=[r[1] + ":" + r[0] for r in REFUSED])
def test_an_as_of_read_at_a_moment_without_offset_is_422_and_not_decided(
    api: Served, moment: str, rule: str
) -> None:
    candidate, _ = consented(api)
    logged = access_log(api, candidate)
    head = api.head()

    refused = api.get(COMPLIANCE, f"/v1/candidates/{candidate}/as-of", purpose="audit", at=moment)
    whole = api.get(COMPLIANCE, "/v1/audit/as-of", purpose="audit", at=moment)

    assert ("at", rule) in {(e["field"], e["rule"]) for e in problem(refused, 422)["errors"]}
    assert problem(whole, 422)["errors"][0]["field"] == "at"
    assert api.head() == head, "no read was decided, so none was recorded"
    entries = access_log(api, candidate)  # itself a read, recorded after the others
    assert entries[: len(logged)] == logged
    assert len(entries) == len(logged) + 1
    fine = api.get(
        COMPLIANCE, f"/v1/candidates/{candidate}/as-of", purpose="audit", at=f"{NAIVE}+00:00"
    )
    assert fine.status_code == 200, fine.text
