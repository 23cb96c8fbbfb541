"""Which PostgreSQL errors say a connection is gone (tried once more on a fresh one,
infra/store/pg_pool.py) and which say a statement failed on a working one (not retried)."""

from __future__ import annotations

import psycopg
import psycopg_pool
from eventsourcing.persistence import OperationalError

from infra.store.pg_pool import connection_lost


def wrapped(error: Exception) -> OperationalError:
    """As the store's library raises it."""
    try:
        raise OperationalError(str(error)) from error
    except OperationalError as e:
        return e


def test_a_terminated_backend_or_a_closed_connection_is_a_lost_connection() -> None:
    assert connection_lost(psycopg.errors.AdminShutdown())
    assert connection_lost(wrapped(psycopg.errors.AdminShutdown()))
    assert connection_lost(psycopg.OperationalError("the connection is closed"))
    assert connection_lost(psycopg.errors.ConnectionFailure())


def test_a_statement_that_failed_on_a_working_connection_or_no_connection_had_is_not() -> None:
    assert not connection_lost(psycopg.errors.QueryCanceled())  # a statement timeout
    assert not connection_lost(psycopg.errors.LockNotAvailable())
    assert not connection_lost(psycopg_pool.PoolTimeout("couldn't get a connection"))
    assert not connection_lost(psycopg.errors.UniqueViolation())
    assert not connection_lost(ValueError("not a database error"))
