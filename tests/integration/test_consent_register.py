"""Reading a candidate's consent register: those who act on a consent see what it covers and
whether it is in force — also once it is withdrawn — nobody else does, and every read, allowed
or refused, leaves exactly one access event first."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from domain.classification import ERASED_VALUE
from domain.errors import AccessRefusedError
from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.application import Backcheck
from services.dto import ConsentRegisterView, EraseSubject, ReadConsents, WithdrawConsent
from services.errors import AggregateMissingError
from tests import story as s
from tests.conftest import FakeClock
from tests.integration.test_reads import accesses


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    app = build_app(settings, clock=clock)
    yield app
    app.close()


def read(app: Backcheck, st: s.Story, principal: str, role: Role) -> ConsentRegisterView:
    return app.read_consents(
        ReadConsents(
            candidate_id=st.candidate_id, principal=principal, role=role, purpose="what applies"
        )
    )


@pytest.mark.parametrize(
    ("principal", "role", "policy"),
    [
        ("candidate:{id}", Role.CANDIDATE, "candidate-reads-own-consents"),
        (s.RECRUITER, Role.RECRUITER, "recruiter-reads-consents-of-own-candidates"),
        (s.INVESTIGATOR, Role.INVESTIGATOR, "investigator-reads-consents-of-assigned-cases"),
        ("compliance:zhou", Role.COMPLIANCE, "compliance-reads-consent-registers"),
    ],
)
def test_those_who_act_on_the_consent_see_it_withdrawn(
    app: Backcheck, principal: str, role: Role, policy: str
) -> None:
    st = s.investigation_under_way(app)
    app.withdraw_consent(
        WithdrawConsent(consent_id=st.consent_id, reason="changed my mind", actor=s.CANDIDATE)
    )
    principal = principal.format(id=st.candidate_id)

    register = read(app, st, principal, role)

    (consent,) = register.consents
    assert (consent.consent_id, consent.status) == (st.consent_id, "withdrawn")
    assert consent.withdrawn_at is not None
    assert consent.terms.purposes == [s.PURPOSE]
    assert consent.relied_on_by == [st.investigation]
    (recorded,) = accesses(app, st.candidate_id)
    assert recorded.originator_id == register.access_id
    assert (recorded.principal, recorded.view, recorded.outcome) == (
        principal,
        "consent register",
        "allowed",
    )
    assert (recorded.policy_ids, recorded.returned, recorded.withheld) == ((policy,), (), ())


def test_an_active_consent_reads_as_active_and_is_named_in_the_record(app: Backcheck) -> None:
    st = s.investigation_under_way(app)

    register = read(app, st, f"candidate:{st.candidate_id}", Role.CANDIDATE)

    assert [c.status for c in register.consents] == ["active"]
    (recorded,) = accesses(app, st.candidate_id)
    assert recorded.consent_ids == (st.consent_id,)


@pytest.mark.parametrize(
    ("principal", "role"),
    [
        ("hr:someone.else", Role.RECRUITER),
        ("investigator:not.assigned", Role.INVESTIGATOR),
        (s.HIRING_MANAGER, Role.HIRING_MANAGER),
        (f"candidate:{uuid4()}", Role.CANDIDATE),
    ],
    ids=[
        "another recruiter",
        "an unassigned investigator",
        "the hiring manager",
        "another candidate",
    ],
)
def test_nobody_else_reads_it_and_the_refusal_is_recorded(
    app: Backcheck, principal: str, role: Role
) -> None:
    st = s.investigation_under_way(app)

    with pytest.raises(AccessRefusedError, match=r"consent register .*\(no-policy-permits\)"):
        read(app, st, principal, role)

    (recorded,) = accesses(app, st.candidate_id)
    assert (recorded.principal, recorded.outcome) == (principal, "refused")


def test_the_register_of_an_unknown_candidate_is_not_found_and_nothing_recorded(
    app: Backcheck,
) -> None:
    stored = app.recorder.max_notification_id()

    with pytest.raises(AggregateMissingError):
        read(app, s.Story(uuid4(), uuid4()), "compliance:zhou", Role.COMPLIANCE)

    assert app.recorder.max_notification_id() == stored


def test_the_organisations_it_names_read_as_given_and_erased_after_the_erasure(
    app: Backcheck,
) -> None:
    """The consent's organisations are sealed personal values (issue 21): the register opens
    them for those who may read it, and once the candidate is erased they read erased."""
    candidate_id = s.register(app)
    terms = s.terms_in(excluded_organisations=["Nimbus Tech"], third_parties=["Aegis Screening"])
    consent_id = s.request_consent(app, candidate_id, terms)
    st = s.Story(candidate_id, consent_id)
    me = f"candidate:{candidate_id}"

    (entry,) = read(app, st, me, Role.CANDIDATE).consents
    assert (entry.terms.excluded_organisations, entry.terms.third_parties) == (
        ["Nimbus Tech"],
        ["Aegis Screening"],
    )

    app.erase_subject(
        EraseSubject(candidate_id=candidate_id, reason="candidate-request", actor="dpo")
    )

    (entry,) = read(app, st, "compliance:dpo", Role.COMPLIANCE).consents
    assert (entry.terms.excluded_organisations, entry.terms.third_parties) == (
        [ERASED_VALUE],
        [ERASED_VALUE],
    )
