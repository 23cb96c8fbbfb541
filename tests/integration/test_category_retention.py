"""Issue 21, item 2: keys per (subject, category) and retention per category.

A rule of a category's own ("references 1 year, education 3 years") shreds exactly that
category: its values read as erased everywhere (the store, the views), while every other
category of the same tier, of the same candidate, still opens; the shredding is recorded
first (`Candidate.CategoriesShredded`), a legal hold keeps it, the store still verifies, and
a run cut off between recording and destroying is finished by the next. Values sealed with a
tier's key, as before keys per category, still open and go with their tier."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from domain.candidate import Candidate, ClaimKind
from domain.classification import ERASED_VALUE
from domain.errors import ErasureBlockedByLegalHoldError
from infra.audit.verification import open_source, verify
from infra.bootstrap import build_app
from infra.config import Settings
from infra.store.transcoder import typed_mapper
from projections import events as ev
from services.application import Backcheck
from services.dto import ClaimIn, LegalHold, PersonalFieldIn, RunRetention, SubmitClaims
from services.shredding import RETENTION_UNFINISHED
from tests import story as s
from tests.conftest import FakeClock
from tests.keys import key_rows

REFERENCES, EDUCATION = "user.reference.contact", "user.education"
RULES = {REFERENCES: 365, EDUCATION: 1095}  # references 1 year, education 3 years
VALUES = {
    REFERENCES: "Wang Fang, +86 138 0000 0000",
    EDUCATION: "BSc Logistics, Tongji University, 2015",
    "user.employment.employer": "Acme Logistics Ltd",
}


@pytest.fixture
def ruled(settings: Settings) -> Settings:
    return settings.model_copy(update={"retention_categories": dict(RULES)})


@pytest.fixture
def app(ruled: Settings, clock: FakeClock) -> Iterator[Backcheck]:
    application = build_app(ruled, clock=clock)
    yield application
    application.close()


def with_claims(app: Backcheck, name: str = "Li Lei") -> UUID:
    """Registered (name, e-mail), with a reference's contact, education and an employer: all
    of them general data, no investigation (the case is quiet from the claims on)."""
    candidate_id = s.register(app, name)
    app.submit_claims(
        SubmitClaims(
            candidate_id=candidate_id,
            claims=[
                ClaimIn(
                    kind=ClaimKind.EMPLOYMENT,
                    fields=[
                        PersonalFieldIn(name=f"f{i}", category=category, value=value)
                        for i, (category, value) in enumerate(VALUES.items())
                    ],
                )
            ],
            actor=s.RECRUITER,
        )
    )
    return candidate_id


def values(app: Backcheck, candidate_id: UUID) -> dict[str, str]:
    """Every personal value of the candidate as the store opens it, by category."""
    candidate = app.load(Candidate, candidate_id)
    fields = [*candidate.identity, *(f for c in candidate.claims.values() for f in c.fields)]
    return {f.category: f.value for f in fields}


def viewed(app: Backcheck, candidate_id: UUID) -> dict[str, str]:
    """The same values as the profile view holds them."""
    profile = app.read_model().get("profile", str(candidate_id))
    assert profile is not None
    fields = [*profile["identity"], *(f for c in profile["claims"] for f in c["fields"])]
    return {f.category: f.value for f in fields}


def intact(settings: Settings) -> bool:
    with open_source(settings) as source:
        return verify(source).intact


def test_a_category_rule_shreds_that_category_and_nothing_else(
    app: Backcheck, ruled: Settings, clock: FakeClock
) -> None:
    li = with_claims(app)
    clock.advance(days=200)
    han = with_claims(app, "Han Mei")  # quiet for a shorter time: nothing of hers is due
    before = values(app, li)
    clock.advance(days=166)  # Li quiet for 366 days

    result = app.run_retention(RunRetention())

    (item,) = result.shredded
    assert (item.candidate_id, item.tier, item.categories, item.whole_tier) == (
        li,
        "general",
        [REFERENCES],
        False,
    )
    after = values(app, li)
    assert after[REFERENCES] == ERASED_VALUE
    assert {k: v for k, v in after.items() if k != REFERENCES} == {
        k: v for k, v in before.items() if k != REFERENCES
    }  # the rest of the general tier, of the same candidate, still opens
    assert ERASED_VALUE not in {v for k, v in after.items() if k != REFERENCES}
    assert viewed(app, li) == after  # the views agree with the store
    assert ERASED_VALUE not in values(app, han).values()
    assert {k for s_, k in key_rows(ruled) if s_ == li} == {
        "user.name",
        "user.contact.email",
        EDUCATION,
        "user.employment.employer",
    }
    (recorded,) = [e for _, e in app.replay() if isinstance(e, ev.CategoriesShredded)]
    assert recorded.categories == (REFERENCES,)
    assert recorded.retention_days == {REFERENCES: 365}
    assert app.run_retention(RunRetention()).shredded == []  # nothing twice
    assert intact(ruled)
    assert list(app.violations()) == []


def test_references_one_year_education_three_years_and_the_tier_goes_whole_last(
    app: Backcheck, ruled: Settings, clock: FakeClock
) -> None:
    li = with_claims(app)

    clock.advance(days=366)
    assert [i.categories for i in app.run_retention(RunRetention()).shredded] == [[REFERENCES]]
    clock.advance(days=365)  # two years: the general tier's own period
    (rest,) = app.run_retention(RunRetention()).shredded
    assert (rest.categories, rest.whole_tier) == (
        ["user.contact.email", "user.employment.employer", "user.name"],
        False,
    )
    assert values(app, li)[EDUCATION] == VALUES[EDUCATION]  # kept for its three years
    clock.advance(days=365)
    (last,) = app.run_retention(RunRetention()).shredded

    assert (last.tier, last.categories, last.whole_tier) == ("general", [EDUCATION], True)
    assert set(values(app, li).values()) == {ERASED_VALUE}
    assert set(viewed(app, li).values()) == {ERASED_VALUE}
    assert {k for s_, k in key_rows(ruled) if s_ == li} == set()
    shreds = [type(e).__name__ for _, e in app.replay() if e.originator_id == li]
    assert shreds[-3:] == ["CategoriesShredded", "CategoriesShredded", "TierShredded"]
    described = [e.what for e in app.timeline(li) if "shredded" in e.what]
    assert "user.reference.contact (365 days)" in described[0]
    assert intact(ruled)
    assert list(app.violations()) == []


def test_a_legal_hold_keeps_a_category_that_is_due(
    app: Backcheck, ruled: Settings, clock: FakeClock
) -> None:
    held = s.compiled_report(app, "Han Mei")  # the notes: user.employment.evaluation
    app.place_legal_hold(LegalHold(report_id=held.report, reason="litigation", actor="legal"))
    keys_before = key_rows(ruled)
    clock.advance(days=366)
    assert app.retention.categories == RULES

    result = app.run_retention(RunRetention())

    assert result.shredded == []
    assert {i.candidate_id for i in result.held} == {held.candidate_id}
    assert key_rows(ruled) == keys_before
    assert not [e for _, e in app.replay() if isinstance(e, ev.CategoriesShredded)]
    candidate = app.load(Candidate, held.candidate_id)
    with pytest.raises(ErasureBlockedByLegalHoldError):
        candidate.shred_categories({"user.employment.evaluation": 365}, clock(), [held.report])


def test_a_run_cut_off_after_recording_is_finished_by_the_next(
    app: Backcheck, ruled: Settings, clock: FakeClock
) -> None:
    li = with_claims(app)
    clock.advance(days=366)
    # what a run killed between its commit and the key's destruction leaves behind
    candidate = app.load(Candidate, li)
    quiet_since = app.run_retention(RunRetention(dry_run=True)).shredded[0].quiet_since
    candidate.shred_categories({REFERENCES: 365}, quiet_since, [])
    app.commit(candidate)
    assert (li, REFERENCES) in key_rows(ruled)

    (cut_off,) = list(app.violations())
    assert (cut_off.rule, cut_off.candidate_id) == (RETENTION_UNFINISHED, li)
    assert "user.reference.contact (general)" in cut_off.detail
    assert app.run_retention(RunRetention(dry_run=True)).finished[0].keys == [REFERENCES]
    assert (li, REFERENCES) in key_rows(ruled)  # a dry run destroys nothing
    again = app.run_retention(RunRetention())

    assert [(f.candidate_id, f.tier, f.keys) for f in again.finished] == [
        (li, "general", [REFERENCES])
    ]
    assert again.shredded == []  # recorded once: finishing it records nothing more
    assert (li, REFERENCES) not in key_rows(ruled)
    assert values(app, li)[REFERENCES] == ERASED_VALUE
    assert list(app.violations()) == []
    assert intact(ruled)


def test_values_sealed_with_their_tiers_key_still_open_and_go_with_their_tier(
    app: Backcheck, ruled: Settings, clock: FakeClock
) -> None:
    sealer = typed_mapper(app.mapper).sealer
    assert sealer is not None
    sealer.by_category = False  # as every version before keys per category sealed
    li = with_claims(app)
    sealer.by_category = True
    app.submit_claims(
        SubmitClaims(
            candidate_id=li,
            claims=[
                ClaimIn(
                    kind=ClaimKind.EDUCATION,
                    fields=[PersonalFieldIn(name="school", category=EDUCATION, value="MSc")],
                )
            ],
            actor=s.RECRUITER,
        )
    )
    assert {k for s_, k in key_rows(ruled) if s_ == li} == {"general", EDUCATION}
    app.close()
    app = build_app(ruled, clock=clock)  # no key held in memory
    opened = app.load(Candidate, li)
    schools = {f.value for c in opened.claims.values() for f in c.fields if f.category == EDUCATION}
    assert schools == {VALUES[EDUCATION], "MSc"}  # the old envelope and the new one
    assert values(app, li)[REFERENCES] == VALUES[REFERENCES]

    clock.advance(days=366)
    (first,) = app.run_retention(RunRetention()).shredded

    # the views' copies were sealed again with the category's key, and are shredded; in the
    # store the reference was sealed with the general tier's key, with the name and the
    # employer: it cannot go alone, the report says so, and it goes with its tier
    assert (first.categories, first.whole_tier, first.tier_key_kept) == ([REFERENCES], False, True)
    assert viewed(app, li)[REFERENCES] == ERASED_VALUE
    assert values(app, li)[REFERENCES] == VALUES[REFERENCES]
    clock.advance(days=730)
    (item,) = app.run_retention(RunRetention()).shredded

    assert (item.tier, item.whole_tier) == ("general", True)
    # the tier's own key and every category key of it (the views' copies made the others)
    assert item.categories == [
        "user.contact.email",
        EDUCATION,
        "user.employment.employer",
        "user.name",
    ]
    assert set(values(app, li).values()) == {ERASED_VALUE}
    assert set(viewed(app, li).values()) == {ERASED_VALUE}
    assert {k for s_, k in key_rows(ruled) if s_ == li} == set()
    assert intact(ruled)
    assert list(app.violations()) == []
    app.close()
