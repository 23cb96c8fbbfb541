"""A disclosure records the role its principal acted in, as authentication established it
(never as the caller states it), on both backends: a report disclosed over HTTP by a
recruiter's token, an access package handed over at a compliance officer's request, and the
operator's command line (no principal of the policies': role `operator`). The access log shows
it; records made before replay with none.

The walkthrough that found it: every disclosure's row in the access log had an empty role."""

from __future__ import annotations

from uuid import UUID

from domain.access import DataDisclosure
from domain.report import Report
from services.access import Role
from services.application import Backcheck
from services.dto import ReadAccessLog
from services.subject_export import ExportSubjectData
from tests import story as s
from tests.http import COMPLIANCE, Served
from tests.integration.test_upcasting import stored_as, unsealed

OFFICER = {"principal": COMPLIANCE, "role": Role.COMPLIANCE, "purpose": s.PURPOSE}
HANDOVER = {"recipient": s.HIRING_MANAGER, "recipient_role": "hiring manager"}


def disclosures_logged(
    app: Backcheck, candidate_id: UUID
) -> list[tuple[str, str | None, str | None]]:
    """Each disclosure's entry in the access log: who, in which role, authenticated how."""
    log = app.read_access_log(ReadAccessLog(candidate_id=candidate_id, **OFFICER))
    return [
        (e.principal, e.role, e.authentication) for e in log.entries if e.outcome == "disclosed"
    ]


def test_a_report_disclosed_over_http_records_the_disclosers_role(api: Served) -> None:
    st = s.shared_report(api.app)

    answer = api.post(
        s.RECRUITER, f"/v1/reports/{st.report}/disclosures", {**HANDOVER, "purpose": s.PURPOSE}
    )

    assert answer.status_code == 200, answer.text
    (disclosed,) = [
        e for _, e in api.app.replay(subject=st.candidate_id) if isinstance(e, Report.Disclosed)
    ]
    assert (disclosed.authenticated.principal, disclosed.role) == (s.RECRUITER, "recruiter")
    assert disclosures_logged(api.app, st.candidate_id) == [(s.RECRUITER, "recruiter", "token")]


def test_an_access_package_records_the_role_of_who_asked_for_it(api: Served) -> None:
    st = s.consented_candidate(api.app)

    answer = api.post(COMPLIANCE, f"/v1/candidates/{st.candidate_id}/access-package")

    assert answer.status_code == 200, answer.text
    (handed,) = [
        e
        for _, e in api.app.replay(subject=st.candidate_id)
        if isinstance(e, DataDisclosure.DataDisclosed)
    ]
    assert (handed.disclosed_by, handed.role, handed.authentication) == (
        COMPLIANCE,
        "compliance",
        "token",
    )
    assert disclosures_logged(api.app, st.candidate_id) == [(COMPLIANCE, "compliance", "token")]


def test_the_operators_disclosures_are_recorded_in_the_operator_role(api: Served) -> None:
    # given: no identity, as on the operator's command line
    st = s.shared_report(api.app)

    s.disclose(api.app, st)
    api.app.export_subject_data(
        ExportSubjectData(candidate_id=st.candidate_id, actor="compliance:wu.min")
    )

    assert disclosures_logged(api.app, st.candidate_id) == [
        (s.RECRUITER, "operator", "operator"),
        ("compliance:wu.min", "operator", "operator"),
    ]


def test_disclosures_recorded_before_roles_replay_with_none(sqlite_app: Backcheck) -> None:
    # given: a report's disclosure as v3 code stored it and a data disclosure as v1 did
    app = sqlite_app
    st = s.shared_report(app)
    s.disclose(app, st)
    app.export_subject_data(
        ExportSubjectData(candidate_id=st.candidate_id, actor="compliance:wu.min")
    )
    records = []
    for _, event in app.replay(subject=st.candidate_id):
        if isinstance(event, Report.Disclosed | DataDisclosure.DataDisclosed):
            stored, state = unsealed(app, event)
            del state["role"]
            version = 3  # a report's disclosure as v3 stored it
            if isinstance(event, DataDisclosure.DataDisclosed):
                del state["authentication"], state["authenticated"]  # nor, in v1, how
                version = 1
            records.append(stored_as(stored, state, version))

    # when: those records read back
    replayed = [app.mapper.to_domain_event(r) for r in records]

    # then
    assert [(type(e).__qualname__, e.role) for e in replayed] == [
        ("Report.Disclosed", None),
        ("DataDisclosure.DataDisclosed", None),
    ]
