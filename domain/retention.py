"""Retention: how long personal values of each tier are kept once a candidate's case is quiet.

Seed 002: "whether the resume should be archived or destroyed should have clear rules". The
rule here: when no investigation of the candidate is planned or running, the clock
starts at the case's last activity; each tier's values are shredded (their key destroyed) when
its period has passed — the most sensitive first. A legal hold on any report stops the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.classification import Tier
from domain.errors import InvalidInputError


def _defaults() -> dict[Tier, int]:
    return {Tier.SECRET: 180, Tier.CONSENT_REQUIRED: 365, Tier.CONFIDENTIAL: 365, Tier.GENERAL: 730}


@dataclass(frozen=True)
class RetentionSchedule:
    days: dict[Tier, int] = field(default_factory=_defaults)

    def __post_init__(self) -> None:
        for tier, days in self.days.items():
            if tier is Tier.PROHIBITED:
                raise InvalidInputError("retention: prohibited data is never kept at all")
            if days < 0:
                raise InvalidInputError(f"retention for {tier.value}: days must be >= 0")

    def due_at(self, tier: Tier, quiet_since: datetime) -> datetime:
        return quiet_since + timedelta(days=self.days[tier])

    def due_tiers(self, quiet_since: datetime, now: datetime) -> list[Tier]:
        """The tiers whose period has passed, most sensitive first."""
        order = (Tier.SECRET, Tier.CONSENT_REQUIRED, Tier.CONFIDENTIAL, Tier.GENERAL)
        return [t for t in order if t in self.days and now >= self.due_at(t, quiet_since)]
