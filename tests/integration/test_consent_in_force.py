"""Rules that need more than one aggregate, through the use cases on a real store."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from domain.check import SourceRole
from domain.errors import (
    AccessRefusedError,
    CandidateAlreadyRegisteredError,
    CandidateErasedError,
    ConsentNotActiveError,
)
from services.access import Role
from services.application import Backcheck
from services.dto import (
    EraseSubject,
    ReadProfile,
    RecordDisclosure,
    RegisterCandidate,
    RequestErasure,
    WithdrawConsent,
)
from tests import story as s
from tests.conftest import FakeClock


def test_a_finding_is_refused_once_the_consent_window_has_passed(
    sqlite_app: Backcheck, clock: FakeClock
) -> None:
    # given an investigation under way, and nobody has recorded the consent's expiry yet
    st = s.investigation_under_way(sqlite_app)
    clock.advance(days=91)
    before = sqlite_app.recorder.max_notification_id()
    # when an investigator records a finding, then it is refused and nothing is stored
    with pytest.raises(ConsentNotActiveError, match="expired"):
        s.record_finding(sqlite_app, st, SourceRole.HR)
    assert sqlite_app.recorder.max_notification_id() == before


def test_a_candidate_registered_under_an_id_made_for_them_is_not_looked_up_first(
    sqlite_app: Backcheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new random id is held by no record; a registration under one reads nothing first."""
    asked: list[object] = []
    select = sqlite_app.recorder.select_events

    def counted(originator_id: Any, **kwargs: Any) -> Any:
        asked.append(originator_id)
        return select(originator_id, **kwargs)

    monkeypatch.setattr(sqlite_app.recorder, "select_events", counted)
    made = sqlite_app.register_candidate(RegisterCandidate(name="Li Lei", actor=s.RECRUITER))

    assert made.candidate_id not in asked


def test_registering_again_under_an_id_made_for_the_first_is_refused_by_name(
    sqlite_app: Backcheck,
) -> None:
    """The same command sent twice (its id made for it once): the second write collides with
    the first, and is refused as a registration of that id, nothing written."""
    command = RegisterCandidate(name="Li Lei", actor=s.RECRUITER)
    first = sqlite_app.register_candidate(command)
    before = sqlite_app.recorder.max_notification_id()

    with pytest.raises(CandidateAlreadyRegisteredError, match=str(first.candidate_id)):
        sqlite_app.register_candidate(command)
    assert sqlite_app.recorder.max_notification_id() == before


def test_withdrawing_consent_suspends_a_planned_investigation_too(sqlite_app: Backcheck) -> None:
    st = s.plan(sqlite_app, s.consented_candidate(sqlite_app))

    result = sqlite_app.withdraw_consent(
        WithdrawConsent(consent_id=st.consent_id, reason="changed my mind", actor=s.CANDIDATE)
    )

    assert result.suspended_investigations == [st.investigation]
    assert sqlite_app.get_investigation(st.investigation).status == "suspended"


def test_registering_an_id_twice_is_refused_by_name(sqlite_app: Backcheck) -> None:
    first = sqlite_app.register_candidate(RegisterCandidate(name="Li Lei", actor=s.RECRUITER))
    before = sqlite_app.recorder.max_notification_id()

    with pytest.raises(CandidateAlreadyRegisteredError, match=str(first.candidate_id)):
        sqlite_app.register_candidate(
            RegisterCandidate(candidate_id=first.candidate_id, name="Han Mei", actor=s.RECRUITER)
        )
    assert sqlite_app.recorder.max_notification_id() == before


def test_after_an_erasure_request_no_consent_is_asked_and_no_check_planned(
    sqlite_app: Backcheck,
) -> None:
    st = s.consented_candidate(sqlite_app)
    sqlite_app.request_erasure(
        RequestErasure(
            candidate_id=st.candidate_id, reason="withdrawing my application", actor=s.CANDIDATE
        )
    )
    before = sqlite_app.recorder.max_notification_id()

    with pytest.raises(CandidateErasedError):
        s.request_consent(sqlite_app, st.candidate_id)
    with pytest.raises(CandidateErasedError):
        s.plan(sqlite_app, st)
    assert sqlite_app.recorder.max_notification_id() == before


