"""One problem table for every error a command reports (infra/problem.py): the status a
machine reads, the exit code a script reads, and the line a person reads."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest
import typer
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from starlette.requests import Request

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
from infra.http.problems import MAX_LOGGED, error_response, field_errors, invalid
from infra.kafka.cloudevent import DeadLetterReason
from infra.kafka.intake import IntakeDecision
from infra.kafka.outcome import problem_of
from infra.kafka.relay import PartitionCountError, RelayBusyError, RelayFailedError
from infra.kafka.topics import BrokerUnavailableError, MissingTopicError
from infra.privacy.keystore import WrongMasterKeyError
from infra.problem import (
    MAX_DETAIL,
    MAX_ERRORS,
    MAX_FIELD,
    MAX_MESSAGE,
    ProblemDetails,
    problem_for,
)
from infra.views.runner import ViewsFailedError


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
        (PartitionCountError("3, not 6"), 503, 78, "relay stopped: 3, not 6"),
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
            503,
            78,
            "Configuration error (config): BACKCHECK_X: bad",
        ),
        (
            WrongMasterKeyError("it unwraps 0 of the store's 3 data keys", Path("k")),
            503,
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


class _Quoting(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        raise ValueError(f"{value!r} is no name we know")  # quotes what was sent, whole


def _request() -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "server": ("testserver", 80),
        "path": "/v1/candidates",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "app": FastAPI(),
    }
    return Request(scope)


def test_a_message_quoting_what_was_sent_is_cut_in_every_problem(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A validator's message, or a rule's, may quote the value it refused: 100 kB sent came
    back whole in the HTTP problem's `errors` and `detail`, the command line's line and
    `--json`, and the dead letter's error (a command outcome cut it at 2,000 characters).
    Each message about a field is cut at MAX_MESSAGE characters, each detail at MAX_DETAIL;
    the field and the rule are still named. pydantic's own `input` is repeated nowhere."""
    long = "x" * 100_000
    try:
        _Quoting.model_validate({"name": long})
    except ValidationError as e:
        invalid_input = e
    refused = InvalidInputError(f"field 'name': {long!r} is taken", field="name")
    cut = "field name: Value error, '" + "x" * (MAX_MESSAGE - len("Value error, '")) + "..."

    # the command line: one line, or the problem as JSON
    for as_json in (False, True):
        for error in (invalid_input, refused):
            with pytest.raises(typer.Exit):
                fail(error, as_json=as_json)
            said = capsys.readouterr()
            shown = said.out if as_json else said.err
            assert len(shown) < MAX_DETAIL + 200, len(shown)
            detail = json.loads(shown)["detail"] if as_json else shown
            assert "..." in detail
            if error is invalid_input:
                assert cut in detail
                assert not as_json or json.loads(shown)["field"] == "name"

    # HTTP: problem+json, invalid input field by field, and a rule's refusal
    [listed] = field_errors(list(invalid_input.errors()))
    assert (listed["field"], listed["rule"]) == ("name", "value_error")
    assert len(listed["message"]) == MAX_MESSAGE + 3
    for response, longest in (
        (invalid(_request(), [listed]), MAX_MESSAGE),  # the value only as the message quotes it
        (error_response(_request(), refused), MAX_DETAIL),
    ):
        body = json.loads(response.body)
        assert len(response.body) < MAX_DETAIL + MAX_MESSAGE + 500, len(response.body)
        assert [e["field"] for e in body["errors"]] == ["name"]
        assert all(len(e["message"]) <= MAX_MESSAGE + 3 for e in body["errors"])
        assert body["detail"].startswith("field ")
        assert len(body["detail"]) <= MAX_DETAIL + 3
        assert "x" * (longest + 1) not in response.body.decode()

    # a command outcome, and the dead letter's error
    decision = IntakeDecision("register-candidate", DeadLetterReason.INVALID, cause=invalid_input)
    problem = problem_of(decision)
    [error] = problem["errors"]
    assert (error["field"], error["rule"]) == ("name", "value_error")
    assert len(error["message"]) == MAX_MESSAGE + 3
    assert problem["detail"].startswith(cut)
    assert len(json.dumps(problem)) < MAX_DETAIL + MAX_MESSAGE + 500
    details = [p.detail for p in (problem_for(invalid_input), problem_for(refused)) if p]
    assert [len(d) <= MAX_DETAIL + 3 for d in details] == [True, True]


