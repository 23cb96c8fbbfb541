"""A consent's grant and withdrawal and a report's disclosure record who their caller was
authenticated as, and how, beside the actor the command names, on both backends: the
operator's command line (whatever actor it types: a candidate's id too), a candidate's portal
link, a staff token over HTTP, a service's signed message. Records from before say so:
`unknown`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.access import Authenticated
from domain.consent import Consent
from domain.report import Report
from infra.bootstrap import build_app
from infra.config import Settings
from services.application import Backcheck
from services.catalogue import USE_CASES
from services.dto import WithdrawConsent
from tests import story as s
from tests.commands import body, grant_consent, register, request_consent
from tests.conftest import FakeClock
from tests.http import Served
from tests.integration.test_signed_commands import Intake
from tests.senders import register_sender


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def last(app: Backcheck, subject: UUID, kind: type) -> Any:
    return [e for _, e in app.replay(subject=subject) if isinstance(e, kind)][-1]


def test_the_operator_typing_a_candidates_id_as_actor_is_recorded_as_the_operator(
    app: Backcheck,
) -> None:
    # given: the operator's `do grant-consent`, naming the candidate as its actor
    candidate = s.register(app)
    consent = s.request_consent(app, candidate)
    document = grant_consent(consent, app.clock())

    USE_CASES["grant-consent"].run(app, {**document, "actor": f"candidate:{candidate}"})
    app.withdraw_consent(
        WithdrawConsent(
            consent_id=consent, reason="changed my mind", actor=f"candidate:{candidate}"
        )
    )

    # then
    granted = last(app, candidate, Consent.Granted)
    withdrawn = last(app, candidate, Consent.Withdrawn)
    assert granted.recorded_by == f"candidate:{candidate}"  # as stated
    assert granted.authenticated == Authenticated("operator", "operator")  # who it really was
    assert withdrawn.authenticated == Authenticated("operator", "operator")
    signed = next(e for e in app.timeline(candidate) if e.event == "Consent.Granted")
    assert signed.what.endswith("[authenticated: operator, by operator]")


def test_the_portal_link_and_a_staff_token_are_recorded_as_such_over_http(api: Served) -> None:
    story = s.shared_report(api.app)
    candidate = story.candidate_id
    other = s.register(api.app, "Han Meimei")
    consent = s.request_consent(api.app, other)
    api.sent_link(other)
    me = f"candidate:{other}"
    now = api.app.clock()
    document = s.portal_grant(consent, now.isoformat(), (now + timedelta(days=90)).isoformat())

    granted = api.post(me, f"/v1/consents/{consent}/grant", document)
    disclosed = api.post(
        s.RECRUITER,
        f"/v1/reports/{story.report}/disclosures",
        {"recipient": s.HIRING_MANAGER, "recipient_role": "hiring manager", "purpose": s.PURPOSE},
    )

    assert granted.status_code == 200, granted.text
    assert disclosed.status_code == 200, disclosed.text
    assert last(api.app, other, Consent.Granted).authenticated == Authenticated(me, "portal-link")
    assert last(api.app, candidate, Report.Disclosed).authenticated == Authenticated(
        s.RECRUITER, "token"
    )


def test_a_services_signed_message_is_recorded_as_its_sender_signed(app: Backcheck) -> None:
    esign = register_sender(
        app,
        "svc:esign",
        use_cases=["register-candidate", "request-consent", "grant-consent"],
        acts_for=["hr:li.na", "candidate", "self"],
    )
    intake = Intake(app)
    candidate = uuid4()
    for kind, document in (
        ("register-candidate", register(candidate)),
        ("request-consent", request_consent(candidate)),
    ):
        value = body(document)
        assert intake.decide(value, esign.signed(kind, value)).applied
    (consent,) = [
        e.originator_id
        for _, e in app.replay(subject=candidate)
        if isinstance(e, Consent.Requested)
    ]
    value = body(grant_consent(consent, app.clock()))

    decision = intake.decide(value, esign.signed("grant-consent", value))

    assert decision.applied, f"{decision.reason}: {decision.error}"
    granted = last(app, candidate, Consent.Granted)
    assert granted.recorded_by == "candidate"  # whom it acted for
    assert granted.authenticated == Authenticated("svc:esign", "signed-message")
