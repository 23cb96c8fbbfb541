"""Errors raised by use cases: the store did not have what the command named."""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from pydantic import BaseModel

from domain.access import ReadFailure
from domain.classification import key_name
from domain.errors import (
    DomainError,
    InvalidInputError,
    NotFoundError,
    PickledAsItIs,
    RuleBrokenError,
)
from services.versions import Expected, WeakTag

E = TypeVar("E", bound=BaseException)


# Where the operator finds the ids the store holds: the command line's words, the default.
# A transport that has its own way to list them says that instead (`listed_by`).
LISTED_ON_THE_COMMAND_LINE = "list with `backcheck events`"


class AggregateMissingError(NotFoundError):
    """`field`: the command's field that held the id, when the caller sent it (named by
    `UseCase.call`, which knows the command; the unit of work that finds it missing does not).
    `listed`: where the caller finds the ids of that kind, in its transport's words (none:
    nowhere to send them)."""

    kind: str
    aggregate_id: UUID
    listed: str | None

    def __init__(
        self,
        kind: str,
        aggregate_id: UUID,
        field: str | None = None,
        *,
        listed: str | None = LISTED_ON_THE_COMMAND_LINE,
    ) -> None:
        where = "" if listed is None else f" ({listed})"
        super().__init__(
            f"no {kind} with id {aggregate_id}; check the id{where}",
            kind=kind,
            aggregate_id=aggregate_id,
            **({} if field is None else {"field": field}),
        )
        self.listed = listed  # not a detail: how it is told, not what is missing

    def listed_by(self, listed: str | None) -> AggregateMissingError:
        """This error telling the caller where its transport lists the ids of its kind (the
        HTTP API names its route: infra/http/problems.py), its field kept."""
        field = self.details.get("field")
        return AggregateMissingError(self.kind, self.aggregate_id, field, listed=listed)

    def held_by(self, command: BaseModel) -> AggregateMissingError:
        """This error naming the field of `command` that holds its id (a list's item by its
        index, as validation names it), or itself if none does: an id the use case found on
        its own (a consent's candidate, a reaction's record) is no field of the caller's."""
        if "field" in self.details:
            return self
        wanted = str(self.aggregate_id)
        for name in type(command).model_fields:
            held = getattr(command, name)
            if isinstance(held, UUID | str) and str(held) == wanted:
                return self._named(name)
            if isinstance(held, list | tuple):
                for n, item in enumerate(held):
                    if isinstance(item, UUID | str) and str(item) == wanted:
                        return self._named(f"{name}.{n}")
        return self

    def _named(self, field: str) -> AggregateMissingError:
        return AggregateMissingError(self.kind, self.aggregate_id, field, listed=self.listed)


class CandidateIdTakenError(RuleBrokenError):
    """The id chosen for a new candidate names a stored record of another kind. Which kind,
    and anything of it, is not said: the id is simply not free."""

    def __init__(self, candidate_id: UUID) -> None:
        super().__init__(
            f"the id {candidate_id} is taken: a record that is not a candidate holds it; "
            "choose another id, or leave candidate_id out and one is made",
            candidate_id=candidate_id,
        )


class ConcurrentChangeError(RuleBrokenError):
    def __init__(self, aggregate_ids: list[str]) -> None:
        super().__init__(
            f"someone else changed {', '.join(aggregate_ids)} at the same moment; nothing was "
            "recorded — load it again and retry",
            aggregate_ids=aggregate_ids,
        )


class InternalConflictError(ConcurrentChangeError):
    """A write collided only with a concurrent change to an aggregate the use case writes on
    its own account (services/unit.py: `commit`'s `internal`): the use case decides again on
    a fresh load (`use_case`); answered as any concurrent change once its tries are spent."""


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


class UnknownPrincipalError(NotFoundError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"no principal named {name!r}; `backcheck principals list` shows them", name=name
        )


