"""The server's own faults over HTTP are told to the client and to whoever runs the server.

Before, a known 5xx problem (`views-failed`, `store-io`, `store-full`, a store busy or away)
was answered as problem+json and nothing reached the server's log: its operator learned of a
views file refusing every row only from the clients. And the dashboard's live stream, meeting
one after its first summary, logged a traceback (uvicorn's "Exception in ASGI application")
and dropped the connection mid-chunk: the page saw the stream cut, and no reason.

Now each is one line at error level in the server's log (the request, how it was answered,
the problem's kind and detail; no traceback), and the stream sends the problem the route
would have answered as its last event, `problem`, and ends (decision 0062).

The fault is real: the views' own table refuses every row with a trigger, on each backend
(`refusing_rows`, as decisions 0055 and 0058 have it).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest

from infra.config import Settings
from infra.http.dashboard import Streams
from infra.ops.logs import Json
from infra.views.kept import DASHBOARD, READ
from services.dto import RegisterCandidate
from tests.http import COMPLIANCE, PROBLEM_PREFIX, Served, listening
from tests.integration.test_command_applied_views_behind import REFUSAL, refusing_rows
from tests.story import RECRUITER

HTTP_LOG = "backcheck.http"
WAIT = 10.0  # seconds a test waits for the stream at most


def _server_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == HTTP_LOG]


def _one_line_without_traceback(record: logging.LogRecord) -> dict[str, Any]:
    """`record` is at error level, with no exception attached (so no traceback at any level),
    and written as one JSON line off a terminal (infra/ops/logs.py): that line, parsed."""
    assert record.levelno == logging.ERROR
    assert record.exc_info is None
    assert record.exc_text is None
    written = Json().format(record)
    assert "\n" not in written
    line: dict[str, Any] = json.loads(written)
    assert set(line) == {"time", "level", "logger", "message"}  # no `error`, no `exc_text`
    return line


def test_a_views_fault_answered_over_http_is_one_error_line_in_the_servers_log(
    api: Served, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = api.app
    assert api.post(RECRUITER, "/v1/candidates", {"name": "Li Lei"}).status_code == 201

    with refusing_rows(settings, READ):
        # written, held for the read views and not applied (under `max_pending`)
        app.register_candidate(RegisterCandidate(name="Zhou Min", actor=RECRUITER))
        with caplog.at_level(logging.INFO, logger=HTTP_LOG):
            listed = api.get(RECRUITER, "/v1/candidates")

    assert listed.status_code == 500, listed.text
    problem = listed.json()
    assert problem["type"] == PROBLEM_PREFIX + "views-failed"
    [record] = _server_lines(caplog)
    line = _one_line_without_traceback(record)
    assert (line["level"], line["logger"]) == ("error", HTTP_LOG)
    assert line["message"] == (f"GET /v1/candidates answered 500 views-failed: {problem['detail']}")
    assert REFUSAL in line["message"]


def test_a_clients_fault_writes_nothing_to_the_servers_log(
    api: Served, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger=HTTP_LOG):
        missing = api.get(RECRUITER, f"/v1/investigations/{uuid4()}", purpose="hiring")
        unsigned = api.client.get("/v1/candidates")
        refused = api.get(RECRUITER, "/v1/audit/violations")

    assert [missing.status_code, unsigned.status_code, refused.status_code] == [404, 401, 403]
    assert _server_lines(caplog) == []


# --- the dashboard's live stream ------------------------------------------------------------


def events(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """Each event of a text/event-stream as (its name, its data), as they come, to its end."""
    kind, data = "", []
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if line.startswith("event:"):
            kind = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data.append(line.partition(":")[2].strip())
        elif line == "" and data:
            yield kind, "".join(data)
            kind, data = "", []


def _streams(api: Served) -> Streams:
    found = api.client.app.state.dashboard_streams  # type: ignore[attr-defined]
    assert isinstance(found, Streams)
    return found


@pytest.fixture
def every_log_line(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """`caplog`, hearing uvicorn's loggers too (they do not pass their lines to the root
    logger): where a stream's unhandled error was logged, with its traceback."""
    uvicorn = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error")]
    for logger in uvicorn:
        logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        for logger in uvicorn:
            logger.removeHandler(caplog.handler)


def test_a_views_fault_in_the_middle_of_the_stream_is_sent_as_its_last_event_and_logged_once(
    api: Served, settings: Settings, every_log_line: pytest.LogCaptureFixture
) -> None:
    caplog = every_log_line
    app = api.app
    with (
        listening(api) as base,
        httpx.Client(base_url=base, timeout=WAIT) as client,
        client.stream("GET", "/v1/dashboard/stream", headers=api.as_(COMPLIANCE)) as r,
    ):
        assert r.status_code == 200
        told = events(r)
        kind, first = next(told)
        assert kind == "summary"
        assert json.loads(first)["lag"]["head"] == api.head()

        with refusing_rows(settings, DASHBOARD), caplog.at_level(logging.INFO):
            # committed while the stream is open, held for the dashboard's views (under
            # `max_pending`): the stream's next summary catches them up, and the views refuse
            app.register_candidate(RegisterCandidate(name="Zhou Min", actor=RECRUITER))
            started = time.monotonic()
            rest = list(told)  # to the stream's end: it ends, and cleanly (no cut chunk)
            assert time.monotonic() - started < WAIT
            answered = api.get(COMPLIANCE, "/v1/dashboard/summary")  # the route, meanwhile

    [(kind, data)] = rest
    assert kind == "problem"
    problem = json.loads(data)
    assert problem["type"] == PROBLEM_PREFIX + "views-failed"
    assert (problem["status"], problem["title"]) == (500, "Views failed")
    assert problem["instance"] == "/v1/dashboard/stream"
    assert problem["detail"].startswith(
        "the kept views 'dashboard' could not be brought up to date from the log (IntegrityError: "
    ), problem["detail"]
    assert REFUSAL in problem["detail"]
    # what the route answers while the fault lasts, but for the path it was asked at
    assert answered.status_code == 500
    assert answered.headers["content-type"].startswith("application/problem+json")
    assert {**answered.json(), "instance": "/v1/dashboard/stream"} == problem

    # one line for the stream (and one for the summary asked after it), no traceback
    stream_line, summary_line = (
        _one_line_without_traceback(r) for r in caplog.records if r.levelno >= logging.WARNING
    )
    assert stream_line["logger"] == summary_line["logger"] == HTTP_LOG
    assert stream_line["message"] == (
        f"GET /v1/dashboard/stream ended its stream with 500 views-failed: {problem['detail']}"
    )
    assert summary_line["message"].startswith("GET /v1/dashboard/summary answered 500 ")
    # its slot given back
    deadline = time.monotonic() + WAIT
    while _streams(api).open:
        assert time.monotonic() < deadline, "the stream kept its slot after it ended"
        time.sleep(0.05)
    # the fault gone, the stream opens again and the summary is caught up
    summary = api.get(COMPLIANCE, "/v1/dashboard/summary")
    assert summary.status_code == 200, summary.text
    assert summary.json()["pipeline"]["candidates"] == {"registered": 1}
