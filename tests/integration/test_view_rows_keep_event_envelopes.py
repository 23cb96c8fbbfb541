"""A view row keeps the envelope a value's event was stored with, saying where it was sealed,
and a batch opens none of the values it carries through a row it changes (decision 0048):
the views' own sealing and opening were most of their cost on the write path. Every value
still opens where it is, only in rows of its own subject, and not once its keys are gone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from domain.classification import ERASED_VALUE, PersonalField
from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo.story import tell_story
from infra.privacy.envelope import Envelope
from infra.privacy.erasures import ERASURE_TOPICS
from infra.privacy.sealing import Sealer, personal_fields_of, stored_envelopes
from infra.views.codec import Codec, Opened, Unread
from infra.views.runner import ViewRunner
from services.application import Backcheck
from services.dto import (
    ClaimIn,
    EraseSubject,
    PersonalFieldIn,
    SubmitClaims,
    WithdrawConsent,
)
from tests import story as s
from tests.conftest import FakeClock
from tests.integration.test_view_row_macs import rows_of

EMPLOYER = PersonalFieldIn(name="employer", category="user.employment.employer", value="Acme")


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(settings, clock=clock)
    yield application
    application.close()


def given_a_claim(app: Backcheck, candidate: UUID) -> None:
    app.submit_claims(
        SubmitClaims(
            candidate_id=candidate,
            claims=[ClaimIn(kind="employment", fields=[EMPLOYER])],
            actor=s.RECRUITER,
        )
    )


def stored_state(app: Backcheck, candidate: UUID, version: int) -> dict[str, Any]:
    [event] = [e for e in app.recorder.select_events(candidate) if e.originator_version == version]
    state: dict[str, Any] = orjson.loads(event.state)
    return state


def profile_row(settings: Settings, candidate: UUID) -> dict[str, Any]:
    [doc] = [orjson.loads(d) for k, _, d in rows_of(settings, "profile") if k == str(candidate)]
    return doc  # type: ignore[no-any-return]


def runner_of(app: Backcheck) -> ViewRunner:
    assert isinstance(app.views, ViewRunner)
    return app.views


def test_a_registrations_profile_row_keeps_the_envelopes_its_event_was_stored_with(
    app: Backcheck, settings: Settings
) -> None:
    candidate = s.register(app)
    runner_of(app).catch_up()

    event = stored_state(app, candidate, 1)["identity"]
    row = profile_row(settings, candidate)["identity"]

    assert [e["sealed"] for e in row] == [e["sealed"] for e in event]  # not sealed again
    assert [e["at"] for e in row] == [[str(candidate), 1, f"identity.{i}"] for i in range(2)]
    found = runner_of(app).get("profile", str(candidate))
    assert found is not None
    assert [f.value for f in found["identity"]] == ["Li Lei", "li.lei@example.com"]


def test_a_batch_changing_a_row_opens_and_seals_none_of_the_values_it_carries(
    app: Backcheck, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    candidate = s.register(app)
    runner_of(app).catch_up()
    before = profile_row(settings, candidate)["identity"]
    sealer = app.mapper.sealer  # type: ignore[attr-defined]
    assert isinstance(sealer, Sealer)
    given_a_claim(app, candidate)  # the event sealed by the mapper, before the views apply it

    calls: list[str] = []
    monkeypatch.setattr(sealer, "open_field", lambda *a: calls.append("open") or "")
    monkeypatch.setattr(sealer, "seal_field", lambda *a, **k: calls.append("seal") or {})
    runner_of(app).catch_up()
    monkeypatch.undo()

    row = profile_row(settings, candidate)
    assert calls == []
    assert row["identity"] == before  # as it was
    [claim] = row["claims"]
    assert (
        claim["fields"][0]["sealed"]
        == stored_state(app, candidate, 2)["claims"][0]["fields"][0]["sealed"]
    )
    found = runner_of(app).get("profile", str(candidate))
    assert found is not None
    assert found["claims"][0]["fields"] == [
        PersonalField("employer", "user.employment.employer", "Acme")
    ]


def test_an_events_envelope_written_into_another_subjects_row_is_sealed_anew_for_it(
    app: Backcheck,
) -> None:
    """Bound to its subject, an event's envelope would not open in another's row: a value
    put there is sealed for that row, as before."""
    candidate = s.register(app)
    sealer = app.mapper.sealer  # type: ignore[attr-defined]
    assert isinstance(sealer, Sealer)
    codec = Codec(sealer)
    [(_, event)] = [
        (n.id, app.mapper.to_domain_event(n))
        for n in app.recorder.select_notifications(start=1, limit=100)
        if n.originator_id == candidate
    ]
    [stored] = [e.state for e in app.recorder.select_events(candidate)]
    noted: Opened = {}
    codec.note_event(event, stored, noted)
    name = event.identity[0]

    own = orjson.loads(codec.encode("profile", "k", str(candidate), {"n": name}, noted))["n"]
    other = str(uuid4())
    theirs = orjson.loads(codec.encode("profile", "k", other, {"n": name}, noted))["n"]

    assert "at" in own
    assert "at" not in theirs
    assert theirs["sealed"] != own["sealed"]
    assert codec.decode("profile", "k", other, orjson.dumps({"n": theirs})) == {"n": name}


def test_an_events_envelope_in_a_row_reads_as_erased_once_the_subject_is_erased(
    app: Backcheck, settings: Settings
) -> None:
    candidate = s.register(app)
    given_a_claim(app, candidate)
    runner_of(app).catch_up()
    before = profile_row(settings, candidate)
    assert all("at" in f for f in before["identity"])

    app.erase_subject(EraseSubject(candidate_id=candidate, reason="candidate request", actor="dpo"))
    sealer = app.mapper.sealer  # type: ignore[attr-defined]
    assert isinstance(sealer, Sealer)
    row = Codec(sealer).decode("profile", str(candidate), str(candidate), orjson.dumps(before))
    runner_of(app).catch_up()

    values = [f.value for f in row["identity"]] + [f.value for f in row["claims"][0]["fields"]]
    assert values == [ERASED_VALUE] * 3  # the envelopes kept from the events open no more
    assert b'"sealed"' not in orjson.dumps(profile_row(settings, candidate))  # markers now


def test_no_projection_reads_a_value_its_batch_carries_unopened(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch reads the rows it changes without opening their values (`Unread`, shown as
    # withheld): a projection that read one would copy "withheld" where the value belongs.
    # Every projection, over the whole story (erasure and disclosures in it), and rebuilt.
    def read(value: Unread) -> str:
        raise AssertionError(f"a projection read {value.name!r} from a row it carries unread")

    monkeypatch.setattr(Unread, "value", property(read), raising=False)
    made = Unread.of.__func__  # type: ignore[attr-defined]
    carried: list[str] = []

    def of(cls: type[Unread], found: Envelope, place: Any) -> Unread:
        carried.append(found["name"])
        return made(cls, found, place)  # type: ignore[no-any-return]

    monkeypatch.setattr(Unread, "of", classmethod(of))
    found: Envelope = {"name": "employer", "category": EMPLOYER.category, "sealed": "x"}
    with pytest.raises(AssertionError, match="carries unread"):
        _ = Unread.of(found, (("profile", "k", 0), "doc")).value  # the guard holds
    told = build_app(settings)
    try:
        ids = tell_story(told).as_json()
    finally:
        told.close()
    # another process: the story's rows are read from the store, not from a cache
    app = build_app(settings)
    try:
        candidate = UUID(str(ids["candidate_id"]))
        given_a_claim(app, candidate)  # the profile row, its values carried
        app.withdraw_consent(
            WithdrawConsent(
                consent_id=UUID(str(ids["consent_id"])), reason="moved on", actor=s.CANDIDATE
            )
        )  # the consent's row and the investigations it suspends
        runners = [v for v in app.kept_views if isinstance(v, ViewRunner)]
        assert len(runners) == 2  # the read views and the dashboard
        for runner in runners:
            runner.rebuild()
    finally:
        app.close()
    # the batches did carry values unread: the profile's, the consent's terms'
    assert {"name", "excluded_organisation"} <= set(carried[1:]), carried


def sealed_paths(stored: Any, path: str) -> Iterator[str]:
    """Where a stored state holds an envelope, found by reading the stored JSON alone."""
    if isinstance(stored, dict):
        if "sealed" in stored:
            yield path
            return
        for key, value in stored.items():
            yield from sealed_paths(value, f"{path}.{key}")
    elif isinstance(stored, list):
        for i, value in enumerate(stored):
            yield from sealed_paths(value, f"{path}.{i}")


def test_each_value_of_the_demos_events_is_paired_with_the_envelope_at_its_stored_path(
    settings: Settings,
) -> None:
    """`stored_envelopes` walks an event as `seal_tree` did when it stored it, in a walk of
    its own: should either change, a value would be paired with another's envelope, or with
    none, and its rows would be sealed anew or not at all. Every envelope the demo's events
    stored is found by it, at the same path, for the same value."""
    app = build_app(settings)
    try:
        tell_story(app)
        records = app.recorder.select_notifications(start=1, limit=100_000)
        # a value whose keys an erasure destroyed opens as erased, and keeps no envelope
        erased = {
            orjson.loads(r.state)["candidate_id"] for r in records if r.topic in ERASURE_TOPICS
        }
        paired = 0
        for record in records:
            state = orjson.loads(record.state)
            event = app.mapper.to_domain_event(record)
            expected = {
                path
                for name in personal_fields_of(type(event))
                if name in state
                for path in sealed_paths(state[name], name)
            }
            found = stored_envelopes(event, state)
            got = {path for *_, path in found}
            if state.get("candidate_id") in erased:
                assert got <= expected, type(event).__qualname__
            else:
                assert got == expected, type(event).__qualname__
            for value, envelope, *_ in found:
                assert (envelope["name"], envelope["category"]) == (value.name, value.category)
            paired += len(found)
    finally:
        app.close()
    assert paired >= 20  # the demo's events hold many sealed values; none was skipped
