"""The `backcheck` command line, run as a user runs it: a real process on a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from infra.views.runner import ViewRunner
from infra.views.store import Dumped
from projections.access_log import READS_PREFIX, REFUSAL_PREFIX
from projections.dashboard import CASE_VIEW, DASHBOARD_VIEW, Dashboard
from projections.listing import LIST_VIEWS
from projections.read_views import ReadViews
from services.dto import RequestErasure
from tests.conftest import PG_URL

BACKCHECK = [sys.executable, "-m", "infra.cli"]


def run(
    env_extra: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env.update(env_extra)
    env["COLUMNS"] = "200"
    return subprocess.run(
        [*BACKCHECK, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    return {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}


def demo_ids(env: dict[str, str]) -> dict[str, Any]:
    """Runs `backcheck demo --json` on the store: the ids the story made, and its counts."""
    result = run(env, "demo", "--json")
    assert result.returncode == 0, result.stderr
    ids: dict[str, Any] = json.loads(result.stdout)
    return ids


def events_of(env: dict[str, str], subject: str) -> list[dict[str, Any]]:
    listed = run(env, "events", "--subject", subject, "--json")
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_the_demo_tells_the_whole_story_and_meets_every_rule_on_the_way(
    store: dict[str, str],
) -> None:
    ids = demo_ids(store)

    assert (ids["steps"], ids["refusals"]) == (43, 15)
    for rule in (
        "ProhibitedCategory",
        "ConsentNotActive",
        "ConsentGrantExceedsRequest",
        "ConsentDoesNotCoverCheck",
        "CandidateNotNotified",
        "ConsentRequiredForCategory",
        "RefereeNotPermitted",
        "RecordingNotConsented",
        "NegativeConclusionNeedsSecondSource",
        "OpenDispute",
        "SelfReview",
        "PurposeNotConsented",
        "AccessRefused",
    ):
        assert rule in ids["rules"], rule
    candidate = ids["candidate_id"]
    disclosed = [
        e["data"]["disclosure"]
        for e in events_of(store, candidate)
        if (e["aggregate"], e["event"]) == ("Report", "Disclosed")
    ]
    assert [(d["recipient_role"], d["edition"]) for d in disclosed] == [("hiring manager", 2)]
    as_candidate = ("--as", f"candidate:{candidate}", "--role", "candidate", "--purpose", "mine")
    log = run(store, "subject", "access-log", candidate, *as_candidate, "--json")
    entries = json.loads(log.stdout)["entries"]
    assert ("growth:wu.hao", "recruiter", "marketing", "refused") in [
        (e["principal"], e["role"], e["purpose"], e["outcome"]) for e in entries
    ]
    erased = events_of(store, ids["erased_candidate_id"])
    assert ("Candidate", "Erased") in [(e["aggregate"], e["event"]) for e in erased]
    assert ids["keys_destroyed"] >= 1  # and the demo fails if her name still reads
    assert Path(store["BACKCHECK_DATA_DIR"], "backcheck.sqlite").is_file()


def test_the_demo_prints_the_story_for_a_person_and_only_its_ids_as_json(
    tmp_path: Path,
) -> None:
    told = run({"BACKCHECK_DATA_DIR": str(tmp_path / "told")}, "demo")
    as_json = run({"BACKCHECK_DATA_DIR": str(tmp_path / "json")}, "demo", "--json")

    assert told.returncode == 0, told.stderr
    assert len(told.stdout.splitlines()) > 43  # a line at least for each step
    # piped, lines are not wrapped, but a chapter's rule is not as wide as that either
    rules = [line for line in told.stdout.splitlines() if line.startswith("───")]
    assert len(rules) == 10, told.stdout[:2000]
    assert {len(line) for line in rules} == {80}
    assert "1. The candidate is registered and asked for written consent" in rules[0]
    assert as_json.returncode == 0, as_json.stderr
    assert len(as_json.stdout.splitlines()) == 1
    ids = json.loads(as_json.stdout)
    assert {"candidate_id", "consent_id", "investigation_id", "report_id"} <= ids.keys()
    assert as_json.stderr == ""


def test_events_of_a_subject_come_in_log_order_without_personal_values(
    store: dict[str, str],
) -> None:
    candidate = demo_ids(store)["candidate_id"]

    result = run(store, "events", "--subject", candidate, "--json")

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    positions = [r["position"] for r in records]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert {r["data"]["candidate_id"] for r in records} == {candidate}
    assert records[0]["event"] == "Registered"
    assert {"Granted", "Started", "FindingRecorded", "Compiled", "Disclosed"} <= {
        r["event"] for r in records
    }
    for secret in ("Wang Fang", "wang.fang@example.cn", "138 0000", "HR records show"):
        assert secret not in result.stdout


def test_a_use_case_runs_from_json_and_its_result_is_json(store: dict[str, str]) -> None:
    result = run(store, "do", "register-candidate", '{"name": "Zhou Min", "actor": "hr:li"}')

    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    shown = run(store, "show", body["candidate_id"])
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["categories"] == ["user.name"]


def test_invalid_input_names_the_field_and_exits_2(store: dict[str, str]) -> None:
    result = run(
        store, "do", "register-candidate", '{"name": "Zhou Min", "email": "nope", "actor": "hr"}'
    )

    assert result.returncode == 2
    assert "field email" in result.stderr


def test_a_broken_rule_exits_3_as_problem_json_and_stores_nothing(store: dict[str, str]) -> None:
    candidate = json.loads(
        run(store, "do", "register-candidate", '{"name": "Zhou Min", "actor": "hr"}').stdout
    )
    request = {
        "candidate_id": candidate["candidate_id"],
        "terms": {
            "purposes": ["hiring"],
            "check_types": ["reference"],
            "categories": ["user.health.hiv_status"],
        },
        "actor": "hr",
    }

    result = run(store, "do", "request-consent", json.dumps(request), "--json")

    assert result.returncode == 3
    problem = json.loads(result.stdout)
    assert problem["status"] == 409
    assert problem["type"] == "ProhibitedCategory"
    assert "user.health.hiv_status" in problem["detail"]
    assert "events: 1" in run(store, "info").stdout


def test_a_problem_as_json_names_the_field_at_fault_as_the_http_api_does(
    store: dict[str, str],
) -> None:
    """`--json`'s problem object had no `field`, though the error named one: an invalid
    command's first field (a list inside the command's terms too), or a domain error's field
    (an id that names nothing). Nothing is stored for any of them."""
    registered = run(store, "do", "register-candidate", '{"name": "Zhou Min", "actor": "hr"}')
    candidate = json.loads(registered.stdout)["candidate_id"]
    terms = {"purposes": ["hiring"], "check_types": ["employment"], "categories": []}
    cases = [
        (2, "email", "register-candidate", {"name": "Wang Fang", "email": "x", "actor": "hr"}),
        (
            4,
            "consent_id",
            "grant-consent",
            {
                "consent_id": "00000000-0000-0000-0000-000000000001",
                "terms": terms,
                "document_sha256": "ab" * 32,
                "signature_method": "e_signature",
                "valid_from": "2026-03-01T00:00:00+00:00",
                "valid_until": "2026-09-01T00:00:00+00:00",
                "actor": f"candidate:{candidate}",
            },
        ),
        (
            2,
            "terms.purposes",
            "request-consent",
            {"candidate_id": candidate, "terms": {**terms, "purposes": []}, "actor": "hr"},
        ),
    ]
    for code, field, use_case, command in cases:
        result = run(store, "do", use_case, json.dumps(command), "--json")

        assert result.returncode == code, (use_case, result.stdout, result.stderr)
        problem = json.loads(result.stdout)
        assert problem["field"] == field, problem
        assert result.stderr == ""
    assert "events: 1" in run(store, "info").stdout


def test_an_unknown_id_exits_4(store: dict[str, str]) -> None:
    assert run(store, "info").returncode == 0  # a store, without it (`show` makes none)
    result = run(store, "show", "00000000-0000-0000-0000-000000000001")

    assert result.returncode == 4
    assert "00000000-0000-0000-0000-000000000001" in result.stderr


@pytest.mark.postgres
def test_the_demo_runs_on_postgresql_with_one_setting(pg_schema: str) -> None:
    env = {"BACKCHECK_DATABASE_URL": f"{PG_URL}?schema={pg_schema}"}

    candidate = demo_ids(env)["candidate_id"]

    assert "store:  PostgreSQL" in run(env, "info").stdout
    events = run(env, "events", "--subject", candidate, "--json")
    assert len(events.stdout.splitlines()) >= 30


@pytest.mark.postgres
def test_info_and_config_show_name_the_postgresql_schema_the_store_is_in(pg_schema: str) -> None:
    env = {"BACKCHECK_DATABASE_URL": f"{PG_URL}?schema={pg_schema}"}

    info = run(env, "info")
    shown = run(env, "config", "show", "--json")

    assert info.returncode == 0, info.stderr
    assert info.stdout.splitlines()[0].endswith(f"/test schema {pg_schema}")
    assert json.loads(shown.stdout)["derived"]["store"].endswith(f"/test schema {pg_schema}")


def kept_rows(env: dict[str, str]) -> dict[str, list[Dumped]]:
    """The rows of each of the kept views as the store's files hold them now, read here."""
    app = build_app(Settings(data_dir=Path(env["BACKCHECK_DATA_DIR"])))
    try:
        runners = [model for model in app.kept_views if isinstance(model, ViewRunner)]
        return {runner.kept.name: runner.store.dump() for runner in runners}
    finally:
        app.close()


