"""One problem table for every error a command reports (infra/problem.py): the status a
machine reads, the exit code a script reads, and the line a person reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel, ConfigDict, ValidationError

from domain.errors import (
    DomainError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RuleBrokenError,
)
from infra.audit.checkpoint import CheckpointError
from infra.audit.cosignatures import CosignatureError
from infra.audit.evidence import BundleError
from infra.audit.merkle import ProofError
from infra.audit.outputs import OutputPathError
from infra.cli.common import fail
from infra.config import ConfigError
from infra.kafka.relay import PartitionCountError, RelayBusyError, RelayFailedError
from infra.kafka.topics import BrokerUnavailableError, MissingTopicError
from infra.privacy.keystore import WrongMasterKeyError
from infra.problem import MAX_ERRORS, MAX_FIELD, ProblemDetails, problem_for


class _Named(BaseModel):
    name: int


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: int


def _validation_error() -> ValidationError:
    try:
        _Named.model_validate({"name": "x"})
    except ValidationError as e:
        return e
    raise AssertionError("validated")


class ConsentMissingError(RuleBrokenError):
    pass


@pytest.mark.parametrize(
    ("error", "status", "exit_code", "line"),
    [
        (RelayBusyError("another relay runs"), 409, 75, "relay not started: another relay runs"),
        (BrokerUnavailableError("no broker"), 503, 69, "Kafka unavailable: no broker"),
        (RelayFailedError("not acknowledged"), 503, 69, "Kafka unavailable: not acknowledged"),
        (PartitionCountError("3, not 6"), 500, 78, "relay stopped: 3, not 6"),
        (MissingTopicError("no t"), 503, 69, "Kafka topic missing (topic-missing): no t"),
        (
            CheckpointError("no checkpoint file /tmp/nope.note"),
            422,
            2,
            "Checkpoint or key unusable (checkpoint): no checkpoint file /tmp/nope.note",
        ),
        (
            BundleError("no events about c"),
            422,
            2,
            "Evidence bundle unusable (bundle): no events about c",
        ),
        (
            ProofError("no record at position 9 is in the tree"),
            422,
            2,
            "No such proof (proof): no record at position 9 is in the tree",
        ),
        (
            CosignatureError("w.note: refused: not a checkpoint"),
            422,
            2,
            "Cosignature refused (cosignature): w.note: refused: not a checkpoint",
        ),
        (
            OutputPathError("b exists; --force to replace it"),
            409,
            73,
            "not written: b exists; --force to replace it",
        ),
        (
            ConfigError("BACKCHECK_X: bad"),
            500,
            78,
            "Configuration error (config): BACKCHECK_X: bad",
        ),
        (
            WrongMasterKeyError("it unwraps 0 of the store's 3 data keys", Path("k")),
            500,
            78,
            "Wrong master key (wrong-master-key): BACKCHECK_MASTER_KEY_FILE: the key in k is "
            "not this store's master key (it unwraps 0 of the store's 3 data keys); nothing "
            "was written: point BACKCHECK_MASTER_KEY_FILE at the key the store was made with, "
            "or rotated to",
        ),
        (NotFoundError("no c"), 404, 4, "Not found (NotFound): no c"),
        (ForbiddenError("refused"), 403, 5, "Forbidden (Forbidden): refused"),
        (ConsentMissingError("no consent"), 409, 3, "Rule broken (ConsentMissing): no consent"),
        (DomainError("no"), 422, 2, "Refused (Domain): no"),
        (
            _validation_error(),
            422,
            2,
            "Invalid input (validation): field name: Input should be a valid integer, unable "
            "to parse string as an integer",
        ),
    ],
)
def test_every_expected_error_has_its_status_exit_code_and_line(
    error: Exception, status: int, exit_code: int, line: str
) -> None:
    problem = problem_for(error)

    assert problem is not None
    assert (problem.status, problem.exit_code, problem.line()) == (status, exit_code, line)


def test_a_bug_has_no_problem_and_is_raised_again() -> None:
    assert problem_for(KeyError("x")) is None
    with pytest.raises(KeyError):
        fail(KeyError("x"))


def test_a_command_reports_the_line_on_stderr_and_exits_with_its_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as exited:
        fail(RelayBusyError("another relay [pid 7] publishes /tmp/[store]"))

    assert exited.value.exit_code == 75
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err == "relay not started: another relay [pid 7] publishes /tmp/[store]\n"


def test_with_json_the_problem_goes_to_stdout_as_one_object(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as exited:
        fail(CheckpointError("no signing key at k"), as_json=True)

    assert exited.value.exit_code == 2
    assert json.loads(capsys.readouterr().out) == {
        "status": 422,
        "title": "Checkpoint or key unusable",
        "type": "checkpoint",
        "detail": "no signing key at k",
        "exit_code": 2,
    }


def test_the_problem_body_has_the_rfc_9457_members_and_the_exit_code() -> None:
    problem = ProblemDetails(404, "Not found", "NotFound", "no c", 4, "Not found (NotFound)")

    assert set(problem.body()) == {"status", "title", "type", "detail", "exit_code"}


def test_an_unknown_key_is_named_in_the_command_lines_problem_bounded_however_long_it_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`backcheck do` with a command whose unknown key is 1 MB long repeated it whole, on
    stderr or in --json; past MAX_ERRORS fields, the rest are counted, not listed."""
    long_key = "k" * 1_000_000
    extra = {f"unknown{i:03d}": 1 for i in range(MAX_ERRORS + 5)}
    try:
        _Strict.model_validate({"name": 1, long_key: 1, **extra})
    except ValidationError as e:
        error = e
    for as_json in (False, True):
        with pytest.raises(typer.Exit):
            fail(error, as_json=as_json)

        said = capsys.readouterr()
        shown = said.out if as_json else said.err
        detail = json.loads(shown)["detail"] if as_json else shown
        assert f"field {'k' * MAX_FIELD}...: Extra inputs are not permitted" in detail
        assert len(shown) < 10_000
        assert "; and 6 more field(s) not listed" in detail  # the long key, 55 more, 50 listed


def test_with_json_the_problem_names_the_field_the_error_blames(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The HTTP problem said which field was at fault; the command line's `--json` did not."""
    blamed = InvalidInputError("field 'purposes': name at least one purpose", field="purposes")
    for error, field in ((blamed, "purposes"), (_validation_error(), "name")):
        with pytest.raises(typer.Exit):
            fail(error, as_json=True)

        assert json.loads(capsys.readouterr().out)["field"] == field

    with pytest.raises(typer.Exit):
        fail(CheckpointError("no signing key at k"), as_json=True)
    assert "field" not in json.loads(capsys.readouterr().out)  # none blamed: none named
