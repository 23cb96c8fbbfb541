"""Screening free text at collection for what may never be collected.

Finding notes, the candidate's feedback and disputes, answers and report notes are free text.
Before any is recorded it is screened for mentions of prohibited topics (religion, family life,
blood type, social relationships, property, HIV status) and of consent-required ones (marital
status) that the consent does not name. A hit refuses the text with the topic and the rule, so
the person can rephrase; nothing of it is stored.

The screen is a list of terms (English and Chinese), deliberately narrow: it catches the
plain mention, it does not judge meaning. It is a guard rail, not a guarantee.
"""

from __future__ import annotations

import re

from domain.errors import ConsentRequiredForCategoryError, ProhibitedContentError

_TOPICS: dict[str, tuple[str, ...]] = {
    "user.demographic.religious_belief": (
        r"religio\w*",
        r"church",
        r"mosque",
        r"synagogue",
        r"buddhis\w*",
        r"christian\w*",
        r"muslim\w*",
        r"islam\w*",
        r"hindu\w*",
        r"jewish",
        r"catholic\w*",
        r"protestant\w*",
        r"pray(?:s|ed|ing|ers?)?",
        r"宗教",
        r"信仰",
        r"佛教",
        r"基督",
        r"伊斯兰",
        r"天主教",
        r"道教",
        r"教堂",
        r"寺庙",
        r"清真寺",
    ),
    "user.health.hiv_status": (r"hiv", r"aids", r"艾滋"),
    "user.health.blood_type": (
        r"blood (?:type|group)s?",
        r"type (?:a|b|ab|o) blood",
        r"血型",
    ),
    "user.family_life": (
        r"pregnan\w*",
        r"family (?:planning|life|situation)",
        r"childcare",
        r"怀孕",
        r"生育",
        r"家庭生活",
        r"家庭情况",
        r"孩子",
        r"子女",
    ),
    "user.financial.property": (
        r"owns? (?:a |an |two |three |several |\d+ )?"
        r"(?:houses?|flats?|apartments?|propert(?:y|ies)|homes?)",
        r"real estate",
        r"房产",
        r"房子",
        r"房屋",
    ),
    "user.social_relationships": (
        r"boyfriend",
        r"girlfriend",
        r"social (?:circle|life|relationships?)",
        r"社会关系",
        r"社交圈",
        r"朋友圈",
    ),
    "user.demographic.marital_status": (
        r"marital",
        r"married",
        r"divorc\w*",
        r"spouse",
        r"husband",
        r"wife",
        r"婚姻",
        r"已婚",
        r"离婚",
        r"未婚",
    ),
}


def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    # Latin terms match whole words only; Chinese has no word boundaries to match on.
    parts = [rf"(?<!\w){t}(?!\w)" if t.isascii() else t for t in terms]
    return re.compile("|".join(parts), re.IGNORECASE)


_PATTERNS = {category: _pattern(terms) for category, terms in _TOPICS.items()}
_CONSENT_REQUIRED = {"user.demographic.marital_status"}


def screen(field: str, text: str, consented_categories: frozenset[str] = frozenset()) -> None:
    """Refuse text that mentions a prohibited topic, or a consent-required one not consented."""
    for category, pattern in _PATTERNS.items():
        found = pattern.search(text)
        if found is None:
            continue
        if category in _CONSENT_REQUIRED:
            if category not in consented_categories:
                raise ConsentRequiredForCategoryError(field, category)
            continue
        raise ProhibitedContentError(field, category, found.group(0))


def prohibited_topic(name: str) -> str | None:
    """The prohibited category a name for data mentions, read as the screen reads text (its
    dots and underscores as spaces): `user.religion` mentions religion, which is
    `user.demographic.religious_belief`. None if it mentions none."""
    words = re.sub(r"[._]+", " ", name)
    for category, pattern in _PATTERNS.items():
        if category not in _CONSENT_REQUIRED and pattern.search(words):
            return category
    return None


_DIGITS = re.compile(r"\D+")
_SHORTEST_NAME = 2  # a value shorter than this is no one's name, and would match anything
_PHONE_DIGITS = 7  # the last digits of a number that tell it


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())


def names_the_subject(text: str, values: tuple[str, ...]) -> bool:
    """Whether free text kept in clear (a read's purpose) holds one of the subject's own
    identifying values (`values`: their name, e-mail, phone, address as given): the whole of
    a name or an address as words, an e-mail address or its part before the `@`, or a phone
    number's last digits among the text's digits (`+86 139-1234-5678` in any spelling)."""
    folded = _folded(text)
    digits = _DIGITS.sub("", text)
    for value in values:
        wanted = [_folded(value)]
        if "@" in value:
            wanted.append(_folded(value.partition("@")[0]))
        for word in wanted:
            if len(word) >= _SHORTEST_NAME and re.search(
                rf"(?<!\w){re.escape(word)}(?!\w)", folded
            ):
                return True
        phone = _DIGITS.sub("", value)
        if len(phone) >= _PHONE_DIGITS and phone[-_PHONE_DIGITS:] in digits:
            return True
    return False
