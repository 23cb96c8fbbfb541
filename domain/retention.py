"""Retention: how long personal values of each tier and category are kept once a candidate's
case is quiet.

Seed 002: "whether the resume should be archived or destroyed should have clear rules". The
rule here: when no investigation of the candidate is planned or running, the clock
starts at the case's last activity; each category's values are shredded (their key destroyed)
when its period has passed — its own period where the table names the category ("references
1 year, education 3 years"), else its tier's — the most sensitive first. A tier is shredded
whole (every value of it, and no new one accepted) once the periods of all its categories the
candidate holds have passed. A legal hold on any report stops the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.classification import CATEGORIES, Tier, category
from domain.errors import InvalidInputError
from domain.screening import prohibited_topic

ORDER = (Tier.SECRET, Tier.CONSENT_REQUIRED, Tier.CONFIDENTIAL, Tier.GENERAL)
MAX_DAYS = 36_600  # a hundred years: beyond it a period is a typo


def _defaults() -> dict[Tier, int]:
    return {Tier.SECRET: 180, Tier.CONSENT_REQUIRED: 365, Tier.CONFIDENTIAL: 365, Tier.GENERAL: 730}


def _prohibited(given: str, key: str) -> str:
    """Why a rule for `given`, which names the prohibited category `key`, cannot hold."""
    named = f"{key!r}" if given == key else f"{given!r} names {key!r}, which"
    return (
        f"retention for {given}: {named} is a prohibited category "
        f"({CATEGORIES[key].description}): prohibited data is never collected or kept, so it "
        "has no retention period; leave it out"
    )


def _refuse_prohibited(given: str) -> None:
    """A name that is no category's but mentions a prohibited topic (`user.religion`) is
    refused as the prohibited category it names, not as an unknown one: what was meant is
    prohibited, whatever it is called. (There are no aliases: it is not taken as that one.)"""
    if given in CATEGORIES:
        return
    meant = prohibited_topic(given)
    if meant is not None:
        raise InvalidInputError(_prohibited(given, meant))


@dataclass(frozen=True)
class RetentionSchedule:
    """Days per tier (a tier left out is kept until erased) and, for the categories that have
    a rule of their own, days per category."""

    days: dict[Tier, int] = field(default_factory=_defaults)
    categories: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for tier, days in self.days.items():
            if tier is Tier.PROHIBITED:
                raise InvalidInputError("retention: prohibited data is never kept at all")
            if not 0 <= days <= MAX_DAYS:
                raise InvalidInputError(f"retention for {tier.value}: days must be 0 to {MAX_DAYS}")
        for key, days in self.categories.items():
            _refuse_prohibited(key)
            if category(key, field="retention").tier is Tier.PROHIBITED:
                raise InvalidInputError(_prohibited(key, key))
            if not 0 <= days <= MAX_DAYS:
                raise InvalidInputError(f"retention for {key}: days must be 0 to {MAX_DAYS}")

    def due_at(self, tier: Tier, quiet_since: datetime) -> datetime:
        return quiet_since + timedelta(days=self.days[tier])

    def due_tiers(self, quiet_since: datetime, now: datetime) -> list[Tier]:
        """The tiers whose period has passed, most sensitive first."""
        return [t for t in ORDER if t in self.days and now >= self.due_at(t, quiet_since)]

    def category_days(self, key: str) -> int | None:
        """The days a category is kept: its own rule, else its tier's; None: kept until erased."""
        if key in self.categories:
            return self.categories[key]
        return self.days.get(CATEGORIES[key].tier)

    def category_due_at(self, key: str, quiet_since: datetime) -> datetime | None:
        days = self.category_days(key)
        return None if days is None else quiet_since + timedelta(days=days)

    def tier_days(self, tier: Tier, held: set[str] | None) -> int | None:
        """The days after which a tier is shredded whole: the longest period of its categories
        in `held` (None: every category of the tier, for values sealed under the tier's own
        key, whose categories no key tells); None if one of them is kept until erased."""
        keys = held if held is not None else {k for k, c in CATEGORIES.items() if c.tier is tier}
        periods = [self.category_days(k) for k in keys]
        periods.append(self.days.get(tier))
        if any(p is None for p in periods):
            return None
        return max(p for p in periods if p is not None)
