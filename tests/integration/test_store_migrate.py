"""`backcheck store migrate`: a store copied into a new one, its personal values sealed on the
way, the old chain's head and checkpoint in the new store's first event, a signed map of old
positions to new; on each backend (SQLite → SQLite, PostgreSQL → PostgreSQL) and across."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from domain.access import Access
from domain.candidate import Candidate
from domain.classification import ERASED_VALUE, Tier, tier_of
from domain.investigation import Investigation
from infra.audit.checkpoint import Checkpoint, load_private_key, load_public_key, parse, sign
from infra.audit.sources import open_source
from infra.audit.trail import StoreVerification, keep_checkpoint
from infra.bootstrap import build_app
from infra.config import Settings
from infra.privacy.carrying import old_envelopes
from infra.store.migration import migrate
from infra.store.migration_check import check_store
from infra.store.migration_errors import SourceNotVerifiedError, TargetNotEmptyError
from infra.store.migration_stores import target_settings
from infra.store.position_map import PositionMapError, verify_map, write_map
from infra.store.transcoder import typed_mapper
from infra.views.runner import ViewRunner
from projections.events import StoreMigrated
from services.access import Role
from services.application import Backcheck
from services.dto import EraseSubject, ReadProfile, RunRetention
from services.errors import DataKeyMissingError
from tests import story as s
from tests.conftest import PG_URL, FakeClock, require_postgres
from tests.keys import delete_keys, key_rows

MARK = "Zq-Migrate-Marker"
BACKCHECK = [sys.executable, "-m", "infra.cli"]


def events(settings: Settings, clock: FakeClock) -> list[tuple[int, Any]]:
    app = build_app(settings, clock=clock)
    try:
        return list(app.replay())
    finally:
        app.close()


def dumps(app: Backcheck) -> list[Any]:
    runners = [model for model in app.kept_views if isinstance(model, ViewRunner)]
    for runner in runners:
        runner.catch_up()
    return [runner.store.dump() for runner in runners]


def new_dumps(settings: Settings, clock: FakeClock) -> list[Any]:
    app = build_app(settings, clock=clock)
    try:
        return dumps(app)
    finally:
        app.close()


def mapped(value: Any, positions: dict[int, int]) -> Any:
    """A view row with every log position in it moved to the new store's."""
    if isinstance(value, dict):
        return {
            k: positions[v] if k in ("position", "last_position") and v else mapped(v, positions)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(mapped(v, positions) for v in value)
    return value


def map_rows(path: Path) -> list[list[Any]]:
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines[1:-1]]


def raw_states(settings: Settings) -> bytes:
    """Every stored byte of the store's events and views, as someone reading the disk would."""
    if settings.backend == "sqlite":
        found = b""
        for path in settings.sqlite_path.parent.glob("*.sqlite*"):
            found += path.read_bytes()
        return found
    schema = settings.postgres_schema
    with psycopg.connect(PG_URL) as conn:
        found = b"".join(
            bytes(r[0])
            for r in conn.execute(f"SELECT state FROM {schema}.backcheck_events").fetchall()
        )
        for table in ("backcheck_views", "backcheck_dashboard"):
            rows = conn.execute(f"SELECT doc::text FROM {schema}.{table}").fetchall()
            found += "".join(r[0] for r in rows).encode()
    return found


def kept_v1_checkpoint(settings: Settings) -> Checkpoint:
    """A v1 JSON checkpoint of the chain head, kept as `audit checkpoint` kept them before
    checkpoints became signed notes (the migration record still carries one)."""
    with open_source(settings) as source:
        head = source.head()
    signed = sign(head, datetime.now(UTC), load_private_key(settings.signing_key_path))
    keep_checkpoint(settings, head.position, signed.to_json())
    return signed


def test_a_migrated_store_verifies_proves_the_old_head_and_rebuilds_the_same_views(
    demo_app: Backcheck, settings: Settings, target: Settings, clock: FakeClock
) -> None:
    # given the demo story (reads, disclosures, an erased candidate) and a kept v1 checkpoint
    checkpoint = kept_v1_checkpoint(settings)
    old_views = dumps(demo_app)
    old = list(demo_app.replay())

    summary = migrate(settings, target, "operator")

    # the old store's every event, in order, ids kept, after the migration record
    new = events(target, clock)
    assert summary.events == len(old) == len(new) - 1
    record = new[0][1]
    assert isinstance(record, StoreMigrated)
    assert (record.source_head_position, record.source_head_hash) == (
        checkpoint.position,
        checkpoint.hash,
    )
    assert parse(record.source_checkpoint, "record") == checkpoint
    assert [(e.originator_id, e.originator_version) for _, e in old] == [
        (e.originator_id, e.originator_version) for _, e in new[1:]
    ]
    reads = [e.originator_id for _, e in old if isinstance(e, Access.Recorded)]
    assert reads
    assert reads == [e.originator_id for _, e in new if isinstance(e, Access.Recorded)]
    # the new chain verifies, and so does the signed map
    with StoreVerification(target) as verification:
        assert verification.run().intact
    verdict = verify_map(summary.map_path, load_public_key(settings.verify_key_path))
    assert verdict.rows == len(old)
    rows = map_rows(summary.map_path)
    assert [r[0] for r in rows] == [p for p, _ in old]
    assert [r[1] for r in rows] == [p for p, _ in new[1:]]
    # the views rebuilt on the new store are the old ones, positions moved by the map
    positions = {r[0]: r[1] for r in rows}
    assert new_dumps(target, clock) == mapped(old_views, positions)
    # the erased candidate's values stay erased, under no new key
    erased = {e.originator_id for _, e in old if type(e).__qualname__ == "Candidate.Erased"}
    assert erased
    assert not {subject for subject, _ in key_rows(target)} & erased
    assert summary.values.erased > 0
    assert summary.values.key_missing == 0


