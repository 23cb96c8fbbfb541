"""Access: every read of personal data is a fact, recorded before the data leaves.

An access event says who read, in which role, for which purpose, about whom, which categories
were returned and which withheld, what was decided and by which policies (and which policy
set), and under which consents (none for a refused read: it relied on nothing). It never
holds a personal value.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import AggregateCreated, event

from domain.caller import CALLER_UNKNOWN, ROLE_UNRECORDED
from domain.caller import UNKNOWN_CALLER as UNKNOWN_CALLER  # named here too, where found before
from domain.caller import Authenticated as Authenticated
from domain.caller import Authentication as Authentication
from domain.caller import upcast_authenticated as upcast_authenticated
from domain.classification import CASE_NOTE, PersonalField, tier_of, upcast_personal
from domain.errors import InvalidInputError
from domain.subject import SubjectAggregate, TimeOrderedIds


class AccessOutcome(StrEnum):
    """What became of a read (`allowed`, `partial`, `refused`, `failed`) or of a hand-over
    (`disclosed`), as the access log records it."""

    ALLOWED = "allowed"
    PARTIAL = "partial"  # some categories returned, some withheld
    REFUSED = "refused"
    DISCLOSED = "disclosed"
    FAILED = "failed"  # nothing returned: the data it needed could not be read (`ReadFailure`)


class ReadFailure(StrEnum):
    """Why a read failed (`AccessOutcome.FAILED`), as its record keeps it: the data it was to
    use could not be trusted or opened, so nothing was returned. The names are the error
    codes the one-line error and the problem document give (infra/problem.py)."""

    DATA_KEY_MISSING = "data-key-missing"  # a data key gone with no erasure recorded
    SEAL_BROKEN = "seal-broken"  # a sealed value that does not open with its subject's key
    VIEWS_ALTERED = "views-altered"  # a view row that does not match its MAC
    # a read of several candidates fails whole: those it could have answered say so
    WITH_ANOTHER = "another-read-in-the-request-failed"
    # what a failed read recorded before records said why reads as (all were data-key-missing
    # then, but the record did not say so)
    UNRECORDED = "not recorded (before v4)"


JUSTIFICATION = "break_glass"


def justification(text: str) -> PersonalField:
    """A break-glass justification as the access record keeps it: a personal value of the
    subject (it may well name them), sealed with their data and shredded with it."""
    return PersonalField(JUSTIFICATION, CASE_NOTE, text)


def _authentication(value: str) -> str:
    try:
        return Authentication(value).value
    except ValueError:
        known = ", ".join(a.value for a in Authentication)
        raise InvalidInputError(f"field 'authentication': one of {known}") from None


class AuthenticationSinceV2(SubjectAggregate.Created):
    """A record whose v1 did not say how its principal was authenticated: v1 records were all
    made on the operator's command line (nothing else could read), so they replay as such."""

    class_version = 2

    @classmethod
    def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
        state["authentication"] = Authentication.OPERATOR.value


