"""A write the recorder refuses after inserting its events is rolled back whole, on each
backend.

The recorder checks, in the events' own transaction and after their INSERT, that the chain's
head is the log's last record (else records were written around it) and that no erasure
recorded meanwhile destroyed a key made for the write. On PostgreSQL the library's insert kept
such an error until its pipeline closed, outside the transaction, which then committed: the
events stayed, unlinked from the chain, or sealed with a key an erasure had refused.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from infra.audit.chain import ChainBrokenError
from infra.bootstrap import build_app
from infra.config import Settings
from services.application import Backcheck
from services.dto import RegisterCandidate

ACTOR = "hr:li.na"


@pytest.fixture
def app(settings: Settings, caplog: pytest.LogCaptureFixture) -> Iterator[Backcheck]:
    application = build_app(settings)
    yield application
    # closing brings the views up to date, which refuse the outside record's unknown type: said
    # once a view, on one line, and not raised (decision 0055: the writes stand)
    caplog.clear()
    application.close()
    said = [r.getMessage() for r in caplog.records if r.name == "infra.views.runner"]
    assert said
    assert all("UnknownEventTypeError: 'outside:Record'" in line for line in said), said


def write_around_the_recorder(app: Backcheck, settings: Settings) -> None:
    """One record put in the events table by another program, not chained."""
    table = app.recorder.events_table_name
    row = (uuid.uuid4(), 1, "outside:Record", b"{}")
    if settings.database_url.startswith("postgres"):
        with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
            conn.execute(
                f'INSERT INTO "{settings.postgres_schema}".{table} '
                "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                row,
            )
        return
    path = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?)",
            (row[0].hex, *row[1:]),
        )


def test_a_write_after_records_written_around_the_recorder_is_refused_and_stores_nothing(
    app: Backcheck, settings: Settings
) -> None:
    app.register_candidate(RegisterCandidate(name="Zhou Min", email="zm@x.cn", actor=ACTOR))
    write_around_the_recorder(app, settings)
    outside = app.recorder.max_notification_id()

    with pytest.raises(ChainBrokenError, match="records were written around the recorder"):
        app.register_candidate(RegisterCandidate(name="Qian Li", email="ql@x.cn", actor=ACTOR))

    assert app.recorder.max_notification_id() == outside  # the refused events are not stored
