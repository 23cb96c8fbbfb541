"""Free text is screened at collection: a prohibited mention is refused with the reason and
nothing is recorded; a consent-required mention needs the consent to name it."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.check import Outcome, SourceRole
from domain.classification import PersonalField
from domain.errors import ConsentRequiredForCategoryError, ProhibitedContentError
from domain.report import Amendment
from domain.screening import screen
from tests.story import (
    RECRUITER,
    finding,
    only_check,
    refuses,
    started_investigation,
)
from tests.unit.test_report_rules import approved


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("He is a devout Christian and prays at lunch", "user.demographic.religious_belief"),
        ("disclosed she is HIV positive", "user.health.hiv_status"),
        ("blood type O, for the records", "user.health.blood_type"),
        ("left because she was pregnant", "user.family_life"),
        ("owns a house in Pudong", "user.financial.property"),
        ("他信仰佛教", "user.demographic.religious_belief"),
    ],
)
def test_a_finding_note_mentioning_a_prohibited_topic_is_refused(text: str, category: str) -> None:
    inv = started_investigation()
    notes = PersonalField("notes", "user.employment.evaluation", text)

    with refuses(inv, ProhibitedContentError, "'notes'", category):
        inv.record_finding(finding(only_check(inv), SourceRole.HR, notes=notes), inv.scope)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("She has type A blood.", "user.health.blood_type"),
        ("他的血型是O型", "user.health.blood_type"),
        ("He owns three apartments downtown.", "user.financial.property"),
        ("invests in real estate on the side", "user.financial.property"),
        ("他有两套房子", "user.financial.property"),
        ("Her family life is complicated.", "user.family_life"),
        ("他家里有两个孩子", "user.family_life"),
        ("keeps a wide social circle outside work", "user.social_relationships"),
        ("他的朋友圈很广", "user.social_relationships"),
        ("takes breaks to pray five times a day", "user.demographic.religious_belief"),
        ("他每周去教堂", "user.demographic.religious_belief"),
    ],
)
def test_more_ways_of_saying_a_prohibited_thing_are_caught(text: str, category: str) -> None:
    with pytest.raises(ProhibitedContentError, match=category):
        screen("notes", text)


def test_marital_status_in_notes_needs_a_consent_that_names_it() -> None:
    refused = started_investigation()
    notes = PersonalField("notes", "user.employment.evaluation", "recently married, moved city")
    with refuses(refused, ConsentRequiredForCategoryError, "user.demographic.marital_status"):
        refused.record_finding(
            finding(only_check(refused), SourceRole.HR, notes=notes), refused.scope
        )

    allowed = started_investigation(categories=("user.demographic.marital_status",))
    allowed.record_finding(finding(only_check(allowed), SourceRole.HR, notes=notes), allowed.scope)
    assert len(allowed.findings) == 1


def test_the_candidates_own_words_are_screened_too() -> None:
    inv = started_investigation()
    with refuses(inv, ProhibitedContentError, "'text'", "religious_belief"):
        inv.give_feedback(uuid4(), "Will my religion matter for this job?")
    with refuses(inv, ProhibitedContentError, "'statement'", "hiv_status"):
        inv.raise_dispute(uuid4(), only_check(inv), "The HIV rumour is false")


def test_an_amendment_note_is_screened() -> None:
    report = approved()
    (check_id,) = report.items
    with refuses(report, ProhibitedContentError, "'note'"):
        report.amend(
            (Amendment(check_id, Outcome.CONFIRMED, "confirmed by the church elder"),),
            "correction",
            (),
            RECRUITER,
        )


def test_ordinary_words_pass_the_screen() -> None:
    for text in (
        "reliable, left on good terms",
        "worked on the Aidsworth account",  # 'aids' only as a whole word
        "led the routing rewrite; would rehire",
        "built the property-management module",  # property as a product, not an asset
        "团队合作好 沟通顺畅",
        "managed the blood bank's scheduling software",
        "confirmed the degree with Temple University",
    ):
        screen("notes", text)  # raises if refused