class Access(TimeOrderedIds, SubjectAggregate):
    class Recorded(AuthenticationSinceV2):
        """v3: a break-glass justification is a personal value of the subject (it may name
        them), sealed and shredded with their data; v2 held it in clear. v4: a failed read
        says why (`failure`, a `ReadFailure`); None for any other outcome."""

        class_version = 4
        principal: str
        role: str
        purpose: str
        view: str
        returned: tuple[str, ...]
        withheld: tuple[str, ...]
        tiers: tuple[str, ...]
        outcome: str
        policy_ids: tuple[str, ...]
        policy_set_hash: str
        consent_ids: tuple[UUID, ...]
        break_glass: PersonalField | None
        authentication: str
        failure: str | None

        @classmethod
        def upcast_v2_v3(cls, state: dict[str, Any]) -> None:
            if state.get("break_glass") is not None:
                state["break_glass"] = upcast_personal(
                    state["break_glass"], JUSTIFICATION, CASE_NOTE
                )

        @classmethod
        def upcast_v3_v4(cls, state: dict[str, Any]) -> None:
            failed = state.get("outcome") == AccessOutcome.FAILED.value
            state["failure"] = ReadFailure.UNRECORDED.value if failed else None

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
        *,
        authentication: str,
        failure: str | None = None,
    ) -> Access:
        if not purpose.strip():
            raise InvalidInputError("field 'purpose': every read states its purpose")
        if (failure is None) != (outcome != AccessOutcome.FAILED.value):
            raise InvalidInputError("field 'failure': a failed read says why, no other does")
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
            consent_ids=relied_on(AccessOutcome(outcome).value, consent_ids),
            break_glass=None if break_glass is None else justification(break_glass),
            authentication=_authentication(authentication),
            failure=None if failure is None else ReadFailure(failure).value,
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
        break_glass: PersonalField | None,
        authentication: str,
        failure: str | None,
    ) -> None:
        self.candidate_id = candidate_id
        self.principal = principal
        self.authentication = authentication
        self.role = role
        self.purpose = purpose
        self.view = view
        self.returned = returned
        self.withheld = withheld
        self.outcome = outcome


_RECORDED: type[AggregateCreated] = Access.Recorded


def relied_on(outcome: str, consent_ids: tuple[UUID, ...]) -> tuple[UUID, ...]:
    """The consents a read relied on: those in force it was decided under, none for a refused
    read, which returned nothing. (Records made before this rule named, for a refusal, the
    consents in force when it was refused; they are stored as they are, and read as relying
    on none.)"""
    return () if outcome == AccessOutcome.REFUSED.value else tuple(consent_ids)


@functools.lru_cache(maxsize=1024)
def _tiers(categories: tuple[str, ...]) -> tuple[str, ...]:
    """The tiers of these categories, sorted (reads return the same few sets again and again)."""
    return tuple(sorted({tier_of(c).value for c in categories}))


class DataDisclosure(TimeOrderedIds, SubjectAggregate):
    """Personal data handed over outside the read path (an evidence export, a file sent):
    who handed what (categories, never values) to whom, for which purpose, by which channel."""

    class DataDisclosed(AuthenticationSinceV2):
        """v3: the role the discloser acted in (`role`, their authenticated role); None on a
        record made before disclosures said it. v4: who called it, as authenticated
        (`authenticated`, beside `authentication`, which says how `disclosed_by` was)."""

        class_version = 4
        upcast_v3_v4 = CALLER_UNKNOWN
        authenticated: Authenticated
        disclosed_by: str
        role: str | None
        recipient: str
        purpose: str
        channel: str
        categories: tuple[str, ...]
        authentication: str

        upcast_v2_v3 = ROLE_UNRECORDED

    @classmethod
    def record(
        cls,
        candidate_id: UUID,
        disclosed_by: str,
        recipient: str,
        purpose: str,
        channel: str,
        categories: tuple[str, ...],
        *,
        authentication: str,
        role: str,
    ) -> DataDisclosure:
        for name, value in (("recipient", recipient), ("purpose", purpose)):
            if not value.strip():
                raise InvalidInputError(f"field {name!r}: a disclosure names its {name}")
        return cls(
            candidate_id=candidate_id,
            disclosed_by=disclosed_by,
            role=role,
            recipient=recipient,
            purpose=purpose,
            channel=channel,
            categories=tuple(sorted(set(categories))),
            authentication=_authentication(authentication),
        )

    @event("DataDisclosed")
    def __init__(
        self,
        candidate_id: UUID,
        disclosed_by: str,
        role: str | None,
        recipient: str,
        purpose: str,
        channel: str,
        categories: tuple[str, ...],
        authentication: str,
    ) -> None:
        self.candidate_id = candidate_id
        self.disclosed_by = disclosed_by
        self.role = role
        self.authentication = authentication
        self.recipient = recipient
        self.purpose = purpose
        self.channel = channel
        self.categories = categories
