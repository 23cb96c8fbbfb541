"""Stored events never change; when an event's schema evolves, old records are upcast on read.

v2 of several events records who acted (`recorded_by`, `started_by`, ...). Records written by
v1 code lack that field; they must still replay, saying plainly that the actor was not recorded.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import uuid4

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from domain.access import UNKNOWN_CALLER, Access, DataDisclosure
from domain.caller import Authenticated
from domain.check import CheckType, Method, Outcome, PlannedCheck, SourceRole
from domain.classification import PersonalField
from domain.consent import Consent, ConsentScope, SignatureMethod
from domain.errors import RefereeNotPermittedError
from domain.investigation import CORRESPONDENCE, STATEMENT, Investigation
from domain.principal import Principal, portal_name, principal_id
from domain.report import NOTE_CATEGORY as NOTE
from domain.report import Amendment, Report
from domain.subject import UNRECORDED_ACTOR, recorded_at
from infra.audit.verification import open_source, verify
from infra.config import Settings
from infra.store.transcoder import typed_mapper
from services.application import Backcheck
from services.dto import IssuePortalLink
from services.subject_export import ExportSubjectData
from tests import story as s

DataDisclosed = DataDisclosure.DataDisclosed


def unsealed(app: Backcheck, event: object) -> tuple[StoredEvent, dict[str, Any]]:
    """The record of this event as stored now, and its state as it would be with no value
    sealed (personal values as {name, category, value}): what older code stored in clear."""
    mapper = typed_mapper(app.mapper)
    sealer, mapper.sealer = mapper.sealer, None
    try:
        stored = mapper.to_stored_event(event)
    finally:
        mapper.sealer = sealer
    return stored, orjson.loads(stored.state)


def in_clear(value: Any) -> Any:
    """A personal value as stored before it was one: its text alone (None stays None)."""
    return value if value is None else value["value"]


def clear_terms(terms: dict[str, Any]) -> None:
    """Consent terms as stored before their organisations were personal values."""
    for field in ("excluded_organisations", "third_parties"):
        terms[field] = [in_clear(v) for v in terms[field]]


def stored_as(stored: StoredEvent, state: dict[str, Any], version: int) -> StoredEvent:
    """A record of `state` as code of class version `version` stored it."""
    state = {k: v for k, v in state.items() if k != "class_version"}
    if version > 1:
        state["class_version"] = version
    return StoredEvent(
        stored.originator_id, stored.originator_version, stored.topic, orjson.dumps(state)
    )


def as_v1(app: Backcheck, event: object, actor_field: str) -> StoredEvent:
    """The record v1 code would have stored for this event: no actor, no class_version, and
    the organisations of any consent terms in clear."""
    stored, state = unsealed(app, event)
    assert state["class_version"] == getattr(type(event), "class_version", 1)
    del state[actor_field]
    for terms in (state.get("terms"), state.get("scope", {}).get("terms")):
        if terms is not None:
            clear_terms(terms)
    return stored_as(stored, state, 1)


def test_v1_records_without_an_actor_replay_as_v2(sqlite_app: Backcheck) -> None:
    app = sqlite_app
    candidate_id = s.register(app)
    # given a consent granted and an investigation started by v1 code
    with recorded_at(app.clock()):
        consent = Consent.request(candidate_id, s.terms(), s.RECRUITER)
        consent.grant(
            consent.requested,
            s.DOCUMENT_SHA256,
            SignatureMethod.E_SIGNATURE,
            app.clock(),
            app.clock() + timedelta(days=90),
            "esign-service",
            now=app.clock(),
            authenticated=s.CALLER,
        )
        inv = Investigation.plan(
            candidate_id,
            consent.id,
            s.PURPOSE,
            (PlannedCheck(uuid4(), CheckType.EMPLOYMENT, (Method.PHONE,)),),
            (s.INVESTIGATOR,),
            app.clock() + timedelta(days=9),
            s.RECRUITER,
        )
        inv.notify_candidate(s.notice(), s.RECRUITER)
        inv.start(consent.scope_at(app.clock()), s.RECRUITER)
    events = [*consent.collect_events(), *inv.collect_events()]
    records = []
    for e in events:
        name = type(e).__qualname__
        field = {
            "Consent.Granted": "recorded_by",
            "Investigation.CandidateNotified": "notified_by",
            "Investigation.Started": "started_by",
        }.get(name)
        records.append(as_v1(app, e, field) if field else app.mapper.to_stored_event(e))
    app.recorder.insert_events(records)

    # when they are read back
    consent_now = app.load(Consent, consent.id)
    inv_now = app.load(Investigation, inv.id)
    replayed = {type(e).__qualname__: e for _, e in app.replay()}

    # then the old records replay, and the missing actor is named as unrecorded
    assert consent_now.status_at(app.clock()).value == "active"
    assert inv_now.status.value == "in progress"
    assert replayed["Consent.Granted"].recorded_by == UNRECORDED_ACTOR
    assert replayed["Investigation.Started"].started_by == UNRECORDED_ACTOR
    assert {e.who for e in app.timeline(candidate_id)} >= {UNRECORDED_ACTOR}
    assert list(app.violations()) == []


def test_new_records_are_stored_as_v2(sqlite_app: Backcheck, tmp_path: object) -> None:
    story = s.investigation_under_way(sqlite_app)

    stored = {
        n.topic.rpartition(":")[2]: json.loads(n.state)
        for n in sqlite_app.recorder.select_notifications(start=1, limit=100)
    }

    assert stored["Consent.Granted"]["class_version"] == 4
    assert stored["Investigation.Started"]["started_by"] == s.RECRUITER
    assert "class_version" not in stored["Consent.ReliedUpon"]  # unchanged events stay v1
    assert story.investigation_id is not None


def test_upcasting_leaves_the_stored_bytes_and_the_chain_alone(sqlite_app: Backcheck) -> None:
    s.investigation_under_way(sqlite_app)
    path = sqlite_app.env.get("SQLITE_DBNAME")

    with open_source(Settings(database_url=f"sqlite:///{path}")) as source:
        assert verify(source).intact


def test_v1_free_text_replays_as_a_classified_personal_value(sqlite_app: Backcheck) -> None:
    # given feedback stored by v1 code as a plain string
    app = sqlite_app
    story = s.investigation_under_way(app)
    inv = app.load(Investigation, story.investigation)
    with recorded_at(app.clock()):
        inv.give_feedback(uuid4(), "When will you call my referees?")
    (given,) = inv.collect_events()
    stored = app.mapper.to_stored_event(given)
    state = orjson.loads(stored.state)
    assert state.pop("class_version") == 2
    state["text"] = "When will you call my referees?"  # v1: no envelope, no category
    app.recorder.insert_events(
        [
            StoredEvent(
                stored.originator_id, stored.originator_version, stored.topic, orjson.dumps(state)
            )
        ]
    )

    # when it is read back, then it is a personal value of the candidate-statement category
    replayed = next(e for _, e in app.replay() if type(e).__qualname__.endswith("FeedbackGiven"))
    assert replayed.text.category == "user.statement"
    assert replayed.text.value == "When will you call my referees?"
    assert list(app.load(Investigation, story.investigation).feedback.values()) == [
        ("When will you call my referees?", None)
    ]


def test_v1_access_and_disclosure_records_replay_as_the_operators(sqlite_app: Backcheck) -> None:
    """Before principals were authenticated, every read and hand-over was made on the
    operator's command line: records stored then say so when read back, in the store and in
    the access log."""
    app = sqlite_app
    st = s.consented_candidate(app)
    candidate_id = st.candidate_id
    with recorded_at(app.clock()):  # read while the consent is in force
        read = Access.record(
            candidate_id,
            s.RECRUITER,
            "recruiter",
            s.PURPOSE,
            "profile",
            ("user.name",),
            (),
            "allowed",
            ("recruiter-reads-general-of-own-candidates",),
            "0" * 64,
            (st.consent_id,),
            authentication="token",
        )
        handed = DataDisclosure.record(
            candidate_id,
            s.RECRUITER,
            *("regulator", "inspection", "email"),  # to whom, why, how
            ("user.name",),
            authentication="token",
            role="recruiter",
        )
    # given both stored by v1 code: no authentication, no class_version
    app.recorder.insert_events(
        [as_v1(app, e, "authentication") for a in (read, handed) for e in a.collect_events()]
    )

    replayed = [e for _, e in app.replay() if isinstance(e, Access.Recorded | DataDisclosed)]
    assert [e.authentication for e in replayed] == ["operator", "operator"]
    log = app.recorded_accesses(candidate_id)
    assert [(e.outcome, e.authentication) for e in log] == [
        ("allowed", "operator"),
        ("disclosed", "operator"),
    ]
    assert list(app.violations()) == []


def test_records_with_organisations_in_clear_replay_as_personal_values(
    sqlite_app: Backcheck,
) -> None:
    """Before everything identifying was sealed (issue 21), consent terms, a finding's source
    and a disclosure's organisation were stored in clear (Consent.Requested v1, Granted v2,
    Investigation.Started v2, FindingRecorded v1, Report.Disclosed v1): they replay as the
    personal values the current versions hold, and the rules comparing them still work."""
    app = sqlite_app
    candidate_id = s.register(app)
    with recorded_at(app.clock()):
        asked = s.terms(
            check_types=(CheckType.EMPLOYMENT, CheckType.REFERENCE),
            excluded_organisations=("Nimbus Tech",),
            third_parties=("Aegis Screening",),
        )
        consent = Consent.request(candidate_id, asked, s.RECRUITER)
        consent.grant(
            asked,
            s.DOCUMENT_SHA256,
            SignatureMethod.E_SIGNATURE,
            app.clock(),
            app.clock() + timedelta(days=90),
            "esign-service",
            now=app.clock(),
            authenticated=s.CALLER,
        )
        check_id = uuid4()
        inv = Investigation.plan(
            candidate_id,
            consent.id,
            s.PURPOSE,
            (PlannedCheck(check_id, CheckType.EMPLOYMENT, (Method.PHONE,)),),
            (s.INVESTIGATOR,),
            app.clock() + timedelta(days=9),
            s.RECRUITER,
        )
        inv.notify_candidate(s.notice(), s.RECRUITER)
        inv.start(consent.scope_at(app.clock()), s.RECRUITER)
        inv.record_finding(s.finding(check_id, SourceRole.HR, reference="ref-1"), inv.scope)
    events = [*consent.collect_events(), *inv.collect_events()]
    old_versions = {
        "Consent.Requested": 1,
        "Consent.Granted": 2,
        "Investigation.Started": 2,
        "Investigation.FindingRecorded": 1,
    }
    records = []
    for e in events:
        stored, state = unsealed(app, e)
        name = type(e).__qualname__
        if name not in old_versions:
            records.append(app.mapper.to_stored_event(e))
            continue
        for terms in (state.get("terms"), state.get("scope", {}).get("terms")):
            if terms is not None:
                clear_terms(terms)
        if "finding" in state:
            source = state["finding"]["source"]
            source["reference"] = in_clear(source["reference"])
            source["organisation"] = in_clear(source["organisation"])
        records.append(stored_as(stored, state, old_versions[name]))
    app.recorder.insert_events(records)
    assert b"Nimbus Tech" in records[0].state  # really stored in clear, as before

    replayed = {type(e).__qualname__: e for _, e in app.replay()}
    organisation = PersonalField("excluded_organisation", "user.organisation", "Nimbus Tech")
    third = PersonalField("third_party", "user.organisation", "Aegis Screening")
    for name in ("Consent.Requested", "Consent.Granted"):
        assert replayed[name].terms.excluded_organisations == (organisation,)
        assert replayed[name].terms.third_parties == (third,)
    assert replayed["Investigation.Started"].scope.terms.excluded_organisations == (organisation,)
    source = replayed["Investigation.FindingRecorded"].finding.source
    assert source.reference == PersonalField("source_reference", "user.reference.identity", "ref-1")
    assert source.organisation == PersonalField(
        "source_organisation", "user.organisation", s.EMPLOYER
    )
    # the rules compare the upcast values: the exclusion still refuses, the third party passes
    inv_now = app.load(Investigation, inv.id)
    in_force = app.load(Consent, consent.id).scope_at(app.clock())
    with pytest.raises(RefereeNotPermittedError):
        inv_now.record_finding(
            s.finding(check_id, SourceRole.PEER, organisation="nimbus tech"), in_force
        )
    in_force.require_recipient(
        PersonalField("recipient_organisation", "user.organisation", "AEGIS SCREENING")
    )
    assert list(app.violations()) == []


def test_a_disclosure_with_its_organisation_in_clear_replays_as_a_personal_value(
    sqlite_app: Backcheck,
) -> None:
    app = sqlite_app
    story = s.shared_report(app)
    assert story.report_id is not None
    report = app.load(Report, story.report_id)
    in_force = app.load(Consent, story.consent_id).scope_at(app.clock())
    widened = ConsentScope(
        in_force.consent_id,
        in_force.candidate_id,
        in_force.status,
        s.terms(third_parties=("Aegis Screening",)),
    )
    with recorded_at(app.clock()):
        report.disclose(
            widened,
            "agent",
            "screening agency",
            s.PURPOSE,
            s.RECRUITER,
            "Aegis Screening",
            **s.DISCLOSER,
        )
    (disclosed,) = report.collect_events()
    stored, state = unsealed(app, disclosed)
    assert state["class_version"] == 4
    del state["authenticated"], state["role"]  # v1, v2: not how nor (till v4) in which role
    state["disclosure"]["organisation"] = in_clear(state["disclosure"]["organisation"])
    app.recorder.insert_events([stored_as(stored, state, 1)])

    replayed = [e for _, e in app.replay() if type(e).__qualname__ == "Report.Disclosed"]
    assert [e.authenticated for e in replayed] == [UNKNOWN_CALLER]  # said so, explicitly
    assert [e.disclosure.organisation for e in replayed] == [
        PersonalField("recipient_organisation", "user.organisation", "Aegis Screening")
    ]


def test_reasons_and_comments_stored_in_clear_replay_as_personal_values(
    sqlite_app: Backcheck,
) -> None:
    """A consent withdrawal's reason (Consent.Withdrawn v2), a review's comments (Report.Approved
    and ChangesRequested v1) and an amendment's reason (Report.Amended v2) were stored in
    clear: they replay as the personal values the current versions hold."""
    app = sqlite_app
    story = s.compiled_report(app)
    report = app.load(Report, story.report)
    consent = app.load(Consent, story.consent_id)
    with recorded_at(app.clock()):
        report.review(s.REVIEWER, approve=False, comments="which dates?")
        report.amend(
            (Amendment(story.check_id, Outcome.CONFIRMED, "dates as HR said"),),
            "the candidate's dispute",
            (),
            s.INVESTIGATOR,
        )
        report.review(s.REVIEWER, approve=True, comments="fine")
        consent.withdraw("took another offer", app.clock(), s.CANDIDATE, s.CALLER)
    older = {
        "Report.ChangesRequested": ("comments", 1),
        "Report.Amended": ("reason", 2),
        "Report.Approved": ("comments", 1),
        "Consent.Withdrawn": ("reason", 2),
    }
    records = []
    for e in [*report.collect_events(), *consent.collect_events()]:
        stored, state = unsealed(app, e)
        field, version = older[type(e).__qualname__]
        state[field] = in_clear(state[field])
        records.append(stored_as(stored, state, version))
    app.recorder.insert_events(records)

    replayed = [
        (type(e).__qualname__, getattr(e, older[type(e).__qualname__][0]))
        for _, e in app.replay()
        if type(e).__qualname__ in older
    ]
    assert replayed == [
        ("Report.ChangesRequested", PersonalField("comments", NOTE, "which dates?")),
        ("Report.Amended", PersonalField("reason", CORRESPONDENCE, "the candidate's dispute")),
        ("Report.Approved", PersonalField("comments", NOTE, "fine")),
        ("Consent.Withdrawn", PersonalField("reason", STATEMENT, "took another offer")),
    ]
    assert app.load(Report, story.report).status.value == "approved"
    assert list(app.violations()) == []


def test_a_v1_sign_out_replays_as_a_session_that_ended_as_it_was_recorded(
    sqlite_app: Backcheck,
) -> None:
    """`Principal.SessionClosed` v1 was a sign-out, and said when it ended by its own time;
    v2 records `ended_at` (a session found ended is recorded after it ended, decision 0056).
    A v1 record replays as v2 with `ended_at` its own time, and is listed as a sign-out."""
    app = sqlite_app
    candidate_id = s.register(app)
    app.issue_portal_link(IssuePortalLink(candidate_id=candidate_id, actor=s.RECRUITER))
    portal = app.load(Principal, principal_id(portal_name(candidate_id)))
    opened = app.clock()
    signed_out = opened + timedelta(minutes=10)
    with recorded_at(signed_out, by=Authenticated(portal.name, "portal-link")):
        portal.close_session(opened, portal.name, signed_out)
    (event,) = portal.collect_events()
    stored, state = unsealed(app, event)
    assert state["class_version"] == 2
    del state["ended_at"]  # as v1 code stored it: no ended_at, no class_version
    app.recorder.insert_events([stored_as(stored, state, 1)])

    replayed = list(map(app.mapper.to_domain_event, app.recorder.select_events(portal.id)))
    (closed,) = [e for e in replayed if isinstance(e, Principal.SessionClosed)]
    assert (closed.opened_at, closed.ended_at, closed.timestamp) == (opened, signed_out, signed_out)
    assert (closed.reason, closed.closed_by) == ("signed-out", portal.name)
    assert closed.authenticated == Authenticated(portal.name, "portal-link")
    package = app.export_subject_data(ExportSubjectData(candidate_id=candidate_id, actor="op"))
    assert [(o.at, o.session_opened_at) for o in package.portal_links.signed_out] == [
        (signed_out, opened)
    ]
    assert package.portal_links.sessions_ended == []
