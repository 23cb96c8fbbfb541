"""What the access log tells a compliance officer, on each backend: a break-glass read as such,
the deciding policies, the consents relied on (none for a refusal, whatever an older record
named) and the categories returned; each disclosure under an id of its own, never a made-up
role; and the consent register's signed document."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from domain.access import _RECORDED, Access
from domain.errors import AccessRefusedError
from infra.bootstrap import build_app
from infra.config import Settings
from projections.access_log import SEALED_JUSTIFICATION, report_disclosure_id
from services.access import Role
from services.application import Backcheck
from services.dto import (
    AccessEntry,
    ReadAccessLog,
    ReadConsents,
    ReadProfile,
    RecordDisclosure,
)
from tests import story as s
from tests.conftest import FakeClock

COMPLIANCE = "compliance:zhou"
STRANGER = "growth:wu.hao"
WHY = "the candidate's complaint about the screening needs the record"


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    app = build_app(settings, clock=clock)
    yield app
    app.close()


def log(app: Backcheck, candidate_id: UUID) -> list[AccessEntry]:
    return app.read_access_log(
        ReadAccessLog(
            candidate_id=candidate_id, principal=COMPLIANCE, role=Role.COMPLIANCE, purpose="audit"
        )
    ).entries


def read(app: Backcheck, st: s.Story, principal: str, role: Role, **kw: object) -> UUID:
    return app.read_profile(
        ReadProfile(candidate_id=st.candidate_id, principal=principal, role=role, **kw)  # type: ignore[arg-type]
    ).access_id


def refused_read(app: Backcheck, st: s.Story) -> None:
    with pytest.raises(AccessRefusedError):
        read(app, st, STRANGER, Role.RECRUITER, purpose="marketing")


def test_a_read_shows_its_categories_policies_consents_and_a_break_glass_as_such(
    app: Backcheck,
) -> None:
    st = s.consented_candidate(app)
    plain = read(app, st, s.RECRUITER, Role.RECRUITER, purpose=s.PURPOSE)
    glass = read(app, st, COMPLIANCE, Role.COMPLIANCE, purpose=s.PURPOSE, break_glass=WHY)

    entries = {e.access_id: e for e in log(app, st.candidate_id)}

    assert entries[plain].returned
    assert entries[plain].policy_ids
    assert entries[plain].consent_ids == [st.consent_id]
    assert entries[plain].break_glass is None
    # said as such; the justification itself is sealed with the candidate (decision 0041)
    assert entries[glass].break_glass == SEALED_JUSTIFICATION
    assert WHY not in str(entries[glass])
    assert entries[glass].role == "compliance"


def test_a_refused_read_relies_on_no_consent_and_an_older_record_reads_so_too(
    app: Backcheck,
) -> None:
    st = s.consented_candidate(app)
    refused_read(app, st)
    older = Access._create(  # as recorded before the rule: the consents in force named
        _RECORDED,
        candidate_id=st.candidate_id,
        principal=STRANGER,
        role="recruiter",
        purpose="marketing",
        view="profile",
        returned=(),
        withheld=("user.name",),
        tiers=("identifying",),
        outcome="refused",
        policy_ids=("purpose-must-be-consented",),
        policy_set_hash="0" * 64,
        consent_ids=(st.consent_id,),
        break_glass=None,
        authentication="operator",
        failure=None,
    )
    app.save(older)

    stored = [
        e for _, e in app.replay() if isinstance(e, Access.Recorded) and e.outcome == "refused"
    ]
    entries = [e for e in log(app, st.candidate_id) if e.outcome == "refused"]
    timeline = {t.aggregate_id: t for t in app.timeline(st.candidate_id)}

    assert [e.consent_ids for e in stored] == [(), (st.consent_id,)]  # stored as they were
    assert [e.consent_ids for e in entries] == [[], []]
    assert [e.policy_ids for e in entries] == [
        list(stored[0].policy_ids),
        ["purpose-must-be-consented"],
    ]
    assert [timeline[e.originator_id].consent_id for e in stored] == [None, None]
    assert app.violations() is not None
    assert [v for v in app.violations() if v.rule == "access outside consent"] == []


def test_each_disclosure_has_its_own_id_and_its_callers_role(app: Backcheck) -> None:
    st = s.shared_report(app)
    s.disclose(app, st)
    s.disclose(app, st, purpose=s.PURPOSE)
    handed = app.record_disclosure(
        RecordDisclosure(
            candidate_id=st.candidate_id,
            actor=s.RECRUITER,
            recipient="court",
            purpose="legal claim",
            channel="file",
        )
    )
    report_versions = [
        e.originator_version
        for _, e in app.replay()
        if e.originator_id == st.report and type(e).__qualname__ == "Report.Disclosed"
    ]

    disclosed = [e for e in log(app, st.candidate_id) if e.outcome == "disclosed"]

    ids = [e.access_id for e in disclosed]
    assert ids == [*(report_disclosure_id(st.report, v) for v in report_versions), handed]
    assert len(set(ids)) == 3
    assert [e.role for e in disclosed] == ["operator"] * 3  # no identity: the command line
    assert [e.consent_ids for e in disclosed] == [[st.consent_id], [st.consent_id], []]


def test_the_consent_register_names_the_signed_documents_hash(app: Backcheck) -> None:
    st = s.consented_candidate(app)
    asked = s.request_consent(app, st.candidate_id)  # asked, not signed yet

    register = app.read_consents(
        ReadConsents(
            candidate_id=st.candidate_id, principal=COMPLIANCE, role=Role.COMPLIANCE, purpose="x"
        )
    )

    hashes = {c.consent_id: c.document_sha256 for c in register.consents}
    assert hashes == {st.consent_id: s.DOCUMENT_SHA256, asked: None}