def test_values_kept_in_clear_are_sealed_and_an_erased_subjects_stay_erased(
    settings: Settings, target: Settings, clock: FakeClock
) -> None:
    # given a store written before the name was sealed: two candidates with names in clear
    app = build_app(settings, clock=clock)
    mapper = typed_mapper(app.mapper)
    sealer, mapper.sealer = mapper.sealer, None
    kept = s.register(app, f"{MARK} Kept")
    gone = s.register(app, f"{MARK} Gone")
    mapper.sealer = sealer
    app.erase_subject(
        EraseSubject(candidate_id=gone, reason="candidate-request", actor=s.RECRUITER)
    )
    app.close()
    assert MARK.encode() in raw_states(settings)  # the weakness the migration is for

    summary = migrate(settings, target, "operator")

    assert summary.values.sealed_from_clear == 2  # the kept candidate's name and email
    assert summary.values.erased_from_clear == 2
    new_app = build_app(target, clock=clock)
    try:
        names = {c: new_app.load(Candidate, c).identity[0].value for c in (kept, gone)}
        dumps(new_app)  # the views written too
    finally:
        new_app.close()
    assert names == {kept: f"{MARK} Kept", gone: ERASED_VALUE}
    assert MARK.encode() not in raw_states(target)
    assert {subject for subject, _ in key_rows(target)} == {kept}


def test_values_whose_key_is_missing_are_carried_as_they_were(
    settings: Settings, target: Settings, clock: FakeClock
) -> None:
    app = build_app(settings, clock=clock)
    st = s.consented_candidate(app)
    app.close()
    delete_keys(settings, st.candidate_id)  # around the application: no erasure recorded

    summary = migrate(settings, target, "operator")

    assert summary.values.key_missing == 2  # name and email
    assert summary.key_missing_pairs == [  # a key per category: both gone
        (str(st.candidate_id), "user.contact.email"),
        (str(st.candidate_id), "user.name"),
    ]
    with StoreVerification(target) as verification:
        problems = verification.run().problems
    # the chain holds; each missing key (the name's, the e-mail's) is named
    assert [p.kind for p in problems] == ["key missing", "key missing"]
    assert all(str(st.candidate_id) in p.detail for p in problems)
    # the same envelopes, byte for byte, in the same event
    old_app, new_app = build_app(settings, clock=clock), build_app(target, clock=clock)
    try:
        first = old_app.recorder.select_events(st.candidate_id, limit=1)[0]
        copy = new_app.recorder.select_events(st.candidate_id, limit=1)[0]
        assert old_envelopes(first.state) == old_envelopes(copy.state) != {}
        with pytest.raises(DataKeyMissingError, match=str(st.candidate_id)):
            new_app.read_profile(
                ReadProfile(
                    candidate_id=st.candidate_id,
                    principal=s.RECRUITER,
                    role=Role.RECRUITER,
                    purpose=s.PURPOSE,
                )
            )
    finally:
        old_app.close()
        new_app.close()


def test_a_copy_cut_off_goes_on_where_it_stopped_without_duplicates(
    demo_app: Backcheck, settings: Settings, target: Settings, clock: FakeClock
) -> None:
    total = demo_app.recorder.max_notification_id()
    seen: list[int] = []

    def crash(done: int, _: int) -> None:
        seen.append(done)
        if done >= 30:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        migrate(settings, target, "operator", crash, batch=10)
    assert seen == [10, 20, 30]

    summary = migrate(settings, target, "operator", batch=10)

    assert summary.resumed_after > 0
    assert summary.copied == summary.events - 30
    new = events(target, clock)
    ids = [(e.originator_id, e.originator_version) for _, e in new]
    assert len(ids) == len(set(ids)) == summary.events + 1
    assert summary.events == len(list(demo_app.replay()))
    assert total is not None
    assert (
        verify_map(summary.map_path, load_public_key(settings.verify_key_path)).rows == len(ids) - 1
    )
    with StoreVerification(target) as verification:
        assert verification.run().intact
    again = migrate(settings, target, "operator")  # a finished copy: nothing more to do
    assert again.copied == 0
    assert again.events == summary.events


def test_a_target_holding_other_events_is_refused(
    settings: Settings, target: Settings, clock: FakeClock
) -> None:
    if target.backend == "postgres":
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {target.postgres_schema}")
    s.register(other := build_app(target, clock=clock))
    other.close()
    source = build_app(settings, clock=clock)
    s.register(source)
    source.close()

    with pytest.raises(TargetNotEmptyError, match="holds events already"):
        migrate(settings, target, "operator")


