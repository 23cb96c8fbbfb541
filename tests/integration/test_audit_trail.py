"""Tamper evidence: an attacker with database access changes history; `audit verify` names the
first bad position. Run on a real SQLite file and a real PostgreSQL schema, bypassing the
append-only triggers the way an attacker would."""

from __future__ import annotations

import base64
import functools
import json
import random
import sqlite3
import threading
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.audit.chain import GENESIS, link
from infra.audit.checkpoint import Checkpoint, check_signature, sign
from infra.audit.evidence import export_bundle, verify_bundle
from infra.audit.verification import Verdict, open_source, verify
from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from infra.store.recorder import chained
from services.dto import RegisterCandidate
from tests.conftest import PG_URL


def base64_states(bundle: bytes) -> bytes:
    body = json.loads(bundle.split(b"\n")[0])
    return b"".join(
        base64.b64decode(step["record"]["state"]) for step in body["steps"] if "record" in step
    )


class Tamper(ABC):
    """Direct database access, triggers bypassed."""

    @abstractmethod
    def sql(self, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Run one statement the way an attacker with database access would."""

    events: str
    chain: str
    position: str
    id_of: staticmethod


class SQLiteTamper(Tamper):
    events, chain, position = "stored_events", "stored_chain", "rowid"

    def __init__(self, path: Path) -> None:
        self.path = path

    def sql(self, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(self.path)
        try:
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'"):
                conn.execute(f"DROP TRIGGER {name}")
            rows = conn.execute(statement, params).fetchall()
            conn.commit()
            return rows
        finally:
            conn.rollback()  # the triggers come back: nothing of the DROP is committed twice
            conn.close()

    @staticmethod
    def id_param(value: UUID) -> object:
        return value.hex


class PostgresTamper(Tamper):
    events, chain, position = "backcheck_events", "backcheck_chain", "notification_id"

    def __init__(self, schema: str) -> None:
        self.schema = schema

    def sql(self, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with psycopg.connect(PG_URL) as conn:
            conn.execute("SET session_replication_role = replica")  # triggers off
            conn.execute(f"SET search_path = {self.schema}")
            cur = conn.execute(statement.replace("?", "%s"), params)
            rows = cur.fetchall() if cur.description else []
            conn.commit()
            return rows

    @staticmethod
    def id_param(value: UUID) -> object:
        return value


def quiet_demo(settings: Settings) -> None:
    app = build_app(settings)
    try:
        tell_story(app)
    finally:
        app.close()


def check(settings: Settings, checkpoints: list[Checkpoint] = ()) -> Verdict:  # type: ignore[assignment]
    """Verify in one pass, and again cut into small chunks over two processes: same verdict."""
    with open_source(settings) as source:
        whole = verify(source, list(checkpoints))
        parallel = verify(
            source,
            list(checkpoints),
            opener=functools.partial(open_source, settings),
            workers=2,
            chunk=7,
        )
    assert parallel.as_dict() == whole.as_dict()
    return whole


class AuditTrailContract(ABC):
    settings: Settings
    tamper: Tamper

    @pytest.fixture(autouse=True)
    def _story(self, backend: tuple[Settings, Tamper]) -> None:
        self.settings, self.tamper = backend
        quiet_demo(self.settings)

    def record(self, position: int) -> tuple[object, ...]:
        t = self.tamper
        return t.sql(
            f"SELECT originator_id, originator_version, topic, state FROM {t.events} "
            f"WHERE {t.position} = ?",
            (position,),
        )[0]

    def head(self) -> int:
        return check(self.settings).head.position

    def test_an_untouched_store_verifies(self) -> None:
        verdict = check(self.settings)

        assert verdict.intact
        assert verdict.checked == self.head() > 30

    def test_a_changed_record_is_named_at_its_position(self) -> None:
        t = self.tamper
        _oid, _ver, _topic, state = self.record(8)  # the recruiter cancels the first plan
        forged = bytes(state).replace(b'"hr:li.na"', b'"hr:xx.xx"')
        assert forged != bytes(state)
        t.sql(f"UPDATE {t.events} SET state = ? WHERE {t.position} = ?", (forged, 8))

        verdict = check(self.settings)

        assert not verdict.intact
        assert verdict.first is not None
        assert (verdict.first.position, verdict.first.kind) == (8, "changed")

    def test_a_deleted_record_is_missing_at_its_position(self) -> None:
        t = self.tamper
        t.sql(f"DELETE FROM {t.events} WHERE {t.position} = ?", (12,))

        verdict = check(self.settings)

        assert verdict.first is not None
        assert (verdict.first.position, verdict.first.kind) == (12, "missing")

    def test_a_record_and_its_link_deleted_together_still_show_as_missing(self) -> None:
        t = self.tamper
        t.sql(f"DELETE FROM {t.events} WHERE {t.position} = ?", (12,))
        t.sql(f"DELETE FROM {t.chain} WHERE position = ?", (12,))

        verdict = check(self.settings)

        assert verdict.first is not None
        assert verdict.first.kind == "missing"
        assert verdict.first.position == 13  # the link at 13 names 12, which is gone

    def test_a_record_inserted_around_the_recorder_is_named(self) -> None:
        t = self.tamper
        oid, _ver, topic, state = self.record(3)
        t.sql(
            f"INSERT INTO {t.events} (originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?)",
            (oid, 999, topic, state),
        )
        inserted = self.head() + 1

        verdict = check(self.settings)

        assert verdict.first is not None
        assert (verdict.first.position, verdict.first.kind) == (inserted, "inserted")

    def test_swapped_records_are_named_reordered(self) -> None:
        t = self.tamper
        a, b = self.record(9), self.record(15)
        # Move both records out of the way, then write each at the other's position.
        t.sql(
            f"UPDATE {t.events} SET originator_version = originator_version + 100000 "
            f"WHERE {t.position} IN (?, ?)",
            (9, 15),
        )
        for position, (oid, ver, topic, state) in ((9, b), (15, a)):
            t.sql(
                f"UPDATE {t.events} SET originator_id = ?, originator_version = ?, topic = ?, "
                f"state = ? WHERE {t.position} = ?",
                (oid, ver, topic, state, position),
            )

        verdict = check(self.settings)

        assert verdict.first is not None
        assert (verdict.first.position, verdict.first.kind) == (9, "reordered")
        assert any(p.position == 15 and p.kind == "reordered" for p in verdict.problems)

    def rewrite_history_from(self, position: int) -> None:
        """The strongest attacker: change a record and recompute every link after it."""
        t = self.tamper
        _oid, _ver, _topic, state = self.record(position)
        t.sql(
            f"UPDATE {t.events} SET state = ? WHERE {t.position} = ?",
            (bytes(state) + b" ", position),  # still valid JSON, different bytes
        )
        rows = t.sql(
            f"SELECT c.position, c.prev_position, e.originator_id, e.originator_version, "
            f"e.topic, e.state FROM {t.chain} c JOIN {t.events} e ON e.{t.position} = c.position "
            "ORDER BY c.position"
        )
        prev = GENESIS
        for pos, prev_pos, r_oid, r_ver, r_topic, r_state in rows:
            oid_bytes = r_oid.bytes if isinstance(r_oid, UUID) else UUID(str(r_oid)).bytes
            h = link(prev, pos, prev_pos, oid_bytes, r_ver, str(r_topic).encode(), bytes(r_state))
            if pos >= position:
                t.sql(f"UPDATE {t.chain} SET hash = ? WHERE position = ?", (h, pos))
            prev = h
        self.rebuild_tree()

    def rebuild_tree(self) -> None:
        """And the Merkle tree over the log, rebuilt over the records as they now are."""
        t = self.tamper
        t.sql(f"DELETE FROM {t.chain.removesuffix('_chain')}_tree")
        app = build_app(self.settings)
        try:
            while chained(app.recorder).backfill_tree(1000)[0]:
                pass
        finally:
            app.close()

    def test_history_rewritten_with_a_recomputed_chain_is_caught_by_a_signed_checkpoint(
        self,
    ) -> None:
        key = Ed25519PrivateKey.generate()
        with open_source(self.settings) as source:
            checkpoint = sign(source.head(), datetime.now(UTC), key)
        assert check_signature(checkpoint, key.public_key()) is None

        self.rewrite_history_from(5)

        assert check(self.settings).intact  # the chain alone cannot see this rewrite ...
        verdict = check(self.settings, [checkpoint])  # ... the outside witness can
        assert verdict.first is not None
        assert verdict.first.kind == "checkpoint"
        assert verdict.first.position == checkpoint.position

    def test_a_log_cut_short_is_caught_by_a_signed_checkpoint(self) -> None:
        key = Ed25519PrivateKey.generate()
        with open_source(self.settings) as source:
            checkpoint = sign(source.head(), datetime.now(UTC), key)
        t = self.tamper
        last = checkpoint.position
        t.sql(f"DELETE FROM {t.events} WHERE {t.position} >= ?", (last - 2,))
        t.sql(f"DELETE FROM {t.chain} WHERE position >= ?", (last - 2,))
        self.rebuild_tree()

        verdict = check(self.settings, [checkpoint])

        assert verdict.first is not None
        assert (verdict.first.position, verdict.first.kind) == (last, "checkpoint")

    def test_the_database_refuses_to_update_or_delete_events_and_links(self) -> None:
        app = build_app(self.settings)
        app.close()
        for table in (self.tamper.events, self.tamper.chain):
            for statement in (f"UPDATE {table} SET originator_version = 0", f"DELETE FROM {table}"):
                with pytest.raises(Exception, match="append-only"):
                    self.raw_with_triggers(statement)

    @abstractmethod
    def raw_with_triggers(self, statement: str) -> None:
        """Run one statement with the append-only triggers in place."""

    def bundle(self, key: Ed25519PrivateKey) -> tuple[bytes, UUID]:
        app = build_app(self.settings)
        try:
            records = list(app.iter_events())
            subject = records[0].data["candidate_id"]
            subject_id = UUID(str(subject))
            positions = [r.position for r in app.iter_events(subject_id)]
            timeline = [e.model_dump(mode="json") for e in app.timeline(subject_id)]
        finally:
            app.close()
        with open_source(self.settings) as source:
            data, _ = export_bundle(source, subject_id, positions, key, datetime.now(UTC), timeline)
        return data, subject_id

    def test_an_exported_bundle_verifies_offline_and_carries_no_one_elses_data(self) -> None:
        key = Ed25519PrivateKey.generate()
        data, subject = self.bundle(key)

        verdict = verify_bundle(data, key.public_key())

        assert verdict.intact, verdict.problems
        assert verdict.subject == str(subject)
        assert verdict.events > 30
        assert verdict.checkpoint_position == self.head()
        assert b"Liu Yang" not in data  # the demo's other candidate appears only as digests
        assert b"hr:li.na" in base64_states(data)  # the subject's own records are there

    def test_a_bundle_fails_when_any_one_byte_changes(self) -> None:
        key = Ed25519PrivateKey.generate()
        data, _ = self.bundle(key)
        rng = random.Random(7)
        offsets = {0, 1, len(data) - 1, len(data) - 2, data.index(b"\n"), data.index(b"\n") + 5}
        offsets |= set(rng.sample(range(len(data)), 250))

        for offset in sorted(offsets):
            forged = bytearray(data)
            forged[offset] = (forged[offset] + rng.randrange(1, 256)) % 256
            verdict = verify_bundle(bytes(forged), key.public_key())
            assert not verdict.intact, f"byte {offset} changed, yet the bundle verified"

    def test_a_bundle_is_refused_under_another_key(self) -> None:
        data, _ = self.bundle(Ed25519PrivateKey.generate())

        verdict = verify_bundle(data, Ed25519PrivateKey.generate().public_key())

        assert any("not by the trusted key" in p for p in verdict.problems)

    def test_concurrent_writers_extend_one_chain(self) -> None:
        before = self.head()
        apps = [build_app(self.settings) for _ in range(4)]
        errors: list[BaseException] = []

        def write(app: object) -> None:
            try:
                for i in range(25):
                    app.register_candidate(RegisterCandidate(name=f"Writer {i}", actor="hr"))  # type: ignore[attr-defined]
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=write, args=(a,)) for a in apps]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for a in apps:
            a.close()

        assert errors == []
        verdict = check(self.settings)
        assert verdict.intact, verdict.problems[:3]
        assert verdict.checked == before + 100


class TestAuditTrailOnSQLite(AuditTrailContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> tuple[Settings, Tamper]:
        path = tmp_path / "store.sqlite"
        return Settings(database_url=f"sqlite:///{path}"), SQLiteTamper(path)

    def test_the_database_refuses_to_replace_events_and_links(self) -> None:
        """SQLite's REPLACE deletes the colliding row without firing DELETE triggers."""
        build_app(self.settings).close()
        t = self.tamper
        statements = [
            f"INSERT OR REPLACE INTO {t.events} SELECT originator_id, originator_version, "
            f"topic, X'00' FROM {t.events} LIMIT 1",
            f"REPLACE INTO {t.chain} SELECT position, prev_position, originator_id, "
            f"originator_version, zeroblob(32) FROM {t.chain} LIMIT 1",
            f"INSERT INTO {t.chain} SELECT position, prev_position, originator_id, "
            f"originator_version, hash FROM {t.chain} WHERE position = 3 "
            "ON CONFLICT DO UPDATE SET hash = zeroblob(32)",
        ]
        for statement in statements:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                self.raw_with_triggers(statement)
        assert check(self.settings).intact

    def raw_with_triggers(self, statement: str) -> None:
        conn = sqlite3.connect(self.settings.sqlite_path)
        try:
            conn.execute(statement)
        finally:
            conn.close()


@pytest.mark.postgres
class TestAuditTrailOnPostgres(AuditTrailContract):
    @pytest.fixture
    def backend(self, pg_schema: str) -> tuple[Settings, Tamper]:
        return Settings(database_url=f"{PG_URL}?schema={pg_schema}"), PostgresTamper(pg_schema)

    def raw_with_triggers(self, statement: str) -> None:
        with psycopg.connect(PG_URL) as conn:
            conn.execute(f"SET search_path = {self.tamper.schema}")  # type: ignore[attr-defined]
            conn.execute(statement)