def test_the_views_report_where_they_stand_and_rebuild_identically(store: dict[str, str]) -> None:
    assert run(store, "demo").returncode == 0

    before = run(store, "views", "status", "--json")
    built = kept_rows(store)
    rebuilt = run(store, "views", "rebuild", "--batch", "7")
    after = run(store, "views", "status", "--json")

    assert before.returncode == rebuilt.returncode == after.returncode == 0, rebuilt.stderr
    assert rebuilt.stderr == "", "piped, no bar and no blank line where it was"
    status = json.loads(before.stdout)
    head = status["head"]
    assert head > 40
    kept = status["kept"]
    assert list(kept) == ["views", "dashboard"]
    assert kept["views"]["tracking"] == f"Backcheck.views.v{ReadViews.version}"
    assert kept["dashboard"]["tracking"] == f"Backcheck.dashboard.views.v{Dashboard.version}"
    for name in kept:  # the demo's own writes were all applied, by both
        assert (kept[name]["position"], kept[name]["behind"]) == (head, 0), name
    rows = set(kept["views"]["rows"])
    # the six read views (the principals' versions among them: the token check reads them),
    # the list views the demo's cases fill, its refused reads by day, its reads by time
    refusals = {v for v in rows if v.startswith(REFUSAL_PREFIX)}
    reads = {v for v in rows if v.startswith(READS_PREFIX)}
    assert rows - LIST_VIEWS - refusals - reads == {
        "profile",
        "consent",
        "investigation",
        "report",
        "access",
        "principal",
    }
    assert refusals, "the demo's refused reads are listed by day"
    assert {"list:reads", "list:reads|refused", "list:reads|principal=hr:li.na"} <= reads
    assert rows & LIST_VIEWS, "the demo's cases are listed"
    assert set(kept["dashboard"]["rows"]) == {DASHBOARD_VIEW, CASE_VIEW}
    assert json.loads(after.stdout) == status
    assert built["dashboard"], "the demo moved the dashboard's counts"
    assert kept_rows(store) == built  # row for row, the dashboard's as the read views'
    assert f"rebuilt views from {head} events" in rebuilt.stdout
    assert f"rebuilt dashboard from {head} events" in rebuilt.stdout


