"""The dashboard over HTTP on each backend: the summary is the application's, for staff only;
the stream sends one at once and another once an event is committed, and gives its slot back
when the client goes; the drill-down lists exactly a day's refused reads (by principal, by
policy), a page at a time, with no personal value in them; the page is served whole from the
package, under a Content-Security-Policy, with nothing from another host."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import UUID

import httpx
import pytest

from domain.access import AccessOutcome
from domain.errors import AccessRefusedError
from infra.audit.health import chain_health
from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from infra.http.dashboard import STATIC, Streams
from projections.access_log import NO_POLICY
from projections.tally import day_of
from services.access import Role
from services.dto import ReadProfile
from tests import story as s
from tests.conftest import FakeClock
from tests.http import COMPLIANCE, Served, listening, problem, served
from tests.integration.test_views import personal_values, reference

SNOOP = "growth:ana.lind"
MANAGER = "manager:chen.jie.dash"
SERVICE = "service:intake.dash"
WAIT = 10.0  # seconds a test waits for the stream at most


@pytest.fixture
def demo(settings: Settings, clock: FakeClock) -> Iterator[tuple[Served, dict[str, Any]]]:
    app = build_app(settings, clock=clock)
    try:
        told = tell_story(app).as_json()
        with served(app, settings) as api:
            api.portal(UUID(str(told["candidate_id"])))
            api.issue(MANAGER, Role.HIRING_MANAGER)
            api.issue(SERVICE, Role.SERVICE)
            yield api, told
    finally:
        app.close()


def refuse(api: Served, candidate_id: UUID, principal: str = SNOOP, n: int = 1) -> None:
    """`n` reads of the candidate's profile, each refused by policy (and recorded)."""
    for _ in range(n):
        with pytest.raises(AccessRefusedError):
            api.app.read_profile(
                ReadProfile(
                    candidate_id=candidate_id,
                    principal=principal,
                    role=Role.RECRUITER,
                    purpose="marketing",
                )
            )


def refused_events(api: Served, day: str) -> list[Any]:
    """The refused reads of `day` as the log holds them, oldest first as the drill-down lists
    them: by time, reads recorded at the same moment (a test clock stands still) by access id
    (time-ordered ids are random within a millisecond, so the log's order may differ)."""
    return sorted(
        (
            e
            for _, e in api.app.replay()
            if type(e).__qualname__ == "Access.Recorded"
            and e.outcome == AccessOutcome.REFUSED.value
            and day_of(e.timestamp) == day
        ),
        key=lambda e: (e.timestamp, str(e.originator_id)),
    )


def drill(api: Served, day: str, limit: int = 50, **filters: str) -> list[dict[str, Any]]:
    """Every refused read the drill-down lists for `day`, following its cursors."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"day": day, "limit": limit, **filters}
        if cursor:
            params["cursor"] = cursor
        r = api.get(COMPLIANCE, "/v1/dashboard/refusals", **params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        assert ("link" in r.headers) == (cursor is not None)
        if cursor is None:
            return items
        assert len(page["items"]) == limit  # only a full page has a next one
    raise AssertionError("the cursors never ended")


def without_lag(body: dict[str, Any]) -> dict[str, Any]:
    """A summary without what differs from one asking to the next (the time catching up)."""
    return {k: v for k, v in body.items() if k != "lag"}


# --- the summary ----------------------------------------------------------------------------


def test_the_summary_is_the_applications_own_for_a_compliance_officer(
    demo: tuple[Served, dict[str, Any]], settings: Settings
) -> None:
    api, _ = demo
    expected = api.app.dashboard_summary(chain_health(settings)).model_dump(mode="json")

    r = api.get(COMPLIANCE, "/v1/dashboard/summary")

    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert without_lag(body) == without_lag(expected)
    assert body["lag"]["head"] == expected["lag"]["head"] == api.head()
    assert body["refusals"]["total"] > 0
    assert body["refusals"]["by_principal"]


def test_other_staff_see_the_summary_without_who_was_refused(
    demo: tuple[Served, dict[str, Any]],
) -> None:
    api, _ = demo
    full = api.get(COMPLIANCE, "/v1/dashboard/summary").json()

    for name in (s.RECRUITER, s.INVESTIGATOR, s.REVIEWER):
        body = api.get(name, "/v1/dashboard/summary").json()

        assert body["refusals"]["by_principal"] == {}
        assert all(day["by_principal"] == {} for day in body["refusals"]["days"])
        assert body["refusals"]["total"] == full["refusals"]["total"]
        assert body["refusals"]["by_policy"] == full["refusals"]["by_policy"]
        assert body["pipeline"] == full["pipeline"]


def test_without_a_token_the_dashboard_is_401_and_for_other_roles_403(
    demo: tuple[Served, dict[str, Any]],
) -> None:
    api, told = demo
    candidate = f"candidate:{told['candidate_id']}"

    for path in ("/v1/dashboard/summary", "/v1/dashboard/stream"):
        assert problem(api.client.get(path), 401)["detail"]
        for name in (candidate, MANAGER, SERVICE):
            body = problem(api.get(name, path), 403, "use-case-not-permitted")
            assert "compliance" in body["detail"], body
    refusals = "/v1/dashboard/refusals"
    day = date.today().isoformat()
    assert problem(api.client.get(refusals, params={"day": day}), 401)
    for name in (candidate, MANAGER, SERVICE, s.RECRUITER, s.INVESTIGATOR, s.REVIEWER):
        problem(api.get(name, refusals, day=day), 403, "use-case-not-permitted")


# --- the stream -----------------------------------------------------------------------------


def summaries(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The `summary` events of a text/event-stream, as they come."""
    kind, data = "", []
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if line.startswith("event:"):
            kind = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data.append(line.partition(":")[2].strip())
        elif line == "" and data:
            if kind == "summary":
                yield json.loads("".join(data))
            kind, data = "", []


