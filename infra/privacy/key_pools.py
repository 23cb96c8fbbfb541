"""The key store (infra/privacy/keystore.py) on each backend's connections: on SQLite the event
store's own pool, on PostgreSQL a small pool of its own. On both, the keys a write makes are
stored by the recorder in the events' own transaction (infra/store/recorder.py:
`insert_new_keys`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.sqlite import SQLiteDatastore

from infra.privacy.keystore import SQLKeyStore
from infra.privacy.providers import KEY_CHECK_TABLE
from infra.store.filelock import for_database

if TYPE_CHECKING:
    from infra.privacy.providers import KeyProvider

T = TypeVar("T")

# A new subject's keys in one statement, one round trip where a transaction of their own took
# five and more: inserted unless they exist and only while the store is bound to the wrapping
# key, committed without waiting for the flush (the transaction's own setting: the events
# sealed with them commit after, and their flush carries the keys' records with it), and read
# back with those made before.
_MAKE = (
    "WITH made AS (INSERT INTO backcheck_keys (subject, tier, wrapped, master) "
    "SELECT %(subject)s, k.tier, k.wrapped, %(master)s "
    "FROM unnest(%(tiers)s::text[], %(wrapped)s::bytea[]) AS k(tier, wrapped) "
    "WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL "
    f"AND EXISTS (SELECT 1 FROM {KEY_CHECK_TABLE} WHERE scheme = %(scheme)s AND kcv = %(kcv)s) "
    "ON CONFLICT (subject, tier) DO NOTHING RETURNING tier, wrapped, master) "
    "SELECT tier, wrapped, master FROM made UNION ALL "
    "SELECT tier, wrapped, master FROM backcheck_keys WHERE subject = %(subject)s "
    "AND tier = ANY(%(tiers)s) AND tier NOT IN (SELECT tier FROM made)"
)


def sqlite_keystore(datastore: SQLiteDatastore, provider: KeyProvider) -> SQLKeyStore:
    """On the event store's own connection pool: a key write waits for the store's writer in
    this process instead of sleeping in SQLite's busy handler (concurrent registrations had
    been slower than one at a time), and no connection is opened per lookup. Writers of
    other processes are kept apart by the store's writer lock (infra/store/filelock.py)."""
    lock = for_database(datastore.pool.db_name)

    @contextmanager
    def transaction(commit: bool) -> Iterator[sqlite3.Cursor]:
        with lock.held() if commit else nullcontext(), datastore.transaction(commit=commit) as c:
            yield c.sqlite_cursor

    @contextmanager
    def reading() -> Iterator[sqlite3.Cursor]:
        # a lookup is one SELECT: one snapshot of the file by itself, no BEGIN and ROLLBACK
        with datastore.get_connection(commit=False) as conn, conn.cursor() as cursor:
            yield cursor

    @contextmanager
    def unflushed() -> Iterator[sqlite3.Cursor]:
        # the safety level can only change outside a transaction, on the pool's writer
        with lock.held(), datastore.get_connection(commit=True) as conn:
            conn.cursor().execute("PRAGMA synchronous=NORMAL")  # WAL written, not flushed
            try:
                with conn.transaction(commit=True) as curs:
                    yield curs.sqlite_cursor
            finally:
                conn.cursor().execute("PRAGMA synchronous=FULL")  # the library's default

    return SQLKeyStore(
        lambda: transaction(True),
        "?",
        provider,
        read=reading,
        create=unflushed,  # a key made outside a write (the recorder stores those made in one)
        with_the_write=True,
    )


def retried(call: Callable[[], T]) -> T:
    from infra.store.pg_pool import retried as run  # psycopg's, for a PostgreSQL store alone

    return run(call)


class PooledKeyStore(SQLKeyStore):
    """The key store on a PostgreSQL pool: a lookup whose pooled connection the server had
    dropped (a restart, a terminated backend) is run again on a fresh one, the pool's dead
    connections let go meanwhile: at once, then as the event store's recorder and the views
    try theirs (infra/store/pg_pool.py, `retried`: a connection made anew may be dropped too
    while the server comes back). Each may run again: a lookup reads, and a key is made
    unless one exists (a second run returns the first run's). A destruction is not retried
    (its count would be the second run's)."""

    def data_keys(
        self,
        subject: UUID,
        scopes: Collection[str],
        *,
        create: bool,
        sealing: bool = False,
        first: bool = False,
    ) -> dict[str, bytes]:
        return retried(
            lambda: SQLKeyStore.data_keys(
                self, subject, scopes, create=create, sealing=sealing, first=first
            )
        )

    def count(self) -> int:
        return retried(super().count)

    def tiers(self, subject: UUID) -> set[str]:
        return retried(lambda: SQLKeyStore.tiers(self, subject))

    def has_keys(self, subject: UUID) -> bool:
        return retried(lambda: SQLKeyStore.has_keys(self, subject))

    def held(self) -> set[tuple[UUID, str]]:
        return retried(super().held)

    def key_checks(self) -> list[tuple[str, bytes]]:
        return retried(super().key_checks)


def postgres_keystore(conninfo: str, schema: str, provider: KeyProvider) -> SQLKeyStore:
    """On a small pool of its own: a new connection per key lookup cost ~10 ms a write."""
    from infra.store.pg_pool import CheckedPool

    pool = CheckedPool(
        conninfo,
        min_size=1,
        max_size=4,
        kwargs={"autocommit": True, "options": f"-c search_path={schema}"},
        open=True,
        name="backcheck-keys",
    )

    def make(
        subject: UUID, tiers: list[str], wrapped: list[bytes], provider: KeyProvider
    ) -> list[Any]:
        args = {
            "subject": str(subject),
            "master": provider.key_id,
            "tiers": tiers,
            "wrapped": wrapped,
            "scheme": provider.check_scheme,
            "kcv": provider.check_value(),
        }
        with pool.connection() as conn:
            return list(conn.execute(_MAKE, args).fetchall())

    try:
        return PooledKeyStore(
            pool.connection,
            "%s",
            provider,
            close=pool.close,
            make=make,  # a key made outside a write (the recorder stores those made in one)
            with_the_write=True,
            schema=schema,
        )
    except Exception:
        pool.close()
        raise
