"""The list routes over HTTP (infra/http/lists.py) on a real store: pages linked by RFC 8288
`Link` headers that keep the filters, and every error a problem naming its field.

The routes are mounted on a small FastAPI app of the test's own, with the problem handlers
of infra/http/problems.py and an authenticator whose tokens map to roles (the API's real
token check is tested with the API); everything behind the route is the real one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from domain.access import Authentication
from infra.config import Settings
from infra.http import lists, problems
from infra.http.auth import Authenticator
from infra.http.sessions import portal_sessions
from services.access import Role
from services.application import Backcheck
from services.identity import Identity
from tests import story as s

TOKENS = {
    "recruiter-token": Role.RECRUITER,
    "reviewer-token": Role.REVIEWER,
    "candidate-token": Role.CANDIDATE,
}
NAMES = ("Zq Routeone", "Zq Routetwo", "Zq Routethree", "Zq Drafted", "Zq Approved")
PROBLEM = "application/problem+json"


class ByToken(Authenticator):
    """The API's authenticator, each token of TOKENS signing in as its role."""

    def identify(self, credential: str) -> Identity:
        if credential not in TOKENS:
            raise HTTPException(401, "no such token")
        return Identity(credential, TOKENS[credential], Authentication.TOKEN)


@pytest.fixture
def client(sqlite_app: Backcheck, tmp_path: Path) -> Iterator[TestClient]:
    for name in NAMES[:3]:
        s.register(sqlite_app, name)
    s.compiled_report(sqlite_app, NAMES[3])
    s.approved_report(sqlite_app, NAMES[4])
    app = FastAPI()
    problems.install(app)
    store = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    lists.install(app, sqlite_app, ByToken(sqlite_app, portal_sessions(store)))
    with TestClient(app) as http:
        yield http


def get(client: TestClient, url: str, token: str = "recruiter-token") -> Any:
    return client.get(url, headers={"Authorization": f"Bearer {token}"})


def follow(client: TestClient, url: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every item, page by page along the `Link: rel="next"` headers; and the pages' URLs."""
    items: list[dict[str, Any]] = []
    urls = [url]
    while True:
        answer = get(client, urls[-1])
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["items"]
        link = answer.headers.get("link")
        if body["next_cursor"] is None:
            assert link is None
            return items, urls
        found = re.fullmatch(r'<(/v1/[^>]+)>; rel="next"', link)
        assert found is not None, link
        assert f"cursor={body['next_cursor']}" in found.group(1)
        urls.append(found.group(1))


def test_pages_link_to_the_next_one_keeping_the_filters_until_the_last(
    client: TestClient,
) -> None:
    whole = get(client, "/v1/candidates?limit=200").json()
    assert len(whole["items"]) == 5
    assert whole["next_cursor"] is None
    assert whole["limit"] == 200

    items, urls = follow(client, "/v1/candidates?limit=2")

    assert items == whole["items"]
    assert len(urls) == 3
    assert all("limit=2" in url for url in urls)
    reported, urls = follow(client, "/v1/candidates?status=reported&limit=1")
    assert [i["status"] for i in reported] == ["reported", "reported"]
    assert all("status=reported" in url for url in urls[1:])


def test_the_review_queue_and_the_lists_by_status(client: TestClient) -> None:
    queue = get(client, "/v1/reports?awaiting_review=true", "reviewer-token").json()["items"]
    approved = get(client, "/v1/reports?status=approved", "reviewer-token").json()["items"]
    completed = get(client, "/v1/investigations?status=completed").json()["items"]

    assert [r["status"] for r in queue] == ["draft"]
    assert [r["status"] for r in approved] == ["approved"]
    assert len(completed) == 2
    assert {i["check_types"][0] for i in completed} == {"employment"}


def test_no_answer_holds_a_personal_value(client: TestClient) -> None:
    for url in ("/v1/candidates", "/v1/investigations", "/v1/reports"):
        text = get(client, url).text
        for value in (*NAMES, "li.lei@example.com", s.EMPLOYER, s.PURPOSE, s.RECRUITER):
            assert value not in text


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/v1/candidates?cursor=not-ours", "cursor"),
        ("/v1/investigations?cursor=" + "A" * 201, "cursor"),
        ("/v1/reports?cursor=%00", "cursor"),
        ("/v1/candidates?limit=0", "limit"),
        ("/v1/candidates?limit=201", "limit"),
        ("/v1/investigations?status=finished", "status"),
        ("/v1/reports?awaiting_review=true&status=approved", "awaiting_review"),
    ],
)
def test_bad_input_is_a_422_problem_naming_the_field(
    client: TestClient, url: str, field: str
) -> None:
    answer = get(client, url)

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["type"].startswith("tag:backcheck.invalid,2026:problems/")
    # one shape whichever check refused it (the schema's, or the cursor's own): `errors`
    assert field in [e["field"] for e in body["errors"]], body
    assert all({"field", "rule", "message"} <= e.keys() for e in body["errors"]), body


