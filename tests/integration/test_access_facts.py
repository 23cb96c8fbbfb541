"""The facts a read is decided on follow the domain's statuses, end to end: cancelling an
investigation ends its investigators' access, a report sent back for changes is still under
review, a destroyed report opens nothing any more to whom it was disclosed. The views store
each status as the text of the domain's enum, and the reads decide on that enum."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from domain.errors import AccessRefusedError
from domain.investigation import InvestigationStatus
from domain.report import ReportStatus
from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.application import Backcheck
from services.dto import (
    CancelInvestigation,
    ClaimIn,
    DestroyReport,
    PersonalFieldIn,
    ProfileView,
    ReadProfile,
    ReadReport,
    ReviewReport,
    SubmitClaims,
)
from tests import story as s
from tests.conftest import FakeClock
from tests.integration.test_reads import accesses

EMPLOYER = PersonalFieldIn(name="employer", category="user.employment.employer", value=s.EMPLOYER)


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    app = build_app(settings, clock=clock)
    yield app
    app.close()


def read_profile(app: Backcheck, candidate_id: UUID, principal: str, role: Role) -> ProfileView:
    return app.read_profile(
        ReadProfile(candidate_id=candidate_id, principal=principal, role=role, purpose=s.PURPOSE)
    )


def stored_status(app: Backcheck, view: str, key: UUID) -> str:
    app.views.catch_up()
    doc = app.views.get(view, str(key), frozenset())
    assert doc is not None
    status: str = doc["status"]
    return status


def test_an_investigator_no_longer_reads_the_candidate_once_the_investigation_is_cancelled(
    app: Backcheck,
) -> None:
    st = s.investigation_under_way(app)
    assigned = read_profile(app, st.candidate_id, s.INVESTIGATOR, Role.INVESTIGATOR)

    app.cancel_investigation(
        CancelInvestigation(
            investigation_id=st.investigation, reason="role filled", actor=s.RECRUITER
        )
    )

    assert assigned.outcome == "allowed"
    assert stored_status(app, "investigation", st.investigation) == "cancelled"
    assert InvestigationStatus("cancelled") is InvestigationStatus.CANCELLED
    with pytest.raises(AccessRefusedError, match="refusal was recorded"):
        read_profile(app, st.candidate_id, s.INVESTIGATOR, Role.INVESTIGATOR)
    assert [a.outcome for a in accesses(app, st.candidate_id)] == ["allowed", "refused"]


def test_a_reviewer_still_reads_a_report_sent_back_for_changes(app: Backcheck) -> None:
    st = s.compiled_report(app)

    app.review_report(
        ReviewReport(
            report_id=st.report, approve=False, comments="cite both sources", actor=s.REVIEWER
        )
    )
    seen = app.read_report(
        ReadReport(report_id=st.report, principal=s.REVIEWER, role=Role.REVIEWER, purpose=s.PURPOSE)
    )

    assert stored_status(app, "report", st.report) == "changes requested"
    assert ReportStatus(seen.status) is ReportStatus.CHANGES_REQUESTED
    assert seen.outcome == "allowed"
    assert seen.items[0].outcome == "confirmed"


def test_a_hiring_manager_reads_what_was_disclosed_to_them_until_the_report_is_destroyed(
    app: Backcheck,
) -> None:
    st = s.shared_report(app)
    app.submit_claims(
        SubmitClaims(
            candidate_id=st.candidate_id,
            consent_id=st.consent_id,
            claims=[ClaimIn(kind="employment", fields=[EMPLOYER])],
            actor=s.CANDIDATE,
        )
    )
    s.disclose(app, st)
    disclosed = read_profile(app, st.candidate_id, s.HIRING_MANAGER, Role.HIRING_MANAGER)

    app.destroy_report(
        DestroyReport(report_id=st.report, reason="retention ended", actor=s.RECRUITER)
    )

    assert disclosed.outcome == "partial"  # the employer was disclosed, the name was not
    assert {f.name: f.value for f in disclosed.fields if not f.withheld} == {
        "employment.employer": s.EMPLOYER
    }
    assert stored_status(app, "report", st.report) == "destroyed"
    with pytest.raises(AccessRefusedError, match="refusal was recorded"):
        read_profile(app, st.candidate_id, s.HIRING_MANAGER, Role.HIRING_MANAGER)
