"""Ports: what the use cases need from the outside world, named by role."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import Notification


class KeyStore(Protocol):
    """Holds the per-subject data keys personal values are encrypted with."""

    def destroy(self, subject: UUID, tier: str | tuple[str, ...] | None = None) -> int:
        """Destroy the subject's data keys (one, several together, or all; each named by its
        scope: a category, or a tier); returns how many."""
        ...

    def has_keys(self, subject: UUID) -> bool: ...

    def tiers(self, subject: UUID) -> set[str]:
        """The scopes (categories, and tiers whose own keys sealed values before keys per
        category) the subject has a data key for (i.e. personal values of)."""
        ...

    def held(self) -> set[tuple[UUID, str]]:
        """(subject, scope) of every data key held."""
        ...

    def close(self) -> None:
        """Releases its connections."""
        ...

    def with_the_write(self) -> AbstractContextManager[None]:
        """While inside, in this thread, a data key made for the events being saved is stored
        in their own transaction, not one of its own; a save that another writer beat to the
        same key raises DataKeyRaceError, having stored nothing."""
        ...


class SubjectLog(Protocol):
    """The event log read by data subject: the positions and records of one subject's events,
    found by an index kept with the events, so their cost does not grow with the log."""

    def select_subject_notifications(
        self, subject: UUID, start: int = 1, limit: int = 500
    ) -> Sequence[Notification]:
        """The stored events naming `subject`, from position `start` on, in log order."""
        ...


class ReceiptSigner(Protocol):
    """Signs what an erasure did, so the subject can be given proof of it."""

    def sign(self, statement: bytes) -> tuple[str, str]:
        """Returns (key id, base64 signature)."""
        ...


class ReadModel(Protocol):
    """The read views (see projections/read_views.py), kept up to date from the log.
    Documents returned are shared with a cache: read them, never change them."""

    def catch_up(self) -> int:
        """Apply every event committed so far; returns the position the views are at."""
        ...

    def catch_up_for_decisions(self) -> int:
        """As `catch_up`, except that this process's own access records (which change only
        the access log) may be left for a later batch."""
        ...

    def observe(self, committed: list[tuple[int, Any, bytes]]) -> None:
        """(position, event, its stored state) just committed by this process, so they need
        not be read back; the values the stored state seals are the views' too. Never raises:
        the events are committed, so a failure to apply them is said and left to the next
        read (decision 0055), never the command's."""
        ...

    def get(
        self, view: str, key: str, opening: frozenset[str] | None = None
    ) -> dict[str, Any] | None:
        """One row. With `opening`, only personal values of those categories are decrypted;
        the others come back as WITHHELD_VALUE (categories and names stay readable), so a
        read can be decided before any value it may not return is opened."""
        ...

    def of_subject(
        self, view: str, subject: UUID | str, opening: frozenset[str] | None = None
    ) -> list[dict[str, Any]]:
        """The view's rows about one subject (given by id, or by its text form); `opening` as
        for `get` (what a read decision looks at in them is never a personal value, so it
        passes an empty set: nothing is decrypted)."""
        ...

    def page(
        self, view: str, after: str | None, limit: int, opening: frozenset[str] | None = None
    ) -> list[dict[str, Any]]:
        """At most `limit` rows of `view` whose key comes after `after` (from the first when
        None), in key order; a page costs what its rows do, not what the view holds (the list
        views, projections/listing.py, are keyed for it)."""
        ...

    def close(self) -> None: ...


class DashboardModel(ReadModel, Protocol):
    """The dashboard's views (projections/dashboard.py): read views that also say how far
    they have applied the log, for the dashboard's projection lag."""

    @property
    def position(self) -> int: ...


@dataclass(frozen=True)
class PortalLink:
    """A candidate's portal link on its way to them: the token is the secret that opens the
    portal, so it is left out of this object's repr (a log line or a traceback showing the
    link shows no token)."""

    candidate_id: UUID
    token: str = field(repr=False)
    expires_at: datetime
    # the version of the candidate's link principal this token was issued at: of two links
    # handed on out of order (two requests at once), the later one is what stays
    version: int = 0


class LinkDeliveryError(Exception):
    """A portal link could not be handed on (a full disk, a directory that cannot be
    written); the message says why, never the token."""


class LinkDelivery(Protocol):
    """Hands a candidate their portal link, once the link is committed (an outbox file a
    mailer sends on, a mail server)."""

    def deliver(self, link: PortalLink) -> str:
        """Hands the link on; returns where it went, said without the token. A link older
        (by `version`) than the one last handed on for the candidate is not handed on over
        it: that one replaced it. Raises LinkDeliveryError when it could not."""
        ...

    def withdraw(self, candidate_id: UUID) -> str | None:
        """Takes back the candidate's link waiting to be sent, whatever its version (their
        portal was closed for good: the candidate was erased), so no one sends it on; returns
        where it was, said without the token, or None when none was waiting. Raises
        LinkDeliveryError when it could not."""
        ...