def test_a_cursor_is_taken_only_by_the_list_and_filters_that_gave_it_out(
    client: TestClient,
) -> None:
    """A `/v1/candidates` cursor was taken by `/v1/reports` as a place in the reports (every
    list's keys have one form), and so by the same list under another status: the second
    page of one list was a page of another from an arbitrary point. It is refused, 422 naming
    `cursor`; the list that gave it out still takes it."""
    cursor = get(client, "/v1/candidates?limit=1").json()["next_cursor"]
    reported = get(client, "/v1/candidates?status=reported&limit=1").json()["next_cursor"]
    assert cursor is not None
    assert reported is not None

    for url in (
        f"/v1/reports?cursor={cursor}",
        f"/v1/investigations?cursor={cursor}",
        f"/v1/candidates?status=reported&cursor={cursor}",
        f"/v1/candidates?cursor={reported}",
        f"/v1/reports?awaiting_review=true&cursor={reported}",
    ):
        answer = get(client, url, "reviewer-token")
        assert answer.status_code == 422, (url, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        body = answer.json()
        assert [e["field"] for e in body["errors"]] == ["cursor"]
        assert "another list, or this list with other filters" in body["detail"]
    assert get(client, f"/v1/candidates?limit=1&cursor={cursor}").status_code == 200
    assert get(client, f"/v1/candidates?status=reported&cursor={reported}").status_code == 200


def test_a_candidate_is_refused_with_a_403_problem(client: TestClient) -> None:
    for url in ("/v1/candidates", "/v1/investigations", "/v1/reports?awaiting_review=true"):
        answer = get(client, url, "candidate-token")

        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"] == PROBLEM
        body = answer.json()
        assert body["status"] == 403
        assert "may not be run by a principal in the role 'candidate'" in body["detail"]
        assert body["type"].endswith("/use-case-not-permitted")
        assert "items" not in body


def test_the_openapi_document_declares_the_filters_the_link_header_and_the_problems(
    client: TestClient,
) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    for path in ("/v1/candidates", "/v1/investigations", "/v1/reports"):
        route = paths[path]["get"]
        params = {p["name"] for p in route["parameters"]}
        assert {"status", "cursor", "limit"} <= params
        assert "Link" in route["responses"]["200"]["headers"]
        assert {"401", "403", "422"} <= set(route["responses"])
    assert "awaiting_review" in {p["name"] for p in paths["/v1/reports"]["get"]["parameters"]}


def test_the_next_link_is_relative_whatever_host_the_client_names(client: TestClient) -> None:
    answer = client.get(
        "/v1/candidates?limit=1",
        headers={"Authorization": "Bearer recruiter-token", "Host": "evil.example"},
    )

    assert answer.status_code == 200, answer.text
    assert answer.headers["link"].startswith("</v1/candidates?"), answer.headers["link"]
    assert "evil.example" not in answer.headers["link"]
