"""PostgreSQL connection pools that let go of every dead connection at the first one found.

When the server restarts or its backends are terminated, every idle connection of a pool is
dead, and psycopg_pool learns it one connection at a time: each is handed to the next piece
of work, which fails, and only then is it replaced. A process holds several in each pool (the
event store's, the key store's); the key store's lookups were not retried, so the first
commands after a restart failed one after another (4 of them, 1.3 s until one succeeded;
over HTTP the store breaker tripped, 503 for 4-6 s).

Here a connection returned broken makes its pool check all its idle connections at once
(psycopg_pool's `check`: one round trip each, the dead ones closed and replaced), and what
is safe to run again (a read; an insert the server never committed) is run once more on the
fresh connections (`once_more`). The pool's check on every checkout (`POSTGRES_PRE_PING`) is
not used: it costs a round trip on every use, and was slower to recover (3 s; 31 s in the
application, changelog of 2026-12-05).

`PERSISTENCE_MODULE=infra.store.pg_pool:Factory` puts the event store's pool (the library's)
under this rule (infra/config); the key store's pool is a `CheckedPool` (infra/privacy); the
recorder tries its inserts and reads again at once (`AfterLostConnections`; its own reads, a
subject's events and events' positions, under `retried`), and knows its own write when a
commit's answer was lost. The kept views, on the event store's pool, and the key
store run each of their transactions under the same policy (`retried`, with tenacity: at
once, then as the library tries; decision 0052), so a view's statement that is the first to
meet a dead connection (a read under way at a restart, many at once), or a key lookup whose
fresh connection is dropped too, is not the request's failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

import psycopg
import psycopg_pool
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import ConnectionPool as LibraryPool
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import Environment, EnvType
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.sql import SQL, Identifier
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random

from infra.config.parsing import LIBPQ_SETTING

T = TypeVar("T")
log = logging.getLogger("backcheck.store")

# SQLSTATE classes of a connection that is gone: 08 connection exception; 57P01-57P03 the
# server shut down (terminated, crashed, starting). A client-side error has no SQLSTATE.
_GONE_STATES = frozenset({"57P01", "57P02", "57P03"})


def connection_lost(error: BaseException) -> bool:
    """Whether `error` (or what caused it) says the connection itself is gone, rather than
    that a statement failed on a working one (a timeout, a lock, a full disk)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, psycopg_pool.PoolTimeout):
            return False  # no connection was had: trying again would wait as long again
        if isinstance(seen, psycopg.OperationalError):
            state = seen.sqlstate
            return state is None or state.startswith("08") or state in _GONE_STATES
        seen = seen.__cause__ or seen.__context__
    return False


# SQLSTATEs of a transaction the server rolled back so that another could go on: run again,
# it works. 40001 serialization failure, 40P01 deadlock detected.
_RUN_AGAIN_STATES = frozenset({"40001", "40P01"})


def retry_safe(error: BaseException) -> bool:
    """Whether a whole transaction that raised `error` may be run again, and should then
    work: its connection was lost (`connection_lost`: nothing of it committed, or, if its
    commit's answer was what was lost, the caller finds its own write), or the server rolled
    it back as a serialization failure or a deadlock's victim. Anything else (a constraint, a
    timeout, a full disk, a bug) is not."""
    if connection_lost(error):
        return True
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, psycopg.Error):
            return seen.sqlstate in _RUN_AGAIN_STATES
        seen = seen.__cause__ or seen.__context__
    return False