def streams_of(api: Served) -> Streams:
    found = api.client.app.state.dashboard_streams  # type: ignore[attr-defined]
    assert isinstance(found, Streams)
    return found


def test_the_stream_sends_a_summary_at_once_and_another_after_an_event_is_committed(
    demo: tuple[Served, dict[str, Any]],
) -> None:
    api, _ = demo
    with listening(api) as base, httpx.Client(base_url=base, timeout=WAIT) as client:
        with client.stream("GET", "/v1/dashboard/stream", headers=api.as_(COMPLIANCE)) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["cache-control"] == "no-store"
            events = summaries(r)
            first = next(events)
            assert first["lag"]["head"] == api.head()
            assert streams_of(api).open == 1
            registered = first["pipeline"]["candidates"].get("registered", 0)

            s.register(api.app, "Zhou Xun")  # committed while the stream is open

            started = time.monotonic()
            second = next(events)
            assert time.monotonic() - started < WAIT
            assert second["lag"]["head"] == api.head() > first["lag"]["head"]
            assert second["pipeline"]["candidates"]["registered"] == registered + 1
        # the client went: its slot is given back
        deadline = time.monotonic() + WAIT
        while streams_of(api).open:
            assert time.monotonic() < deadline, "the stream kept its slot after the client went"
            time.sleep(0.05)


def test_a_stream_past_the_limit_is_refused_with_a_503_problem(
    demo: tuple[Served, dict[str, Any]],
) -> None:
    api, _ = demo
    streams_of(api).limit = 1
    with (
        listening(api) as base,
        httpx.Client(base_url=base, timeout=WAIT) as client,
        client.stream("GET", "/v1/dashboard/stream", headers=api.as_(COMPLIANCE)) as r,
    ):
        events = summaries(r)  # kept: dropping the iterator would close the response
        assert next(events)["lag"]["head"] == api.head()

        refused = client.get("/v1/dashboard/stream", headers=api.as_(s.RECRUITER))

        body = problem(refused, 503, "too-many-streams")
        assert refused.headers["retry-after"]
        assert "1 dashboard streams are open" in body["detail"]


def test_one_principal_holds_only_its_share_of_the_streams(
    demo: tuple[Served, dict[str, Any]],
) -> None:
    api, _ = demo
    assert (streams_of(api).limit, streams_of(api).each) == (8, 2)
    with (
        listening(api) as base,
        httpx.Client(base_url=base, timeout=WAIT) as client,
        client.stream("GET", "/v1/dashboard/stream", headers=api.as_(s.RECRUITER)) as first,
        client.stream("GET", "/v1/dashboard/stream", headers=api.as_(s.RECRUITER)) as second,
    ):
        assert (first.status_code, second.status_code) == (200, 200)
        third = client.get("/v1/dashboard/stream", headers=api.as_(s.RECRUITER))
        body = problem(third, 503, "too-many-streams")
        assert f"{s.RECRUITER} has 2 dashboard streams open" in body["detail"]
        # the others still have theirs
        with client.stream("GET", "/v1/dashboard/stream", headers=api.as_(COMPLIANCE)) as other:
            assert other.status_code == 200
            assert next(summaries(other))["lag"]["head"] == api.head()


# --- the drill-down -------------------------------------------------------------------------


