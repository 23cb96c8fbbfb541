"""`retention run` and `subject erase` say which categories they shredded (issue 21, item 2):
in their table and in `--json`; a bad category rule is one line with exit 78."""

from __future__ import annotations

import json

from infra.config import Settings
from tests.e2e.test_cli import run
from tests.e2e.test_interrupted_erasure import env_of, killed, registered, unfinished
from tests.keys import key_rows


def test_retention_and_erasure_list_the_categories_they_shredded(settings: Settings) -> None:
    (candidate_id,) = registered(settings, "Li Lei")  # a name and an e-mail address
    env = env_of(settings, BACKCHECK_RETENTION_CATEGORIES="user.contact.email=0")

    dry = run(env, "retention", "run", "--dry-run")
    shredded = run(env, "retention", "run", "--json")

    assert dry.returncode == 0, dry.stderr
    assert "user.contact.email" in dry.stdout
    assert "0 tier(s) and 1 category group(s) due" in dry.stdout
    header = [cell.strip() for cell in dry.stdout.splitlines()[1].split("┃")[1:-1]]
    assert header == ["candidate", "tier", "categories", "quiet since", "due at", "outcome"]
    assert dry.stderr == ""
    assert shredded.returncode == 0, shredded.stderr
    (item,) = json.loads(shredded.stdout)["shredded"]
    assert item["candidate_id"] == str(candidate_id)
    assert (item["tier"], item["categories"], item["whole_tier"]) == (
        "general",
        ["user.contact.email"],
        False,
    )
    assert {key for _, key in key_rows(settings)} == {"user.name"}  # the name's key stays
    assert run(env, "audit", "verify").returncode == 0

    erased = run(
        env, "subject", "erase", str(candidate_id), "--reason", "candidate-request", "--json"
    )
    text = run(env, "subject", "erase", str(candidate_id), "--reason", "candidate-request")

    assert erased.returncode == 0, erased.stderr
    receipt = json.loads(erased.stdout)
    assert (receipt["categories_shredded"], receipt["tiers_shredded"]) == (["user.name"], [])
    assert text.returncode == 3  # erased already


def test_a_category_shredding_killed_before_its_key_went_is_finished_by_the_next_run(
    settings: Settings,
) -> None:
    candidates = registered(settings, "Li Lei", "Han Mei")
    env = env_of(settings, BACKCHECK_RETENTION_CATEGORIES="user.contact.email=0")

    killed(env, 2, "retention", "run")  # the first shredded, the second recorded only

    emails = {s for s, key in key_rows(settings) if key == "user.contact.email"}
    (cut_off,) = emails
    (listed,) = unfinished(env)
    assert (listed["rule"], listed["candidate_id"]) == (
        "retention recorded but not finished",
        str(cut_off),
    )
    assert "user.contact.email (general)" in listed["detail"]
    again = run(env, "retention", "run", "--json")

    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert [(f["candidate_id"], f["keys"]) for f in result["finished"]] == [
        (str(cut_off), ["user.contact.email"])
    ]
    assert result["shredded"] == []  # recorded once: nothing newly due
    assert {key for _, key in key_rows(settings)} == {"user.name"}
    assert {s for s, _ in key_rows(settings)} == set(candidates)  # every name kept
    assert unfinished(env) == []
    assert run(env, "audit", "verify").returncode == 0


def test_the_erasure_report_names_the_categories_in_its_text(settings: Settings) -> None:
    (candidate_id,) = registered(settings, "Han Mei")
    env = env_of(settings)

    erased = run(env, "subject", "erase", str(candidate_id), "--reason", "candidate-request")

    assert erased.returncode == 0, erased.stderr
    assert "categories shredded: user.contact.email, user.name" in erased.stdout


def test_a_rule_for_a_category_that_cannot_have_one_is_one_line_with_exit_78(
    settings: Settings,
) -> None:
    env = env_of(settings, BACKCHECK_RETENTION_CATEGORIES="user.health.hiv_status=30")

    result = run(env, "retention", "run")

    assert result.returncode == 78
    (line,) = result.stderr.strip().splitlines()
    assert "BACKCHECK_RETENTION_CATEGORIES" in line
    assert "prohibited" in line
    assert "Traceback" not in result.stderr
