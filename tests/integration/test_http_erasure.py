"""Erasure over HTTP, on both backends: once compliance has erased a candidate, the link they
were sent signs in nowhere (no `/v1/me`, no profile, no access log) and is no longer waiting
in the outbox to be sent."""

from __future__ import annotations

from tests.http import COMPLIANCE, Served, problem
from tests.story import register, request_consent


def test_an_erased_candidates_portal_link_signs_in_nowhere(api: Served) -> None:
    # given: the consent request sent the link, and it reads the candidate's own data
    candidate = register(api.app)
    request_consent(api.app, candidate)
    me = f"candidate:{candidate}"
    api.sent_link(candidate)
    assert api.get(me, "/v1/me").status_code == 200
    profile = f"/v1/candidates/{candidate}/profile"
    assert api.get(me, profile, purpose="my own data").status_code == 200

    # when
    erased = api.post(
        COMPLIANCE, f"/v1/candidates/{candidate}/erasure", {"reason": "candidate-request"}
    )

    # then
    assert erased.status_code == 200, erased.text
    assert erased.json()["portal_link_revoked"] is True
    assert api.outbox is not None
    assert not (api.outbox / "portal-links" / f"{candidate}.json").exists()
    for path, params in (
        ("/v1/me", {}),
        (profile, {"purpose": "my own data"}),
        (f"/v1/candidates/{candidate}/access-log", {"purpose": "my own data"}),
    ):
        refused = api.get(me, path, **params)
        problem(refused, 401, "unauthenticated")
        assert "revoked" in refused.json()["detail"]
    assert api.get(COMPLIANCE, "/v1/me").status_code == 200  # staff still sign in


def test_the_portal_tells_an_erased_candidate_their_data_was_erased_not_to_ask_for_a_link(
    api: Served,
) -> None:
    """A link closed by the erasure is not one a recruiter can issue again: the candidate
    opening it, or using the session it opened, is told their data was erased and the portal
    is closed for good, not to ask for a new link."""
    candidate = register(api.app)
    request_consent(api.app, candidate)
    token = api.sent_link(candidate)
    portal = {"X-Backcheck-Portal": "1"}
    opened = api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {token}", **portal}
    )
    assert opened.status_code == 200, opened.text

    erased = api.post(
        COMPLIANCE, f"/v1/candidates/{candidate}/erasure", {"reason": "candidate-request"}
    )
    assert erased.status_code == 200, erased.text

    in_session = problem(api.client.get("/v1/me", headers=portal), 401, "unauthenticated")
    again = problem(
        api.client.post("/portal/session", headers={"Authorization": f"Bearer {token}", **portal}),
        401,
        "unauthenticated",
    )
    for refused in (in_session, again):
        assert "your personal data was erased" in refused["detail"], refused
        assert "closed for good" in refused["detail"], refused
        assert "ask the recruiter" not in refused["detail"], refused
