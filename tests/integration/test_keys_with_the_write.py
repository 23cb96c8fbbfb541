"""A data key made for a write is stored in the events' own transaction (on SQLite, decision
0038; on PostgreSQL, 0051): one commit a new subject, not two; a write that fails leaves no key
behind; and a key another writer made first is theirs, the write tried again with it."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.candidate import Candidate
from domain.classification import ORGANISATION, PersonalField
from domain.consent import Consent
from domain.errors import PersonalDataShreddedError
from infra.bootstrap import build_app
from infra.config import Settings
from infra.privacy.keystore import SQLKeyStore, WrongMasterKeyError
from infra.privacy.providers import FileKeyProvider
from infra.store import recorder as recorder_module
from infra.views.integrity import ROWS_SCOPE, ROWS_SUBJECT
from services.application import Backcheck
from services.dto import (
    ClaimIn,
    ConsentTermsIn,
    EraseSubject,
    PersonalFieldIn,
    RegisterCandidate,
    RequestConsent,
    SubmitClaims,
)
from services.errors import ConcurrentChangeError, DataKeyRaceError
from tests.conftest import FakeClock

ACTOR = "hr:li.na"


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    """On each backend (decision 0038 on SQLite, 0051 on PostgreSQL)."""
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def keys_of(app: Backcheck) -> SQLKeyStore:
    assert isinstance(app.keys, SQLKeyStore)
    return app.keys


def events_of(app: Backcheck, subject: UUID) -> int:
    return len(app.recorder.select_events(subject))


def test_a_new_subjects_keys_commit_with_its_first_event_and_open_in_another_process(
    app: Backcheck, settings: Settings
) -> None:
    subject = uuid4()
    app.register_candidate(
        RegisterCandidate(candidate_id=subject, name="Zhou Min", email="zm@x.cn", actor=ACTOR)
    )

    assert keys_of(app).tiers(subject) == {"user.name", "user.contact.email"}
    other = build_app(settings)  # nothing cached: the keys as stored
    try:
        identity = other.load(Candidate, subject).identity
        assert {f.name: f.value for f in identity} == {"name": "Zhou Min", "email": "zm@x.cn"}
    finally:
        other.close()


def test_a_write_that_fails_after_its_keys_leaves_no_key_and_no_event(
    app: Backcheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = keys_of(app)
    held = keys.count()
    subject = uuid4()

    def broken(*args: Any) -> None:
        raise RuntimeError("the disk failed after the keys were inserted")

    monkeypatch.setattr(type(app.recorder), "_insert_subjects", broken)
    with pytest.raises(RuntimeError, match="disk failed"):
        app.register_candidate(RegisterCandidate(candidate_id=subject, name="Wu", actor=ACTOR))
    monkeypatch.undo()

    assert keys.count() == held  # the key went with the events' transaction
    assert keys.tiers(subject) == set()
    assert events_of(app, subject) == 0
    # and nothing of the failed write is remembered: the next one makes and stores its own
    app.register_candidate(RegisterCandidate(candidate_id=subject, name="Wu", actor=ACTOR))
    assert keys.tiers(subject) == {"user.name"}
    assert {f.value for f in app.load(Candidate, subject).identity} == {"Wu"}


def test_a_key_another_writer_stored_first_is_the_key_and_the_write_is_tried_again(
    app: Backcheck, settings: Settings
) -> None:
    """Another process (a second application on the same file) stores the subject's name key
    between our lookup, which found none, and our insert: ours is refused, nothing of it is
    written, and the write made again seals with their key."""
    keys = keys_of(app)
    other = build_app(settings)
    subject = uuid4()
    made = keys._make_with_the_write
    calls: list[list[str]] = []

    def another_writer_first(making: Any, who: UUID, scopes: list[str]) -> dict[str, bytes]:
        calls.append(list(scopes))
        if len(calls) == 1:  # the other process makes it now, in a transaction of its own
            keys_of(other).data_keys(who, scopes, create=True)
        return made(making, who, scopes)

    try:
        keys._make_with_the_write = another_writer_first  # type: ignore[method-assign,assignment]
        app.register_candidate(RegisterCandidate(candidate_id=subject, name="Qian Yu", actor=ACTOR))
        theirs = keys_of(other).data_key(subject, "user.name", create=False)
    finally:
        other.close()

    assert calls == [["user.name"]]  # tried again: the second time the key was found stored
    assert events_of(app, subject) == 1  # one write stored, the refused one nothing
    assert keys.data_key(subject, "user.name", create=False) == theirs
    reopened = build_app(settings)
    try:
        assert [f.value for f in reopened.load(Candidate, subject).identity] == ["Qian Yu"]
    finally:
        reopened.close()


def test_a_new_subjects_first_event_makes_its_keys_without_looking_them_up(
    app: Backcheck,
) -> None:
    """A candidate registered is the first event of their own stream: no key of theirs can be
    stored before it (one that is refuses the write, below), so none is asked for."""
    keys = keys_of(app)
    app.register_candidate(RegisterCandidate(name="Warm", actor=ACTOR))
    read = keys._read
    lookups: list[int] = []

    def counted() -> Any:
        lookups.append(1)
        return read()

    keys._read = counted
    subject = app.register_candidate(
        RegisterCandidate(name="He Ping", email="hp@x.cn", actor=ACTOR)
    ).candidate_id

    assert lookups == []
    assert keys.tiers(subject) == {"user.name", "user.contact.email"}
    assert {f.value for f in app.load(Candidate, subject).identity} == {
        "He Ping",
        "hp@x.cn",
    }


def test_a_key_stored_before_a_subjects_first_event_is_found_when_the_write_is_made_again(
    app: Backcheck, settings: Settings
) -> None:
    """The first event's keys are taken to be absent unasked; one stored after all (made on
    its own by another process, before the candidate was registered) refuses that write, and
    the write made again looks it up and seals with it: the subject keeps one key, theirs."""
    keys = keys_of(app)
    subject = uuid4()
    first = build_app(settings)
    try:
        stored = keys_of(first).data_key(subject, "user.name", create=True)
    finally:
        first.close()
    refused: list[DataKeyRaceError] = []
    insert = keys.insert_made

    def counted(cursor: Any, made: Any) -> None:
        try:
            insert(cursor, made)
        except DataKeyRaceError as race:
            refused.append(race)
            raise

    keys.insert_made = counted  # type: ignore[method-assign]
    app.register_candidate(RegisterCandidate(candidate_id=subject, name="Lu Yan", actor=ACTOR))

    assert len(refused) == 1  # the guess, refused once; the write made again stored
    assert events_of(app, subject) == 1
    assert keys.tiers(subject) == {"user.name"}
    other = build_app(settings)  # nothing cached: the key as stored
    try:
        assert keys_of(other).data_key(subject, "user.name", create=False) == stored
        assert [f.value for f in other.load(Candidate, subject).identity] == ["Lu Yan"]
    finally:
        other.close()


def employer_claim(subject: UUID, employer: str) -> SubmitClaims:
    field = PersonalFieldIn(name="employer", category="user.employment.employer", value=employer)
    return SubmitClaims(
        candidate_id=subject, claims=[ClaimIn(kind="employment", fields=[field])], actor=ACTOR
    )


def test_a_candidate_registered_here_a_moment_ago_has_new_keys_made_without_a_lookup(
    app: Backcheck,
) -> None:
    """The keys this process made at a registration were all the subject had: their first
    claims, a moment later, find no other key to look up."""
    keys = keys_of(app)
    subject = app.register_candidate(RegisterCandidate(name="Xu Jia", actor=ACTOR)).candidate_id
    read = keys._read
    lookups: list[int] = []

    def counted() -> Any:
        lookups.append(1)
        return read()

    keys._read = counted
    app.submit_claims(employer_claim(subject, "Acme Logistics"))

    assert lookups == []
    assert keys.tiers(subject) == {"user.name", "user.employment.employer"}


def test_a_key_another_process_stored_since_the_registration_is_found_when_made_again(
    app: Backcheck, settings: Settings
) -> None:
    """Another process stored the subject's employer key after this one registered them: the
    claims' write, which took it to be absent, is refused and made again with a lookup, and
    seals with their key; the subject keeps one key of the category."""
    keys = keys_of(app)
    subject = app.register_candidate(RegisterCandidate(name="Ma Lin", actor=ACTOR)).candidate_id
    other = build_app(settings)
    try:
        theirs = keys_of(other).data_key(subject, "user.employment.employer", create=True)
    finally:
        other.close()
    refused: list[DataKeyRaceError] = []
    insert = keys.insert_made

    def counted(cursor: Any, made: Any) -> None:
        try:
            insert(cursor, made)
        except DataKeyRaceError as race:
            refused.append(race)
            raise

    keys.insert_made = counted  # type: ignore[method-assign]
    app.submit_claims(employer_claim(subject, "Nimbus Tech"))

    assert len(refused) == 1
    assert keys.data_key(subject, "user.employment.employer", create=False) == theirs
    reopened = build_app(settings)
    try:
        (claim,) = reopened.load(Candidate, subject).claims.values()
        assert [f.value for f in claim.fields] == ["Nimbus Tech"]
    finally:
        reopened.close()


def test_a_key_made_in_a_write_is_its_own_until_the_write_commits(app: Backcheck) -> None:
    keys = keys_of(app)
    subject = uuid4()
    seen_elsewhere: list[bytes | None] = []

    with keys.with_the_write():
        assert keys.data_keys(subject, ("user.name",), create=False) == {}
        mine = keys.data_key(subject, "user.name", create=True)
        assert mine is not None
        assert keys.data_key(subject, "user.name", create=False) == mine  # found by the write
        (new,) = keys.take_made()
        assert (new.subject, new.scope, new.key) == (subject, "user.name", mine)
        assert keys.take_made() == ()  # handed over once, to one event
        lookup = threading.Thread(
            target=lambda: seen_elsewhere.append(keys.data_key(subject, "user.name", create=False))
        )
        lookup.start()
        lookup.join()

    assert seen_elsewhere == [None]  # another thread never sees a key not stored
    assert keys.tiers(subject) == set()  # nothing stored it: no event carried it in


def test_a_key_wrapped_by_a_master_key_the_store_left_is_refused_not_stored(
    app: Backcheck,
) -> None:
    """Made while this process held the store's master key; by the insert, a rotation in this
    process has moved it to another: refused as a race (the write made again wraps its key
    with the new master). And with the store bound to no key of this process at all (rotated
    by another), refused in one line, as a wrong master key."""
    keys = keys_of(app)
    subject = uuid4()
    with keys.with_the_write():
        keys.data_key(subject, "user.name", create=True)
        (new,) = keys.take_made()
    before = keys.provider
    keys.use(FileKeyProvider(bytes(range(32))))
    with keys.transaction() as conn, pytest.raises(DataKeyRaceError, match="another writer"):
        keys.insert_made(conn, (new,))
    keys.use(before)
    with keys.transaction() as conn:
        conn.execute("DELETE FROM backcheck_key_check")
        with pytest.raises(WrongMasterKeyError, match="rotated to another master key"):
            keys.insert_made(conn, (new,))
    assert keys.tiers(subject) == set()


def test_an_erasure_recorded_while_a_key_was_being_made_refuses_the_write(
    app: Backcheck, settings: Settings
) -> None:
    """Another process erases the candidate after our write made a key for their consent's
    excluded organisations and before it was stored: checked in the events' transaction, the
    key is refused with the write, rather than stored after the erasure destroyed the rest."""
    keys = keys_of(app)
    subject = uuid4()
    app.register_candidate(RegisterCandidate(candidate_id=subject, name="Sun Li", actor=ACTOR))
    other = build_app(settings)
    made = keys._make_with_the_write

    def erased_meanwhile(making: Any, who: UUID, scopes: list[str]) -> dict[str, bytes]:
        got = made(making, who, scopes)
        other.erase_subject(EraseSubject(candidate_id=who, reason="candidate-request", actor="dpo"))
        return got

    terms = ConsentTermsIn(
        purposes=["employment screening"],
        check_types=["employment"],
        excluded_organisations=["Nimbus Tech Ltd"],
    )
    try:
        keys._make_with_the_write = erased_meanwhile  # type: ignore[method-assign,assignment]
        with pytest.raises(PersonalDataShreddedError, match="erased"):
            app.request_consent(RequestConsent(candidate_id=subject, terms=terms, actor=ACTOR))
    finally:
        other.close()

    assert keys.tiers(subject) == set()  # the erasure's destroyed, ours never stored
    stored = {s.topic.rsplit(".", 1)[-1] for s in app.recorder.select_events(subject)}
    assert stored == {"Registered", "Erased"}
    assert not any("Consent" in str(s.topic) for s in notifications_of(app, subject))


def test_a_registrations_new_keys_are_not_checked_for_erasures_a_later_events_are(
    app: Backcheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subject whose own stream begins in the write has no erasure recorded (one would be
    in that stream, with which the write collides: below); a later event's keys are checked."""
    checked: list[int] = []
    check = recorder_module.erasures_in

    def counted(stored: Any) -> tuple[bool, set[str]]:
        checked.append(1)
        return check(stored)

    monkeypatch.setattr(recorder_module, "erasures_in", counted)
    subject = app.register_candidate(
        RegisterCandidate(name="Tao Ran", email="tr@x.cn", actor=ACTOR)
    ).candidate_id
    assert checked == []
    terms = ConsentTermsIn(
        purposes=["employment screening"],
        check_types=["employment"],
        excluded_organisations=["Nimbus Tech Ltd"],
    )
    app.request_consent(RequestConsent(candidate_id=subject, terms=terms, actor=ACTOR))
    assert checked == [1]


