"""The dashboard's chain health (infra/audit/health.py): the newest checkpoint kept, in the
form `audit checkpoint` keeps them now (C2SP notes) and the JSON kept before."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from infra.audit import checkpoint as v1
from infra.audit.health import chain_health
from infra.audit.sources import open_source
from infra.audit.trail import keep_checkpoint, key_pair, sign_head
from infra.bootstrap import build_app
from infra.config import Settings
from services.dto import RegisterCandidate


@pytest.fixture
def store(settings: Settings) -> Settings:
    key_pair(settings.keys_dir, origin=settings.origin)
    app = build_app(settings)
    for n in range(5):
        app.register_candidate(RegisterCandidate(name=f"Cand {n}", actor="hr:li"))
    app.close()
    return settings


def test_no_checkpoint_kept_is_shown_as_none(store: Settings) -> None:
    assert chain_health(store).last_checkpoint_position is None


def test_a_kept_checkpoint_note_is_the_chains_last_checkpoint(store: Settings) -> None:
    signed, path = sign_head(store)

    health = chain_health(store)
    app = build_app(store)
    try:
        summary = app.dashboard_summary(health)
        head = app.recorder.max_notification_id()
    finally:
        app.close()

    assert (health.last_checkpoint_position, health.last_checkpoint_size) == (
        signed.position,
        signed.size,
    )
    assert health.last_checkpoint_at == datetime.fromtimestamp(path.stat().st_mtime, UTC)
    assert summary.chain.last_checkpoint_position == signed.position
    assert summary.chain.events_since_checkpoint == head - signed.position
    assert summary.chain.last_checkpoint_age_seconds is not None


def test_of_a_json_checkpoint_kept_before_and_a_note_the_one_signed_last_is_shown(
    store: Settings,
) -> None:
    key = v1.load_private_key(store.signing_key_path)
    with open_source(store) as source:
        head = source.head()
    old = v1.sign(head, datetime.now(UTC) - timedelta(days=2), key)
    keep_checkpoint(store, old.position, old.to_json())
    assert chain_health(store).last_checkpoint_position == old.position  # the JSON alone

    signed, path = sign_head(store)
    shown = chain_health(store)
    assert (shown.last_checkpoint_size, shown.last_checkpoint_position) == (
        signed.size,
        signed.position,
    )

    a_week_ago = (datetime.now(UTC) - timedelta(days=7)).timestamp()
    os.utime(path, (a_week_ago, a_week_ago))  # the note kept before the JSON was signed
    assert chain_health(store).last_checkpoint_size is None  # the JSON, signed since
