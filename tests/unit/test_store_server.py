"""The driver's refusal to connect, told as one of our errors: unreachable (exit 69, try again
later) when nothing answered, misconfigured (exit 78, fix the setting) when a server refused."""

from __future__ import annotations

import psycopg
import pytest

from infra.problem import problem_for
from infra.store.server import (
    StoreMisconfiguredError,
    StoreUnreachableError,
    check_server,
    store_error,
)

WHERE = "PostgreSQL db.example:5432/backcheck"
AT = 'connection failed: connection to server at "10.0.0.5", port 5432 failed: '


@pytest.mark.parametrize(
    "said",
    [
        AT + "Connection refused\n\tIs the server running on that host and accepting TCP/IP?",
        "failed to resolve host 'db.example': [Errno -2] Name or service not known",
        AT + "timeout expired",
        AT + "FATAL:  the database system is starting up",
        AT + "FATAL:  sorry, too many clients already",
    ],
)
def test_a_server_that_does_not_answer_or_cannot_take_us_now_is_unreachable(said: str) -> None:
    error = store_error(psycopg.OperationalError(said), WHERE)

    assert isinstance(error, StoreUnreachableError)
    assert "\n" not in str(error)
    assert str(error).startswith(f"{WHERE} does not answer: ")
    problem = problem_for(error)
    assert problem is not None
    assert problem.exit_code == 69


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        (AT + 'FATAL:  database "bc" does not exist', 'database "bc" does not exist'),
        (AT + 'FATAL:  role "bc" does not exist', 'role "bc" does not exist'),
        (
            AT + 'FATAL:  password authentication failed for user "bc"',
            'password authentication failed for user "bc"',
        ),
        (AT + "fe_sendauth: no password supplied", "fe_sendauth: no password supplied"),
        (
            AT + 'FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "bc", database "bc"',
            'no pg_hba.conf entry for host "10.0.0.9", user "bc", database "bc"',
        ),
    ],
)
def test_a_server_that_refuses_the_database_or_the_user_is_a_setting_to_fix(
    said: str, reason: str
) -> None:
    error = store_error(psycopg.OperationalError(said), WHERE)

    assert isinstance(error, StoreMisconfiguredError)
    assert str(error) == f"BACKCHECK_DATABASE_URL: {WHERE} refused the connection: {reason}"
    problem = problem_for(error)
    assert problem is not None
    assert problem.exit_code == 78


def test_a_server_that_answers_but_is_busy_is_left_to_the_pools_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def busy(conninfo: str) -> None:
        raise psycopg.OperationalError(AT + "FATAL:  sorry, too many clients already")

    monkeypatch.setattr(psycopg, "connect", busy)

    check_server("host=10.0.0.5", WHERE)  # no error: the library's pool waits for a slot


def test_a_server_that_does_not_answer_is_raised_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(conninfo: str) -> None:
        raise psycopg.OperationalError(AT + "Connection refused")

    monkeypatch.setattr(psycopg, "connect", refused)

    with pytest.raises(StoreUnreachableError, match="does not answer: Connection refused"):
        check_server("host=10.0.0.5", WHERE)
