"""`audit verify` holds each data key to the values sealed with it, on both backends: a
subject's wrapped key replaced with another subject's (an UPDATE in the key table) is tampering,
exit 1, named by candidate and key, though the chain still verifies and the key still unwraps.

The walkthrough that found it: a swapped key made the candidate's reads fail (`seal-broken`),
and `audit verify` said intact."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from infra.audit.trail import StoreVerification
from infra.bootstrap import build_app
from infra.config import Settings
from tests import story as s
from tests.e2e.test_cli import run
from tests.keys import swap_key


def two_candidates(settings: Settings) -> tuple[UUID, UUID]:
    app = build_app(settings)
    try:
        return s.consented_candidate(app, "Li Lei").candidate_id, s.consented_candidate(
            app, "Wang Fang"
        ).candidate_id
    finally:
        app.close()


def verified(settings: Settings) -> dict[str, object]:
    with StoreVerification(settings) as verification:
        return verification.run().as_dict()


def test_a_key_swapped_with_another_subjects_is_tampering(settings: Settings) -> None:
    # given
    first, second = two_candidates(settings)
    assert verified(settings)["intact"] is True  # every key opens its values

    # when
    swap_key(settings, first, second, "user.name")

    # then
    verdict = verified(settings)
    assert verdict["intact"] is False
    (problem,) = verdict["problems"]  # type: ignore[misc]
    assert problem["kind"] == "key altered"
    assert problem["detail"].startswith(
        f"the user.name (general) data key of candidate {first} does not open the value "
        "sealed with it at identity.0 of position "
    )
    assert "restore the key table from a backup" in problem["detail"]
    assert str(second) not in problem["detail"]
    assert "keys_unchecked" not in verdict


def test_without_the_master_key_the_keys_are_not_held_and_the_verdict_says_so(
    settings: Settings, tmp_path: Path
) -> None:
    first, second = two_candidates(settings)
    swap_key(settings, first, second, "user.name")
    elsewhere = settings.model_copy(update={"master_key_file": tmp_path / "no-such.key"})

    verdict = verified(elsewhere)

    assert verdict["intact"] is True  # the chain holds; the keys could not be looked at
    assert str(verdict["keys_unchecked"]).startswith("no master key to unwrap the data keys with")


def test_audit_verify_reports_a_swapped_key_as_tampered_exit_1(settings: Settings) -> None:
    first, second = two_candidates(settings)
    swap_key(settings, first, second, "user.name")
    env = {
        "BACKCHECK_DATABASE_URL": str(settings.database_url),
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
    }

    text = run(env, "audit", "verify")
    machine = run(env, "audit", "verify", "--json")

    assert text.returncode == 1
    assert text.stderr.startswith("TAMPERED: first bad position ")
    assert f"key altered: the user.name (general) data key of candidate {first}" in text.stderr
    assert machine.returncode == 1
    assert json.loads(machine.stdout)["problems"][0]["kind"] == "key altered"
