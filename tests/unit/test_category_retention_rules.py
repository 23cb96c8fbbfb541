"""Retention per category (issue 21, item 2): the table's rules, the candidate's record of a
category shredded, the setting that configures it, and the envelope naming its key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from domain.candidate import Candidate
from domain.classification import PersonalField, Tier, key_name
from domain.errors import (
    AlreadyErasedError,
    ErasureBlockedByLegalHoldError,
    InvalidInputError,
    UnknownDataCategoryError,
)
from domain.retention import RetentionSchedule
from infra.bootstrap import retention_schedule
from infra.config import ConfigError, Settings
from infra.privacy import envelope

QUIET = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RULES = {"user.reference.contact": 365, "user.education": 1095}


def test_a_category_is_kept_for_its_own_period_else_for_its_tiers() -> None:
    table = RetentionSchedule(categories=dict(RULES))

    assert table.category_days("user.reference.contact") == 365
    assert table.category_days("user.education") == 1095
    assert table.category_days("user.name") == 730  # the general tier's default
    assert table.category_days("user.criminal_history") == 180  # the secret tier's
    assert table.category_due_at("user.education", QUIET) == QUIET + timedelta(days=1095)


def test_a_tier_goes_whole_after_the_longest_period_of_the_categories_held() -> None:
    table = RetentionSchedule(categories=dict(RULES))

    assert table.tier_days(Tier.GENERAL, {"user.name", "user.reference.contact"}) == 730
    assert table.tier_days(Tier.GENERAL, {"user.name", "user.education"}) == 1095
    # a tier's own key may hold any of its categories: the longest of them all
    assert table.tier_days(Tier.GENERAL, None) == 1095
    assert table.tier_days(Tier.CONFIDENTIAL, None) == 365


def test_without_rules_of_their_own_the_tiers_periods_stand_as_before() -> None:
    table = RetentionSchedule()

    for tier, days in table.days.items():
        assert table.tier_days(tier, None) == days
    assert table.due_tiers(QUIET, QUIET + timedelta(days=366)) == [
        Tier.SECRET,
        Tier.CONSENT_REQUIRED,
        Tier.CONFIDENTIAL,
    ]


def test_a_tier_left_out_keeps_its_categories_until_erased_unless_they_have_a_rule() -> None:
    table = RetentionSchedule({Tier.SECRET: 30}, {"user.education": 100})

    assert table.category_days("user.name") is None
    assert table.category_days("user.education") == 100
    assert table.tier_days(Tier.GENERAL, {"user.education"}) is None


@pytest.mark.parametrize(
    ("rules", "error", "says"),
    [
        ({"user.health.hiv_status": 10}, InvalidInputError, "prohibited"),
        ({"user.shoe_size": 10}, UnknownDataCategoryError, "user.shoe_size"),
        ({"user.education": -1}, InvalidInputError, "days must be 0 to"),
        ({"user.education": 10**6}, InvalidInputError, "days must be 0 to"),
    ],
)
def test_a_rule_that_cannot_hold_is_refused_naming_it(
    rules: dict[str, int], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        RetentionSchedule(categories=rules)


def candidate() -> Candidate:
    found = Candidate.register(uuid4(), (PersonalField("name", "user.name", "Li Lei"),), "hr")
    found.collect_events()
    return found


def test_a_category_shredded_is_recorded_with_its_period_and_not_shredded_twice() -> None:
    li = candidate()

    li.shred_categories({"user.reference.contact": 365}, QUIET, [])

    (recorded,) = li.collect_events()
    assert recorded.categories == ("user.reference.contact",)  # type: ignore[attr-defined]
    assert recorded.retention_days == {"user.reference.contact": 365}  # type: ignore[attr-defined]
    assert li.categories_shredded == {"user.reference.contact"}
    with pytest.raises(AlreadyErasedError):
        li.shred_categories({"user.reference.contact": 365}, QUIET, [])


def test_a_category_of_a_tier_shredded_whole_is_shredded_already() -> None:
    li = candidate()
    li.shred_tier("general", 730, QUIET, [])

    assert "user.education" in li.categories_shredded
    with pytest.raises(AlreadyErasedError):
        li.shred_categories({"user.education": 1095}, QUIET, [])


def test_a_legal_hold_blocks_shredding_a_category() -> None:
    li = candidate()
    report = uuid4()

    with pytest.raises(ErasureBlockedByLegalHoldError, match=str(report)):
        li.shred_categories({"user.education": 1095}, QUIET, [report])
    assert li.collect_events() == []


def test_the_setting_takes_category_rules_beside_the_tiers_defaults(tmp_path: Path) -> None:
    settings = Settings.load(
        {
            "BACKCHECK_DATA_DIR": str(tmp_path),
            "BACKCHECK_RETENTION_CATEGORIES": "user.reference.contact=365, user.education=1095",
        }
    )

    table = retention_schedule(settings.retention_days, settings.retention_categories)

    assert table.categories == RULES
    assert table.days == RetentionSchedule().days


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("user.education", "is not CATEGORY=DAYS"),
        ("user.education=three years", "is not CATEGORY=DAYS"),
        (",".join(f"user.education={n}" for n in range(101)), "over 100 entries"),
    ],
)
def test_a_setting_that_is_not_category_days_is_refused_naming_the_variable(
    tmp_path: Path, text: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=f"BACKCHECK_RETENTION_CATEGORIES: .*{says}"):
        Settings.load({"BACKCHECK_DATA_DIR": str(tmp_path), "BACKCHECK_RETENTION_CATEGORIES": text})


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("BACKCHECK_RETENTION_DAYS", "secret=180,general=730,secret=30"),
        ("BACKCHECK_RETENTION_CATEGORIES", "user.education=1095, user.education =30"),
    ],
)
def test_a_period_given_twice_is_refused_rather_than_the_last_one_kept(
    tmp_path: Path, variable: str, text: str
) -> None:
    name = "secret" if variable.endswith("DAYS") else "user.education"
    first = 180 if name == "secret" else 1095

    with pytest.raises(ConfigError) as refused:
        Settings.load({"BACKCHECK_DATA_DIR": str(tmp_path), variable: text})

    assert str(refused.value) == (
        f"{variable}: {name!r} is given twice ({first} and 30 days); give each once"
    )


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ({"user.shoe_size": 10}, "'user.shoe_size' is not a known data category"),
        ({"user.family_life": 10}, "prohibited"),
    ],
)
def test_a_category_that_cannot_have_a_rule_is_refused_naming_the_variable(
    rules: dict[str, int], says: str
) -> None:
    with pytest.raises(ConfigError, match=f"^BACKCHECK_RETENTION_CATEGORIES: .*{says}"):
        retention_schedule(None, rules)


@pytest.mark.parametrize(
    ("given", "meant", "what"),
    [
        ("user.religion", "user.demographic.religious_belief", "religious belief"),
        ("user.blood_type", "user.health.blood_type", "blood type"),
        ("user.demographic.religious_belief", "user.demographic.religious_belief", ""),
    ],
)
def test_a_rule_for_a_prohibited_category_says_it_is_prohibited_and_names_it(
    tmp_path: Path, given: str, meant: str, what: str
) -> None:
    """`user.religion=30` was refused as "not a known data category", as a typo would be,
    though what it names is prohibited: it is refused as that, naming the category by its
    key (and is not taken as it: there are no aliases)."""
    settings = Settings.load(
        {"BACKCHECK_DATA_DIR": str(tmp_path), "BACKCHECK_RETENTION_CATEGORIES": f"{given}=30"}
    )

    with pytest.raises(ConfigError) as refused:
        retention_schedule(settings.retention_days, settings.retention_categories)

    said = str(refused.value)
    assert said.startswith(f"BACKCHECK_RETENTION_CATEGORIES: retention for {given}: ")
    assert f"{meant!r}" in said
    assert "is a prohibited category" in said
    assert "prohibited data is never collected or kept" in said
    assert "not a known data category" not in said
    if what:
        assert f"{given!r} names {meant!r}" in said


def test_an_envelope_names_the_key_that_sealed_it() -> None:
    field = PersonalField("school", "user.education", "Tongji")
    old = envelope.sealed(field, "general", b"\x00" * 28)
    new = envelope.sealed(field, "general", b"\x00" * 28, by_category=True)

    assert "key" not in old  # as every envelope before keys per category
    assert envelope.scope(old) == "general"
    assert new["key"] == "category"
    assert envelope.scope(new) == "user.education"
    assert envelope.sealed_scopes({"a": [old, {"b": new}]}) == {"general", "user.education"}
    assert key_name("user.education") == "user.education (general)"
    assert key_name("general") == "general"
