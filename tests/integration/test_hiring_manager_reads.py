"""A hiring manager reads what was disclosed to them, on both backends: the disclosed report
with its secret check's outcome, but never a secret value itself — the candidate's own
criminal-history claim in their profile is withheld, by a policy that says so (as a reviewer
reads no secret tier at all)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.access import Access
from domain.check import Method, Outcome, SourceRole
from domain.errors import AccessRefusedError
from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.application import Backcheck
from services.dto import (
    CompileReport,
    CompleteInvestigation,
    ConcludeCheck,
    ReadProfile,
    ReadReport,
    ReviewReport,
    ShareReport,
)
from tests import story as s
from tests.conftest import FakeClock
from tests.integration.test_reads import SECRET_VALUE, candidate_with_a_secret_claim

SECRET = "user.criminal_history"
POLICY = "hiring-manager-reads-secret-data-only-in-the-disclosed-report"


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def disclosed_criminal_record_check(app: Backcheck) -> s.Story:
    """The registry confirms the record; the report is reviewed, shared and disclosed."""
    st = candidate_with_a_secret_claim(app)
    (check_id,) = app.get_investigation(st.investigation).model_dump()["checks"][0:1]
    st.check_ids = [check_id["check_id"]]
    s.record_finding(app, st, SourceRole.REGISTRAR, method=Method.REGISTRY, organisation="MPS")
    app.conclude_check(
        ConcludeCheck(
            investigation_id=st.investigation,
            check_id=st.check_id,
            outcome=Outcome.CONFIRMED,
            actor=s.INVESTIGATOR,
        )
    )
    app.complete_investigation(
        CompleteInvestigation(investigation_id=st.investigation, actor=s.INVESTIGATOR)
    )
    st.report_id = app.compile_report(
        CompileReport(investigation_id=st.investigation, actor=s.INVESTIGATOR)
    ).report_id
    app.review_report(ReviewReport(report_id=st.report, approve=True, actor=s.REVIEWER))
    app.share_report(ShareReport(report_id=st.report, actor=s.RECRUITER))
    s.disclose(app, st)
    return st


def test_a_hiring_manager_gets_the_secret_checks_outcome_never_the_secret_value(
    app: Backcheck,
) -> None:
    st = disclosed_criminal_record_check(app)
    manager = {"principal": s.HIRING_MANAGER, "role": Role.HIRING_MANAGER, "purpose": s.PURPOSE}

    report = app.read_report(ReadReport(report_id=st.report, **manager))
    with pytest.raises(AccessRefusedError, match=POLICY) as refused:
        app.read_profile(ReadProfile(candidate_id=st.candidate_id, **manager))

    (item,) = report.items
    assert (item.categories, item.withheld, item.outcome) == ([SECRET], False, "confirmed")
    assert report.outcome == "allowed"
    assert SECRET_VALUE not in str(refused.value)
    read = [e for _, e in app.replay(subject=st.candidate_id) if isinstance(e, Access.Recorded)]
    assert (read[-1].view, read[-1].outcome) == ("profile", "refused")
    assert SECRET in read[-1].withheld
    assert POLICY in read[-1].policy_ids
    assert POLICY not in read[-2].policy_ids  # the report's read