def test_a_store_that_does_not_verify_is_refused_before_anything_is_copied(
    settings: Settings, target: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from infra.audit.chain import Head
    from infra.audit.checkpoint import load_private_key, sign
    from infra.audit.trail import keep_checkpoint, key_pair

    app = build_app(settings, clock=clock)
    s.register(app)
    app.close()
    key_pair(settings.keys_dir)
    forged = sign(
        Head(1, bytes(32)), datetime.now(UTC), load_private_key(settings.signing_key_path)
    )
    keep_checkpoint(settings, 1, forged.to_json())

    with pytest.raises(SourceNotVerifiedError, match="first bad position 1: checkpoint"):
        migrate(settings, target, "operator")
    assert not (target.data_dir / "migration").exists()


def test_a_tampered_map_is_refused(settings: Settings, target: Settings, clock: FakeClock) -> None:
    app = build_app(settings, clock=clock)
    s.register(app)
    s.register(app, "Han Mei")
    app.close()
    summary = migrate(settings, target, "operator")
    key = load_public_key(settings.verify_key_path)
    lines = summary.map_path.read_text().splitlines(keepends=True)
    row = json.loads(lines[-2])  # the last row: said to have gone one position further
    lines[-2] = json.dumps([row[0], row[1] + 1, row[2], row[3]], separators=(",", ":")) + "\n"
    summary.map_path.write_text("".join(lines))

    with pytest.raises(PositionMapError, match="the map was changed"):
        verify_map(summary.map_path, key)
    env = {
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [*BACKCHECK, "store", "verify-map", str(summary.map_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("NOT VALID: the rows are not the rows signed")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.postgres
def test_a_sqlite_store_migrates_into_postgresql(
    sqlite_app: Backcheck, tmp_path: Path, clock: FakeClock, pg_schema: str
) -> None:
    require_postgres()
    source = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    s.consented_candidate(sqlite_app)
    old_views = dumps(sqlite_app)
    target = target_settings(source, f"{PG_URL}?schema={pg_schema}", tmp_path / "new")

    summary = migrate(source, target, "operator")

    with StoreVerification(target) as verification:
        assert verification.run().intact
    positions = {r[0]: r[1] for r in map_rows(summary.map_path)}
    assert new_dumps(target, clock) == mapped(old_views, positions)


def test_a_tier_shredded_by_retention_stays_shredded_and_the_rest_is_sealed_anew(
    settings: Settings, target: Settings, clock: FakeClock
) -> None:
    app = build_app(settings, clock=clock)
    st = s.completed_investigation(app)
    clock.advance(days=366)
    shredded = app.run_retention(RunRetention()).shredded
    assert [(i.candidate_id, i.tier) for i in shredded] == [(st.candidate_id, "confidential")]
    old_views = dumps(app)
    app.close()

    summary = migrate(settings, target, "operator")

    assert summary.values.erased > 0
    assert summary.values.sealed > 0
    made = key_rows(target)  # a key per category of the general tier; no confidential key made
    assert {subject for subject, _ in made} == {st.candidate_id}
    assert {tier_of(category) for _, category in made} == {Tier.GENERAL}
    new_app = build_app(target, clock=clock)
    try:
        inv = new_app.load(Investigation, st.investigation)
        notes = {f.notes.value for f in inv.findings.values() if f.notes is not None}
        identity = {f.value for f in new_app.load(Candidate, st.candidate_id).identity}
    finally:
        new_app.close()
    assert notes == {ERASED_VALUE}
    assert ERASED_VALUE not in identity
    positions = {r[0]: r[1] for r in map_rows(summary.map_path)}
    assert new_dumps(target, clock) == mapped(old_views, positions)
    with StoreVerification(target) as verification:
        assert verification.run().intact


def test_a_map_signed_again_after_a_change_does_not_hold_against_the_store(
    settings: Settings, target: Settings, clock: FakeClock
) -> None:
    app = build_app(settings, clock=clock)
    s.register(app)
    s.register(app, "Han Mei")
    app.close()
    summary = migrate(settings, target, "operator")
    key = load_public_key(settings.verify_key_path)
    with open_source(target) as records:
        held = check_store(summary.map_path, verify_map(summary.map_path, key), records, key)
    assert held == []
    # whoever holds the signing key writes a map of their own: the signature holds, the store
    # does not agree
    lines = summary.map_path.read_text().splitlines()
    header = json.loads(lines[0])
    header.pop("type")
    rows = [tuple(json.loads(line)) for line in lines[1:-1]]
    swapped = [(rows[0][0], rows[0][1], rows[1][2], rows[1][3]), *rows[1:]]
    write_map(summary.map_path, header, swapped, load_private_key(settings.signing_key_path))

    verdict = verify_map(summary.map_path, key)
    with open_source(target) as records:
        problems = check_store(summary.map_path, verdict, records, key)

    assert problems == [
        f"old position {rows[0][0]}: position {rows[0][1]} holds another event than the map says"
    ]
