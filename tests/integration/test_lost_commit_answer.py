"""A command whose commit reached PostgreSQL but whose answer was lost with its connection is
answered as applied, with the events it stored: its retry finds its own write, not someone
else's.

Real faults, not mocks: a TCP proxy (`tests/proxy.py`) between the application and the server
lets the COMMIT through and drops the server's answer to it, closing that connection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

import pytest

from domain.intake import receipt_id
from infra.bootstrap import build_app
from infra.config import Settings
from infra.kafka.intake import decide
from services.application import Backcheck
from services.intake import CommandIntake
from services.unit import Delivery
from tests.commands import ATS, body, headers, message, register
from tests.conftest import PG_URL, FakeClock, require_postgres
from tests.proxy import CommitAnswerLost

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxy() -> Iterator[CommitAnswerLost]:
    require_postgres()
    url = urlsplit(PG_URL)
    lossy = CommitAnswerLost((url.hostname or "127.0.0.1", url.port or 5432))
    yield lossy
    lossy.close()


@pytest.fixture
def app(
    proxy: CommitAnswerLost, pg_schema: str, tmp_path: Path, clock: FakeClock
) -> Iterator[Backcheck]:
    url = urlsplit(PG_URL)
    settings = Settings(
        database_url=f"postgresql://{url.username}@127.0.0.1:{proxy.port}{url.path}"
        f"?schema={pg_schema}",
        data_dir=tmp_path,
    )
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def test_a_keyed_http_command_whose_commit_answer_was_lost_is_answered_as_applied(
    app: Backcheck, proxy: CommitAnswerLost
) -> None:
    candidate = uuid4()
    delivery = Delivery("http:hr:li.na", "key-1", "register-candidate", "http")

    proxy.lose_next_commit_answer()
    applied = CommandIntake(app, refused={}).apply_delivered(delivery, register(candidate))

    assert proxy.lost.is_set()  # the commit's answer was lost: this was the retry's doing
    events = list(app.iter_events(candidate))
    assert [(e.aggregate, e.event) for e in events] == [
        ("Candidate", "Registered"),
        ("CommandReceipt", "Applied"),
    ]
    assert applied.result.model_dump()["candidate_id"] == candidate
    receipt = receipt_id("http:hr:li.na", "key-1")
    assert [name for name, _ in applied.stored] == [f"{candidate}:1", f"{receipt}:1"]
    assert [position for _, position in applied.stored] == [1, 2]


def test_a_kafka_command_whose_commit_answer_was_lost_is_applied_not_a_redelivery(
    app: Backcheck, proxy: CommitAnswerLost
) -> None:
    candidate = uuid4()
    sent = message(body(register(candidate)), headers("register-candidate", "c-9"), offset=7)

    proxy.lose_next_commit_answer()
    decision = decide(CommandIntake(app), sent)

    assert proxy.lost.is_set()
    assert decision.applied
    assert not decision.redelivered  # its first delivery, applied once
    assert decision.result is not None
    assert decision.result["candidate_id"] == str(candidate)
    receipt = receipt_id(ATS, "c-9")
    assert [name for name, _ in decision.stored] == [f"{candidate}:1", f"{receipt}:1"]
    assert [(e.aggregate, e.event) for e in app.iter_events(candidate)] == [
        ("Candidate", "Registered"),
        ("CommandReceipt", "Applied"),
    ]