def test_registering_again_under_an_erased_candidates_id_stores_no_key_and_no_event(
    app: Backcheck,
) -> None:
    """Past the use case's check (as a write racing the erasure would be), a registration
    under the id of a candidate since erased collides with their stream: refused whole, so no
    new key outlives the erasure."""
    subject = app.register_candidate(RegisterCandidate(name="Fang Yi", actor=ACTOR)).candidate_id
    app.erase_subject(EraseSubject(candidate_id=subject, reason="candidate-request", actor="dpo"))
    keys = keys_of(app)
    held = events_of(app, subject)
    again = Candidate.register(subject, (PersonalField("name", "user.name", "Fang Yi"),), ACTOR)

    with pytest.raises((ConcurrentChangeError, PersonalDataShreddedError)):
        app.commit(again)

    assert keys.tiers(subject) == set()
    assert events_of(app, subject) == held


def notifications_of(app: Backcheck, subject: UUID) -> list[Any]:
    return list(app.subjects.select_subject_notifications(subject))


def _ask_consents(args: tuple[str, str, int, list[str], float]) -> int:
    """One process of the race below: a consent asked of each subject, naming an organisation
    and a third party (the subject's first values of those categories); returns how many of
    its writes another process beat to a key (each made again)."""
    url, data_dir, who, subjects, start_at = args
    app = build_app(Settings(database_url=url, data_dir=Path(data_dir)))
    keys = keys_of(app)
    raced = [0]
    insert = keys.insert_made

    def counted(cursor: Any, made: Any) -> None:
        try:
            insert(cursor, made)
        except DataKeyRaceError:
            raced[0] += 1
            raise

    keys.insert_made = counted  # type: ignore[method-assign]
    time.sleep(max(0.0, start_at - time.time()))  # all three together, whenever each started
    try:
        for subject in subjects:
            terms = ConsentTermsIn(
                purposes=["employment screening"],
                check_types=["employment"],
                excluded_organisations=[f"Org-{who}-{subject}"],
                third_parties=[f"Party-{who}"],
            )
            app.request_consent(
                RequestConsent(candidate_id=UUID(subject), terms=terms, actor=ACTOR)
            )
    finally:
        app.close()
    return raced[0]