def _trying_again(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning(
        "a PostgreSQL transaction failed again (%s); try %d of %d in %.1f s",
        error,
        state.attempt_number + 2,
        TRIES,
        state.next_action.sleep if state.next_action is not None else 0.0,
    )


def retried(transaction: Callable[[], T]) -> T:
    """`transaction` (one whole transaction: each try begins it anew), run again while it
    fails `retry_safe`: at once, its pool having let go of its dead connections meanwhile
    (`CheckedPool`), then `RETRY_WAIT` apart, `TRIES` in all, as the event store's recorder
    tries its statements (`AfterLostConnections`); then its last error is raised, as any
    other error is at once. The first try is made outside tenacity, which costs some 12 us
    a call: the views' reads are hot."""
    try:
        return transaction()
    except Exception as error:
        if not retry_safe(error):
            raise
        log.warning("a PostgreSQL transaction failed (%s); trying again at once", error)
    return _AGAIN.copy()(transaction)


def once_more(call: Callable[[], T]) -> T:
    """`call`, run again once if its connection was lost: by then its pool has replaced its
    dead connections (`CheckedPool`). Only for what may safely run twice (nothing committed)."""
    try:
        return call()
    except Exception as error:
        if not connection_lost(error):
            raise
        log.warning("a pooled PostgreSQL connection was lost (%s); trying once more", error)
    return call()


class KeptConnection:
    """One autocommit connection a component keeps (the HTTP server's kept answers and portal
    sessions), made again when the server dropped it; a statement that met the drop is run
    once more on the new one (each of theirs may run twice)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._lock = threading.Lock()
        self._db = psycopg.connect(conninfo, autocommit=True)

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`work` on the connection, one at a time."""
        with self._lock:
            return once_more(lambda: work(self._connection()))

    def _connection(self) -> psycopg.Connection[Any]:
        if self._db.closed or self._db.broken:
            self._db = psycopg.connect(self.conninfo, autocommit=True)
        return self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _returned(
    pool: psycopg_pool.ConnectionPool[Any], conn: Any, put: Callable[[Any], None]
) -> None:
    """`conn` put back in `pool`; if it came back broken, every idle connection of the pool
    checked at once: they were all opened to the same server. Threads that meet a dead
    connection at the same moment check once: the others go on."""
    broken = conn.pgconn.transaction_status == TransactionStatus.UNKNOWN
    put(conn)  # a broken one is replaced there
    if not broken or pool.closed:
        return
    checking: threading.Lock = pool.__dict__.setdefault("_backcheck_checking", threading.Lock())
    if checking.acquire(blocking=False):
        try:
            pool.check()
        finally:
            checking.release()


class CheckedPool(psycopg_pool.ConnectionPool[Any]):
    """psycopg_pool's pool, checking all its idle connections at the first broken one."""

    def putconn(self, conn: Any) -> None:
        _returned(self, conn, super().putconn)


class CheckedLibraryPool(LibraryPool[Any]):
    """The event store library's pool, likewise."""

    __slots__ = ()  # the library's pool, made already, becomes one (`Factory`)

    def putconn(self, conn: Any) -> None:
        _returned(self, conn, super().putconn)


class AfterLostConnections:
    """For the PostgreSQL recorder (put before the library's in its bases): the library's
    inserts and reads, tried first without its retries, which wait 0.2 s before each: a
    connection the server dropped is replaced, with its pool's other dead ones, as soon as it
    fails, so the next try works at once. Then, if it failed, as the library tries them (ten
    times, 0.2 s apart).

    An insert whose connection was lost, and that then collides with events stored byte for
    byte as its own (their states hold their times and sealed values' random nonces: no
    other write stores the same), had committed before the loss: the write is its own, and
    it answers with their positions, as the commit would have, where the library's retry
    raised a conflict with itself (a keyed command then answered 409
    `CommandAlreadyApplied` on its first delivery)."""

    datastore: PostgresDatastore
    events_table_name: str

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        lost = False  # a connection lost in this call, which may have committed first
        for attempt in range(TRIES):
            if attempt > 1:
                time.sleep(RETRY_WAIT)
            try:
                ids: Sequence[int] | None = _insert(self, stored_events, **kwargs)
                return ids
            except IntegrityError:
                found = self.stored_before(stored_events) if lost else None
                if found is None:
                    raise
                return found
            except (OperationalError, InterfaceError) as error:
                lost = lost or connection_lost(error)
                if attempt == TRIES - 1:
                    raise
        raise AssertionError("unreachable: the last try returns or raises")

    def select_events(self, *args: Any, **kwargs: Any) -> Any:
        retried = super().select_events  # type: ignore[misc]
        return _first_at_once(_SELECT_EVENTS, retried, self, *args, **kwargs)

    def select_notifications(self, *args: Any, **kwargs: Any) -> Any:
        retried = super().select_notifications  # type: ignore[misc]
        return _first_at_once(_SELECT_NOTIFICATIONS, retried, self, *args, **kwargs)

    def max_notification_id(self) -> Any:
        retried = super().max_notification_id  # type: ignore[misc]
        return _first_at_once(_MAX_NOTIFICATION_ID, retried, self)

    def stored_before(self, stored_events: Sequence[StoredEvent]) -> list[int] | None:
        """The positions of `stored_events` if every one of them is stored as it is here (a
        write of this process whose commit's answer was lost); None if any is not."""
        if not stored_events:
            return None
        keys = [(_uuid(s.originator_id), s.originator_version) for s in stored_events]
        statement = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state "
            "FROM {schema}.{events} e JOIN unnest(%s::uuid[], %s::bigint[]) AS k(id, version) "
            "ON e.originator_id = k.id AND e.originator_version = k.version"
        ).format(
            schema=Identifier(self.datastore.schema), events=Identifier(self.events_table_name)
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, ([k[0] for k in keys], [k[1] for k in keys]))
            found = {(r["originator_id"], r["originator_version"]): r for r in curs.fetchall()}
        positions = []
        for key, stored in zip(keys, stored_events, strict=True):
            row = found.get(key)
            if row is None or bytes(row["state"]) != stored.state or row["topic"] != stored.topic:
                return None
            positions.append(int(row["notification_id"]))
        return positions