def test_the_views_status_shows_each_views_own_position_and_lag(store: dict[str, str]) -> None:
    """Another process wrote and applied it to its read views alone (the dashboard applies
    it later, here when the process ends): the status tells the two apart."""
    subject = demo_ids(store)["candidate_id"]
    was = json.loads(run(store, "views", "status", "--json").stdout)["head"]
    app = build_app(Settings(data_dir=Path(store["BACKCHECK_DATA_DIR"])))
    try:
        erasure = RequestErasure(candidate_id=UUID(subject), reason="asked", actor="hr:li.na")
        app.request_erasure(erasure)
        app.views.catch_up()
        lagging = run(store, "views", "status", "--json")
        shown = run(store, "views", "status")
    finally:
        app.close()  # applies it to the dashboard too
    caught_up = run(store, "views", "status", "--json")

    assert lagging.returncode == shown.returncode == caught_up.returncode == 0, shown.stderr
    status = json.loads(lagging.stdout)
    head = status["head"]
    kept = status["kept"]
    assert head > was
    assert (kept["views"]["position"], kept["views"]["behind"]) == (head, 0)
    assert (kept["dashboard"]["position"], kept["dashboard"]["behind"]) == (was, head - was)
    (dashboard,) = [line for line in shown.stdout.splitlines() if "dashboard.views" in line]
    assert f" {was} " in dashboard
    assert f"{head - was} (caught up on the next read)" in dashboard
    assert f"the log's head is at {head}" in shown.stdout
    after = json.loads(caught_up.stdout)["kept"]
    assert [(k["position"], k["behind"]) for k in after.values()] == [(head, 0), (head, 0)]


def test_the_views_rebuild_takes_the_views_to_rebuild_by_name(store: dict[str, str]) -> None:
    assert run(store, "demo").returncode == 0

    dashboard = run(store, "views", "rebuild", "dashboard")
    unknown = run(store, "views", "rebuild", "dashbord")

    assert dashboard.returncode == 0, dashboard.stderr
    assert "rebuilt dashboard from" in dashboard.stdout
    assert "rebuilt views" not in dashboard.stdout
    assert unknown.returncode == 2
    assert "dashbord: no such views; the kept views are views, dashboard" in unknown.stderr


