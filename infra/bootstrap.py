"""Composition root: builds the application on the configured store."""

from __future__ import annotations

from infra.config import Settings
from services.application import Backcheck
from services.unit import Clock, system_clock


def build_app(settings: Settings | None = None, clock: Clock = system_clock) -> Backcheck:
    settings = settings or Settings.from_env()
    return Backcheck(env=settings.store_env(), clock=clock)
