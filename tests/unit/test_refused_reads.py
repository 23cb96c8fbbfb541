"""A refused read returned nothing and relied on nothing: its record names no consent, and a
record made before the rule, which named the consents in force, is read so too."""

from __future__ import annotations

from uuid import UUID, uuid4

from domain.access import _RECORDED, Access, relied_on
from services.timeline import timeline

CONSENT = UUID("0b7c6f8e-4a51-4d7c-9a3e-9f2d7d9c1e11")


def recorded(candidate: UUID, outcome: str) -> Access.Recorded:
    access = Access.record(
        candidate_id=candidate,
        principal="growth:wu.hao",
        role="recruiter",
        purpose="marketing",
        view="profile",
        returned=() if outcome == "refused" else ("user.name",),
        withheld=("user.name",) if outcome == "refused" else (),
        outcome=outcome,
        policy_ids=("no-read-for-a-purpose-the-consent-does-not-name",),
        policy_set_hash="0" * 64,
        consent_ids=(CONSENT,),
        authentication="operator",
    )
    (event,) = access.collect_events()
    assert isinstance(event, Access.Recorded)
    return event


def test_a_refused_read_records_no_consent_relied_on_an_allowed_one_its_consents() -> None:
    candidate = uuid4()

    assert recorded(candidate, "refused").consent_ids == ()
    assert recorded(candidate, "allowed").consent_ids == (CONSENT,)
    assert relied_on("failed", (CONSENT,)) == (CONSENT,)  # decided on it; a value failed


def test_the_timeline_shows_no_consent_against_a_refusal_recorded_before_the_rule() -> None:
    candidate = uuid4()
    older = Access._create(  # as recorded before: the consents in force named
        _RECORDED,
        candidate_id=candidate,
        principal="growth:wu.hao",
        role="recruiter",
        purpose="marketing",
        view="profile",
        returned=(),
        withheld=("user.name",),
        tiers=("identifying",),
        outcome="refused",
        policy_ids=(),
        policy_set_hash="0" * 64,
        consent_ids=(CONSENT,),
        break_glass=None,
        authentication="operator",
        failure=None,
    )
    (old,) = older.collect_events()
    allowed = recorded(candidate, "allowed")

    entries = list(timeline(iter([(1, old), (2, allowed)]), candidate))

    assert old.consent_ids == (CONSENT,)  # stored as it was
    assert [e.consent_id for e in entries] == [None, CONSENT]
