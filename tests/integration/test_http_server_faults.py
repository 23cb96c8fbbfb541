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
from typing import Any
from uuid import uuid4

import pytest

from infra.config import Settings
from infra.ops.logs import Json
from infra.views.kept import READ
from services.dto import RegisterCandidate
from tests.http import PROBLEM_PREFIX, Served
from tests.integration.test_command_applied_views_behind import REFUSAL, refusing_rows
from tests.story import RECRUITER

HTTP_LOG = "backcheck.http"


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
