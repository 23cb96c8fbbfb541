"""Data keys made for a write and stored with it, in the events' own transaction (decision
0038): the key store's part that hands a new key to the event it seals, and stores it when the
recorder inserts that event.

Inside `with_the_write()` (the unit of work's save), a key the thread makes is wrapped but not
stored: the mapper takes it (`take_made`) onto the event it sealed (infra/store/transcoder.py,
KeyedStoredEvent), and the recorder stores it first in the events' transaction, after its
check against recorded erasures (infra/store/recorder.py, `_insert_new_keys` ->
`insert_made`). Until the write commits the key is seen by that write alone; a write that
fails forgets it. A key another writer stored first refuses the write (DataKeyRaceError,
nothing stored), and the unit of work makes it again, with theirs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from infra.privacy.providers import KEY_CHECK_TABLE
from services.errors import DataKeyRaceError

if TYPE_CHECKING:
    from infra.privacy.keystore import SQLKeyStore, WrongMasterKeyError
    from infra.privacy.providers import KeyProvider


@dataclass(frozen=True)
class NewKey:
    """A data key made for events being saved; `store` stores it (`insert_made`) with them."""

    subject: UUID
    scope: str
    wrapped: bytes
    provider: KeyProvider
    key: bytes = field(repr=False)
    store: SQLKeyStore = field(repr=False, compare=False)
    # made without a lookup: for a subject's first event, or one registered here a moment ago
    # (SQLKeyStore.data_keys, `sealing`)
    guessed: bool = field(default=False, compare=False)


class Making:
    """The keys made in one thread's write: found by the lookups of that write alone until
    it commits."""

    __slots__ = ("absent", "first", "guessed", "made", "unattached")

    def __init__(self) -> None:
        self.made: dict[tuple[UUID, str], NewKey] = {}
        self.unattached: list[NewKey] = []
        self.absent: set[tuple[UUID, str]] = set()  # looked up in this write, not stored
        self.guessed: set[tuple[UUID, str]] = set()  # of them, taken as absent unasked
        self.first: set[UUID] = set()  # subjects whose own stream begins in this write


class KeysWithTheWrite:
    """Mixin of SQLKeyStore (infra/privacy/keystore.py), whose state it uses."""

    _with_the_write: bool
    _making: threading.local
    _provider: KeyProvider
    _cache: dict[tuple[UUID, str], tuple[float, bytes]]
    _refuted: set[UUID]
    _registered: dict[UUID, float]
    _note_registered: Callable[[set[UUID], float], None]
    _lock: threading.Lock
    _sql: Callable[[str], str]
    _tables_in: str
    _p: str
    wrong_key: Callable[[str], WrongMasterKeyError]

    @contextmanager
    def with_the_write(self) -> Iterator[None]:
        """While inside, a data key this thread makes is not stored at once: it is handed to
        the events being mapped (`take_made`) and stored in their transaction; kept for later
        lookups once the write is over without an error, forgotten otherwise. Outside, or on a
        key store whose recorder stores no keys, keys are made in a transaction of their own."""
        if not self._with_the_write or getattr(self._making, "now", None) is not None:
            yield
            return
        making = self._making.now = Making()
        try:
            yield
        finally:
            self._making.now = None
        now = time.monotonic()  # committed (an error leaves them behind, never stored)
        with self._lock:
            for (subject, scope), new in making.made.items():
                self._cache[(subject, scope)] = (now, new.key)
        if making.first:  # their keys: those just made, no other
            self._note_registered(making.first, now)

    def _was_refuted(self, subject: UUID) -> bool:
        """Whether keys taken to be absent for the subject's first event were found stored
        (the write is being made again): once asked, it is looked up as any other."""
        with self._lock:
            if subject not in self._refuted:
                return False
            self._refuted.discard(subject)
            return True

    def making_with_the_write(self) -> bool:
        """Whether a key this thread makes now is stored with the events being saved (and
        checked against recorded erasures there, by the recorder)."""
        return getattr(self._making, "now", None) is not None

    def take_made(self) -> tuple[NewKey, ...]:
        """The keys made in this thread's write since it was last asked: for the event just
        mapped to carry to the recorder."""
        making: Making | None = getattr(self._making, "now", None)
        if making is None or not making.unattached:
            return ()
        taken = tuple(making.unattached)
        making.unattached.clear()
        return taken

    def _make_with_the_write(
        self, making: Making, subject: UUID, scopes: list[str]
    ) -> dict[str, bytes]:
        provider = self._provider
        made: dict[str, bytes] = {}
        for scope in scopes:
            key = os.urandom(32)
            guessed = (subject, scope) in making.guessed
            new = NewKey(subject, scope, provider.wrap(key), provider, key, self, guessed)  # type: ignore[arg-type]
            making.made[(subject, scope)] = new
            making.unattached.append(new)
            made[scope] = key
        return made

    def insert_made(self, cursor: Any, made: Sequence[NewKey]) -> None:
        """Keys made for the events being inserted, in their transaction, in one statement:
        inserted only while the store is bound to the key that wrapped them, and only if no
        other writer made the subject's key for that scope first (else the write is refused,
        to be tried again with theirs: values sealed with this one could never be opened)."""
        for new in made:
            if new.provider is not self._provider:  # a rotation in this process switched keys
                raise DataKeyRaceError(new.subject, new.scope)
        provider = self._provider
        raw = getattr(cursor, "sqlite_cursor", cursor)  # a cursor (or psycopg's connection)
        sqlite = self._p == "?"
        rows = ", ".join(["(?, ?, ?, ?)"] * len(made))
        inserted = raw.execute(
            self._sql(
                f"INSERT INTO {self._tables_in}backcheck_keys (subject, tier, wrapped, master) "
                f"SELECT * FROM (VALUES {rows}) AS made WHERE EXISTS (SELECT 1 FROM "
                f"{self._tables_in}{KEY_CHECK_TABLE} WHERE scheme = ? AND kcv = ?) "
                "ON CONFLICT (subject, tier) DO NOTHING" + ("" if sqlite else " RETURNING tier")
                # psycopg in a pipeline knows the count only from the rows it fetches
            ),
            (
                *(v for k in made for v in (str(k.subject), k.scope, k.wrapped, provider.key_id)),
                provider.check_scheme,
                provider.check_value(),
            ),
        )
        if (inserted.rowcount if sqlite else len(inserted.fetchall())) == len(made):
            return
        for new in made:
            # a rotation in this process switched keys while the insert waited for it (on
            # PostgreSQL the rotation's lock on the key table, not the writers' lock): the
            # store is bound to the new key now, and the write is made again with it
            if new.provider is not self._provider:
                raise DataKeyRaceError(new.subject, new.scope)
        for new in made:
            found = raw.execute(
                self._sql(
                    f"SELECT wrapped FROM {self._tables_in}backcheck_keys "
                    "WHERE subject = ? AND tier = ?"
                ),
                (str(new.subject), new.scope),
            ).fetchone()
            if found is not None and bytes(found["wrapped"]) != new.wrapped:
                if new.guessed:  # the write made again looks the subject's keys up
                    with self._lock:
                        if self._registered.pop(new.subject, None) is None:  # a first event's
                            self._refuted.add(new.subject)
                raise DataKeyRaceError(new.subject, new.scope)
        raise self.wrong_key("the store was rotated to another master key since")
