"""A read whose kept views cannot be brought up to date is answered in one line, as the
server's fault `views-failed` (decision 0058).

A write stands when the views cannot follow it (decision 0055); the views then catch up at
the next read, and that read fails while the fault lasts. It failed with the views store's
own error, which the problem table did not know: `backcheck read …` and `backcheck dashboard`
printed a Python traceback and exited 1, and over HTTP it was a 500 `internal` ("an error it
does not know"), the traceback in the server's log.

The fault is real here: the views' own table refuses every row with a trigger, on each
backend (`refusing_rows`, as decision 0055's tests have it).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from infra.config import Settings
from infra.problem import EX_IOERR
from infra.views.kept import DASHBOARD, READ
from services.dto import RegisterCandidate
from tests.e2e.test_cli import run
from tests.http import COMPLIANCE, PROBLEM_PREFIX, Served
from tests.integration.test_command_applied_views_behind import REFUSAL, refusing_rows
from tests.story import RECRUITER

VIEWS_FAILED = "views-failed"
LEAD = "Views failed (views-failed): "


def _is_views_failed(answer: Any, views: str) -> None:
    """`answer` is the problem+json of `views-failed`, naming `views` and the store's refusal."""
    assert answer.status_code == 500, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "Retry-After" not in answer.headers  # waiting alone cures nothing
    problem = answer.json()
    assert problem["type"] == PROBLEM_PREFIX + VIEWS_FAILED, problem
    assert problem["title"] == "Views failed"
    assert problem["detail"].startswith(
        f"the kept views '{views}' could not be brought up to date from the log (IntegrityError: "
    ), problem["detail"]
    assert REFUSAL in problem["detail"]
    assert "\n" not in problem["detail"]


def test_a_read_whose_views_refuse_to_catch_up_is_answered_views_failed_over_http(
    api: Served, settings: Settings
) -> None:
    app = api.app
    first = api.post(RECRUITER, "/v1/candidates", {"name": "Li Lei"})
    assert first.status_code == 201, first.text

    with refusing_rows(settings, READ):
        # written, held for the read views and not applied (under `max_pending`)
        app.register_candidate(RegisterCandidate(name="Zhou Min", actor=RECRUITER))
        listed = api.get(RECRUITER, "/v1/candidates")

    _is_views_failed(listed, "views")
    listed = api.get(RECRUITER, "/v1/candidates")  # the fault gone: caught up, answered
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["items"]) == 2


def test_a_dashboard_whose_views_refuse_to_catch_up_is_answered_views_failed_over_http(
    api: Served, settings: Settings
) -> None:
    app = api.app
    assert api.get(COMPLIANCE, "/v1/dashboard/summary").status_code == 200

    with refusing_rows(settings, DASHBOARD):
        app.register_candidate(RegisterCandidate(name="Zhou Min", actor=RECRUITER))
        summary = api.get(COMPLIANCE, "/v1/dashboard/summary")

    _is_views_failed(summary, "dashboard")
    summary = api.get(COMPLIANCE, "/v1/dashboard/summary")
    assert summary.status_code == 200, summary.text
    assert summary.json()["pipeline"]["candidates"] == {"registered": 1}


def env_of(settings: Settings) -> dict[str, str]:
    return {
        "BACKCHECK_DATABASE_URL": str(settings.database_url),
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
    }


def test_a_command_line_read_whose_views_refuse_to_catch_up_is_one_line(
    settings: Settings,
) -> None:
    """`backcheck read profile` (the read views) and `backcheck dashboard` (the dashboard's):
    each is one line on stderr, or the problem as JSON on stdout, exit 74; no traceback
    (the fixture `_no_traceback_in_any_process` refuses one in any child's output)."""
    env = env_of(settings)
    first = run(env, "do", "register-candidate", '{"name": "Li Lei", "actor": "hr:li"}', "--json")
    assert first.returncode == 0, first.stderr
    candidate = UUID(json.loads(first.stdout)["candidate_id"])
    profile = ("read", "profile", str(candidate), "--as", "hr:li", "--role", "recruiter")
    profile += ("--purpose", "hiring")

    for kept, read in ((READ, profile), (DASHBOARD, ("dashboard",))):
        with refusing_rows(settings, kept):
            # stored, and answered so; the views it could not be applied to are left behind
            done = run(env, "do", "register-candidate", '{"name": "Zhou Min", "actor": "hr:li"}')
            assert done.returncode == 0, done.stderr
            shown = run(env, *read)
            as_json = run(env, *read, "--json")

        assert shown.returncode == EX_IOERR, shown.stderr
        [line] = shown.stderr.splitlines()  # one line
        assert line.startswith(
            f"{LEAD}the kept views '{kept.name}' could not be brought up to date from the log "
            "(IntegrityError: "
        ), line
        assert REFUSAL in line
        assert shown.stdout == ""
        assert as_json.returncode == EX_IOERR, as_json.stderr
        assert as_json.stderr == ""
        problem = json.loads(as_json.stdout)
        assert (problem["status"], problem["type"], problem["exit_code"]) == (
            500,
            VIEWS_FAILED,
            EX_IOERR,
        )
        assert REFUSAL in problem["detail"]

    # the fault gone, the same reads catch their views up and answer (the profile's read is
    # refused by policy, recorded: there is no consent for it)
    assert run(env, *profile).returncode == 5
    dashboard = run(env, "dashboard", "--json")
    assert dashboard.returncode == 0, dashboard.stderr
    assert json.loads(dashboard.stdout)["pipeline"]["candidates"] == {"registered": 3}