def _first_at_once(
    once: Callable[..., T], retried: Callable[..., T], recorder: Any, *args: Any, **kwargs: Any
) -> T:
    try:
        return once(recorder, *args, **kwargs)
    except (OperationalError, InterfaceError):
        return retried(*args, **kwargs)


def _uuid(originator_id: UUID | str) -> UUID:
    return originator_id if isinstance(originator_id, UUID) else UUID(originator_id)


TRIES = 11  # at once, then as the library tries (10 times, 0.2 s apart)
RETRY_WAIT = 0.2


def _insert(
    recorder: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
) -> Sequence[int] | None:
    """The library's insert (PostgresApplicationRecorder.insert_events, without its retries),
    except that an error raised in the transaction rolls it back. The library's catches the
    error inside its transaction, to raise it only once the pipeline is closed (psycopg warns
    of an error leaving one), so an error of Python's own raised after the events' INSERT was
    committed with them: a chain found broken (events stored unlinked), a data key refused
    for an erasure recorded meanwhile (a value sealed for an erased subject stored). Here the
    transaction is inside the pipeline, and the error is kept only outside the transaction."""
    error: Exception | None = None
    ids: Sequence[int] | None = None
    with recorder.datastore.get_connection() as conn:
        with conn.pipeline() as pipeline:
            try:
                with conn.transaction():
                    with conn.cursor() as curs:
                        recorder._insert_events(curs, stored_events, **kwargs)
                    if stored_events:
                        with conn.cursor() as curs:
                            recorder._insert_stored_events(curs, stored_events, **kwargs)
                            pipeline.sync()  # a conflict raised here, not at the commit
                            ids = recorder._fetch_ids_after_insert_events(
                                curs, stored_events, **kwargs
                            )
            except Exception as e:  # rolled back: raised once the pipeline is closed
                error = e
        if error is not None:
            raise error  # inside: the datastore turns psycopg's errors into the library's
    return ids


# `retried`'s tries after its first: the first of them at once (tenacity waits only between
# its tries), then RETRY_WAIT apart, give or take 5% as the library waits
_AGAIN = Retrying(
    retry=retry_if_exception(retry_safe),
    stop=stop_after_attempt(TRIES - 1),
    wait=wait_random(RETRY_WAIT * 0.95, RETRY_WAIT * 1.05),
    before_sleep=_trying_again,
    reraise=True,
)

# the library's methods without their retries
_SELECT_EVENTS = PostgresApplicationRecorder.select_events.__wrapped__
_SELECT_NOTIFICATIONS = PostgresApplicationRecorder.select_notifications.__wrapped__
_MAX_NOTIFICATION_ID = PostgresApplicationRecorder.max_notification_id.__wrapped__


class Factory(PostgresFactory):
    """The library's PostgreSQL persistence, its pool a `CheckedLibraryPool`."""

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        pool = self.datastore.pool
        # made by the library's datastore and not yet opened (`open=False`: no connection,
        # no worker thread); the subclass adds methods alone, so the made pool is kept, its
        # settings untouched, and only its class changes
        if pool._opened:
            raise RuntimeError("the store's pool was opened before it could be checked")
        pool.__class__ = CheckedLibraryPool
        # the store URL's libpq parameters (sslmode, application_name, ...), which the
        # library's datastore does not take: each connection of its pool is made with them
        if parameters := self.env.get(LIBPQ_SETTING):
            assert isinstance(pool.kwargs, dict)
            pool.kwargs.update(conninfo_to_dict(parameters))
