"""Reads are decided on the views, so a views file or table changed by hand must not decide
them: every row is stored with a MAC (infra/views/integrity.py), and a row that does not
match it stops the read, and the projection, until the views are rebuilt.

The walkthrough that found it: a consent withdrawn, its row's `withdrawn_at` set back to null
in the views file, and the candidate's profile was returned to a recruiter again while
`audit verify` still said intact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import orjson
import psycopg
import pytest

from domain.errors import ForbiddenError
from infra.bootstrap import build_app
from infra.config import Settings
from infra.problem import problem_for
from infra.views.integrity import ROWS_SUBJECT, ViewRowAlteredError
from services.access import Role
from services.application import Backcheck
from services.dto import (
    ClaimIn,
    PersonalFieldIn,
    ReadProfile,
    RegisterCandidate,
    SubmitClaims,
    WithdrawConsent,
)
from tests import story as s
from tests.conftest import PG_URL, FakeClock
from tests.keys import views_key_stored

EMPLOYER = PersonalFieldIn(name="employer", category="user.employment.employer", value="Acme")
Change = Callable[[dict[str, object]], dict[str, object]]


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def read_profile(app: Backcheck, candidate_id: UUID) -> list[str]:
    view = app.read_profile(
        ReadProfile(
            candidate_id=candidate_id, principal=s.RECRUITER, role=Role.RECRUITER, purpose=s.PURPOSE
        )
    )
    return [f.name for f in view.fields]


def withdrawn(app: Backcheck) -> s.Story:
    story = s.consented_candidate(app)
    app.withdraw_consent(
        WithdrawConsent(consent_id=story.consent_id, reason="changed my mind", actor=s.CANDIDATE)
    )
    return story


def _sqlite_rows(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.views_path)


def rows_of(settings: Settings, view: str) -> list[tuple[str, str, bytes]]:
    """(key, subject, document) of a view's rows, as someone with the database sees them."""
    if settings.backend == "sqlite":
        with _sqlite_rows(settings) as conn:
            found = conn.execute(
                "SELECT key, subject, doc FROM view_rows WHERE view = ?", (view,)
            ).fetchall()
        return [(k, sub, bytes(d)) for k, sub, d in found]
    table = f"{settings.postgres_schema}.backcheck_views"
    with psycopg.connect(PG_URL, autocommit=True) as pg:
        found = pg.execute(
            f"SELECT key, subject::text, doc::text FROM {table} WHERE view = %s", (view,)
        ).fetchall()
    return [(k, sub, d.encode()) for k, sub, d in found]


def write_row(settings: Settings, view: str, key: str, subject: str, doc: bytes) -> None:
    """A row's document and subject written straight into the views, MAC left as it was."""
    if settings.backend == "sqlite":
        with _sqlite_rows(settings) as conn:
            conn.execute(
                "UPDATE view_rows SET doc = ?, subject = ? WHERE view = ? AND key = ?",
                (doc, subject, view, key),
            )
        return
    table = f"{settings.postgres_schema}.backcheck_views"
    with psycopg.connect(PG_URL, autocommit=True) as pg:
        pg.execute(
            f"UPDATE {table} SET doc = %s::jsonb, subject = %s WHERE view = %s AND key = %s",
            (doc.decode(), subject, view, key),
        )


def alter(settings: Settings, view: str, key: str, change: Change) -> None:
    found = {k: (sub, d) for k, sub, d in rows_of(settings, view)}
    subject, doc = found[key]
    write_row(settings, view, key, subject, orjson.dumps(change(orjson.loads(doc))))


