"""A control character (NUL above all: PostgreSQL's jsonb refuses it) in any text of a command
is refused at the boundary, naming the field, and the store is exactly as it was: reads and a
rebuild of the views go on working, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from infra.bootstrap import build_app
from infra.config import Settings
from infra.problem import problem_for
from infra.views.runner import ViewRunner
from services.access import Role
from services.application import Backcheck
from services.catalogue import USE_CASES
from services.dto import ReadProfile
from tests import story as s
from tests.conftest import FakeClock


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def test_a_nul_in_the_actor_is_refused_and_the_store_stays_usable(app: Backcheck) -> None:
    story = s.consented_candidate(app)
    head = app.recorder.max_notification_id()
    payload = {
        "candidate_id": str(story.candidate_id),
        "terms": s.terms_in().model_dump(mode="json"),
        "actor": "hr:li\u0000.na",
    }

    with pytest.raises(ValidationError) as refused:
        USE_CASES["request-consent"].run(app, payload)

    problem = problem_for(refused.value)
    assert problem is not None
    assert (problem.status, problem.exit_code) == (422, 2)
    assert problem.detail.startswith("field actor: ")
    assert "U+0000" in problem.detail
    assert app.recorder.max_notification_id() == head

    profile = app.read_profile(
        ReadProfile(
            candidate_id=story.candidate_id,
            principal=s.RECRUITER,
            role=Role.RECRUITER,
            purpose=s.PURPOSE,
        )
    )
    assert profile.outcome == "allowed"
    assert isinstance(app.views, ViewRunner)
    assert app.views.rebuild() == app.recorder.max_notification_id()