class AuthenticationError(DomainError):
    """A credential that does not establish who is calling: unknown, revoked or expired.
    The message says which, never repeating the credential."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, reason=reason)


class SetByAuthenticationError(InvalidInputError):
    """A read under an authenticated identity that states another principal or role."""

    def __init__(self, field: str, stated: str, authenticated: str) -> None:
        super().__init__(
            f"field {field!r}: set by authentication; the request said {stated!r}, the "
            f"credential is {authenticated!r} (leave it out, or send the credential's own)",
            field=field,
        )


class StoredDataAlteredError(Exception):
    """Data a read was to use was altered outside backcheck (a view row that does not match
    its MAC, a sealed value that does not open with its subject's key): the read fails with
    nothing returned, and is recorded as failed for `failure` (a `ReadFailure`). The
    adapters' errors (infra/views/integrity.py, infra/privacy/sealing.py) are of this kind."""

    failure: str

    def noted(self, note: str) -> StoredDataAlteredError:
        """A copy of this error, its one line ending with `note` (whether the attempt is
        recorded); a copy, since one error may stop several reads."""
        return retold(self, f"{self}; {note}")


def retold(error: E, line: str) -> E:
    """A copy of `error` (its attributes too) whose message is `line`."""
    told = type(error).__new__(type(error))
    told.__dict__.update(error.__dict__)
    told.args = (line,)
    return told


class DataKeyMissingError(PickledAsItIs, RuntimeError):
    """A personal value cannot be opened: its data key is gone, yet no erasure of the subject
    and no retention of that tier is recorded. Only a recorded erasure may make a value
    unreadable; a key gone without one was deleted around the application (tampering or a
    damaged store), and nothing is shown in its place (never "erased")."""

    failure = ReadFailure.DATA_KEY_MISSING.value

    def __init__(self, candidate_id: object, tier: str, *, attempt_recorded: bool = False):
        self.candidate_id = candidate_id
        self.tier = tier  # the key's scope: a category, or a tier's own key
        self.attempt_recorded = attempt_recorded
        super().__init__(
            f"the {key_name(tier)} data key of candidate {candidate_id} is gone, yet no erasure "
            f"of the candidate or retention of that data is recorded: the key table was altered "
            f"outside backcheck; restore it from a backup (`backcheck audit verify` names "
            f"every key missing)"
            + ("; nothing was returned, and the attempt was recorded" if attempt_recorded else "")
        )

    def recorded(self) -> DataKeyMissingError:
        """The same error, saying that the read it stopped was recorded."""
        return DataKeyMissingError(self.candidate_id, self.tier, attempt_recorded=True)


class DataKeyRaceError(PickledAsItIs, RuntimeError):
    """A data key made for a write was made first by another writer (another thread or
    process, sealing the same subject's first value of a category at the same moment): the
    write rolled back, nothing of it is stored, and it is tried again with the key stored."""

    def __init__(self, candidate_id: object, scope: str) -> None:
        self.candidate_id = candidate_id
        self.scope = scope
        super().__init__(
            f"the {key_name(scope)} data key of candidate {candidate_id} was made by another "
            "writer at the same moment; nothing was written, try the write again"
        )


class UseCaseNotPermittedError(DomainError):
    """An authenticated principal asked for a use case its role may not run (403); nothing
    was recorded, since nothing was read or changed."""

    def __init__(self, name: str, role: str, roles: list[str]) -> None:
        super().__init__(
            f"{name!r} may not be run by a principal in the role {role!r}; it is for: "
            f"{', '.join(roles)}",
            name=name,
            role=role,
            roles=roles,
        )


class VersionMismatchError(DomainError):
    """`If-Match` named a version the aggregate is no longer at, or named it by a weak tag,
    which never matches (412); nothing was recorded."""

    def __init__(self, aggregate_id: object, expected: Expected, actual: int) -> None:
        weak = isinstance(expected, WeakTag)
        message = (
            "If-Match names a weak tag, and a weak tag never matches: If-Match compares tags "
            "strongly (RFC 9110 13.1.1); nothing was recorded — send the ETag as it was "
            'given, "<version>"'
            if weak
            else f"{aggregate_id} is at version {actual}, not {expected} as If-Match says: "
            "someone changed it since you read it; nothing was recorded — read it again and "
            "decide anew"
        )
        super().__init__(
            message,
            aggregate_id=aggregate_id,
            expected=expected.version if isinstance(expected, WeakTag) else expected,
            actual=actual,
            weak=weak,
        )


class OutsideAssignmentsError(DomainError):
    """A principal scoped to some subjects tried to change another's data (403); nothing
    was recorded."""

    def __init__(self, principal: str, subject: object) -> None:
        # the candidate is not named: a command about a consent or an investigation would
        # tell a scoped principal whose it is (`candidate_id` stays for the server's use)
        super().__init__(
            f"{principal} may act only on the subjects it is assigned to; this is about "
            "another, and nothing was recorded",
            principal=principal,
            candidate_id=subject,
        )


class ScopedListError(OutsideAssignmentsError):
    """A principal scoped to some candidates asked for a list (403): a list names every
    candidate, and the scope says it may know of its own alone. Nothing was read."""

    def __init__(self, principal: str, kind: str) -> None:
        DomainError.__init__(
            self,
            f"{principal} is scoped to some candidates (its assignments), and the {kind} list "
            "names every one: lists are for staff not so scoped; read each assigned candidate",
            principal=principal,
            kind=kind,
        )


class WholeStoreError(OutsideAssignmentsError):
    """A principal scoped to some candidates asked for a look at the whole store (the chain's
    verification, the rule check, the refused reads' drill-down): it tells of candidates
    outside the scope (their ids, how many events the store holds), so it is refused (403)
    before anything is read, naming no candidate; nothing is recorded."""

    def __init__(self, principal: str, what: str) -> None:
        DomainError.__init__(
            self,
            f"{principal} is scoped to some candidates (its assignments), and {what} covers "
            "the whole store, every candidate in it: it is for compliance officers not so "
            "scoped; read each assigned candidate by its own routes",
            principal=principal,
            what=what,
        )
