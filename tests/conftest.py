"""Shared fixtures: an application on each backend, and the PostgreSQL service check.

Tests that need PostgreSQL carry the `postgres` marker. Without a server they skip with the
reason; under CI=true a missing server is a failure, never a skip.

No process a test runs may print a Python traceback: whatever a test captures of a child's
output (subprocess.run, Popen.communicate) is looked at, and a traceback in it fails the test
there and then (`_no_traceback_in_any_process`), whatever else the test asserts.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from services.application import Backcheck
from tests.tracebacks import refuse_traceback

if TYPE_CHECKING:
    from tests.http import Served

PG_URL = os.environ.get("BACKCHECK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

# The tests choose every setting themselves: none of the settings of the machine they run on (a
# developer's BACKCHECK_DATABASE_URL, config file or secrets) may reach them, or a test would
# read or write that store. The tests' own variables (BACKCHECK_TEST_*, _BENCH_*) stay.
for _variable in [v for v in os.environ if v.startswith("BACKCHECK_")]:
    if not _variable.startswith(("BACKCHECK_TEST_", "BACKCHECK_BENCH_")):
        del os.environ[_variable]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def postgres_available() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except psycopg.Error as e:
        return f"PostgreSQL not reachable at {PG_URL}: {e}".strip()


def require_postgres() -> None:
    problem = postgres_available()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true requires PostgreSQL: {problem}")
    pytest.skip(problem)


@pytest.fixture(autouse=True)
def _no_traceback_in_any_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every child's captured output (stderr, and stdout for a child whose stderr goes there)
    is read for a Python traceback as it is collected: one fails the test."""
    communicate = subprocess.Popen.communicate

    def checked(
        self: subprocess.Popen[object], *args: object, **kwargs: object
    ) -> tuple[object, object]:
        out, err = communicate(self, *args, **kwargs)  # type: ignore[arg-type]
        refuse_traceback(self.args, err)
        refuse_traceback(self.args, out)
        return out, err

    monkeypatch.setattr(subprocess.Popen, "communicate", checked)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A store on each backend (a PostgreSQL schema of its own), keys in `tmp_path`: for tests
    that run `backcheck` processes on the same store as the test."""
    if request.param == "postgres":
        schema = request.getfixturevalue("pg_schema")
        return Settings(database_url=f"{PG_URL}?schema={schema}", data_dir=tmp_path)
    return Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)


@pytest.fixture
def demo_app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    """The demo story run on the `settings` store."""
    from infra.demo import tell_story

    app = build_app(settings, clock=clock)
    tell_story(app)
    yield app
    app.close()


@pytest.fixture
def sqlite_app(tmp_path: Path, clock: FakeClock) -> Iterator[Backcheck]:
    """A store, its keys and its outbox (portal links) in `tmp_path`."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    yield app
    app.close()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema per test, dropped afterwards."""
    require_postgres()
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_app(pg_schema: str, clock: FakeClock, tmp_path: Path) -> Iterator[Backcheck]:
    """A store in a schema of its own; its keys and outbox (portal links) in `tmp_path`."""
    settings = Settings(database_url=f"{PG_URL}?schema={pg_schema}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    yield app
    app.close()


@pytest.fixture
def api(settings: Settings, clock: FakeClock) -> Iterator[Served]:
    """The HTTP API served (in process, through its ASGI app) on the `settings` store."""
    from tests.http import served

    app = build_app(settings, clock=clock)
    try:
        with served(app, settings) as api:
            yield api
    finally:
        app.close()


from tests.hsm import softhsm  # noqa: E402, F401  (the SoftHSM2 token, a fixture)
from tests.kafka import kafka_broker, own_kafka_broker  # noqa: E402, F401  (fixtures)