def test_a_configuration_error_is_not_told_as_a_bug(capsys: pytest.CaptureFixture[str]) -> None:
    """`--json` told every configuration error `"status": 500`, the status the HTTP API gives
    a bug (an error the table does not know). Each (exit 78) is 503 now, as the readiness of
    a process that cannot work as configured is, and over HTTP without a Retry-After: waiting
    cures nothing."""
    from infra.store.server import StoreMisconfiguredError

    for error in (
        ConfigError("BACKCHECK_X: bad"),
        WrongMasterKeyError("it unwraps 0 of the store's 3 data keys", Path("k")),
        StoreMisconfiguredError("the server refused the password"),
        PartitionCountError("3, not 6"),
    ):
        with pytest.raises(typer.Exit) as exited:
            fail(error, as_json=True)
        body = json.loads(capsys.readouterr().out)
        assert (body["status"], body["exit_code"], exited.value.exit_code) == (503, 78, 78)
        answer = error_response(_request(), error)
        assert answer.status_code == 503
        assert "retry-after" not in answer.headers
    busy = error_response(_request(), BrokerUnavailableError("no broker"))
    assert busy.headers["retry-after"] == "5"  # a broker away: waiting may cure it


def _refused_by_sqlite(tmp_path: Path, *, busy: bool) -> Exception:
    """A real SQLite error of a views file: its table refusing a row (a trigger), or the file
    locked by another connection (no timeout)."""
    path = tmp_path / "views.sqlite"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("CREATE TABLE view_rows (key TEXT)")
    setup.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON view_rows "
        "BEGIN SELECT RAISE(ABORT, 'the views refuse every row'); END"
    )
    if busy:
        setup.execute("BEGIN IMMEDIATE")  # held: the other connection cannot write
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("INSERT INTO view_rows VALUES ('k')")
    except sqlite3.Error as error:
        return error
    finally:
        other.close()
        setup.close()
    raise AssertionError("written")


def _views_failed(error: Exception) -> ViewsFailedError:
    try:
        raise ViewsFailedError("views", error) from error
    except ViewsFailedError as failed:
        return failed


def test_views_that_cannot_catch_up_are_the_servers_fault_in_one_line(tmp_path: Path) -> None:
    """Decision 0058: a views store refusing the rows is `views-failed`, 500, exit 74."""
    refused = _views_failed(_refused_by_sqlite(tmp_path, busy=False))

    problem = problem_for(refused)

    assert problem is not None
    assert (problem.status, problem.exit_code, problem.type) == (500, 74, "views-failed")
    assert problem.line() == (
        "Views failed (views-failed): the kept views 'views' could not be brought up to date "
        "from the log (IntegrityError: the views refuse every row); what the log holds "
        "stands, and the views catch up at the next read once the fault is gone (`backcheck "
        "views status` shows how far behind they are)"
    )
    answered = error_response(_request(), refused)
    assert answered.status_code == 500
    assert "retry-after" not in answered.headers  # waiting alone cures nothing


def test_views_whose_store_is_busy_are_told_by_the_cause_as_any_store(tmp_path: Path) -> None:
    """A views store busy is `store-busy` (503, 75: try again), as the event store is, not
    `views-failed`: the rows that tell a store by its cause come first."""
    busy = _views_failed(_refused_by_sqlite(tmp_path, busy=True))

    problem = problem_for(busy)

    assert problem is not None
    assert (problem.status, problem.exit_code, problem.type) == (503, 75, "store-busy")
    assert "the kept views 'views' could not be brought up to date" in problem.detail


def test_the_servers_own_problem_is_one_bounded_line_in_its_log_and_the_clients_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 5xx the problem table knows (the views refused, the store busy) is logged at error
    level: the request, the status and kind, the detail flattened to one line and cut at
    MAX_LOGGED characters; no traceback. A 4xx is the client's to read, not logged."""
    (tmp_path / "refused").mkdir()
    (tmp_path / "busy").mkdir()
    refused = _views_failed(_refused_by_sqlite(tmp_path / "refused", busy=False))
    busy = _views_failed(_refused_by_sqlite(tmp_path / "busy", busy=True))
    # a file the server could not open, its name of two lines and longer than a log line
    with pytest.raises(FileNotFoundError) as missing:
        (tmp_path / "gone" / "two\nlines" / (("x" * 200 + "/") * 10)).open()
    long = missing.value

    with caplog.at_level(logging.DEBUG, logger="backcheck.http"):
        statuses = [
            error_response(_request(), e).status_code
            for e in (refused, busy, long, NotFoundError("no such candidate"))
        ]

    assert statuses == [500, 503, 500, 404]
    lines = [r.getMessage() for r in caplog.records]
    assert [r.levelno for r in caplog.records] == [logging.ERROR] * 3
    assert [r.exc_info for r in caplog.records] == [None] * 3
    said = "the kept views 'views' could not be brought up to date from the log"
    assert lines[0].startswith(f"POST /v1/candidates answered 500 views-failed: {said} ")
    assert lines[1].startswith("POST /v1/candidates answered 503 store-busy: another process ")
    lead = "POST /v1/candidates answered 500 file: "
    assert lines[2].startswith(f"{lead}{tmp_path}/gone/two lines/xxx")
    assert len(lines[2]) == len(lead) + MAX_LOGGED + len("...")
    assert all("\n" not in line for line in lines)
