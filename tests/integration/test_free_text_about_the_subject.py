"""Free text about a candidate does not outlive their erasure (decision record 0041), on both
backends: a break-glass justification and the reason an erasure was asked for are sealed with
the candidate's data and shredded with it; an erasure's own reason is a fixed ground, never
free text; a purpose, which the audit keeps in clear, may not name the candidate. Records
stored before upcast: the texts they held read as personal values, or not at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from uuid import UUID

import pytest

from domain.access import Access, justification
from domain.candidate import Candidate, ErasureGround, ErasureReceipt
from domain.classification import CASE_NOTE, ERASED_VALUE, PersonalField
from domain.errors import (
    InvalidInputError,
    JustificationNotKeptError,
    TextNamesTheSubjectError,
)
from domain.subject import recorded_at
from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.application import Backcheck
from services.dto import (
    EraseSubject,
    ReadAccessLog,
    ReadProfile,
    RegisterCandidate,
    RequestErasure,
)
from tests import marked_story as ms
from tests import story as s
from tests.conftest import FakeClock
from tests.http import COMPLIANCE, Served, problem
from tests.integration.test_upcasting import in_clear, stored_as, unsealed

NAME, EMAIL, PHONE = "Li Lei", "li.lei@example.com", "+86 139 1234 5678"
GLASS = "ZQX-GLASS-41 tribunal order in Li Lei v. Acme, call +86 139 1234 5678"
REQUEST = "ZQX-ASK-42 Li Lei (li.lei@example.com) asks to be forgotten"
OFFICER = {"principal": "compliance:wu.min", "role": Role.COMPLIANCE}


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def consented(app: Backcheck) -> s.Story:
    candidate = app.register_candidate(
        RegisterCandidate(name=NAME, email=EMAIL, phone=PHONE, actor=s.RECRUITER)
    ).candidate_id
    consent = s.request_consent(app, candidate)
    s.grant_consent(app, consent)
    return s.Story(candidate, consent)


def texts_in(data: bytes | str) -> list[str]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return [t for t in ("ZQX-GLASS-41", "ZQX-ASK-42") if t in text]


def test_a_justification_and_an_erasure_request_are_sealed_and_go_with_the_erasure(
    app: Backcheck, settings: Settings
) -> None:
    # given: a break-glass read and an erasure request, both naming the candidate
    st = consented(app)
    app.read_profile(
        ReadProfile(candidate_id=st.candidate_id, purpose=s.PURPOSE, break_glass=GLASS, **OFFICER)
    )
    app.request_erasure(RequestErasure(candidate_id=st.candidate_id, reason=REQUEST, actor="dpo"))
    stored = {type(e).__qualname__: e for _, e in app.replay(subject=st.candidate_id)}
    assert stored["Access.Recorded"].break_glass == justification(GLASS)
    assert stored["Candidate.ErasureRequested"].reason == PersonalField(
        "reason", CASE_NOTE, REQUEST
    )
    assert texts_in(ms.raw_bytes(settings)) == []  # sealed at rest

    # when
    result = app.erase_subject(
        EraseSubject(candidate_id=st.candidate_id, reason="Candidate request", actor="dpo")
    )

    # then: shredded with the rest, and the erasure says why by its ground alone
    replayed = {type(e).__qualname__: e for _, e in app.replay(subject=st.candidate_id)}
    assert replayed["Access.Recorded"].break_glass.value == ERASED_VALUE
    assert replayed["Candidate.ErasureRequested"].reason.value == ERASED_VALUE
    erased = replayed["Candidate.Erased"]
    assert erased.ground == ErasureGround.CANDIDATE_REQUEST == "candidate-request"
    assert not hasattr(erased, "reason")
    statement = json.loads(result.receipt_statement)
    assert (statement["type"], statement["ground"]) == (
        "backcheck.erasure-receipt.v2",
        "candidate-request",
    )
    assert "reason" not in statement
    shown = [*app.timeline(st.candidate_id), *app.iter_events(st.candidate_id)]
    assert texts_in(repr(shown)) == []
    assert NAME not in repr(shown)
    assert texts_in(ms.raw_bytes(settings)) == []
    assert list(app.violations()) == []


@pytest.mark.parametrize(
    "purpose",
    [
        "checking Li Lei before the offer",
        "LI  LEI",
        "mail to li.lei@example.com",
        "li.lei asked",
        "call 139-1234-5678",
        "(+86) 13912345678",
    ],
)
def test_a_purpose_naming_the_candidate_is_refused_and_nothing_is_recorded(
    app: Backcheck, purpose: str
) -> None:
    st = consented(app)
    head = app.recorder.max_notification_id()
    reads = (
        lambda: app.read_profile(
            ReadProfile(
                candidate_id=st.candidate_id,
                principal=s.RECRUITER,
                role=Role.RECRUITER,
                purpose=purpose,
            )
        ),
        lambda: app.read_access_log(
            ReadAccessLog(candidate_id=st.candidate_id, purpose=purpose, **OFFICER)
        ),
        lambda: app.read_profile(
            ReadProfile(
                candidate_id=st.candidate_id,
                principal=f"candidate:{st.candidate_id}",
                role=Role.CANDIDATE,
                purpose=purpose,
            )
        ),
    )
    for read in reads:
        with pytest.raises(TextNamesTheSubjectError, match="field 'purpose'") as refused:
            read()
        assert refused.value.field == "purpose"
        assert NAME not in str(refused.value)

    assert app.recorder.max_notification_id() == head
    others = ("Lily's own data", "Lei Feng's reference check", s.PURPOSE)  # not the candidate
    for purpose_ok in others:
        app.read_access_log(
            ReadAccessLog(candidate_id=st.candidate_id, purpose=purpose_ok, **OFFICER)
        )


def test_an_erasure_reason_in_free_text_is_refused_naming_the_field(app: Backcheck) -> None:
    st = consented(app)
    head = app.recorder.max_notification_id()

    with pytest.raises(InvalidInputError, match="field 'reason': an erasure's reason is one of"):
        app.erase_subject(
            EraseSubject(candidate_id=st.candidate_id, reason="Li Lei asked", actor="dpo")
        )

    assert app.recorder.max_notification_id() == head
    assert not app.load(Candidate, st.candidate_id).erased


def test_no_justification_is_recorded_for_an_erased_candidate(app: Backcheck) -> None:
    st = consented(app)
    app.erase_subject(
        EraseSubject(candidate_id=st.candidate_id, reason="retention-ended", actor="dpo")
    )
    head = app.recorder.max_notification_id()

    with pytest.raises(JustificationNotKeptError, match="field 'break_glass'"):
        app.read_profile(
            ReadProfile(
                candidate_id=st.candidate_id,
                purpose=s.PURPOSE,
                break_glass="court order 2026-117",
                **OFFICER,
            )
        )

    assert app.recorder.max_notification_id() == head


def test_a_purpose_naming_the_candidate_is_422_over_http(api: Served) -> None:
    st = consented(api.app)
    head = api.head()

    refused = api.get(
        COMPLIANCE, f"/v1/candidates/{st.candidate_id}/access-log", purpose="about Li Lei"
    )

    body = problem(refused, 422)
    assert [e["field"] for e in body["errors"]] == ["purpose"]
    assert api.head() == head


def test_records_with_free_text_in_clear_replay_as_personal_values_or_grounds(
    sqlite_app: Backcheck,
) -> None:
    # given: a break-glass read (v2), an erasure request (v1) and an erasure (v1) as code
    # before this stored them, their texts in clear
    app = sqlite_app
    candidate_id = s.register(app)
    with recorded_at(app.clock()):
        read = Access.record(
            candidate_id,
            "compliance:wu.min",
            "compliance",
            s.PURPOSE,
            "profile",
            ("user.name",),
            (),
            "allowed",
            ("compliance-reads-values-only-with-recorded-break-glass",),
            "hash",
            (),
            "court order for Li Lei",
            authentication="operator",
        )
        candidate = app.load(Candidate, candidate_id)
        candidate.request_erasure("Li Lei wants out", "candidate")
        candidate.erase(ErasureGround.CANDIDATE_REQUEST, "dpo", [], ErasureReceipt("{}", "k", "s"))
    records = []
    for event, version in (
        (read.collect_events()[0], 2),
        *((e, 1) for e in candidate.collect_events()),
    ):
        stored, state = unsealed(app, event)
        for field in ("break_glass", "reason"):
            if isinstance(state.get(field), dict):
                state[field] = in_clear(state[field])
        if "ground" in state:
            state["reason"] = state.pop("ground") + ": Li Lei wants out"
        records.append(stored_as(stored, state, version))
    app.recorder.insert_events(records)

    # when
    replayed = {
        type(e).__qualname__: e
        for _, e in app.replay(subject=candidate_id)
        if type(e).__qualname__ != "Candidate.Registered"
    }

    # then
    assert replayed["Access.Recorded"].break_glass == justification("court order for Li Lei")
    assert replayed["Candidate.ErasureRequested"].reason == PersonalField(
        "reason", CASE_NOTE, "Li Lei wants out"
    )
    assert replayed["Candidate.Erased"].ground == ErasureGround.UNRECORDED
    assert "Li Lei" not in repr(replayed["Candidate.Erased"])
    assert isinstance(replayed["Candidate.Erased"].originator_id, UUID)
