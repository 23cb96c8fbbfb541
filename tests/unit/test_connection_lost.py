"""Which PostgreSQL errors say a connection is gone (tried once more on a fresh one,
infra/store/pg_pool.py) and which say a statement failed on a working one (not retried); which
make a whole transaction worth running again (`retry_safe`), and how often `retried` runs it."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import psycopg_pool
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from infra.store.pg_pool import TRIES, connection_lost, retried, retry_safe


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


def test_a_transaction_is_run_again_after_a_lost_connection_or_a_rollback_asked_of_it() -> None:
    assert retry_safe(wrapped(psycopg.errors.AdminShutdown()))
    assert retry_safe(wrapped(psycopg.OperationalError("consuming input failed")))
    assert retry_safe(wrapped(psycopg.errors.SerializationFailure()))
    assert retry_safe(wrapped(psycopg.errors.DeadlockDetected()))


def test_a_transaction_is_not_run_again_for_anything_else() -> None:
    assert not retry_safe(wrapped(psycopg.errors.QueryCanceled()))
    assert not retry_safe(wrapped(psycopg.errors.LockNotAvailable()))
    assert not retry_safe(wrapped(psycopg.errors.DiskFull()))
    assert not retry_safe(psycopg_pool.PoolTimeout("couldn't get a connection"))
    assert not retry_safe(IntegrityError("applied by another runner"))
    assert not retry_safe(ValueError("not a database error"))


def failing(times: int, error: Callable[[], Exception]) -> tuple[Callable[[], str], list[int]]:
    """A transaction that fails `times` times with `error()`, then answers; its tries."""
    tries: list[int] = []

    def transaction() -> str:
        tries.append(len(tries) + 1)
        if len(tries) <= times:
            raise error()
        return "answered"

    return transaction, tries


def test_a_transaction_whose_connections_were_lost_is_run_until_it_answers() -> None:
    transaction, tries = failing(2, lambda: wrapped(psycopg.errors.AdminShutdown()))

    assert retried(transaction) == "answered"
    assert tries == [1, 2, 3]


def test_a_transaction_that_failed_otherwise_is_not_run_again() -> None:
    transaction, tries = failing(1, lambda: IntegrityError("applied by another runner"))

    with pytest.raises(IntegrityError):
        retried(transaction)
    assert tries == [1]


def test_a_transaction_that_keeps_losing_its_connection_raises_after_the_last_try() -> None:
    transaction, tries = failing(TRIES, lambda: wrapped(psycopg.errors.AdminShutdown()))

    with pytest.raises(OperationalError):
        retried(transaction)
    assert len(tries) == TRIES == 11
