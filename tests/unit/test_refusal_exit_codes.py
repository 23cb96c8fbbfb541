"""A refusal answered on the outcomes topic exits `send-command --wait` as the command line
exits for the same problem (infra/problem.py's table, by the answer's problem `type`), never
by its HTTP status alone: a configuration error and a busy store are both 503, and exit 78
and 75. Each answer here is the outcome module's own, made of a real error."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import BaseModel, ValidationError

from domain.errors import RuleBrokenError
from infra.config import ConfigError
from infra.kafka.cloudevent import DeadLetterReason
from infra.kafka.intake import IntakeDecision
from infra.kafka.outcome import problem_of, refusal_exit_code
from infra.privacy.keystore import WrongMasterKeyError
from infra.problem import problem_for, problem_type
from infra.store.server import StoreMisconfiguredError, StoreUnreachableError
from services.errors import (
    AggregateMissingError,
    AuthenticationError,
    DataKeyMissingError,
    OutsideAssignmentsError,
    UseCaseNotPermittedError,
)


class _Named(BaseModel):
    name: int


def _invalid(_: Path) -> Exception:
    try:
        _Named.model_validate({"name": "x"})
    except ValidationError as e:
        return e
    raise AssertionError("validated")


def _busy(tmp_path: Path) -> Exception:
    """SQLite's own `database is locked`: a write while another connection holds the lock."""
    path = tmp_path / "store.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0)
    try:
        other.execute("INSERT INTO t VALUES (1)")
    except sqlite3.OperationalError as e:
        return e
    finally:
        other.close()
        holder.close()
    raise AssertionError("written")


class ConsentNotActiveError(RuleBrokenError):
    pass


ERRORS: dict[str, Callable[[Path], Exception]] = {
    "config": lambda _: ConfigError("BACKCHECK_X: bad"),
    "wrong-master-key": lambda _: WrongMasterKeyError("it unwraps 0 of 3", Path("k")),
    "store-busy": _busy,
    "store-unreachable": lambda _: StoreUnreachableError("PostgreSQL h:1/x does not answer"),
    "store-misconfigured": lambda _: StoreMisconfiguredError("password refused"),
    "data-key-missing": lambda _: DataKeyMissingError(uuid4(), "general"),
    "unauthenticated": lambda _: AuthenticationError("unknown token"),
    "use-case-not-permitted": lambda _: UseCaseNotPermittedError("x", "hiring", ["recruiter"]),
    "outside-assignments": lambda _: OutsideAssignmentsError("hr:a", uuid4()),
    "not-found": lambda _: AggregateMissingError("candidate", uuid4()),
    "rule": lambda _: ConsentNotActiveError("the consent is not active"),
    "validation": _invalid,
}


@pytest.mark.parametrize("made", ERRORS.values(), ids=ERRORS.keys())
def test_a_refusal_exits_with_the_code_the_problem_table_gives_its_kind(
    made: Callable[[Path], Exception], tmp_path: Path
) -> None:
    error = made(tmp_path)
    told = problem_for(error)
    assert told is not None, error
    answer = problem_of(
        IntakeDecision("register-candidate", DeadLetterReason.REFUSED, str(error), cause=error)
    )

    assert refusal_exit_code(answer) == told.exit_code


@pytest.mark.parametrize(
    "reason",
    [
        DeadLetterReason.MALFORMED,
        DeadLetterReason.UNSIGNED,
        DeadLetterReason.UNKNOWN_SENDER,
        DeadLetterReason.BAD_SIGNATURE,
        DeadLetterReason.EXPIRED,
        DeadLetterReason.FUTURE,
        DeadLetterReason.OUT_OF_SCOPE,
        DeadLetterReason.ACTOR_NOT_ALLOWED,
    ],
)
def test_a_refusal_no_error_names_exits_as_invalid_input(reason: DeadLetterReason) -> None:
    answer = problem_of(IntakeDecision("register-candidate", reason, "turned away"))

    assert refusal_exit_code(answer) == 2


@pytest.mark.parametrize(
    ("status", "code"), [(404, 4), (403, 5), (409, 3), (422, 2), (503, 1), (500, 1), (None, 1)]
)
def test_a_kind_no_row_names_exits_as_the_family_of_its_status_else_1(
    status: int | None, code: int
) -> None:
    """A broken rule's kind is the rule's name, which no row has: its family is told by its
    status. Another status with a kind no row has (a newer intake's) is 1."""
    answer = {"type": problem_type("SomethingNewBroken"), "status": status}

    assert refusal_exit_code(answer) == code