def test_processes_racing_for_subjects_first_keys_store_one_key_each_and_every_value_opens(
    settings: Settings,
) -> None:
    """Three processes ask a consent of the same candidates at the same time, each the first
    of its candidate naming organisations, so they race for the same new keys (and for the
    candidate's portal link, which the unit of work decides again): under real concurrency
    every write is stored, each subject ends with one key per category, and every value
    opens with it. (Which race a refused write lost is the machine's timing; the test above
    plays the key race alone, deterministically.)"""
    app = build_app(settings)
    subjects = [
        str(app.register_candidate(RegisterCandidate(name=f"N{i}", actor=ACTOR)).candidate_id)
        for i in range(60)
    ]
    app.close()

    with multiprocessing.get_context("spawn").Pool(3) as pool:
        start_at = time.time() + 5  # the pool's processes up by then
        url = str(settings.database_url)
        work = str(settings.data_dir)
        raced = pool.map(_ask_consents, [(url, work, w, subjects, start_at) for w in range(3)])

    reopened = build_app(settings)
    try:
        asked = {
            e.originator_id
            for _, e in reopened.replay()
            if type(e).__qualname__ == "Consent.Requested"
        }
        values = [
            f.value
            for consent_id in asked
            for consent in [reopened.load(Consent, consent_id)]
            for f in (*consent.requested.excluded_organisations, *consent.requested.third_parties)
        ]
        held = keys_of(reopened).held()
    finally:
        reopened.close()
    assert len(asked) == 3 * len(subjects)  # every write stored, raced or not
    assert len(values) == 2 * len(asked)
    assert all(v.startswith(("Org-", "Party-")) for v in values)  # each opens with its key
    # one key per subject and category, whichever process's it is: the name's, and the one
    # the organisations named by all three consents were sealed with; and one views' MAC key
    assert {(str(s), scope) for s, scope in held} == {
        (s, scope) for s in subjects for scope in ("user.name", ORGANISATION)
    } | {(str(ROWS_SUBJECT), ROWS_SCOPE)}
    print(f"writes made again after another process stored the key first: {sum(raced)}")
