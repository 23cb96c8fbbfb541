"""Access: every read of personal data is a fact, recorded before the data leaves.

An access event says who read, in which role, for which purpose, about whom, which categories
were returned and which withheld, what was decided and by which policies (and which policy
set), and under which consents. It never holds a personal value.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import AggregateCreated, event

from domain.classification import tier_of
from domain.errors import InvalidInputError
from domain.subject import SubjectAggregate, TimeOrderedIds


class AccessOutcome(StrEnum):
    """What became of a read (`allowed`, `partial`, `refused`, `failed`) or of a hand-over
    (`disclosed`), as the access log records it."""

    ALLOWED = "allowed"
    PARTIAL = "partial"  # some categories returned, some withheld
    REFUSED = "refused"
    DISCLOSED = "disclosed"
    FAILED = "failed"  # decided, but nothing returned: a value it needed could not be opened


class Access(TimeOrderedIds, SubjectAggregate):
    @classmethod
    def record(
        cls,
        candidate_id: UUID,
        principal: str,
        role: str,
        purpose: str,
        view: str,
        returned: tuple[str, ...],
        withheld: tuple[str, ...],
        outcome: str,
        policy_ids: tuple[str, ...],
        policy_set_hash: str,
        consent_ids: tuple[UUID, ...],
        break_glass: str | None = None,
    ) -> Access:
        if not purpose.strip():
            raise InvalidInputError("field 'purpose': every read states its purpose")
        # Made the library's explicit way (`_create` with the created-event class, as in its
        # own example models): the class call would first map positional arguments to
        # keywords, and access records are made once a read.
        return cls._create(
            _RECORDED,
            candidate_id=candidate_id,
            principal=principal,
            role=role,
            purpose=purpose,
            view=view,
            returned=returned,
            withheld=withheld,
            tiers=_tiers((*returned, *withheld)),
            outcome=AccessOutcome(outcome).value,  # stored as its text
            policy_ids=policy_ids,
            policy_set_hash=policy_set_hash,
            consent_ids=consent_ids,
            break_glass=break_glass,
        )

    @event("Recorded")
    def __init__(
        self,
        candidate_id: UUID,
        principal: str,
        role: str,
        purpose: str,
        view: str,
        returned: tuple[str, ...],
        withheld: tuple[str, ...],
        tiers: tuple[str, ...],
        outcome: str,
        policy_ids: tuple[str, ...],
        policy_set_hash: str,
        consent_ids: tuple[UUID, ...],
        break_glass: str | None,
    ) -> None:
        self.candidate_id = candidate_id
        self.principal = principal
        self.role = role
        self.purpose = purpose
        self.view = view
        self.returned = returned
        self.withheld = withheld
        self.outcome = outcome


_RECORDED: type[AggregateCreated] = Access.Recorded  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=1024)
def _tiers(categories: tuple[str, ...]) -> tuple[str, ...]:
    """The tiers of these categories, sorted (reads return the same few sets again and again)."""
    return tuple(sorted({tier_of(c).value for c in categories}))


class DataDisclosure(TimeOrderedIds, SubjectAggregate):
    """Personal data handed over outside the read path (an evidence export, a file sent):
    who handed what (categories, never values) to whom, for which purpose, by which channel."""

    @classmethod
    def record(
        cls,
        candidate_id: UUID,
        disclosed_by: str,
        recipient: str,
        purpose: str,
        channel: str,
        categories: tuple[str, ...],
    ) -> DataDisclosure:
        for name, value in (("recipient", recipient), ("purpose", purpose)):
            if not value.strip():
                raise InvalidInputError(f"field {name!r}: a disclosure names its {name}")
        return cls(
            candidate_id=candidate_id,
            disclosed_by=disclosed_by,
            recipient=recipient,
            purpose=purpose,
            channel=channel,
            categories=tuple(sorted(set(categories))),
        )

    @event("DataDisclosed")
    def __init__(
        self,
        candidate_id: UUID,
        disclosed_by: str,
        recipient: str,
        purpose: str,
        channel: str,
        categories: tuple[str, ...],
    ) -> None:
        self.candidate_id = candidate_id
        self.disclosed_by = disclosed_by
        self.recipient = recipient
        self.purpose = purpose
        self.channel = channel
        self.categories = categories
