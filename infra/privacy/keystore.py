"""Per-subject data keys, wrapped by the master key, in a table of their own.

Personal values are encrypted with a data key per (subject, tier). The data keys are stored
wrapped (AES key wrap, RFC 3394) by a master key that never touches the database. Unlike the
event and chain tables, this table is deletable on purpose: destroying a subject's rows makes
every copy of their personal values unreadable — in the store, in views, on Kafka — while the
hash chain, which covers ciphertext, still verifies (crypto-shredding).

The master key is held by a key provider (infra/privacy/providers.py: a key file, or a PKCS#11
token that wraps and unwraps itself); the store sees wrap and unwrap calls, never the key. Each
wrapped data key names the master that wrapped it (`master`, the provider's key id; none on a
key wrapped before rotation existed: the store's key then).

The store is bound to its master key: a key check value (an HMAC or CMAC of a fixed label under
the key, never the key) is recorded in `backcheck_key_check` when the key store is first opened,
and compared on every open after that, so another key is refused before it wraps anything. A
data key is made only while the key that wraps it is the store's (one statement), so once a
rotation (infra/privacy/rotation.py) has moved the store to a new key, a process still holding
the old one is refused in one line rather than wrapping keys no one could open.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap

from domain.errors import PickledAsItIs
from infra.privacy.providers import (  # noqa: F401  (where they were, for their callers)
    KEY_CHECK_SCHEME,
    KEY_CHECK_TABLE,
    key_check_value,
    load_master_key,
    refuse_shared,
)
from infra.privacy.write_keys import KeysWithTheWrite, Making
from infra.store.ddl import serialise_ddl

if TYPE_CHECKING:
    from infra.privacy.providers import KeyProvider

CACHE_SECONDS = 30.0  # how long another process may still use a key after it was destroyed
REGISTERED_KEPT = 10_000  # subjects registered lately, before those past CACHE_SECONDS go

# Added to stores made before rotation: the key id that wrapped `wrapped` (none: the store's
# key then), and during a rotation the new key's wrapping beside it (infra/privacy/rotation.py)
ROTATION_COLUMNS = (("master", "TEXT"), ("next_wrapped", "BYTEA"), ("next_master", "TEXT"))

log = logging.getLogger(__name__)

# Makes a subject's data keys (scopes, wrapped keys, the provider wrapping them) in one
# statement unless they exist, only while the store is bound to the provider's key, without
# waiting for the flush; returns (scope, wrapped, master) of each key the subject now has.
MakeKeys = Callable[[UUID, list[str], list[bytes], "KeyProvider"], list[Any]]


class WrongMasterKeyError(PickledAsItIs, Exception):
    """The master key is not the one this store's data keys are wrapped with: refused before
    anything is written, since a data key wrapped by it could never be opened with the
    store's own key."""

    def __init__(
        self,
        reason: str,
        key_file: Path | None = None,
        *,
        setting: str = "BACKCHECK_MASTER_KEY_FILE",
        key: str | None = None,
    ) -> None:
        self.reason = reason
        self.key_file = key_file
        key = key or (f"the key in {key_file}" if key_file else "this key")
        super().__init__(
            f"{setting}: {key} is not this store's master key ({reason}); nothing was written: "
            f"point {setting} at the key the store was made with, or rotated to"
        )


