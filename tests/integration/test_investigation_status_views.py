"""An investigation's status in the read views and the case overview is the domain's own, also
where the domain does more than set a status: resuming goes back to where work was suspended
from (planned, or in progress), and an upheld dispute reopens a completed investigation."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from services.application import Backcheck
from services.dto import (
    CompleteInvestigation,
    RaiseDispute,
    ResolveDispute,
    ResumeInvestigation,
    WithdrawConsent,
)
from tests import story
from tests.conftest import FakeClock
from tests.story import CANDIDATE, INVESTIGATOR, RECRUITER


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    app = build_app(settings, clock=clock)
    yield app
    app.close()


def statuses(app: Backcheck, candidate: UUID, investigation: UUID) -> dict[str, str]:
    """The investigation's status as the domain, the read views and the case overview say."""
    doc = app.read_model().get("investigation", str(investigation))
    assert doc is not None
    (overview,) = app.as_of(app.clock(), candidate)
    listed = overview["investigations"][str(investigation)]
    return {
        "domain": app.get_investigation(investigation).status,
        "view": doc["status"],
        "overview": listed.split(" (")[0],  # "planned (0/1 checks concluded)"
    }


def suspend_and_resume(app: Backcheck, s: story.Story) -> UUID:
    app.withdraw_consent(WithdrawConsent(consent_id=s.consent_id, reason="no", actor=CANDIDATE))
    renewed = story.request_consent(app, s.candidate_id)
    story.grant_consent(app, renewed)
    app.resume_investigation(
        ResumeInvestigation(investigation_id=s.investigation, consent_id=renewed, actor=RECRUITER)
    )
    return renewed


def test_an_investigation_suspended_while_planned_resumes_planned_in_every_view(
    app: Backcheck,
) -> None:
    s = story.plan(app, story.consented_candidate(app))
    renewed = suspend_and_resume(app, s)
    assert statuses(app, s.candidate_id, s.investigation) == {
        "domain": "planned",
        "view": "planned",
        "overview": "planned",
    }
    doc = app.read_model().get("investigation", str(s.investigation))
    assert doc is not None
    assert (
        doc["consent_id"] == str(renewed) == str(app.get_investigation(s.investigation).consent_id)
    )


def test_an_investigation_suspended_in_progress_resumes_in_progress_in_every_view(
    app: Backcheck,
) -> None:
    s = story.investigation_under_way(app)
    suspend_and_resume(app, s)
    assert set(statuses(app, s.candidate_id, s.investigation).values()) == {"in progress"}


def test_an_upheld_dispute_reopens_a_completed_investigation_in_every_view(
    app: Backcheck,
) -> None:
    s = story.investigation_under_way(app)
    story.confirm_check(app, s)
    app.complete_investigation(
        CompleteInvestigation(investigation_id=s.investigation, actor=INVESTIGATOR)
    )
    assert set(statuses(app, s.candidate_id, s.investigation).values()) == {"completed"}
    dispute = RaiseDispute(
        investigation_id=s.investigation,
        check_id=s.check_id,
        statement="I left in 2020, not 2019",
        actor=CANDIDATE,
    )
    app.raise_dispute(dispute)
    app.resolve_dispute(
        ResolveDispute(
            investigation_id=s.investigation,
            dispute_id=dispute.dispute_id,
            upheld=True,
            response="the employer corrected its records",
            actor=INVESTIGATOR,
        )
    )
    assert set(statuses(app, s.candidate_id, s.investigation).values()) == {"in progress"}