def test_the_timeline_names_who_acted_and_under_which_consent(sqlite_app: Backcheck) -> None:
    st = s.shared_report(sqlite_app)

    entries = list(sqlite_app.timeline(st.candidate_id))

    assert [e.position for e in entries] == sorted(e.position for e in entries)
    assert "unrecorded" not in {e.who for e in entries}
    by_event = {e.event: e for e in entries}
    assert by_event["Consent.Granted"].who == s.CANDIDATE
    assert by_event["Investigation.Started"].who == s.RECRUITER
    assert by_event["Report.Approved"].who == s.REVIEWER
    for name in ("Investigation.Started", "Investigation.FindingRecorded", "Report.Compiled"):
        assert by_event[name].consent_id == st.consent_id
    assert "Li Lei" not in " ".join(e.what for e in entries)


def test_the_timeline_names_who_read_handed_over_and_erased(sqlite_app: Backcheck) -> None:
    """Who saw what is the compliance officer's first question: every read names its reader
    and the consent it relied on (a refused read relied on none); disclosures and the erasure
    name who did them."""
    st = s.investigation_under_way(sqlite_app)
    read = ReadProfile(
        candidate_id=st.candidate_id, principal=s.RECRUITER, role=Role.RECRUITER, purpose=s.PURPOSE
    )
    sqlite_app.read_profile(read)
    with pytest.raises(AccessRefusedError):
        sqlite_app.read_profile(read.model_copy(update={"principal": "growth:wu.hao"}))
    sqlite_app.record_disclosure(
        RecordDisclosure(
            candidate_id=st.candidate_id,
            recipient="labour inspectorate",
            purpose="statutory inspection",
            channel="evidence bundle",
            actor="compliance:zhou",
        )
    )
    sqlite_app.erase_subject(
        EraseSubject(candidate_id=st.candidate_id, reason="candidate request", actor="dpo:li")
    )

    entries = list(sqlite_app.timeline(st.candidate_id))

    assert "unrecorded" not in {e.who for e in entries}
    reads = [e for e in entries if e.event == "Access.Recorded"]
    assert [(e.who, e.consent_id) for e in reads] == [
        (s.RECRUITER, st.consent_id),
        ("growth:wu.hao", None),  # refused: it relied on no consent
    ]
    by_event = {e.event: e for e in entries}
    assert by_event["DataDisclosure.DataDisclosed"].who == "compliance:zhou"
    assert by_event["Candidate.Erased"].who == "dpo:li"


def test_a_read_is_decided_at_the_moment_its_record_carries(
    sqlite_app: Backcheck, clock: FakeClock
) -> None:
    """The decision point and `audit check` judge a read at one moment. With a clock that
    moves on every call (as a real one does), the read's record carries the moment the use
    case began (the first tick); a consent in force from the second must not allow it."""
    candidate_id = s.register(sqlite_app)
    consent_id = s.request_consent(sqlite_app, candidate_id)
    s.grant_consent(sqlite_app, consent_id, valid_from=clock.now + timedelta(seconds=2))
    ticking = clock.now

    def tick() -> datetime:
        nonlocal ticking
        ticking += timedelta(seconds=1)
        return ticking

    sqlite_app.clock = tick
    read = ReadProfile(
        candidate_id=candidate_id, principal=s.RECRUITER, role=Role.RECRUITER, purpose=s.PURPOSE
    )

    with pytest.raises(AccessRefusedError, match="no-read-without-active-consent"):
        sqlite_app.read_profile(read)
    assert list(sqlite_app.violations()) == []
    # a moment later the consent is in force: allowed, and the check agrees
    assert sqlite_app.read_profile(read).outcome == "allowed"
    assert list(sqlite_app.violations()) == []
