"""A look at the history of a candidate the store has never seen is "not found" (exit 4, one
line naming the id), never an empty listing with exit 0, on both backends: `events --subject`,
`audit as-of --subject` and `audit timeline --subject`. Nothing is recorded for it: no one's
data was asked for."""

from __future__ import annotations

from uuid import uuid4

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from tests import story as s
from tests.e2e.test_cli import run

NOT_FOUND = 4


@pytest.mark.parametrize(
    "command",
    [
        ("events", "--subject"),
        ("audit", "as-of", "2026-12-01T00:00:00+00:00", "--subject"),
        ("audit", "timeline", "--subject"),
    ],
)
def test_a_subject_the_store_never_saw_is_not_found(
    settings: Settings, command: tuple[str, ...]
) -> None:
    app = build_app(settings)
    try:
        s.consented_candidate(app)  # a store with someone else in it
        head = app.recorder.max_notification_id()
    finally:
        app.close()
    unknown = uuid4()
    env = {
        "BACKCHECK_DATABASE_URL": str(settings.database_url),
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
    }

    result = run(env, *command, str(unknown))

    assert result.returncode == NOT_FOUND
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Not found")
    # on the command line, the command that lists them (over HTTP, the route: test_http_api)
    assert line.endswith(
        f"no candidate with id {unknown}; check the id (list with `backcheck events`)"
    )
    app = build_app(settings)
    try:
        assert app.recorder.max_notification_id() == head
    finally:
        app.close()
