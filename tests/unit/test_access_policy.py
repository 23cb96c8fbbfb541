"""The access policies, role by role and tier by tier: what is allowed, what is withheld,
and which policies decided it. Forbid overrides permit."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from uuid import uuid4

import pytest

from infra.access.cedar import DEFAULT_DENY, CedarDecisionPoint, default_policy_text
from infra.config import ConfigError
from services.access import BREAK_GLASS, READ_ACCESS_LOG, READ_CONSENTS, AccessRequest, Role

PURPOSE = "pre-employment screening"
GENERAL, CONFIDENTIAL = "user.contact.email", "user.employment.evaluation"
SECRET, CONSENT_REQUIRED = "user.criminal_history", "user.demographic.marital_status"
PROHIBITED = "user.health.hiv_status"
ALL = (GENERAL, CONFIDENTIAL, SECRET, CONSENT_REQUIRED, PROHIBITED)


@pytest.fixture(scope="module")
def pdp() -> CedarDecisionPoint:
    return CedarDecisionPoint()


def ask(role: Role, **facts: object) -> AccessRequest:
    base = AccessRequest(
        principal=f"{role.value}:someone",
        role=role,
        purpose=PURPOSE,
        subject=uuid4(),
        categories=ALL,
        consent_active=True,
        consented_purposes=frozenset({PURPOSE}),
        named_categories=frozenset({SECRET, CONSENT_REQUIRED}),
    )
    return dataclasses.replace(base, **facts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "allowed"),
    [
        (ask(Role.RECRUITER, handles=True), {GENERAL}),
        (ask(Role.RECRUITER, handles=False), set()),
        (ask(Role.INVESTIGATOR, assigned=True), {GENERAL, CONFIDENTIAL}),
        (
            ask(Role.INVESTIGATOR, assigned=True, planned_categories=frozenset({SECRET})),
            {GENERAL, CONFIDENTIAL, SECRET},
        ),
        (ask(Role.INVESTIGATOR, assigned=False, planned_categories=frozenset({SECRET})), set()),
        (
            ask(Role.REVIEWER, report_categories=frozenset({GENERAL, CONFIDENTIAL, SECRET})),
            {GENERAL, CONFIDENTIAL},
        ),
        (ask(Role.HIRING_MANAGER, disclosed_categories=frozenset({GENERAL})), {GENERAL}),
        (ask(Role.COMPLIANCE), set()),
        (
            ask(Role.COMPLIANCE, break_glass="court order 2026-117"),
            {GENERAL, CONFIDENTIAL, SECRET, CONSENT_REQUIRED},
        ),
        (
            ask(Role.CANDIDATE, is_subject=True, consent_active=False),
            {GENERAL, CONFIDENTIAL, SECRET, CONSENT_REQUIRED},
        ),
        (ask(Role.CANDIDATE, is_subject=False), set()),
        (ask(Role.SERVICE), set()),
    ],
    ids=[
        "recruiter-own-candidate",
        "recruiter-other-candidate",
        "investigator-assigned",
        "investigator-secret-in-plan",
        "investigator-not-assigned",
        "reviewer-report",
        "hiring-manager-disclosed",
        "compliance-metadata-only",
        "compliance-break-glass",
        "candidate-self",
        "candidate-someone-else",
        "service-by-default",
    ],
)
def test_each_role_reads_its_tiers_and_nothing_more(
    pdp: CedarDecisionPoint, request_: AccessRequest, allowed: set[str]
) -> None:
    decision = pdp.decide(request_)

    assert set(decision.allowed) == allowed
    assert set(decision.withheld) == set(ALL) - allowed
    assert PROHIBITED in decision.withheld  # never, for anyone
    assert decision.reasons[PROHIBITED] == ("prohibited-data-never",)


def test_withdrawn_consent_forbids_even_what_a_role_may_otherwise_read(
    pdp: CedarDecisionPoint,
) -> None:
    decision = pdp.decide(ask(Role.INVESTIGATOR, assigned=True, consent_active=False))

    assert decision.allowed == ()
    assert decision.outcome == "refused"
    assert decision.reasons[GENERAL] == ("no-read-without-active-consent",)


def test_a_purpose_outside_the_consent_is_refused(pdp: CedarDecisionPoint) -> None:
    decision = pdp.decide(ask(Role.RECRUITER, handles=True, purpose="marketing"))

    assert decision.allowed == ()
    assert "no-read-for-a-purpose-the-consent-does-not-name" in decision.policy_ids


def test_secret_data_not_named_in_the_consent_is_refused_even_when_planned(
    pdp: CedarDecisionPoint,
) -> None:
    decision = pdp.decide(
        ask(
            Role.INVESTIGATOR,
            assigned=True,
            planned_categories=frozenset({SECRET}),
            named_categories=frozenset(),
        )
    )

    assert SECRET in decision.withheld
    assert decision.reasons[SECRET] == (
        "sensitive-and-consent-required-data-only-when-the-consent-names-it",
    )
    assert decision.outcome == "partial"


@pytest.mark.parametrize("view", ["profile", "investigation"])
def test_a_hiring_manager_never_reads_a_secret_value_only_the_disclosed_reports_outcome(
    pdp: CedarDecisionPoint, view: str
) -> None:
    disclosed = frozenset({GENERAL, SECRET})

    values = pdp.decide(ask(Role.HIRING_MANAGER, disclosed_categories=disclosed, view=view))
    report = pdp.decide(ask(Role.HIRING_MANAGER, disclosed_categories=disclosed, view="report"))

    assert set(values.allowed) == {GENERAL}
    assert values.reasons[SECRET] == (
        "hiring-manager-reads-secret-data-only-in-the-disclosed-report",
    )
    assert set(report.allowed) == {GENERAL, SECRET}


def test_a_refusal_no_policy_permits_is_named_as_such(pdp: CedarDecisionPoint) -> None:
    decision = pdp.decide(ask(Role.SERVICE, categories=(GENERAL,)))

    assert decision.reasons[GENERAL] == (DEFAULT_DENY,)


def test_decisions_name_the_policy_set_they_came_from(pdp: CedarDecisionPoint) -> None:
    changed = CedarDecisionPoint(default_policy_text() + "\n// a comment changes the set\n")

    assert pdp.decide(ask(Role.SERVICE)).policy_set_hash == pdp.policy_set_hash
    assert changed.policy_set_hash != pdp.policy_set_hash


def test_a_cached_decision_is_the_decision(pdp: CedarDecisionPoint) -> None:
    request = ask(Role.INVESTIGATOR, assigned=True)
    fresh = CedarDecisionPoint().decide(request)

    assert pdp.decide(request) == pdp.decide(request) == fresh


@pytest.mark.parametrize(
    ("request_", "decided_by"),
    [
        (
            ask(Role.CANDIDATE, is_subject=True, consent_active=False),
            "candidate-reads-own-access-log",
        ),
        (ask(Role.COMPLIANCE, consent_active=False), "compliance-reads-access-logs"),
        (ask(Role.CANDIDATE, is_subject=False), None),
        (ask(Role.RECRUITER, handles=True), None),
        (ask(Role.INVESTIGATOR, assigned=True), None),
        (ask(Role.REVIEWER, report_categories=frozenset(ALL)), None),
        (ask(Role.HIRING_MANAGER, disclosed_categories=frozenset(ALL)), None),
        (ask(Role.SERVICE), None),
    ],
)
def test_the_access_log_is_for_its_candidate_and_compliance_consent_or_not(
    pdp: CedarDecisionPoint, request_: AccessRequest, decided_by: str | None
) -> None:
    decision = pdp.decide_view(READ_ACCESS_LOG, request_)

    assert decision.allowed is (decided_by is not None)
    assert decision.policy_ids == ((decided_by or DEFAULT_DENY),)
    assert decision.policy_set_hash == pdp.policy_set_hash


def test_the_consent_rules_govern_personal_data_reads_not_the_access_log(
    pdp: CedarDecisionPoint,
) -> None:
    """A read of a category and a read of the log are different actions: one permit does not
    lend itself to the other."""
    compliance = ask(Role.COMPLIANCE, consent_active=False)

    assert pdp.decide(compliance).allowed == ()  # no values without a break-glass
    assert pdp.decide_view(READ_ACCESS_LOG, compliance).allowed
    candidate = ask(Role.CANDIDATE, is_subject=True)
    assert set(pdp.decide(candidate).allowed) == set(ALL) - {PROHIBITED}


@pytest.mark.parametrize(
    ("request_", "decided_by"),
    [
        (
            ask(Role.CANDIDATE, is_subject=True, consent_active=False),
            "candidate-reads-own-consents",
        ),
        (
            ask(Role.RECRUITER, handles=True, consent_active=False),
            "recruiter-reads-consents-of-own-candidates",
        ),
        (ask(Role.INVESTIGATOR, assigned=True), "investigator-reads-consents-of-assigned-cases"),
        (ask(Role.COMPLIANCE), "compliance-reads-consent-registers"),
        (ask(Role.CANDIDATE, is_subject=False), None),
        (ask(Role.RECRUITER, handles=False), None),
        (ask(Role.INVESTIGATOR, assigned=False), None),
        (ask(Role.REVIEWER, report_categories=frozenset(ALL)), None),
        (ask(Role.HIRING_MANAGER, disclosed_categories=frozenset(ALL)), None),
        (ask(Role.SERVICE), None),
    ],
)
def test_the_consent_register_is_for_those_who_act_on_it_in_force_or_not(
    pdp: CedarDecisionPoint, request_: AccessRequest, decided_by: str | None
) -> None:
    decision = pdp.decide_view(READ_CONSENTS, request_)

    assert decision.allowed is (decided_by is not None)
    assert decision.policy_ids == ((decided_by or DEFAULT_DENY),)


def test_a_view_read_whole_is_decided_for_that_view_only(pdp: CedarDecisionPoint) -> None:
    recruiter = ask(Role.RECRUITER, handles=True)

    assert pdp.decide_view(READ_CONSENTS, recruiter).allowed
    assert not pdp.decide_view(READ_ACCESS_LOG, recruiter).allowed
    with pytest.raises(ValueError, match="not a view"):
        pdp.decide_view("read", recruiter)


def test_a_policy_without_an_id_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match="@id"):
        CedarDecisionPoint("permit (principal, action, resource);")


def test_the_readme_lists_every_policy_in_force() -> None:
    """The policy table in README.md is what a compliance officer reads first: it must name
    exactly the policies the decision point loads."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    listed = set(re.findall(r"^  \| `([a-z0-9-]+)` \| (?:read|break-glass)", readme, re.MULTILINE))

    assert listed == set(re.findall(r'@id\("([^"]+)"\)', default_policy_text()))


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_only_compliance_may_break_the_glass(pdp: CedarDecisionPoint, role: Role) -> None:
    decision = pdp.decide_view(BREAK_GLASS, ask(role, break_glass="court order 2026-117"))

    if role is Role.COMPLIANCE:
        assert (decision.allowed, decision.policy_ids) == (
            True,
            ("compliance-may-break-the-glass",),
        )
    else:
        assert (decision.allowed, decision.policy_ids) == (
            False,
            ("break-glass-is-for-compliance-only",),
        )
