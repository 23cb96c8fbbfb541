"""A write refused because records were stored around the recorder (the chain's head is not
the log's last record: another program wrote into the events table) is the store's damage,
said in one line: `chain-broken`, exit 65 on the command line, 500 problem+json over HTTP,
naming `backcheck audit verify` and saying nothing of the command was recorded. It was a bug
to the problem table: a traceback and exit 1, a 500 `internal` over HTTP."""

from __future__ import annotations

import json
import sqlite3
import uuid

import psycopg

from infra.bootstrap import build_app
from infra.config import Settings
from infra.problem import EX_DATAERR
from services.application import Backcheck
from services.dto import RegisterCandidate
from tests.conftest import FakeClock
from tests.e2e.test_cli import run
from tests.http import Served, problem
from tests.integration.test_refused_write_stores_nothing import write_around_the_recorder
from tests.integration.test_views_fault_reads import env_of
from tests.story import RECRUITER

SAID = "records were written around the recorder; run `backcheck audit verify`"


def stored_around(settings: Settings, clock: FakeClock) -> int:
    """A store with one registration, then a record written around its recorder: the head."""
    app = build_app(settings, clock=clock)
    try:
        app.register_candidate(RegisterCandidate(name="Zhou Min", actor=RECRUITER))
        write_around_the_recorder(app, settings)
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()  # the views refuse the outside record's type: said, not raised (0055)


def test_a_command_line_write_after_records_stored_around_the_recorder_is_one_line(
    settings: Settings, clock: FakeClock
) -> None:
    head = stored_around(settings, clock)

    done = run(
        env_of(settings),
        "do",
        "register-candidate",
        stdin=json.dumps({"name": "Qian Li", "actor": RECRUITER}),
    )

    assert done.returncode == EX_DATAERR, done.stderr
    assert "Traceback" not in done.stderr
    line, *rest = done.stderr.strip().splitlines()
    assert not rest, done.stderr
    assert line.startswith("Chain broken (chain-broken): the chain ends at position"), line
    assert line.endswith(f"{SAID}; nothing of this command was recorded"), line
    again = build_app(settings, clock=clock)
    try:
        assert again.recorder.max_notification_id() == head  # nothing stored
    finally:
        again.close()


def copy_around_the_recorder(app: Backcheck, settings: Settings) -> None:
    """The log's first record stored again by another program under a new id: an event of
    the domain (the views can apply it), not chained."""
    table = app.recorder.events_table_name
    if settings.backend == "postgres":
        with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
            conn.execute(
                f'INSERT INTO "{settings.postgres_schema}".{table} (originator_id, '
                "originator_version, topic, state) SELECT %s, originator_version, topic, state "
                f'FROM "{settings.postgres_schema}".{table} ORDER BY notification_id LIMIT 1',
                (uuid.uuid4(),),
            )
        return
    with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            f"SELECT ?, originator_version, topic, state FROM {table} ORDER BY rowid LIMIT 1",
            (uuid.uuid4().hex,),
        )


def test_an_http_write_after_records_stored_around_the_recorder_is_a_problem(
    api: Served, settings: Settings
) -> None:
    api.post(RECRUITER, "/v1/candidates", {"name": "Zhou Min"})
    copy_around_the_recorder(api.app, settings)
    head = api.app.recorder.max_notification_id()

    answered = api.post(RECRUITER, "/v1/candidates", {"name": "Qian Li"})

    body = problem(answered, 500, "chain-broken")
    assert body["title"] == "Chain broken"
    assert body["detail"].endswith(f"{SAID}; nothing of this command was recorded")
    assert api.app.recorder.max_notification_id() == head


def test_a_record_of_no_known_type_in_the_log_is_said_to_every_request_that_meets_it(
    api: Served, settings: Settings
) -> None:
    """A record no event of this backcheck (written by a newer version, or around the
    recorder): the views cannot apply it, and each request catches them up first. It was a
    bug to the problem table: 500 `internal` and a traceback in the server's log."""
    api.post(RECRUITER, "/v1/candidates", {"name": "Zhou Min"})
    write_around_the_recorder(api.app, settings)

    answered = api.get(RECRUITER, "/v1/candidates")

    body = problem(answered, 500, "unknown-event-type")
    assert body["detail"].startswith("'outside:Record' is no event type of backcheck's domain")
    assert "`backcheck audit verify` tells which" in body["detail"]