def test_a_withdrawal_set_back_in_the_views_returns_nothing(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    story = withdrawn(app)
    with pytest.raises(ForbiddenError):
        read_profile(app, story.candidate_id)
    [(key, _, doc)] = rows_of(settings, "consent")
    assert orjson.loads(doc)["withdrawn_at"] is not None

    app.close()
    alter(settings, "consent", key, lambda d: {**d, "withdrawn_at": None, "status": "granted"})
    app = build_app(settings, clock=clock)
    try:
        with pytest.raises(ViewRowAlteredError) as refused:
            read_profile(app, story.candidate_id)
    finally:
        app.close()

    problem = problem_for(refused.value)
    assert problem is not None
    assert (problem.status, problem.exit_code, problem.type) == (500, 65, "views-altered")
    assert f"the stored row {key!r} of view 'consent' does not match its MAC" in problem.line()
    assert "`backcheck views rebuild`" in problem.line()


def test_a_row_moved_to_another_subject_or_key_is_refused(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    first = s.consented_candidate(app, "Li Lei").candidate_id
    second = s.consented_candidate(app, "Wang Fang").candidate_id
    read_profile(app, first)
    app.close()
    profiles = {k: (sub, d) for k, sub, d in rows_of(settings, "profile")}
    # the first candidate's row (its values sealed for it) written as the second's
    write_row(settings, "profile", str(second), str(second), profiles[str(first)][1])

    app = build_app(settings, clock=clock)
    try:
        assert read_profile(app, first)  # untouched: still read
        with pytest.raises(ViewRowAlteredError, match="does not match its MAC"):
            read_profile(app, second)
    finally:
        app.close()


def test_the_projection_does_not_write_an_altered_row_back_under_a_new_mac(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    candidate_id = s.register(app)
    app.close()
    key = str(candidate_id)
    alter(settings, "profile", key, lambda d: {**d, "registered_at": "2020-01-01T00:00:00Z"})
    altered = rows_of(settings, "profile")

    app = build_app(settings, clock=clock)
    try:
        # a command that changes the altered row: committed and answered, though the views
        # cannot be brought up to date over it
        app.submit_claims(
            SubmitClaims(
                candidate_id=candidate_id,
                claims=[ClaimIn(kind="employment", fields=[EMPLOYER])],
                actor=s.RECRUITER,
            )
        )
        with pytest.raises(ViewRowAlteredError, match=f"row {key!r} of view 'profile'"):
            app.views.catch_up()
    finally:
        app.close()
    assert rows_of(settings, "profile") == altered  # not laundered under a new MAC
    reopened = build_app(settings, clock=clock)
    try:
        kinds = [type(e).__name__ for _, e in reopened.replay()]
    finally:
        reopened.close()
    assert kinds[-1] == "ClaimsSubmitted"  # the command's event is stored


def test_a_rebuild_writes_every_row_again_from_the_events(
    app: Backcheck, settings: Settings, clock: FakeClock
) -> None:
    story = withdrawn(app)
    app.close()
    [(key, _, _)] = rows_of(settings, "consent")
    alter(settings, "consent", key, lambda d: {**d, "withdrawn_at": None})

    app = build_app(settings, clock=clock)
    try:
        app.views.rebuild()
        with pytest.raises(ForbiddenError):  # withdrawn, as the events say
            read_profile(app, story.candidate_id)
    finally:
        app.close()


def test_the_mac_key_is_a_wrapped_data_key_of_its_own(app: Backcheck, settings: Settings) -> None:
    s.register(app)
    app.views.catch_up()
    assert views_key_stored(settings)
    assert ROWS_SUBJECT.version == 5  # never a candidate's id (theirs are version 4)


def test_views_written_before_macs_are_dropped_and_written_again(
    tmp_path: Path, clock: FakeClock
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    try:
        candidate_id = app.register_candidate(
            RegisterCandidate(name="Li Lei", email="li.lei@example.com", actor=s.RECRUITER)
        ).candidate_id
        app.views.catch_up()
    finally:
        app.close()
    # the views file as an earlier version left it: no MAC column
    with _sqlite_rows(settings) as conn:
        conn.execute("ALTER TABLE view_rows DROP COLUMN mac")
        assert conn.execute("SELECT COUNT(*) FROM view_rows").fetchone()[0] > 0

    app = build_app(settings, clock=clock)
    try:
        app.views.catch_up()
        with _sqlite_rows(settings) as conn:
            macs = conn.execute("SELECT mac FROM view_rows WHERE view = 'profile'").fetchall()
        assert macs
        assert all(mac is not None and len(mac) == 32 for (mac,) in macs)
        assert app.views.get("profile", str(candidate_id)) is not None
    finally:
        app.close()
