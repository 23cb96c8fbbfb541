"""Every connection a process holds to PostgreSQL terminated by the server (as a restart or an
administrator does): the next commands and requests work, none fails on a dead pooled
connection, and the breaker of the HTTP API never trips.

Real faults, not mocks: the process's backends are terminated with `pg_terminate_backend`,
found by an application name of the test's own (no other process's connection is touched)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from services.application import Backcheck
from services.dto import RegisterCandidate
from tests.conftest import PG_URL, FakeClock
from tests.http import served
from tests.story import PURPOSE, RECRUITER

pytestmark = pytest.mark.postgres


@pytest.fixture
def terminate(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Terminates every backend of the connections this test's process opens from now on
    (libpq names them by PGAPPNAME); how many there were."""
    name = f"backcheck-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", name)

    def kill() -> int:
        with psycopg.connect(PG_URL, autocommit=True, application_name="killer") as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            ).fetchone()
        return int(row[0]) if row else 0

    return kill


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
