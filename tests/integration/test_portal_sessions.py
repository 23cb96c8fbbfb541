"""The candidate portal's sessions are the server's (infra/http/sessions.py, decision 0040), on
both backends: signing out ends the session for every copy of its cookie, while the link opens
a new one; a session ends when unused too long, at its longest, with its link (expired,
revoked or replaced), and when another is opened in its place; a cookie that holds a link
token (as sessions did before) signs no one in; the store keeps the session's id only as its
hash."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from infra.config import Settings
from infra.http.auth import PORTAL_COOKIE
from infra.http.idempotency import ANSWERS
from infra.http.sessions import TABLE, portal_sessions
from services.dto import RevokePrincipal
from services.principals import token_hash
from tests.conftest import FakeClock
from tests.http import Served, problem
from tests.story import register

PORTAL = {"X-Backcheck-Portal": "1"}


def sign_in(api: Served, candidate: UUID, token: str | None = None) -> str:
    """The portal's session opened from the candidate's link, as the page does: its id."""
    token = token or api.portal(candidate)
    opened = api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {token}", **PORTAL}
    )
    assert opened.status_code == 200, opened.text
    session_id: str = opened.cookies[PORTAL_COOKIE]
    return session_id


def me(api: Served, session_id: str) -> Any:
    """`/v1/me` with this cookie alone, whatever the client's own jar holds."""
    api.client.cookies.clear()
    return api.client.get("/v1/me", headers={**PORTAL, "Cookie": f"{PORTAL_COOKIE}={session_id}"})


def kept_rows_of(api: Served, session_id: str) -> Any:
    """The session's row, looked up by the hash of its id as the server does."""
    return api.sessions.rows.get(hashlib.sha256(session_id.encode()).hexdigest())


def kept_rows(settings: Settings) -> list[tuple[Any, ...]]:
    """Every row of the sessions' table, as the store keeps it."""
    if settings.backend == "sqlite":
        with sqlite3.connect(settings.after_store(ANSWERS)) as db:
            return db.execute("SELECT * FROM portal_sessions").fetchall()
    with psycopg.connect(settings.postgres_conninfo()) as db:
        table = sql.Identifier(settings.postgres_schema, TABLE)
        return db.execute(sql.SQL("SELECT * FROM {}").format(table)).fetchall()


def test_a_cookie_copied_before_signing_out_signs_no_one_in_after(api: Served) -> None:
    candidate = register(api.app)
    copied = sign_in(api, candidate)
    assert me(api, copied).status_code == 200

    api.client.cookies.set(PORTAL_COOKIE, copied)
    out = api.client.delete("/portal/session", headers=PORTAL)
    assert out.status_code == 204

    replayed = me(api, copied)
    problem(replayed, 401, "unauthenticated")
    assert "no portal session" in replayed.json()["detail"]


def test_the_link_opens_a_new_session_after_signing_out(api: Served) -> None:
    candidate = register(api.app)
    token = api.portal(candidate)
    first = sign_in(api, candidate, token)
    api.client.delete("/portal/session", headers=PORTAL)

    again = sign_in(api, candidate, token)  # back from the e-mail

    assert again != first
    assert me(api, again).json()["principal"] == f"candidate:{candidate}"
    problem(me(api, first), 401, "unauthenticated")


def test_a_session_opened_in_its_place_ends_the_one_before(api: Served) -> None:
    candidate = register(api.app)
    token = api.portal(candidate)
    first = sign_in(api, candidate, token)

    api.client.cookies.set(PORTAL_COOKIE, first)  # the browser sends the one it holds
    second = sign_in(api, candidate, token)

    problem(me(api, first), 401, "unauthenticated")
    assert me(api, second).status_code == 200


def test_a_session_ends_once_unused_for_the_idle_bound(api: Served, clock: FakeClock) -> None:
    candidate = register(api.app)
    session = sign_in(api, candidate)
    for _ in range(3):  # each call moves its end on
        clock.advance(minutes=29)
        assert me(api, session).status_code == 200

    clock.advance(minutes=30)

    problem(me(api, session), 401, "unauthenticated")
    assert kept_rows_of(api, session) is None  # deleted once found ended


def test_a_session_ends_at_its_longest_however_used(api: Served, clock: FakeClock) -> None:
    candidate = register(api.app)
    session = sign_in(api, candidate)
    for _ in range(15):
        clock.advance(minutes=29)
        assert me(api, session).status_code == 200  # 7 h 15 min in

    clock.advance(minutes=45)

    problem(me(api, session), 401, "unauthenticated")


def test_a_session_ends_with_its_link_whichever_comes_first(api: Served, clock: FakeClock) -> None:
    candidate = register(api.app)
    token = api.portal(candidate)
    clock.advance(days=29, hours=22)  # two hours of the link's 30 days left
    opened = api.client.post(
        "/portal/session", headers={"Authorization": f"Bearer {token}", **PORTAL}
    )
    session = opened.cookies[PORTAL_COOKIE]
    attributes = {a.strip().lower() for a in opened.headers["set-cookie"].split(";")[1:]}
    assert "max-age=7200" in attributes
    link_expires = datetime.fromisoformat(opened.json()["expires_at"])
    assert link_expires == api.app.clock() + timedelta(hours=2)

    for minutes in (29, 29, 29, 29, 3):
        clock.advance(minutes=minutes)
        assert me(api, session).status_code == 200  # a minute before the link expires
    clock.advance(minutes=1)
    problem(me(api, session), 401, "unauthenticated")


def test_a_link_revoked_or_replaced_ends_its_sessions(api: Served) -> None:
    revoked, replaced = register(api.app), register(api.app, "Han Meimei")
    sessions = {candidate: sign_in(api, candidate) for candidate in (revoked, replaced)}

    api.app.revoke_principal(
        RevokePrincipal(name=f"candidate:{revoked}", reason="sent to a wrong address", actor="op")
    )
    api.portal(replaced)  # issued again: the link before no longer signs in

    for candidate, session in sessions.items():
        problem(me(api, session), 401, "unauthenticated")
        assert kept_rows_of(api, session) is None, candidate


def test_a_cookie_holding_the_link_token_signs_no_one_in(api: Served) -> None:
    """What the cookie held before sessions were the server's: no longer a credential."""
    candidate = register(api.app)
    token = api.portal(candidate)

    problem(me(api, token), 401, "unauthenticated")


def test_a_session_id_is_no_bearer_token(api: Served) -> None:
    candidate = register(api.app)
    session = sign_in(api, candidate)
    api.client.cookies.clear()

    answer = api.client.get("/v1/me", headers={"Authorization": f"Bearer {session}"})

    problem(answer, 401, "unauthenticated")


def test_the_store_keeps_a_session_s_id_only_as_its_hash(api: Served, settings: Settings) -> None:
    candidate = register(api.app)
    session = sign_in(api, candidate)
    token = api.tokens[f"candidate:{candidate}"]

    (row,) = kept_rows(settings)

    kept = " ".join(str(value) for value in row)
    assert hashlib.sha256(session.encode()).hexdigest() in kept
    assert session not in kept
    assert token not in kept
    assert token_hash(token) in kept  # what the principal's record keeps of the link
    assert f"candidate:{candidate}" in kept


def test_the_configured_bounds_are_the_sessions(settings: Settings) -> None:
    configured = settings.model_copy(
        update={"portal_session_idle": 300, "portal_session_limit": 3600}
    )

    sessions = portal_sessions(configured)
    try:
        assert (sessions.idle, sessions.limit) == (timedelta(minutes=5), timedelta(hours=1))
    finally:
        sessions.close()
