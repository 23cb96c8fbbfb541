"""Who called a command, and how they were known: recorded in the command's events.

A command names an actor (`recorded_by`, `cancelled_by`, ...), which the caller states and
may be someone else (a service acting for a candidate, an operator typing a candidate's id).
Beside it each command event records `authenticated`: the principal the caller was
authenticated as, and how. The use case sets it once for all the events it records
(`called_by`, services/unit.py), as it sets their time (`recorded_at`); an aggregate's event
that declares the field takes it from there when it is triggered, so it is stored in the
event and replayed as stored. Records made before their event said so read as unknown.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias


class Authentication(StrEnum):
    """How the principal named in an access or disclosure record was known to be who it is."""

    TOKEN = "token"  # an API token a principal holds (domain/principal.py)
    OIDC = "oidc"  # a bearer token signed by the configured identity provider
    PORTAL = "portal-link"  # a candidate's portal link
    OPERATOR = "operator"  # the command line on the store's own machine: stated, not verified
    ASSERTED = "asserted"  # the actor a command on the Kafka topic names (senders unsigned)
    SIGNED = "signed-message"  # a command on the Kafka topic its sender's key signed, verified
    UNKNOWN = "unknown"  # a command event recorded before events said how (never recorded new)


@dataclass(frozen=True)
class Authenticated:
    """Who the caller of a command was known to be, and how (`Authentication`): recorded in
    the command's events beside the actor the command names, which may be someone else (a
    service acting for a candidate, or an operator typing a candidate's id)."""

    principal: str
    method: str


# what a command event recorded before events said how reads as
UNKNOWN_CALLER = Authenticated("unknown", Authentication.UNKNOWN.value)
FIELD = "authenticated"
Upcaster: TypeAlias = "classmethod[Any, [dict[str, Any]], None]"  # upcast_vN_vM


def upcast_authenticated(state: dict[str, Any]) -> None:
    """An upcaster's step for a command event that gains `authenticated`: explicitly unknown."""
    state[FIELD] = {"principal": UNKNOWN_CALLER.principal, "method": UNKNOWN_CALLER.method}


def _caller_unknown(cls: type, state: dict[str, Any]) -> None:
    upcast_authenticated(state)


# The upcaster a command event gains with `authenticated`, named for its versions there:
# `upcast_v2_v3 = CALLER_UNKNOWN`.
CALLER_UNKNOWN: Upcaster = classmethod(_caller_unknown)


def _role_unrecorded(cls: type, state: dict[str, Any]) -> None:
    state["role"] = None


# The upcaster a disclosure gains with `role` (the role its caller acted in): none recorded.
ROLE_UNRECORDED: Upcaster = classmethod(_role_unrecorded)

_caller: ContextVar[Authenticated | None] = ContextVar("caller", default=None)


@contextmanager
def called_by(caller: Authenticated) -> Iterator[None]:
    """Command events triggered inside record `caller` as who called them."""
    token = _caller.set(caller)
    try:
        yield
    finally:
        _caller.reset(token)


def current_caller() -> Authenticated:
    """Who called the command being decided (`called_by`); outside any use case, unknown."""
    return _caller.get() or UNKNOWN_CALLER


def with_caller(event_class: type, kwargs: dict[str, Any]) -> None:
    """`kwargs` of an event about to be made, with the caller in it if its class records one
    and it is not given."""
    if _records_caller(event_class):
        kwargs.setdefault(FIELD, current_caller())


@functools.cache
def _records_caller(event_class: type) -> bool:
    return any(FIELD in getattr(c, "__annotations__", {}) for c in event_class.__mro__)
