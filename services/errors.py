"""Errors raised by use cases: the store did not have what the command named."""

from __future__ import annotations

from uuid import UUID

from domain.errors import NotFoundError, RuleBrokenError


class AggregateMissingError(NotFoundError):
    def __init__(self, kind: str, aggregate_id: UUID) -> None:
        super().__init__(
            f"no {kind} with id {aggregate_id}; check the id (list with `backcheck events`)",
            kind=kind,
            aggregate_id=aggregate_id,
        )


class ConcurrentChangeError(RuleBrokenError):
    def __init__(self, aggregate_ids: list[str]) -> None:
        super().__init__(
            f"someone else changed {', '.join(aggregate_ids)} at the same moment; nothing was "
            "recorded — load it again and retry",
            aggregate_ids=aggregate_ids,
        )
