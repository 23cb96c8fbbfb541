"""Stored text reaches the terminal as text: rich markup in a name or an actor is shown as
typed (it used to crash the table after the read was recorded), and control characters (an
ESC sequence, a bell, a carriage return, a bidirectional override) are shown as escapes, never
obeyed by the terminal.

Commands refuse control characters now (services/text.py); a store written before that rule
may hold them, so the store here is written the way such a store was: commands built without
the boundary's validation."""

from __future__ import annotations

import subprocess
from pathlib import Path
from uuid import UUID

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.dto import ReadProfile, RegisterCandidate
from tests import story as s
from tests.e2e.test_cli import run

NAME = "[/x] Zhou [bold]Min\x1b[2J\x1b]0;owned\x07 \u202eevil\rX"
ACTOR = "hr:[/y]\x1b[31mred"
PRINCIPAL = "hr:[/z]\x1b[5mblink"
PURPOSE = "screening [/p]\x9b2J"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\r")  # nothing of these may reach the terminal


@pytest.fixture
def hostile_store(tmp_path: Path) -> tuple[dict[str, str], UUID]:
    """A store holding markup and control characters in a name, an actor, a reader and a
    purpose, as one written before the control-character rule could."""
    data = tmp_path / "data"
    app = build_app(Settings(data_dir=data))
    try:
        candidate_id = app.register_candidate(
            RegisterCandidate.model_construct(name=NAME, email=None, phone=None, actor=ACTOR)
        ).candidate_id
        s.grant_consent(app, s.request_consent(app, candidate_id))
        with pytest.raises(Exception, match="refused"):
            app.read_profile(
                ReadProfile.model_construct(
                    candidate_id=candidate_id,
                    principal=PRINCIPAL,
                    role=Role.RECRUITER,
                    purpose=PURPOSE,
                    break_glass=None,
                )
            )
    finally:
        app.close()
    return {"BACKCHECK_DATA_DIR": str(data)}, candidate_id


def shown(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for raw in RAW:
        assert raw not in result.stdout, (raw, result.stdout)
    return result.stdout


def test_a_stored_name_is_shown_as_typed_in_the_profile_table(
    hostile_store: tuple[dict[str, str], UUID],
) -> None:
    env, candidate = hostile_store
    as_candidate = ("--as", f"candidate:{candidate}", "--role", "candidate", "--purpose", "mine")

    out = shown(run(env, "read", "profile", str(candidate), *as_candidate))

    assert r"[/x] Zhou [bold]Min\x1b[2J\x1b]0;owned\x07 \u202eevil\x0dX" in out


def test_a_stored_actor_and_reader_are_shown_as_typed_in_every_table(
    hostile_store: tuple[dict[str, str], UUID],
) -> None:
    env, candidate = hostile_store
    as_candidate = ("--as", f"candidate:{candidate}", "--role", "candidate", "--purpose", "mine")

    timeline = shown(run(env, "audit", "timeline", "--subject", str(candidate)))
    log = shown(run(env, "subject", "access-log", str(candidate), *as_candidate))
    listed = shown(run(env, "events", "--subject", str(candidate)))

    assert r"hr:[/y]\x1b[31mred" in timeline
    assert r"hr:[/z]\x1b[5mblink" in log
    assert r"screening [/p]\x9b2J" in log
    assert "hr:[/y]" in listed