class SQLKeyStore(KeysWithTheWrite):
    """The key table, on the same database as the events (SQLite file or PostgreSQL).

    `connect()` gives a connection for changes that must be durable when they return (a key
    destroyed), `read()` one for lookups, `create()` one for making a key. A new key need not
    be flushed on its own: it is made just before the first events sealed with it are written,
    to the same database, and the commit of those events flushes the log (SQLite's WAL,
    PostgreSQL's WAL) up to and including the key. If they never commit, nothing uses the key.
    That saves a flush per new subject and tier.

    On SQLite (`with_the_write`) a key made while events are saved goes further: it is not
    written on its own at all, but carried by the event it seals to the recorder and inserted
    in the events' transaction (infra/privacy/write_keys.py): one write
    transaction a new subject, not two, and a write that fails leaves no key behind. Another
    writer may have stored the same key meanwhile; the insert then refuses the write
    (DataKeyRaceError, nothing stored) and the unit of work makes it again, with theirs.
    PostgreSQL makes its keys in one statement of their own (`make`)."""

    def __init__(
        self,
        connect: Callable[[], Any],
        placeholder: str,
        provider: KeyProvider,
        close: Callable[[], None] | None = None,
        read: Callable[[], Any] | None = None,
        create: Callable[[], Any] | None = None,
        make: MakeKeys | None = None,
        with_the_write: bool = False,
        schema: str | None = None,
    ):
        self._connect = connect
        # the key tables as the events' own connection names them (on PostgreSQL it has no
        # search_path: the recorder names its schema), for the keys stored with a write
        self._tables_in = f'"{schema}".' if schema else ""
        # new keys made in the events' own transaction (the recorder inserts them) when the
        # recorder does so; else in one of their own, before the events (`create`, `make`)
        self._with_the_write = with_the_write
        self._making = threading.local()
        self._make = make
        self._read = read or connect
        self._create = create or connect
        self._close = close
        self._p = placeholder
        self._provider = provider
        # the providers this process holds by key id: during a rotation in this process, the
        # new one too, so its writers go on across the switch (infra/privacy/rotation.py)
        self._providers = {provider.key_id: provider}
        self._cache: dict[tuple[UUID, str], tuple[float, bytes]] = {}
        # subjects whose keys were taken to be absent (`first`) when one was stored: looked up
        self._refuted: set[UUID] = set()
        # subjects registered by this process, and when: their keys then were those it made
        self._registered: dict[UUID, float] = {}
        self._lock = threading.Lock()
        tables = (
            "CREATE TABLE IF NOT EXISTS backcheck_keys ("
            "subject TEXT NOT NULL, tier TEXT NOT NULL, wrapped BYTEA NOT NULL, "
            "master TEXT, next_wrapped BYTEA, next_master TEXT, PRIMARY KEY (subject, tier))",
            f"CREATE TABLE IF NOT EXISTS {KEY_CHECK_TABLE} ("
            "scheme TEXT PRIMARY KEY, kcv BYTEA NOT NULL)",
        )
        # one transaction, one process at a time (the store's writer lock on SQLite, the DDL
        # lock on PostgreSQL): processes opening a new store with different keys cannot both
        # bind it, and a refused key leaves nothing behind
        with self._connect() as conn:
            if placeholder == "?":
                for table in tables:
                    conn.execute(table.replace("BYTEA", "BLOB"))
                columns = conn.execute("PRAGMA table_info(backcheck_keys)").fetchall()
                have = {str(c[1]) for c in columns}
                for column, kind in ROTATION_COLUMNS:  # a store made before
                    if column not in have:
                        kind = kind.replace("BYTEA", "BLOB")
                        conn.execute(f"ALTER TABLE backcheck_keys ADD COLUMN {column} {kind}")
                self._bind_master_key(conn)
            else:
                with conn.transaction():
                    serialise_ddl(conn)
                    for table in tables:
                        conn.execute(table)
                    for column, kind in ROTATION_COLUMNS:
                        conn.execute(
                            f"ALTER TABLE backcheck_keys ADD COLUMN IF NOT EXISTS {column} {kind}"
                        )
                    self._bind_master_key(conn)

    def _bind_master_key(self, conn: Any) -> None:
        """The store is bound to the first master key it is opened with; another is refused.
        A store made before the check (data keys, no check value) is bound by a key that
        unwraps most of its data keys: where a wrong key was accepted before, the few keys it
        wrapped are not the store's."""
        select = f"SELECT scheme, kcv FROM {KEY_CHECK_TABLE}"
        rows = conn.execute(select).fetchall()
        provider = self._provider
        if not rows:
            self._prove_on_data_keys(conn)
            conn.execute(
                self._sql(
                    f"INSERT INTO {KEY_CHECK_TABLE} (scheme, kcv) VALUES (?, ?) "
                    "ON CONFLICT (scheme) DO NOTHING"
                ),
                (provider.check_scheme, provider.check_value()),
            )
            rows = conn.execute(select).fetchall()
        if not any(
            str(scheme) == provider.check_scheme
            and hmac.compare_digest(bytes(kcv), provider.check_value())
            for scheme, kcv in rows
        ):
            raise self.wrong_key("the store recorded another key's check value")

    def wrong_key(self, reason: str) -> WrongMasterKeyError:
        provider = self._provider
        return WrongMasterKeyError(reason, setting=provider.setting, key=provider.describe())

    def _prove_on_data_keys(self, conn: Any) -> None:
        total = unwrapped = 0
        for (wrapped,) in conn.execute("SELECT wrapped FROM backcheck_keys").fetchall():
            total += 1
            try:
                self._provider.unwrap(bytes(wrapped))
            except InvalidUnwrap:
                continue
            unwrapped += 1
        if total and unwrapped * 2 <= total:
            raise self.wrong_key(f"it unwraps {unwrapped} of the store's {total} data keys")
        if unwrapped < total:
            log.warning(
                "%d of this store's %d data keys were wrapped by another master key before "
                "the store was bound to its key; values sealed with them cannot be read",
                total - unwrapped,
                total,
            )

    def close(self) -> None:
        if self._close is not None:
            self._close()
        for provider in self._providers.values():
            provider.close()

    def _sql(self, text: str) -> str:
        return text.replace("?", self._p)

    def data_key(self, subject: UUID, tier: str, *, create: bool) -> bytes | None:
        """The subject's key for this tier (or category); made on first use when `create`
        (if another process made it first, theirs is the key); None if destroyed (or never
        made)."""
        return self.data_keys(subject, (tier,), create=create).get(tier)

    def data_keys(
        self,
        subject: UUID,
        scopes: Collection[str],
        *,
        create: bool,
        sealing: bool = False,
        first: bool = False,
    ) -> dict[str, bytes]:
        """Several keys of one subject (keys per category: an event's values may need a few),
        looked up in one statement and, when `create`, the missing ones made in one
        transaction rather than one each; those destroyed (or never made) are left out.

        `sealing`: the keys are for an event being sealed in a write, which makes those found
        missing and stores them with the event; `first`: that event is the first of the
        subject's own stream (their registration). A key of a subject not yet registered is
        then taken to be absent without a lookup, and so is a key not cached of a subject this
        process registered less than CACHE_SECONDS ago (`with_the_write`: the keys it made
        then were all the subject had). One stored after all (the guess wrong) refuses the
        write where the keys are stored (`insert_made`, DataKeyRaceError), and the write made
        again looks them up."""
        now = time.monotonic()
        found: dict[str, bytes] = {}
        wanted: list[str] = []
        with self._lock:
            for scope in scopes:
                cached = self._cache.get((subject, scope))
                if cached and now - cached[0] < CACHE_SECONDS:
                    found[scope] = cached[1]
                else:
                    wanted.append(scope)
        if not wanted:
            return found
        making: Making | None = getattr(self._making, "now", None)
        if making is not None:  # in a write: the keys made for it first
            for scope in list(wanted):
                new = making.made.get((subject, scope))
                if new is not None:
                    found[scope] = new.key
                    wanted.remove(scope)
            if not wanted:
                return found
        unknown = wanted
        if making is not None and create:  # those this write found absent a moment ago
            unknown = [s for s in wanted if (subject, s) not in making.absent]
        elif (
            making is not None
            and sealing
            and (first or self._all_cached(subject, now))
            and not self._was_refuted(subject)
        ):
            unknown = []
            making.guessed.update((subject, s) for s in wanted)
            if first:
                making.first.add(subject)
        marks = ", ".join("?" * len(unknown))
        select = self._sql(
            "SELECT tier, wrapped, master FROM backcheck_keys "
            f"WHERE subject = ? AND tier IN ({marks})"
        )
        if not create or making is not None:
            rows = []
            if unknown:
                with self._read() as conn:
                    rows = conn.execute(select, (str(subject), *unknown)).fetchall()
            if making is not None:
                stored = {str(r[0]) for r in rows}
                missing = [s for s in wanted if s not in stored]
                if create:  # stored with the events that need them, not on their own
                    found.update(self._make_with_the_write(making, subject, missing))
                else:
                    making.absent.update((subject, s) for s in missing)
        else:
            for _ in range(2):  # again if a rotation in this process switched keys meanwhile
                rows, provider = self._make_many(subject, wanted, select)
                if len(rows) == len(wanted) or provider is self._provider:
                    break
            if len(rows) < len(wanted):  # not made: the store is no longer bound to this key
                raise self.wrong_key("the store was rotated to another master key since")
        for scope, wrapped, master in rows:
            key = self._unwrap(bytes(wrapped), master)
            found[str(scope)] = key
            with self._lock:
                self._cache[(subject, str(scope))] = (now, key)
        return found

    def _note_registered(self, subjects: set[UUID], now: float) -> None:
        """Subjects whose first event this process stored just now, with the keys it made."""
        with self._lock:
            if len(self._registered) > REGISTERED_KEPT:  # those past the window go
                for old in [s for s, at in self._registered.items() if now - at >= CACHE_SECONDS]:
                    del self._registered[old]
            self._registered.update(dict.fromkeys(subjects, now))

    def _all_cached(self, subject: UUID, now: float) -> bool:
        """Whether the subject's keys cached are all it has, as far as this process knows:
        registered here less than CACHE_SECONDS ago (the keys made then were all it had). A
        key another process stored since refuses the write that took it to be absent."""
        with self._lock:
            registered = self._registered.get(subject)
        return registered is not None and now - registered < CACHE_SECONDS

    def _make_many(
        self, subject: UUID, scopes: list[str], select: str
    ) -> tuple[list[Any], KeyProvider]:
        """Data keys made unless they exist (if another process made one first, theirs is the
        key), wrapped by this store's key, in one transaction: inserted only while the store is
        bound to it."""
        if self._make is not None:  # in one statement (PostgreSQL: one round trip)
            provider = self._provider
            made = [provider.wrap(os.urandom(32)) for _ in scopes]
            rows = self._make(subject, scopes, made, provider)
            if len(rows) < len(scopes):  # one made by another writer after the statement began
                with self._read() as conn:
                    rows = conn.execute(select, (str(subject), *scopes)).fetchall()
            return rows, provider
        with self._create() as conn:
            provider = self._provider  # read under the writer lock: a rotation switches it there
            insert = self._sql(
                "INSERT INTO backcheck_keys (subject, tier, wrapped, master) "
                f"SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM {KEY_CHECK_TABLE} "
                "WHERE scheme = ? AND kcv = ?) ON CONFLICT (subject, tier) DO NOTHING"
            )
            check = (provider.check_scheme, provider.check_value())
            for scope in scopes:
                wrapped = provider.wrap(os.urandom(32))
                conn.execute(insert, (str(subject), scope, wrapped, provider.key_id, *check))
            return conn.execute(select, (str(subject), *scopes)).fetchall(), provider

    def _unwrap(self, wrapped: bytes, master: str | None) -> bytes:
        provider = self._providers.get(master) if master else self._provider
        if provider is None:
            raise self.wrong_key(f"a data key is wrapped by master key {master}")
        try:
            return provider.unwrap(wrapped)
        except InvalidUnwrap:
            raise self.wrong_key("a data key does not unwrap with it") from None

    @property
    def provider(self) -> KeyProvider:
        return self._provider

    def hold(self, provider: KeyProvider) -> None:
        """Lets this process unwrap data keys wrapped by `provider` too (a rotation's new key)."""
        self._providers[provider.key_id] = provider

    def use(self, provider: KeyProvider) -> None:
        """Wrap new data keys with `provider` from now on: called by a rotation under the
        writer lock, in the transaction that binds the store to it."""
        self.hold(provider)
        self._provider = provider

    def transaction(self) -> Any:
        """A transaction on the key table that keeps this store's writers out (a rotation)."""
        return self._connect()

    def key_checks(self) -> list[tuple[str, bytes]]:
        """(scheme, check value) of the master key the store is bound to."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT scheme, kcv FROM {KEY_CHECK_TABLE}").fetchall()
        return [(str(scheme), bytes(kcv)) for scheme, kcv in rows]

    @property
    def placeholder(self) -> str:
        return self._p

    def destroy(self, subject: UUID, tier: str | tuple[str, ...] | None = None) -> int:
        """Destroys the subject's keys: all, one (a tier's or a category's: the `tier` column
        holds either), or several in one statement (a shredding's keys go together)."""
        scopes = (tier,) if isinstance(tier, str) else tier
        if scopes == ():
            return 0
        with self._lock:
            self._registered.pop(subject, None)
            for k in [k for k in self._cache if k[0] == subject]:
                if scopes is None or k[1] in scopes:
                    del self._cache[k]
        with self._connect() as conn:
            if scopes is None:
                cur = conn.execute(
                    self._sql("DELETE FROM backcheck_keys WHERE subject = ?"), (str(subject),)
                )
            else:
                marks = ", ".join("?" * len(scopes))
                delete = f"DELETE FROM backcheck_keys WHERE subject = ? AND tier IN ({marks})"
                cur = conn.execute(self._sql(delete), (str(subject), *scopes))
            return int(cur.rowcount or 0)

    def count(self) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT COUNT(*) FROM backcheck_keys").fetchone()
        return int(row[0])

    def tiers(self, subject: UUID) -> set[str]:
        with self._read() as conn:
            rows = conn.execute(
                self._sql("SELECT tier FROM backcheck_keys WHERE subject = ?"), (str(subject),)
            ).fetchall()
        return {str(r[0]) for r in rows}

    def has_keys(self, subject: UUID) -> bool:
        with self._read() as conn:
            row = conn.execute(
                self._sql("SELECT 1 FROM backcheck_keys WHERE subject = ? LIMIT 1"),
                (str(subject),),
            ).fetchone()
        return row is not None

    def held(self) -> set[tuple[UUID, str]]:
        """(subject, tier) of every data key in the table (none is unwrapped)."""
        with self._read() as conn:
            rows = conn.execute("SELECT subject, tier FROM backcheck_keys").fetchall()
        return {(UUID(str(r[0])), str(r[1])) for r in rows}
