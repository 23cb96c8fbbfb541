"""Every command event that records an actor records too who its caller was authenticated as,
and how (`authenticated`), on both backends: over HTTP with a staff token, on the operator's
command line (`operator`, whatever actor it types). The events are found in the domain, not
listed by hand, so an event with an actor added later fails here until it records its caller.
Records from before read `unknown`."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import pytest

from domain.access import UNKNOWN_CALLER, Authenticated
from domain.investigation import Investigation
from domain.principal import Principal
from infra.bootstrap import build_app
from infra.config import Settings
from projections.events import stored_event_types
from services.access import Role
from services.application import Backcheck
from services.dto import (
    AddPrincipal,
    CancelInvestigation,
    LegalHold,
    ReleaseLegalHold,
    RevokePrincipal,
)
from tests import story as s
from tests.conftest import FakeClock
from tests.http import Served
from tests.integration.test_upcasting import stored_as, unsealed

OPERATOR = Authenticated("operator", "operator")
# events that name someone but are not a command's: a delivered command's receipt names the
# actor its sender stated (the delivery, signed or not, is recorded with it)
NOT_COMMANDS = {"CommandReceipt.Applied"}


def actor_fields(cls: type) -> list[str]:
    return [
        name
        for name in typing.get_type_hints(cls)
        if (name.endswith("_by") and name != "due_by") or name in ("by", "author", "reviewer")
    ]


def commands_with_an_actor() -> set[str]:
    return {
        cls.__qualname__
        for cls in stored_event_types().values()
        if actor_fields(cls) and cls.__qualname__ not in NOT_COMMANDS
    }


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def callers(app: Backcheck) -> dict[str, set[Authenticated]]:
    """The callers each kind of event with an actor records, over the whole store."""
    found: dict[str, set[Authenticated]] = {}
    for _, event in app.replay():
        kind = type(event).__qualname__
        if actor_fields(type(event)):
            found.setdefault(kind, set()).add(getattr(event, "authenticated", None))
    return found


def whole_story(app: Backcheck) -> None:
    """Every command with an actor a case knows: registration to destruction, a cancelled
    investigation, a legal hold placed and released."""
    story = s.shared_report(app)
    s.disclose(app, story)
    app.place_legal_hold(LegalHold(report_id=story.report, reason="claim", actor="legal:he"))
    app.release_legal_hold(ReleaseLegalHold(report_id=story.report, actor="legal:he"))
    second = s.plan(app, s.Story(story.candidate_id, story.consent_id))
    app.cancel_investigation(
        CancelInvestigation(investigation_id=second.investigation, reason="moot", actor="hr:x")
    )


def test_every_command_event_with_an_actor_declares_its_caller() -> None:
    missing = [
        kind
        for kind in sorted(commands_with_an_actor())
        if "authenticated" not in typing.get_type_hints(_class(kind))
    ]
    assert missing == []
    assert {"Investigation.Completed", "Report.Compiled", "Principal.Added"} <= (
        commands_with_an_actor()
    )


def test_on_the_command_line_every_command_event_records_the_operator(app: Backcheck) -> None:
    whole_story(app)

    found = callers(app)

    assert {k: v for k, v in found.items() if k not in NOT_COMMANDS and v != {OPERATOR}} == {}
    assert {"Candidate.Registered", "Investigation.Cancelled", "Report.LegalHoldPlaced"} <= set(
        found
    )


def test_over_http_the_tokens_principal_is_recorded(api: Served) -> None:
    # given: a candidate registered, a consent asked for and an investigation planned by the
    # operator, then cancelled by a recruiter over HTTP
    story = s.plan(api.app, s.consented_candidate(api.app))
    head = api.head()

    answer = api.post(
        s.RECRUITER,
        f"/v1/investigations/{story.investigation}/cancellation",
        {"reason": "the role was withdrawn"},
    )

    assert answer.status_code == 200, answer.text
    (cancelled,) = [
        e
        for p, e in api.app.replay(subject=story.candidate_id)
        if p > head and isinstance(e, Investigation.Cancelled)
    ]
    assert cancelled.cancelled_by == s.RECRUITER
    assert cancelled.authenticated == Authenticated(s.RECRUITER, "token")
    (added,) = [
        e for _, e in api.app.replay() if isinstance(e, Principal.Added) and e.name == s.RECRUITER
    ]
    assert added.authenticated == OPERATOR  # issued on the command line (tests/http.py)


def test_command_events_recorded_before_read_as_unknown(sqlite_app: Backcheck) -> None:
    # given: an investigation completed and a principal revoked, as v1 code stored them
    app = sqlite_app
    s.completed_investigation(app)
    app.add_principal(AddPrincipal(name=s.RECRUITER, role=Role.RECRUITER, actor="operator"))
    app.revoke_principal(RevokePrincipal(name=s.RECRUITER, reason="left", actor="operator"))
    records = []
    for _, event in app.replay():
        kind = type(event).__qualname__
        if kind in ("Investigation.Completed", "Principal.Revoked"):
            stored, state = unsealed(app, event)
            del state["authenticated"]
            records.append(stored_as(stored, state, 1))
    assert len(records) == 2

    # when
    replayed = [app.mapper.to_domain_event(r) for r in records]

    # then
    assert [(type(e).__qualname__, e.authenticated) for e in replayed] == [
        ("Investigation.Completed", UNKNOWN_CALLER),
        ("Principal.Revoked", UNKNOWN_CALLER),
    ]


def _class(kind: str) -> Any:
    return next(c for c in stored_event_types().values() if c.__qualname__ == kind)
