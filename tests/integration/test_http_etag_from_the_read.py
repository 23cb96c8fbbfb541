"""A read's ETag is the version of exactly what it answers: taken from the view row the read
was decided and answered from, never read from the store afterwards. A write that lands
after the read was decided does not make the ETag newer than the data shown, and an
`If-Match` naming that ETag is then refused (412): the client's view is stale."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import pytest

from services.dto import RequestErasure
from tests import story as s
from tests.http import COMPLIANCE, Served, problem
from tests.integration.test_http_api import consented, register
from tests.story import PURPOSE, RECRUITER

WHOLE_READS = ("consents", "access-log")


def test_a_write_after_the_read_is_decided_leaves_its_etag_at_what_it_shows(
    api: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    candidate, _ = consented(api)
    shown = api.app.version_of(UUID(candidate))
    decided = api.app._recorded

    def then_a_write(decide: Any, *attempt: Any) -> Any:
        answer = decided(decide, *attempt)  # decided on the views and recorded: answered
        api.app.request_erasure(
            RequestErasure(candidate_id=UUID(candidate), reason="asked", actor=RECRUITER)
        )
        return answer

    monkeypatch.setattr(api.app, "_recorded", then_a_write)
    read = api.get(RECRUITER, f"/v1/candidates/{candidate}/profile", purpose=PURPOSE)
    monkeypatch.undo()

    assert read.status_code == 200, read.text
    assert read.headers["etag"] == f'"{shown}"'
    assert api.app.version_of(UUID(candidate)) == (shown or 0) + 1  # the write landed
    stale = api.post(
        RECRUITER,
        f"/v1/candidates/{candidate}/erasure-request",
        {"reason": "again"},
        **{"If-Match": read.headers["etag"]},
    )
    problem(stale, 412, "version-mismatch")


def test_every_read_of_a_candidate_answers_the_candidates_version(api: Served) -> None:
    candidate, _ = consented(api)
    api.post(RECRUITER, f"/v1/candidates/{candidate}/erasure-request", {"reason": "asked"})
    version = api.app.version_of(UUID(candidate))
    assert version == 2

    profile = api.get(RECRUITER, f"/v1/candidates/{candidate}/profile", purpose=PURPOSE)
    assert profile.status_code == 200, profile.text
    assert profile.headers["etag"] == f'"{version}"'
    for read in WHOLE_READS:
        r = api.get(COMPLIANCE, f"/v1/candidates/{candidate}/{read}", purpose="audit")
        assert r.status_code == 200, (read, r.text)
        assert r.headers["etag"] == f'"{version}"', read


def test_each_aggregates_row_is_at_its_version_through_every_event(api: Served) -> None:
    app = api.app
    story = s.approved_report(app)  # notified too: an event that changes nothing else
    rows = {
        "profile": story.candidate_id,
        "investigation": story.investigation_id,
        "report": story.report_id,
    }
    views = app.read_model()
    for view, aggregate in rows.items():
        assert aggregate is not None
        row = views.get(view, str(aggregate), frozenset())
        assert row is not None, view
        assert row["version"] == app.version_of(aggregate), view


def test_a_commands_etag_is_the_version_it_wrote_even_when_another_write_follows_at_once(
    api: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command's answer names the version its own write made, not one read after it:
    a change that lands between the write and the answer (from another thread, as another
    request would) does not make the answer's ETag newer than what the command did."""
    candidate = register(api)
    notify = api.app._notify
    landed: list[int | None] = []

    def then_another_write(recordings: Any) -> None:
        notify(recordings)
        if landed:
            return  # the other write's own notification
        landed.append(None)
        other = threading.Thread(
            target=api.app.request_erasure,
            args=(RequestErasure(candidate_id=UUID(candidate), reason="asked", actor=RECRUITER),),
        )
        other.start()
        other.join()
        landed.append(api.app.version_of(UUID(candidate)))

    monkeypatch.setattr(api.app, "_notify", then_another_write)
    claims = {
        "claims": [
            {
                "kind": "employment",
                "fields": [
                    {
                        "name": "employer",
                        "category": "user.employment.employer",
                        "value": "Acme Logistics Ltd",
                    }
                ],
            }
        ]
    }
    answer = api.post(RECRUITER, f"/v1/candidates/{candidate}/claims", claims)
    monkeypatch.undo()

    assert answer.status_code == 200, answer.text
    assert landed[-1] == 3  # registered 1, claims 2, then the erasure request: 3
    assert answer.headers["etag"] == '"2"'
    stale = api.post(
        RECRUITER,
        f"/v1/candidates/{candidate}/claims",
        claims,
        **{"If-Match": answer.headers["etag"]},
    )
    problem(stale, 412, "version-mismatch")
