"""The operator's looks at a subject's history are recorded reads, on both backends: the
stored events (`events`), the timeline, the case as of a moment and a state (`show`) tell who
was checked, when, by whom and why, so each is recorded (by the operator, authenticated as
`operator`) before it answers, as the same reads over HTTP are. Store-wide, each candidate
shown gets a read of their own, all in one write; a listing never lists the reads it made."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from domain.access import Access, Authentication
from domain.errors import AccessRefusedError
from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.application import Backcheck
from services.audit_reads import ReadAsOf, ReadCasesAsOf, ReadEvents, ReadTimeline
from services.dto import ReadProfile
from services.errors import ScopedListError
from services.identity import ASSIGNMENTS_POLICY, Identity, acting_as
from services.state_reads import ShowState
from tests import story as s
from tests.conftest import FakeClock

OPERATOR = {"principal": "operator", "role": Role.COMPLIANCE, "purpose": "audit"}


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def recorded_since(app: Backcheck, position: int) -> list[Any]:
    return [
        e
        for _, e in app.replay(start=position + 1)
        if isinstance(e, Access.Recorded)  # type: ignore[arg-type]
    ]


def test_each_look_at_a_subjects_history_is_recorded_as_the_operators_read(
    app: Backcheck, clock: FakeClock
) -> None:
    st = s.consented_candidate(app)
    subject = {"candidate_id": st.candidate_id, **OPERATOR}
    looks = {
        "events": lambda: app.read_events(ReadEvents(**subject)),
        "timeline": lambda: app.read_timeline(ReadTimeline(**subject)),
        "case as of": lambda: app.read_as_of(ReadAsOf(at=clock.now, **subject)),
        "state": lambda: app.show_state(ShowState(aggregate_id=st.candidate_id, **OPERATOR)),
    }
    for view, look in looks.items():
        before = app.recorder.max_notification_id() or 0

        look()

        (read,) = recorded_since(app, before)
        assert (read.candidate_id, read.view, read.outcome) == (st.candidate_id, view, "allowed")
        assert (read.principal, read.role, read.purpose) == ("operator", "compliance", "audit")
        assert read.authentication == "operator"
        assert (read.returned, read.withheld) == ((), ())


def test_the_state_of_a_consent_is_a_read_of_its_candidate(app: Backcheck) -> None:
    st = s.consented_candidate(app)
    before = app.recorder.max_notification_id() or 0

    state = app.show_state(ShowState(aggregate_id=st.consent_id, **OPERATOR))

    assert state.model_dump()["consent_id"] == st.consent_id
    assert [(r.candidate_id, r.view) for r in recorded_since(app, before)] == [
        (st.candidate_id, "state")
    ]


def test_store_wide_each_candidate_shown_is_read_once_and_the_reads_are_not_listed(
    app: Backcheck, clock: FakeClock
) -> None:
    first, second = s.register(app), s.register(app, "Han Meimei")
    head = app.recorder.max_notification_id() or 0

    page = app.read_events(ReadEvents(until=head, **OPERATOR))
    cases = app.read_cases_as_of(ReadCasesAsOf(at=clock.now, **OPERATOR))

    reads = recorded_since(app, head)
    assert [(r.candidate_id, r.view) for r in reads] == [
        (first, "events"),
        (second, "events"),
        (first, "case as of"),
        (second, "case as of"),
    ]
    assert [e.position for e in page.events] == list(range(1, head + 1))
    assert page.next_start is None
    assert page.access_ids == [r.originator_id for r in reads[:2]]
    assert [UUID(c["candidate_id"]) for c in cases.cases] == [first, second]
    again = app.read_events(ReadEvents(start=head + 1, until=head, **OPERATOR))
    assert (again.events, again.access_ids) == ([], [])


def test_a_look_the_policies_refuse_is_recorded_and_shows_nothing(app: Backcheck) -> None:
    st = s.consented_candidate(app)
    before = app.recorder.max_notification_id() or 0

    with pytest.raises(AccessRefusedError):
        app.read_events(
            ReadEvents(
                candidate_id=st.candidate_id,
                principal="growth:wu.hao",
                role=Role.RECRUITER,
                purpose="marketing",
            )
        )

    (read,) = recorded_since(app, before)
    assert (read.view, read.outcome, read.principal) == ("events", "refused", "growth:wu.hao")


def test_a_read_of_an_id_no_candidate_holds_does_not_stop_the_store_wide_looks(
    app: Backcheck, clock: FakeClock
) -> None:
    """A scoped token's read of an id outside its assignments is recorded under that id
    whether a candidate holds it or not (so the token cannot tell which): the refusal is an
    event about an id no candidate holds. `events` and `audit as-of` over the whole store list
    it and go on, recording a read of each candidate shown, never one of that id, and showing
    no case for it (review, fourteenth session: both stopped with AggregateMissing, exit 4)."""
    mine = s.register(app)
    nobody = UUID("00000000-0000-4000-8000-000000000000")
    scoped = Identity("hr:scoped", Role.RECRUITER, Authentication.TOKEN, frozenset({mine}))
    with acting_as(scoped), pytest.raises(AccessRefusedError, match=ASSIGNMENTS_POLICY):
        app.read_profile(
            ReadProfile(
                candidate_id=nobody, principal="hr:scoped", role=Role.RECRUITER, purpose="x"
            )
        )
    head = app.recorder.max_notification_id() or 0

    page = app.read_events(ReadEvents(until=head, **OPERATOR))
    cases = app.read_cases_as_of(ReadCasesAsOf(at=clock.now, **OPERATOR))

    assert [e.position for e in page.events] == list(range(1, head + 1))
    assert [(r.candidate_id, r.view) for r in recorded_since(app, head)] == [
        (mine, "events"),
        (mine, "case as of"),
    ]
    assert [UUID(c["candidate_id"]) for c in cases.cases] == [mine]


def test_the_whole_stores_case_overview_refuses_a_scoped_caller_before_reading_anyone(
    app: Backcheck, clock: FakeClock
) -> None:
    """It names every candidate, as a list does: a caller confined to some candidates is
    refused it whole (the HTTP route asks first; this is the use case's own line), nothing
    recorded, no candidate named."""
    mine, other = s.register(app), s.register(app, "Han Meimei")
    scoped = Identity("compliance:scoped", Role.COMPLIANCE, Authentication.TOKEN, frozenset({mine}))
    head = app.recorder.max_notification_id() or 0

    with acting_as(scoped), pytest.raises(ScopedListError) as refused:
        app.read_cases_as_of(
            ReadCasesAsOf(
                at=clock.now, principal="compliance:scoped", role=Role.COMPLIANCE, purpose="x"
            )
        )

    assert str(other) not in str(refused.value)
    assert str(mine) not in str(refused.value)
    assert (app.recorder.max_notification_id() or 0) == head
