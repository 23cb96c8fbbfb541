"""PLACEHOLDER (lead's local copy until h18-principals lands; never committed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from services.access import Role


class Authentication(StrEnum):
    TOKEN = "token"
    OIDC = "oidc"
    PORTAL = "portal-link"
    OPERATOR = "operator"
    ASSERTED = "asserted"


@dataclass(frozen=True)
class Identity:
    principal: str
    role: Role
    authentication: Authentication
    assignments: frozenset[UUID] = frozenset()
    expires_at: datetime | None = None


_current: ContextVar[Identity | None] = ContextVar("identity", default=None)


@contextmanager
def acting_as(identity: Identity) -> Iterator[None]:
    token = _current.set(identity)
    try:
        yield
    finally:
        _current.reset(token)


def current_identity() -> Identity | None:
    return _current.get()
