"""The HTTP API on a real store, with principals issued through the real use cases: for the
API tests. A client signs in as one of them by name (`as_`)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from infra.audit.trail import key_pair
from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from infra.http.app import create_app
from infra.http.auth import Authenticator
from infra.http.idempotency import PostgresIdempotency, SQLiteIdempotency, kept_answers
from infra.http.sessions import PortalSessions, SQLiteSessionRows, portal_sessions
from infra.outbox.links import FOLDER
from services.access import Role
from services.application import Backcheck
from services.dto import AddPrincipal, IssuePortalLink
from tests.story import INVESTIGATOR, RECRUITER, REVIEWER

COMPLIANCE = "compliance:wu.min"
WAIT = 10.0  # seconds a served test app is waited for at most
PROBLEM_PREFIX = "tag:backcheck.invalid,2026:problems/"

STAFF = {
    RECRUITER: Role.RECRUITER,
    INVESTIGATOR: Role.INVESTIGATOR,
    REVIEWER: Role.REVIEWER,
    COMPLIANCE: Role.COMPLIANCE,
}


@dataclass
class Served:
    app: Backcheck
    client: TestClient
    kept: SQLiteIdempotency | PostgresIdempotency
    sessions: PortalSessions
    tokens: dict[str, str] = field(default_factory=dict)
    outbox: Path | None = None  # where portal links are sent (the settings' outbox)

    def issue(self, name: str, role: Role, assignments: tuple[UUID, ...] = ()) -> str:
        issued = self.app.add_principal(
            AddPrincipal(name=name, role=role, assignments=list(assignments), actor="operator")
        )
        self.tokens[name] = issued.token
        return issued.token

    def portal(self, candidate_id: UUID) -> str:
        issued = self.app.issue_portal_link(
            IssuePortalLink(candidate_id=candidate_id, actor=RECRUITER)
        )
        self.tokens[f"candidate:{candidate_id}"] = issued.token
        return issued.token

    def sent_link(self, candidate_id: UUID) -> str:
        """The portal link token sent to the candidate with their latest consent request,
        read from the outbox as a mailer would: from now on they sign in with it."""
        assert self.outbox is not None, "served without settings: no outbox"
        sent = json.loads((self.outbox / FOLDER / f"{candidate_id}.json").read_bytes())
        assert sent["candidate_id"] == str(candidate_id)
        url: str = sent["url"]
        _, _, token = url.partition("/portal#token=")
        self.tokens[f"candidate:{candidate_id}"] = token
        return token

    def as_(self, name: str, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}", **headers}

    def post(self, name: str, path: str, body: Any = None, **headers: str) -> Any:
        return self.client.post(path, json=body, headers=self.as_(name, **headers))

    def get(self, name: str, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.as_(name))

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0


@contextmanager
def served(app: Backcheck, settings: Settings) -> Iterator[Served]:
    """The API on `app` (built on `settings`), staff principals issued."""
    sqlite = settings.sqlite_path if settings.backend == "sqlite" else None
    kept = kept_answers(
        settings.backend,
        sqlite,
        "" if sqlite else settings.postgres_conninfo(),
        "" if sqlite else settings.postgres_schema,
    )
    sessions = portal_sessions(settings)
    http = create_app(app, Authenticator(app, sessions), kept, settings=settings)
    try:
        with TestClient(http, raise_server_exceptions=True) as client:
            assert isinstance(kept, SQLiteIdempotency | PostgresIdempotency)
            api = Served(app, client, kept, sessions, outbox=settings.outbox_dir)
            for name, role in STAFF.items():
                api.issue(name, role)
            yield api
    finally:
        kept.close()
        sessions.close()


@contextmanager
def listening(api: Served) -> Iterator[str]:
    """The same HTTP application served by uvicorn on a loopback port: for what needs a real
    connection (a stream the client can drop, a server's own framing of an answer)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(api.client.app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(WAIT)
        sock.close()


def problem(response: Any, status: int, kind: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem of `status` (and `kind`): returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith(PROBLEM_PREFIX), body["type"]
    assert body["title"]
    assert body["detail"]
    if kind is not None:
        assert body["type"] == PROBLEM_PREFIX + kind, body
    return body


@dataclass
class Demo:
    """The API on a store the demo story filled: a token per principal (the candidate's is the
    demo candidate's portal link), their roles, and an id of the demo's per path parameter."""

    http: FastAPI
    tokens: dict[str, str]
    roles: dict[str, Role]
    known: dict[str, str]


@contextmanager
def demo_served(data: Path, staff: Mapping[str, Role]) -> Iterator[Demo]:
    """The API on a new store in `data` the demo story filled, `staff` (name -> role) issued
    tokens: what schemathesis runs against."""
    store = Settings(database_url=f"sqlite:///{data / 'store.sqlite'}", data_dir=data)
    key_pair(store.signing_key_path.parent)
    app = build_app(store)
    kept = SQLiteIdempotency(data / "answers.sqlite")
    sessions = PortalSessions(SQLiteSessionRows(data / "answers.sqlite"))
    try:
        told = tell_story(app)
        roles = {**staff, "candidate": Role.CANDIDATE}
        tokens = {
            name: app.add_principal(AddPrincipal(name=name, role=role, actor="op")).token
            for name, role in staff.items()
        }
        tokens["candidate"] = app.issue_portal_link(
            IssuePortalLink(candidate_id=told.consent.candidate_id, actor="op")
        ).token
        ids = told.as_json()
        known = {
            "candidate_id": str(ids["candidate_id"]),
            "consent_id": str(ids["consent_id"]),
            "investigation_id": str(ids["investigation_id"]),
            "report_id": str(ids["report_id"]),
            "check_id": str(ids["employment_check_id"]),
            "dispute_id": str(ids["dispute_id"]),
            "feedback_id": str(ids["feedback_id"]),
        }
        http = create_app(app, Authenticator(app, sessions), kept, settings=store)
        yield Demo(http, tokens, roles, known)
    finally:
        kept.close()
        sessions.close()
        app.close()
