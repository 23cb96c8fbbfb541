"""`views status --stream` says, for each partition the workers' views hold, how far behind
they are: the positions the relay delivered there beyond what the views applied (as the
workers' `backcheck_view_lag_events`), and how far the relay itself is behind the log's head,
as `views status` says how far the in-process views are behind it. Fed relay-shaped messages
without a broker (tests/integration/test_stream_projection.py)."""

from __future__ import annotations

import json
from pathlib import Path

from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from infra.kafka.projection import StreamProjection
from infra.kafka.relay_store import RelayState
from infra.kafka.topics import EVENTS_TOPIC
from infra.kafka.worker import worker_store_made, worker_targets
from infra.views.kept import KEPT
from tests.conftest import FakeClock
from tests.e2e.test_cli import run
from tests.integration.test_stream_projection import PARTITIONS, messages

HELD_BACK = 2  # the last messages of one partition the workers have not applied yet


def test_the_stream_status_says_how_far_each_partition_is_behind_what_the_relay_delivered(
    tmp_path: Path, clock: FakeClock
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    app = build_app(settings, clock=clock)
    try:
        tell_story(app)
        head = app.recorder.max_notification_id() or 0
        records = messages(app)
        last = {
            p: max(int(r.headers["ce_position"]) for r in records if r.partition == p)
            for p in range(PARTITIONS)
        }
        lagging = max(range(PARTITIONS), key=lambda p: sum(r.partition == p for r in records))
        ones = [r for r in records if r.partition == lagging]
        held_back = ones[-HELD_BACK:]
        applied = int(ones[-HELD_BACK - 1].headers["ce_position"])
        StreamProjection(app, worker_targets(app, settings)).apply(
            [r for r in records if r not in held_back]
        )
        # the relay published all but the log's last event, and recorded so
        relayed_to = head - 1
        delivered = {p: min(at, relayed_to) for p, at in last.items()}
        state = RelayState(app, settings, f"relay:{EVENTS_TOPIC}")
        state.save(relayed_to, delivered)
        state.close()
    finally:
        app.close()
    env = {
        "BACKCHECK_DATABASE_URL": settings.database_url or "",
        "BACKCHECK_DATA_DIR": str(tmp_path),
    }

    listed = run(env, "views", "status", "--stream", "--json")
    shown = run(env, "views", "status", "--stream")

    assert listed.returncode == shown.returncode == 0, listed.stderr + shown.stderr
    status = json.loads(listed.stdout)
    assert status["head"] == head
    assert status["relays"] == {EVENTS_TOPIC: {"position": head - 1, "behind": 1}}
    behind = delivered[lagging] - applied
    assert behind > 0
    expected = {f"{EVENTS_TOPIC}/{p}": 0 for p in range(PARTITIONS)} | {
        f"{EVENTS_TOPIC}/{lagging}": behind
    }
    for kept in KEPT:
        assert status["kept"][kept.name]["behind"] == expected, kept.name
        assert status["kept"][kept.name]["partitions"][f"{EVENTS_TOPIC}/{lagging}"] == applied
    assert f"the relay to {EVENTS_TOPIC} has published up to {head - 1}, 1 behind" in shown.stdout
    header = next(line for line in shown.stdout.splitlines() if "topic/partition" in line)
    assert "behind" in header
    rows = [line for line in shown.stdout.splitlines() if f"{EVENTS_TOPIC}/{lagging} " in line]
    assert len(rows) == len(KEPT)
    for line in rows:
        assert f" {applied} " in line
        assert f"{behind} (delivered there, not yet applied)" in line
    for kept in KEPT:
        assert status["kept"][kept.name]["made"] is True


def test_the_stream_status_of_a_store_no_worker_ran_on_makes_nothing(
    settings: Settings, clock: FakeClock
) -> None:
    """Reporting on the workers' views made them: four files beside an SQLite store (their
    tables on PostgreSQL), from a command that only reads."""
    app = build_app(settings, clock=clock)
    try:
        tell_story(app)
    finally:
        app.close()
    env = {
        "BACKCHECK_DATABASE_URL": settings.database_url or "",
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
    }
    files_before = sorted(p.name for p in settings.data_dir.iterdir())

    listed = run(env, "views", "status", "--stream", "--json")
    shown = run(env, "views", "status", "--stream")

    assert listed.returncode == shown.returncode == 0, listed.stderr + shown.stderr
    status = json.loads(listed.stdout)
    for kept in KEPT:
        assert status["kept"][kept.name] == {
            "made": False,
            "partitions": {},
            "behind": {},
            "rows": {},
        }
        assert f"no worker has kept the {kept.name} on this store yet" in shown.stdout
    assert sorted(p.name for p in settings.data_dir.iterdir()) == files_before
    app = build_app(settings, clock=clock)
    try:  # nor, on PostgreSQL, their tables
        assert not any(worker_store_made(kept, app, settings) for kept in KEPT)
    finally:
        app.close()
