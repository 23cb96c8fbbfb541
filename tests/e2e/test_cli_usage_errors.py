"""A mistyped command line is invalid input like any other: one line on stderr naming the
command and the parameter, exit 2, never typer's usage box; a value typed too long is not
echoed back whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.problem import MAX_FIELD
from tests.e2e.test_cli import run

MISTYPED = [
    (("show", "not-an-id"), "backcheck show: Invalid value for 'aggregate_id'"),
    (("show",), "backcheck show: Missing argument 'aggregate_id'"),
    (("events", "--limit", "abc"), "backcheck events: Invalid value for '--limit'"),
    (("info", "--bogus"), "backcheck info: No such option: --bogus"),
    (("serve", "--port", "99999"), "backcheck serve: Invalid value for '--port'"),
    (("audit", "as-of", "yesterday"), "backcheck audit as-of: Invalid value for MOMENT"),
    (("health", "--url", "not-a-url"), "backcheck health: Invalid value for --url"),
    (("audit", "bogus"), "backcheck audit: No such command 'bogus'"),
    (
        ("principals", "add", "x", "--role", "recruiter", "--assign", "not-a-uuid"),
        "backcheck principals add: Invalid value for '--assign'",
    ),
]


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    return {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}


@pytest.mark.parametrize(("line", "said"), MISTYPED, ids=[" ".join(m[0]) for m in MISTYPED])
def test_a_mistyped_command_line_is_one_line_and_exit_2(
    store: dict[str, str], line: tuple[str, ...], said: str
) -> None:
    result = run(store, *line)

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Invalid input (input): {said}"), lines[0]
    command = said.split(":")[0]
    assert lines[0].endswith(f"(see `{command} --help`)"), lines[0]
    assert not Path(store["BACKCHECK_DATA_DIR"]).exists(), "nothing was opened"


def test_a_value_typed_too_long_is_cut_where_it_is_quoted_back(store: dict[str, str]) -> None:
    result = run(store, "audit", "as-of", "a" * 100_000)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert len(lines[0]) < 400, lines[0][:500]
    assert "'" + "a" * 79 + "… (100,002 characters) is not an ISO 8601 time" in lines[0]


def test_a_use_case_name_typed_too_long_is_cut_where_it_is_quoted_back(
    store: dict[str, str],
) -> None:
    """`backcheck do NAME` quoted an unknown NAME whole: 100 kB typed, 100 kB on one line (and
    in `--json`'s detail). It is cut at MAX_FIELD characters, as a field's name is."""
    for json_flag in ((), ("--json",)):
        result = run(store, "do", "u" * 100_000, "{}", *json_flag)

        assert result.returncode == 2, result.stderr[:500]
        shown = (result.stdout if json_flag else result.stderr).strip()
        assert len(shown.splitlines()) == 1
        assert len(shown) < 400, shown[:500]
        assert "USE_CASE: unknown use case '" + "u" * MAX_FIELD + "...'" in shown


def test_help_and_the_bare_command_still_print_the_usage(store: dict[str, str]) -> None:
    helped = run(store, "show", "--help")
    bare = run(store)
    group = run(store, "audit")

    assert helped.returncode == 0, helped.stderr
    assert "Usage: backcheck show" in helped.stdout
    assert bare.returncode == 2, bare.stderr
    assert "Usage: backcheck" in bare.stdout
    assert group.returncode == 2
    assert group.stderr == (
        "Invalid input (input): backcheck audit: Missing command. (see `backcheck audit --help`)\n"
    )
