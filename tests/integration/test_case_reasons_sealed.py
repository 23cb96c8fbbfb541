"""Why an investigation was cancelled and why a report is on legal hold may quote or name the
candidate: both reasons are sealed with the candidate's data and go with their erasure, on both
backends (decision record 0041, extended). Before the erasure an authorised read (the access
package) holds them; after it no byte of the store or the views does. Records stored before
held them in clear: they replay as personal values."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.candidate import Candidate
from domain.classification import CASE_NOTE, ERASED_VALUE, PersonalField
from domain.investigation import Investigation
from domain.report import Report
from domain.subject import recorded_at
from infra.bootstrap import build_app
from infra.config import Settings
from services.application import Backcheck
from services.dto import (
    CancelInvestigation,
    EraseSubject,
    LegalHold,
    ReleaseLegalHold,
)
from services.subject_export import ExportSubjectData
from tests import marked_story as ms
from tests import story as s
from tests.conftest import FakeClock
from tests.integration.test_upcasting import in_clear, stored_as, unsealed

CANCEL = "ZQX-CANCEL-51 Li Lei took the offer from Acme, call +86 139 1234 5678"
HOLD = "ZQX-HOLD-52 tribunal claim Li Lei v. Acme"
MARKS = ("ZQX-CANCEL-51", "ZQX-HOLD-52")
CALLER = "[authenticated: operator, by operator]"  # no identity: the operator's command line


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def marks_in(data: bytes | str) -> list[str]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return [m for m in MARKS if m in text]


def reasons_recorded(app: Backcheck) -> s.Story:
    """A report put on legal hold and released, and a second investigation cancelled, both
    with reasons naming the candidate."""
    story = s.compiled_report(app)
    app.place_legal_hold(LegalHold(report_id=story.report, reason=HOLD, actor="legal:he.yun"))
    app.release_legal_hold(ReleaseLegalHold(report_id=story.report, actor="legal:he.yun"))
    second = s.plan(app, s.Story(story.candidate_id, story.consent_id))
    app.cancel_investigation(
        CancelInvestigation(investigation_id=second.investigation, reason=CANCEL, actor=s.RECRUITER)
    )
    story.investigation_id = second.investigation
    return story


def test_cancellation_and_legal_hold_reasons_are_sealed_and_go_with_the_erasure(
    app: Backcheck, settings: Settings
) -> None:
    # given: the two reasons, recorded
    story = reasons_recorded(app)
    replayed = {type(e).__qualname__: e for _, e in app.replay(subject=story.candidate_id)}
    assert replayed["Investigation.Cancelled"].reason == PersonalField("reason", CASE_NOTE, CANCEL)
    assert replayed["Report.LegalHoldPlaced"].reason == PersonalField("reason", CASE_NOTE, HOLD)
    assert marks_in(ms.raw_bytes(settings)) == []  # sealed at rest, in the store and the views
    package = app.export_subject_data(
        ExportSubjectData(candidate_id=story.candidate_id, actor="compliance:wu.min")
    )
    held = {(r.event, r.data["reason"]["value"]) for r in package.records if "reason" in r.data}
    assert {("Cancelled", CANCEL), ("LegalHoldPlaced", HOLD)} <= held  # an authorised read

    # when
    app.erase_subject(
        EraseSubject(candidate_id=story.candidate_id, reason="candidate-request", actor="dpo")
    )

    # then
    replayed = {type(e).__qualname__: e for _, e in app.replay(subject=story.candidate_id)}
    assert replayed["Investigation.Cancelled"].reason.value == ERASED_VALUE
    assert replayed["Report.LegalHoldPlaced"].reason.value == ERASED_VALUE
    shown = [*app.timeline(story.candidate_id), *app.iter_events(story.candidate_id)]
    assert marks_in(repr(shown)) == []
    assert marks_in(ms.raw_bytes(settings)) == []


def test_the_timeline_names_the_reasons_category_not_their_words(app: Backcheck) -> None:
    story = reasons_recorded(app)

    entries = [e.what for e in app.timeline(story.candidate_id)]

    said = "cancelled the investigation (reason: user.case_note)"
    assert [e for e in entries if e.startswith(said)] == [f"{said} {CALLER}"]
    held = "placed a legal hold (reason: user.case_note)"
    assert [e for e in entries if e.startswith(held)] == [f"{held} {CALLER}"]
    assert marks_in(repr(entries)) == []


def test_a_cancellation_after_the_erasure_stands_without_its_reason(app: Backcheck) -> None:
    # given: an investigation planned, then the candidate erased
    story = s.plan(app, s.consented_candidate(app))
    app.erase_subject(
        EraseSubject(candidate_id=story.candidate_id, reason="retention-ended", actor="dpo")
    )

    # when
    app.cancel_investigation(
        CancelInvestigation(investigation_id=story.investigation, reason=CANCEL, actor=s.RECRUITER)
    )

    # then
    replayed = [e for _, e in app.replay(subject=story.candidate_id)]
    (cancelled,) = [e for e in replayed if isinstance(e, Investigation.Cancelled)]
    assert cancelled.reason is None
    assert app.get_investigation(story.investigation).status == "cancelled"


def test_reasons_stored_in_clear_replay_as_personal_values(sqlite_app: Backcheck) -> None:
    # given: a cancellation and a legal hold as v1 code stored them, their reasons in clear
    app = sqlite_app
    story = s.compiled_report(app)
    second = s.plan(app, s.Story(story.candidate_id, story.consent_id))
    with recorded_at(app.clock()):
        inv = app.load(Investigation, second.investigation)
        inv.cancel("Li Lei went elsewhere", s.RECRUITER)
        report = app.load(Report, story.report)
        report.place_legal_hold("Li Lei v. Acme", "legal:he.yun")
    records = []
    for event in (*inv.collect_events(), *report.collect_events()):
        stored, state = unsealed(app, event)
        state["reason"] = in_clear(state["reason"])
        records.append(stored_as(stored, state, 1))
    app.recorder.insert_events(records)

    # when
    replayed = {type(e).__qualname__: e for _, e in app.replay(subject=story.candidate_id)}

    # then
    assert replayed["Investigation.Cancelled"].reason == PersonalField(
        "reason", CASE_NOTE, "Li Lei went elsewhere"
    )
    assert replayed["Report.LegalHoldPlaced"].reason == PersonalField(
        "reason", CASE_NOTE, "Li Lei v. Acme"
    )
    assert app.load(Report, story.report).legal_hold is not None
    assert app.load(Candidate, story.candidate_id).case_notes_kept