def test_the_candidate_reads_who_accessed_them_and_a_recruiter_may_not(
    store: dict[str, str],
) -> None:
    subject = demo_ids(store)["candidate_id"]
    as_candidate = ("--as", f"candidate:{subject}", "--role", "candidate", "--purpose", "mine")
    as_recruiter = ("--as", "hr:li.na", "--role", "recruiter", "--purpose", "curious")

    own = run(store, "subject", "access-log", subject, *as_candidate, "--json")
    refused = run(store, "subject", "access-log", subject, *as_recruiter)
    again = run(store, "subject", "access-log", subject, *as_candidate)

    assert own.returncode == 0, own.stderr
    log = json.loads(own.stdout)
    assert ("growth:wu.hao", "refused") in [(e["principal"], e["outcome"]) for e in log["entries"]]
    assert refused.returncode == 5
    assert "access log" in refused.stderr
    assert "the refusal was recorded" in refused.stderr
    assert again.returncode == 0, again.stderr
    assert (
        log["access_id"]
        in run(store, "subject", "access-log", subject, *as_candidate, "--json").stdout
    )  # her first read shows in her log, as the recruiter's refusal does
    assert "hr:li.na" in again.stdout
    assert "curious" in again.stdout


def test_the_access_log_needs_a_reader(store: dict[str, str]) -> None:
    subject = demo_ids(store)["candidate_id"]

    result = run(store, "subject", "access-log", subject)

    assert result.returncode == 2
    assert "--as" in result.stderr


def test_the_candidate_reads_her_investigation_and_the_growth_team_is_refused(
    store: dict[str, str],
) -> None:
    subject = demo_ids(store)["candidate_id"]
    events = run(store, "events", "--subject", subject, "--json").stdout.splitlines()
    completed = [
        e
        for e in map(json.loads, events)
        if (e["aggregate"], e["event"]) == ("Investigation", "Completed")
    ]
    (investigation,) = {e["originator_id"] for e in completed}
    as_candidate = ("--as", f"candidate:{subject}", "--role", "candidate", "--purpose", "mine")
    as_growth = ("--as", "growth:wu.hao", "--role", "recruiter", "--purpose", "marketing")

    own = run(store, "read", "investigation", investigation, *as_candidate)
    refused = run(store, "read", "investigation", investigation, *as_growth, "--json")

    assert own.returncode == 0, own.stderr
    assert "Within two working days." in own.stdout  # the answer to her question
    assert "allowed; recorded as access" in own.stdout
    assert refused.returncode == 5
    assert json.loads(refused.stdout or refused.stderr)["status"] == 403


def test_the_consent_register_is_read_through_a_recorded_decision(store: dict[str, str]) -> None:
    subject = demo_ids(store)["candidate_id"]
    as_candidate = ("--as", f"candidate:{subject}", "--role", "candidate", "--purpose", "mine")
    as_stranger = ("--as", "hr:someone.else", "--role", "recruiter", "--purpose", "curious")

    own = run(store, "subject", "consents", subject, *as_candidate, "--json")
    refused = run(store, "subject", "consents", subject, *as_stranger)
    log = run(store, "subject", "access-log", subject, *as_candidate, "--json")

    assert own.returncode == 0, own.stderr
    assert [c["status"] for c in json.loads(own.stdout)["consents"]] == ["active"]
    assert refused.returncode == 5
    assert "consent register" in refused.stderr
    entries = json.loads(log.stdout)["entries"]
    assert [(e["view"], e["outcome"]) for e in entries][-2:] == [
        ("consent register", "allowed"),
        ("consent register", "refused"),
    ]


def test_the_hiring_manager_reads_the_report_disclosed_to_them_and_a_stranger_may_not(
    store: dict[str, str],
) -> None:
    subject = demo_ids(store)["candidate_id"]
    events = map(
        json.loads, run(store, "events", "--subject", subject, "--json").stdout.split("\n")[:-1]
    )
    disclosed = {
        e["originator_id"]
        for e in events
        if (e["aggregate"], e["event"]) == ("Report", "Disclosed")
    }
    (report,) = disclosed
    purpose = ("--purpose", "pre-employment screening")
    manager = ("--as", "hiring-manager:sun.mei", "--role", "hiring_manager", *purpose)
    stranger = ("--as", "hr:someone.else", "--role", "recruiter", *purpose)

    read = run(store, "read", "report", report, *manager, "--json")
    refused = run(store, "read", "report", report, *stranger)

    assert read.returncode == 0, read.stderr
    view = json.loads(read.stdout)
    assert (view["status"], view["outcome"]) == ("approved", "allowed")
    assert "discrepancy" in [item["outcome"] for item in view["items"]]
    assert refused.returncode == 5
    assert "reading the report" in refused.stderr
