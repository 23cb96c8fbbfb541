"""A grant whose validity window is over when it is recorded is refused, on both backends and
over HTTP: 422 naming `valid_until`, nothing stored, and the request still open to a grant
with a window that goes on (it was granted as expired, using the request up)."""

from __future__ import annotations

from datetime import timedelta

from tests.http import Served, problem
from tests.story import portal_grant, register, request_consent


def grant(api: Served, candidate: object, consent: object, valid_from: str, until: str) -> object:
    return api.post(
        f"candidate:{candidate}",
        f"/v1/consents/{consent}/grant",
        portal_grant(consent, valid_from, until),
    )


def test_a_grant_whose_window_is_in_the_past_is_422_naming_valid_until_and_stores_nothing(
    api: Served,
) -> None:
    # given
    candidate = register(api.app)
    consent = request_consent(api.app, candidate)
    api.sent_link(candidate)
    head = api.head()

    # when
    refused = grant(api, candidate, consent, "2020-01-01T00:00:00+00:00", "2020-06-01T00:00:00Z")

    # then
    body = problem(refused, 422, "ValidityWindowOver")
    assert body["errors"] == [
        {"field": "valid_until", "rule": "ValidityWindowOver", "message": body["detail"]}
    ]
    assert "valid_until 2020-06-01T00:00:00+00:00 is not after now" in body["detail"]
    assert api.head() == head
    assert api.app.get_consent(consent).status == "requested"
    start = api.app.clock()
    later = grant(
        api, candidate, consent, start.isoformat(), (start + timedelta(days=90)).isoformat()
    )
    assert later.status_code == 200, later.text  # type: ignore[attr-defined]
    assert later.json()["status"] == "active"  # type: ignore[attr-defined]


def test_a_reversed_window_is_still_422_naming_valid_until(api: Served) -> None:
    candidate = register(api.app)
    consent = request_consent(api.app, candidate)
    api.sent_link(candidate)
    head = api.head()

    refused = grant(api, candidate, consent, "2027-06-01T00:00:00Z", "2027-01-01T00:00:00Z")

    body = problem(refused, 422, "InvalidValidityWindow")
    assert [e["field"] for e in body["errors"]] == ["valid_until"]
    assert api.head() == head
