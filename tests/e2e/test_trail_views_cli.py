"""The audit trail as a compliance officer reads it on the command line: the access log's text
shows what was returned, a break-glass read as such, the deciding policies and the consents
relied on; the consent register's text shows each consent's scope and signed document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from projections.access_log import SEALED_JUSTIFICATION
from tests.e2e.test_cli import demo_ids, run

WHY = "the candidate's complaint needs the record"
AS_COMPLIANCE = ("--as", "compliance:zhou", "--role", "compliance", "--purpose", "audit")


def trail_story(directory: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """The demo's store (read only by the tests, but for the reads they record), with one
    break-glass read of the candidate by compliance: its environment and the demo's ids."""
    env = {"BACKCHECK_DATA_DIR": str(directory / "data")}
    ids = demo_ids(env)
    glass = run(
        env,
        "read",
        "profile",
        ids["candidate_id"],
        "--as",
        "compliance:zhou",
        "--role",
        "compliance",
        "--purpose",
        "pre-employment screening",
        "--break-glass",
        WHY,
    )
    assert glass.returncode == 0, glass.stderr
    return env, ids


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, Any]]:
    return trail_story(tmp_path_factory.mktemp("trail"))


def test_the_access_log_text_shows_returned_categories_break_glass_policies_and_consents(
    story: tuple[dict[str, str], dict[str, Any]],
) -> None:
    env, ids = story

    text = run(env, "subject", "access-log", ids["candidate_id"], *AS_COMPLIANCE)
    machine = run(env, "subject", "access-log", ids["candidate_id"], *AS_COMPLIANCE, "--json")

    assert text.returncode == 0, text.stderr
    entries = json.loads(machine.stdout)["entries"]
    (glass,) = [e for e in entries if e["break_glass"]]
    assert glass["break_glass"] == SEALED_JUSTIFICATION  # the text is sealed (decision 0041)
    assert WHY not in machine.stdout
    assert glass["returned"]
    assert glass["policy_ids"] == ["compliance-reads-values-only-with-recorded-break-glass"]
    assert glass["consent_ids"] == [ids["consent_id"]]
    (line,) = [row for row in text.stdout.splitlines() if "(break-glass)" in row]
    assert "allowed (break-glass)" in line
    assert "compliance-reads-values-only-with-recorded-break-glass" in line
    assert ids["consent_id"][:8] in line
    assert ", ".join(glass["returned"]) in line
    header = next(row for row in text.stdout.splitlines() if "when (UTC)" in row)
    for column in ("returned", "withheld", "policies", "consents"):
        assert column in header
    refused = [e for e in entries if e["outcome"] == "refused"]
    assert refused
    assert all(e["consent_ids"] == [] for e in refused)
    disclosed = [e for e in entries if e["outcome"] == "disclosed"]
    assert disclosed
    assert all(e["role"] == "operator" for e in disclosed)  # made on the command line
    assert len({e["access_id"] for e in entries}) == len(entries)


def test_the_consent_register_text_shows_the_scope_and_the_signed_documents_hash(
    story: tuple[dict[str, str], dict[str, Any]],
) -> None:
    env, ids = story

    text = run(env, "subject", "consents", ids["candidate_id"], *AS_COMPLIANCE)
    machine = run(env, "subject", "consents", ids["candidate_id"], *AS_COMPLIANCE, "--json")

    assert text.returncode == 0, text.stderr
    (consent,) = json.loads(machine.stdout)["consents"]
    assert len(consent["document_sha256"]) == 64
    said = " ".join(text.stdout.split())
    assert consent["document_sha256"] in said
    for named in ("categories:", "referees:", "excluded:", "third parties:", "recording:"):
        assert named in said
    for role in consent["terms"]["referee_roles"]:
        assert role in said
    for organisation in consent["terms"]["excluded_organisations"]:
        assert organisation in said
    assert f"from {consent['valid_from'][:10]}" in said
    assert f"until {consent['valid_until'][:10]}" in said
