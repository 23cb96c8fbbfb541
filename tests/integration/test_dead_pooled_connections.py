"""Every connection a process holds to PostgreSQL terminated by the server (as a restart or an
administrator does): the next commands and requests work, none fails on a dead pooled
connection, and the breaker of the HTTP API never trips. That holds for the kept views too
(read views, lists, dashboard: their statements share the event store's pool), also when a
view's statement is the first to meet a dead connection: a read under way when the server
drops them, many reads at once, `backcheck serve` under requests; and commands (their keys
made) while the server drops the connections again as they are made. Each read is recorded
once, each command stored once.

Real faults, not mocks: the process's backends are terminated with `pg_terminate_backend`,
found by an application name of the test's own (no other process's connection is touched)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from infra.views.runner import ViewRunner
from services.access import Role
from services.application import Backcheck
from services.dto import ProfileView, ReadProfile, RegisterCandidate
from services.lists import ListCandidates
from tests import story as s
from tests.conftest import PG_URL, FakeClock
from tests.e2e.test_serve import Server
from tests.http import served
from tests.integration.test_reads import accesses
from tests.story import PURPOSE, RECRUITER

pytestmark = pytest.mark.postgres


@pytest.fixture
def terminate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], int]]:
    """Terminates every backend of the connections this test's process opens from now on
    (libpq names them by PGAPPNAME); how many there were. From a connection of its own, kept
    (a kill every few milliseconds, as `dropping_over_and_over` asks, costs no connect)."""
    name = f"backcheck-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", name)
    killer: list[psycopg.Connection[Any]] = []
    lock = threading.Lock()

    def kill() -> int:
        with lock:
            if not killer:
                killer.append(psycopg.connect(PG_URL, autocommit=True, application_name="killer"))
            row = (
                killer[0]
                .execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (name,),
                )
                .fetchone()
            )
        return int(row[0]) if row else 0

    yield kill
    for conn in killer:
        conn.close()


@pytest.fixture
def settings(pg_schema: str, tmp_path: Path, terminate: Callable[[], int]) -> Settings:
    return Settings(database_url=f"{PG_URL}?schema={pg_schema}", data_dir=tmp_path)


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def register(app: Backcheck) -> None:
    app.register_candidate(
        RegisterCandidate(candidate_id=uuid.uuid4(), name="Zhou Min", actor=RECRUITER)
    )


def at_once(work: Callable[[], object], n: int = 8) -> None:
    """`work` in `n` threads at once: the pools open several connections."""
    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_commands_after_the_server_dropped_every_pooled_connection_all_succeed(
    app: Backcheck, terminate: Callable[[], int]
) -> None:
    at_once(lambda: register(app))

    assert terminate() >= 4  # the event store's pool and the key store's, several each

    for _ in range(10):
        register(app)  # none raises: each pool let its dead connections go at the first
    assert len(list(app.recorder.select_notifications(start=1, limit=100))) == 18


def test_http_commands_and_reads_after_the_server_dropped_every_connection_are_answered(
    app: Backcheck, settings: Settings, terminate: Callable[[], int]
) -> None:
    with served(app, settings) as api:
        created = api.post(RECRUITER, "/v1/candidates", {"name": "Li Lei"})
        candidate = created.json()["candidate_id"]
        at_once(
            lambda: api.post(
                RECRUITER, "/v1/candidates", {"name": "Li Lei"}, **{"Idempotency-Key": "k"}
            )
        )

        assert terminate() >= 4

        keyed = api.post(
            RECRUITER, "/v1/candidates", {"name": "Li Lei"}, **{"Idempotency-Key": "k2"}
        )
        assert keyed.status_code == 201, keyed.text
        read = api.get(RECRUITER, f"/v1/candidates/{candidate}/profile", purpose=PURPOSE)
        assert read.status_code == 403  # decided on the store: no consent, refused
        assert read.json()["type"].endswith("AccessRefused")
        again = api.post(RECRUITER, "/v1/candidates", {"name": "Wang Fang"})
        assert again.status_code == 201, again.text


def test_a_subjects_events_and_events_positions_are_read_after_the_server_dropped_every_connection(
    app: Backcheck, terminate: Callable[[], int]
) -> None:
    """The recorder's two reads of its own ran once on PostgreSQL, where the library's reads
    are tried again (`AfterLostConnections`) and the views' and keys' transactions too
    (decision 0052): a subject's events by the subject index (a timeline, a history, an
    access package, an erasure) and events' log positions (a keyed request's retry answered
    from its receipt, a command's outcome, a migration's map). The first to meet a dead
    pooled connection failed with it; each is now run again as the others are."""
    story = s.investigation_under_way(app)
    theirs = app.subjects.select_subject_notifications(story.candidate_id)
    events = [(UUID(str(n.originator_id)), n.originator_version) for n in theirs]
    positions = app.recorder.positions_of(events)
    assert len(theirs) >= 3
    assert sorted(positions.values()) == [n.id for n in theirs]
    at_once(lambda: register(app))  # the pools hold several connections, all to be dropped

    assert terminate() >= 4
    again = app.subjects.select_subject_notifications(story.candidate_id)  # the first to meet one
    assert terminate() >= 1
    found = app.recorder.positions_of(events)  # likewise

    assert [(n.id, n.state) for n in again] == [(n.id, n.state) for n in theirs]
    assert found == positions


# --- the kept views' statements, the first to meet a dead connection ---------------------------


def read_profile(app: Backcheck, story: s.Story) -> ProfileView:
    return app.read_profile(
        ReadProfile(
            candidate_id=story.candidate_id,
            principal=s.INVESTIGATOR,
            role=Role.INVESTIGATOR,
            purpose=PURPOSE,
        )
    )


def recorded_reads(app: Backcheck, candidate_id: UUID) -> int:
    return len(accesses(app, candidate_id))


def stored(app: Backcheck) -> int:
    """How many events the store holds (counted: an insert the server dropped leaves a gap
    in the positions)."""
    return len(app.recorder.select_notifications(start=1, limit=10_000))


def drop_during_the_next_read(app: Backcheck, terminate: Callable[[], int]) -> list[int]:
    """The server drops every connection of the process while the next read is under way:
    once it has looked up the log's head (and found the views current), before it reads the
    views, as a restart does to a request in flight. Only the moment is chosen here: the
    read, the views and the server are the real ones. How many backends were terminated."""
    runner = app.views
    assert isinstance(runner, ViewRunner)
    looked_up = runner.head
    dropped: list[int] = []

    def head() -> int | None:
        found = looked_up()
        if not dropped:
            dropped.append(terminate())
        return found

    runner.head = head
    return dropped


def test_a_recorded_read_and_a_command_after_every_connection_was_dropped_are_each_stored_once(
    app: Backcheck, terminate: Callable[[], int]
) -> None:
    story = s.investigation_under_way(app)
    assert read_profile(app, story).outcome == "allowed"
    before = stored(app)
    register(app)
    one_command = stored(app) - before

    assert terminate() >= 4

    reads, head = recorded_reads(app, story.candidate_id), stored(app)
    profile = read_profile(app, story)
    assert profile.outcome == "allowed"
    assert {f.name for f in profile.fields} >= {"name"}
    assert recorded_reads(app, story.candidate_id) == reads + 1
    assert stored(app) == head + 1  # the read's access record, once
    register(app)
    assert stored(app) == head + 1 + one_command


def test_a_read_under_way_when_the_server_drops_every_connection_answers_and_is_recorded_once(
    app: Backcheck, terminate: Callable[[], int]
) -> None:
    story = s.investigation_under_way(app)
    app.views.catch_up()  # current, and nothing of hers read yet: her rows are not cached
    reads, head = recorded_reads(app, story.candidate_id), stored(app)
    dropped = drop_during_the_next_read(app, terminate)

    profile = read_profile(app, story)  # the views' row read first, on a dead connection

    assert dropped[0] >= 4
    assert profile.outcome == "allowed"
    assert {f.name for f in profile.fields} >= {"name"}
    assert recorded_reads(app, story.candidate_id) == reads + 1
    assert stored(app) == head + 1


def test_a_list_under_way_when_the_server_drops_every_connection_answers_its_page(
    app: Backcheck, terminate: Callable[[], int]
) -> None:
    story = s.investigation_under_way(app)
    register(app)
    app.views.catch_up()
    dropped = drop_during_the_next_read(app, terminate)

    page = app.list_candidates(ListCandidates(limit=10), Role.RECRUITER)  # never cached

    assert dropped[0] >= 4
    assert len(page.items) == 2
    assert story.candidate_id in {item.candidate_id for item in page.items}


def reading_until(stop: threading.Event, work: Callable[[], object], failed: list[str]) -> int:
    """`work` over and over until `stop`: how many times it answered; each failure noted."""
    answered = 0
    while not stop.is_set():
        try:
            work()
        except Exception as error:
            failed.append(f"{type(error).__name__}: {error}")
        else:
            answered += 1
    return answered


DROPS = 5  # times the server drops every connection while the readers read


def test_reads_under_way_while_the_server_drops_every_connection_all_answer_each_recorded_once(
    app: Backcheck, terminate: Callable[[], int]
) -> None:
    story = s.investigation_under_way(app)
    reads = recorded_reads(app, story.candidate_id)
    stop, failed, answered, dropped = threading.Event(), list[str](), list[int](), list[int]()

    def reader() -> None:
        def read() -> None:
            read_profile(app, story)
            app.list_candidates(ListCandidates(limit=10), Role.RECRUITER)
            app.dashboard_summary()

        answered.append(reading_until(stop, read, failed))

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        for _ in range(DROPS):
            time.sleep(0.2)
            dropped.append(terminate())
        time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()

    assert failed == []
    assert dropped[0] >= 4
    assert min(dropped) >= 1  # each time, some of what the pools had made again
    assert sum(answered) >= 6
    assert recorded_reads(app, story.candidate_id) == reads + sum(answered)


def test_backcheck_serve_answers_every_request_while_the_server_drops_its_connections(
    pg_schema: str, tmp_path: Path, terminate: Callable[[], int]
) -> None:
    settings = Settings(database_url=f"{PG_URL}?schema={pg_schema}", data_dir=tmp_path)
    server = Server(settings, "--demo", log=tmp_path / "serve.log")
    try:
        tokens = server.tokens()
        (portal,) = [name for name in tokens if name.startswith("candidate:")]
        candidate = portal.removeprefix("candidate:")
        hr = {"Authorization": f"Bearer {tokens['hr:demo']}"}
        asks = [  # her access log, a recorded read; a list; the dashboard
            (
                f"/v1/candidates/{candidate}/access-log",
                {"purpose": "see who read my data"},
                {"Authorization": f"Bearer {tokens[portal]}"},
            ),
            ("/v1/candidates", {"limit": "10"}, hr),
            ("/v1/dashboard/summary", {}, hr),
        ]
        stop, failed, answered, dropped = threading.Event(), list[str](), list[int](), list[int]()

        def client() -> None:
            with httpx.Client(base_url=server.base, timeout=30) as http:

                def get() -> None:
                    for path, params, headers in asks:
                        answer = http.get(path, params=params, headers=headers)
                        if answer.status_code != 200:
                            raise AssertionError(f"{path}: {answer.status_code} {answer.text}")

                answered.append(reading_until(stop, get, failed))

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        try:
            for _ in range(DROPS):
                time.sleep(0.3)
                dropped.append(terminate())
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert failed == []  # no 503 (the breaker never tripped), no 500
        assert dropped[0] >= 4
        assert min(dropped) >= 1
        assert sum(answered) >= 6
    finally:
        code = server.stop()
    assert code == 0, server.log.read_text()
    assert "Traceback" not in server.log.read_text()


@contextmanager
def dropping_over_and_over(terminate: Callable[[], int], seconds: float) -> Iterator[list[int]]:
    """For `seconds`, the server drops every connection of the process, and each one made
    again, every few ms (a failover that flaps, a restart under way); how many backends it
    terminated each time. The block runs meanwhile, and is waited for."""
    dropped: list[int] = []
    until = time.monotonic() + seconds

    def storm() -> None:
        while time.monotonic() < until:
            dropped.append(terminate())
            time.sleep(0.002)

    thread = threading.Thread(target=storm)
    thread.start()
    try:
        time.sleep(0.02)
        yield dropped
    finally:
        thread.join()


STORMS = 5


def test_commands_and_a_read_while_the_server_drops_connections_over_and_over_are_stored_once(
    app: Backcheck, terminate: Callable[[], int]
) -> None:
    story = s.investigation_under_way(app)
    read_profile(app, story)
    before = stored(app)
    register(app)
    one_command = stored(app) - before
    failed: list[str] = []

    def command() -> None:
        try:
            register(app)  # a new subject's keys made, its event stored
        except Exception as error:
            failed.append(f"{type(error).__name__}: {error}")

    for _ in range(STORMS):
        reads, head = recorded_reads(app, story.candidate_id), stored(app)
        with dropping_over_and_over(terminate, 0.5) as dropped:
            commands = [threading.Thread(target=command) for _ in range(4)]
            for t in commands:
                t.start()
            profile = read_profile(app, story)  # the views caught up first
            for t in commands:
                t.join()
        assert failed == []
        assert sum(dropped) >= 4
        assert profile.outcome == "allowed"
        assert recorded_reads(app, story.candidate_id) == reads + 1
        assert stored(app) == head + 4 * one_command + 1