def test_the_drill_down_lists_exactly_the_refused_reads_of_the_day_a_page_at_a_time(
    demo: tuple[Served, dict[str, Any]], clock: FakeClock
) -> None:
    api, told = demo
    candidate = UUID(str(told["candidate_id"]))
    other = UUID(str(told["other_candidate_id"]))
    refuse(api, candidate, n=3)
    refuse(api, other, principal="growth:bo.yang", n=2)
    today = day_of(clock())
    clock.advance(days=1)
    refuse(api, candidate, n=2)  # the next day's: not in today's list
    tomorrow = day_of(clock())

    for day in (today, tomorrow):
        expected = refused_events(api, day)
        for limit in (1, 2, 50):
            listed = drill(api, day, limit=limit)
            assert [i["access_id"] for i in listed] == [str(e.originator_id) for e in expected]
        # what each item says is what the access event recorded
        for item, e in zip(drill(api, day), expected, strict=True):
            assert item["candidate_id"] == str(e.candidate_id)
            assert (item["principal"], item["role"], item["purpose"], item["view"]) == (
                e.principal,
                e.role,
                e.purpose,
                e.view,
            )
            assert item["authentication"] == e.authentication
            assert item["policy_ids"] == list(e.policy_ids)
            assert item["at"].startswith(day)
    assert len(refused_events(api, today)) >= 5
    assert len(refused_events(api, tomorrow)) == 2

    # by principal, by policy, by both: exactly the day's reads that match
    expected = refused_events(api, today)
    for principal in {e.principal for e in expected}:
        listed = drill(api, today, limit=2, principal=principal)
        assert [i["access_id"] for i in listed] == [
            str(e.originator_id) for e in expected if e.principal == principal
        ]
    policies = {p for e in expected for p in (e.policy_ids or [NO_POLICY])}
    for policy in policies:
        mine = [e for e in expected if policy in (e.policy_ids or [NO_POLICY])]
        assert [i["access_id"] for i in drill(api, today, policy=policy)] == [
            str(e.originator_id) for e in mine
        ]
        both = drill(api, today, principal=SNOOP, policy=policy)
        assert [i["access_id"] for i in both] == [
            str(e.originator_id) for e in mine if e.principal == SNOOP
        ]
    assert drill(api, today, principal="nobody:at.all") == []
    # the chart's numbers and the drill-down agree
    summary = api.get(COMPLIANCE, "/v1/dashboard/summary").json()
    bar = next(d for d in summary["refusals"]["days"] if d["day"] == today)
    assert bar["total"] == len(drill(api, today))
    assert bar["by_principal"][SNOOP] == len(drill(api, today, principal=SNOOP))


def test_the_drill_down_holds_no_personal_value(
    demo: tuple[Served, dict[str, Any]], clock: FakeClock
) -> None:
    api, told = demo
    refuse(api, UUID(str(told["candidate_id"])), n=2)
    sealed = personal_values(reference(api.app))
    assert len(sealed) >= 5, sealed  # the story holds values to look for

    days = {day_of(e.timestamp) for e in refused_events(api, day_of(clock()))}
    summary = api.get(COMPLIANCE, "/v1/dashboard/summary")
    texts = [summary.text]
    for day in days | {d["day"] for d in summary.json()["refusals"]["days"]}:
        r = api.get(COMPLIANCE, "/v1/dashboard/refusals", day=day)
        assert r.json()["items"]
        texts.append(r.text)
    for text in texts:
        assert not [v for v in sealed if v in text]


def test_bad_drill_down_input_is_a_problem_naming_the_field(
    demo: tuple[Served, dict[str, Any]],
) -> None:
    api, _ = demo
    path = "/v1/dashboard/refusals"
    for params, field in [
        ({}, "day"),
        ({"day": "yesterday"}, "day"),
        ({"day": "2026-03-02", "principal": "Not A Name"}, "principal"),
        ({"day": "2026-03-02", "policy": "x" * 201}, "policy"),
        ({"day": "2026-03-02", "cursor": "not*a*cursor"}, "cursor"),
        ({"day": "2026-03-02", "limit": 0}, "limit"),
    ]:
        body = problem(api.get(COMPLIANCE, path, **params), 422)
        assert field in body["detail"], (params, body)


# --- the page -------------------------------------------------------------------------------


def test_the_page_is_served_whole_under_a_csp_and_loads_nothing_from_elsewhere(
    demo: tuple[Served, dict[str, Any]],
) -> None:
    api, _ = demo
    paths = ["/dashboard", *(f"/dashboard/{name}" for name in STATIC)]
    for path in paths:
        r = api.client.get(path)  # the page itself needs no token: its data does

        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert not re.search(r"https?://", r.text), path
    page = api.client.get("/dashboard").text
    assert '<script src="/dashboard/dashboard.js" defer></script>' in page
    assert re.findall(r"<script[^>]*>([^<]*)</script>", page) == [""]  # no inline script
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", page)  # no inline event handler
    assert not re.search(r"\sstyle\s*=", page)  # no inline style
    assert (
        api.client.get("/dashboard/dashboard.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert api.client.get("/dashboard/dashboard.css").headers["content-type"].startswith("text/css")
