"""Composition root: builds the application on the configured store."""

from __future__ import annotations

from services.application import Backcheck
from services.unit import Clock, system_clock

from infra.config import Settings


def build_app(settings: Settings | None = None, clock: Clock = system_clock) -> Backcheck:
    settings = settings or Settings.from_env()
    return Backcheck(env=settings.store_env(), clock=clock)
