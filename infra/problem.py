"""How errors are told to people and machines: one table, used by the CLI (and HTTP later).

A domain error is never a crash: not found 404, rule broken 409, invalid input 422.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from domain.errors import (
    DomainError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RuleBrokenError,
)
from infra.config import ConfigError
from infra.kafka.topics import BrokerUnavailableError, MissingTopicError
from infra.store.server import StoreMisconfiguredError, StoreUnreachableError


@dataclass(frozen=True)
class Problem:
    """RFC 9457 problem details, also the CLI's error report."""

    status: int
    title: str
    type: str
    detail: str
    exit_code: int


_BY_FAMILY: tuple[tuple[type[Exception], int, str, int], ...] = (
    (NotFoundError, 404, "Not found", 4),
    (ForbiddenError, 403, "Forbidden", 5),
    (RuleBrokenError, 409, "Rule broken", 3),
    (InvalidInputError, 422, "Invalid input", 2),
    (DomainError, 422, "Refused", 2),
)


def problem_for(error: Exception) -> Problem | None:
    """The problem report for an expected error; None for a bug (let it crash loudly)."""
    if isinstance(error, ValidationError):
        detail = "; ".join(
            f"field {'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
            for e in error.errors()
        )
        return Problem(422, "Invalid input", "validation", detail, 2)
    if isinstance(error, ConfigError):
        return Problem(500, "Configuration error", "config", str(error), 78)
    if isinstance(error, StoreUnreachableError):
        return Problem(503, "Store unreachable", "store-unreachable", str(error), 69)
    if isinstance(error, StoreMisconfiguredError):
        return Problem(500, "Store misconfigured", "store-misconfigured", str(error), 78)
    if isinstance(error, BrokerUnavailableError):
        return Problem(503, "Kafka unavailable", "broker-unavailable", str(error), 69)
    if isinstance(error, MissingTopicError):
        return Problem(503, "Kafka topic missing", "topic-missing", str(error), 69)
    for family, status, title, code in _BY_FAMILY:
        if isinstance(error, family):
            rule = type(error).__name__.removesuffix("Error")
            return Problem(status, title, rule, str(error), code)
    return None
