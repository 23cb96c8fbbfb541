"""The eventsourcing library's own recorder test cases, run against the recorders our
configuration builds (SQLite file store, PostgreSQL schema)."""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory
from eventsourcing.tests.persistence import ApplicationRecorderTestCase
from eventsourcing.utils import Environment

from infra.config import Settings
from tests.conftest import PG_URL, require_postgres


def join_leftover_threads(before: set[threading.Thread]) -> None:
    """The library's concurrency cases signal their reader threads to stop but do not join
    them; closing the store under a reader still in a query crashes SQLite. Wait for them."""
    for thread in threading.enumerate():
        if thread not in before and not thread.daemon and thread is not threading.current_thread():
            thread.join(timeout=30)


def recorder_for(settings: Settings) -> tuple[InfrastructureFactory, ApplicationRecorder]:
    factory = InfrastructureFactory.construct(Environment("backcheck", settings.store_env()))
    return factory, factory.application_recorder()


class TestSQLiteRecorderContract(ApplicationRecorderTestCase[ApplicationRecorder]):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.factories: list[InfrastructureFactory] = []
        self.threads = set(threading.enumerate())

    def tearDown(self) -> None:
        join_leftover_threads(self.threads)
        for factory in self.factories:
            factory.close()
        self.dir.cleanup()

    def create_recorder(self) -> ApplicationRecorder:
        path = Path(self.dir.name) / f"{uuid.uuid4().hex}.sqlite"
        factory, recorder = recorder_for(Settings(database_url=f"sqlite:///{path}"))
        self.factories.append(factory)
        return recorder


@pytest.mark.postgres
class TestPostgresRecorderContract(ApplicationRecorderTestCase[ApplicationRecorder]):
    def setUp(self) -> None:
        require_postgres()
        self.schemas: list[str] = []
        self.factories: list[InfrastructureFactory] = []
        self.threads = set(threading.enumerate())

    def tearDown(self) -> None:
        join_leftover_threads(self.threads)
        for factory in self.factories:
            factory.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    def create_recorder(self) -> ApplicationRecorder:
        schema = f"rc_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        self.schemas.append(schema)
        factory, recorder = recorder_for(Settings(database_url=f"{PG_URL}?schema={schema}"))
        self.factories.append(factory)
        return recorder
