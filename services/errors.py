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


class UnknownUseCaseError(NotFoundError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name!r} is not a use case; the command type must be one of `backcheck use-cases`",
            name=name,
        )


class NotAcceptedFromServicesError(RuleBrokenError):
    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name!r} is not accepted from other services: {why}", name=name, why=why)


class CommandAlreadyAppliedError(RuleBrokenError):
    def __init__(
        self, source: str, command_id: str, command_type: str, applied_at: object, channel: str
    ) -> None:
        super().__init__(
            f"command {command_id!r} from {source!r} ({command_type}) was already applied at "
            f"{applied_at}, delivered via {channel}; this delivery changed nothing",
            source=source,
            command_id=command_id,
            command_type=command_type,
            applied_at=applied_at,
            channel=channel,
        )
