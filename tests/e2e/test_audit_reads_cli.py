"""`audit reads` on the command line: the reads of a principal or a period, refused or not, a
page at a time, on the demo's store; a moment without its offset refused in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli import run
from tests.e2e.test_trail_views_cli import trail_story


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, Any]]:
    return trail_story(tmp_path_factory.mktemp("reads"))


def test_audit_reads_lists_a_principals_reads_a_page_at_a_time(
    story: tuple[dict[str, str], dict[str, Any]],
) -> None:
    env, ids = story

    first = run(env, "audit", "reads", "--principal", "hr:li.na", "--limit", "2", "--json")
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    cursor = lines[-1]["next_cursor"]
    second = run(
        env, "audit", "reads", "--principal", "hr:li.na", "--limit", "2", "--cursor", cursor
    )
    refused = run(env, "audit", "reads", "--refused", "--json", "--from", "2000-01-01T00:00Z")
    text = run(env, "audit", "reads", "--principal", "compliance:zhou")

    assert first.returncode == 0, first.stderr
    assert [line["principal"] for line in lines[:-1]] == ["hr:li.na", "hr:li.na"]
    assert lines[-1]["reads"] == 2
    assert cursor
    assert second.returncode == 0, second.stderr
    assert "hr:li.na" in second.stdout
    rows = [json.loads(line) for line in refused.stdout.splitlines()]
    assert rows[:-1]
    assert all(r["outcome"] == "refused" and r["policy_ids"] for r in rows[:-1])
    assert {r["candidate_id"] for r in rows[:-1]} >= {ids["candidate_id"]}
    assert "(break-glass)" in text.stdout
    assert ids["candidate_id"][:8] in text.stdout


def test_audit_reads_refuses_a_moment_without_its_offset_in_one_line(
    story: tuple[dict[str, str], dict[str, Any]],
) -> None:
    env, _ = story

    result = run(env, "audit", "reads", "--from", "2026-12-01T00:00:00")

    assert result.returncode == 2
    assert result.stderr == (
        "Invalid input (validation): field from: Input should have timezone info\n"
    )


def test_audit_reads_says_in_its_help_that_it_reads_an_index_not_the_store(
    tmp_path: Path,
) -> None:
    helped = run({"BACKCHECK_DATA_DIR": str(tmp_path)}, "audit", "reads", "--help")

    assert helped.returncode == 0
    said = " ".join(helped.stdout.replace("│", " ").split())
    assert "an index, not a scan of the store" in said
