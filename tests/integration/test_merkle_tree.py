"""The Merkle tree over the log, on a real SQLite file and a real PostgreSQL schema: written by
the recorders with the events, equal to the tree recomputed from the records at every size,
proofs that verify by RFC 9162, tampering named by `audit verify`, and a store chained before
the tree getting it from a backfill that can be interrupted and resumed."""

from __future__ import annotations

import functools
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from infra.audit import merkle
from infra.audit.chain import digest
from infra.audit.log_tree import LogTree
from infra.audit.sources import RecordSource, open_source
from infra.audit.verification import Verdict, verify
from infra.bootstrap import build_app
from infra.config import Settings
from infra.store.recorder import chained
from infra.store.tree_backfill import TreeBackfillError
from services.application import Backcheck
from services.dto import RegisterCandidate
from tests import story as s
from tests.conftest import PG_URL, FakeClock
from tests.integration.test_audit_trail import quiet_demo
from tests.kafka import store_env

BACKCHECK = str(Path(sys.executable).with_name("backcheck"))


@pytest.fixture
def story(settings: Settings) -> None:
    """The demo story told on the store."""
    quiet_demo(settings)


def recomputed(source: RecordSource) -> list[bytes]:
    """The leaf hashes of the stored records, from their digests (chain.py)."""
    return [merkle.leaf_hash(digest(o, v, t, st)) for _, o, v, t, st in source.records()]


def positions(source: RecordSource) -> list[int]:
    return [r[0] for r in source.records()]


def sql(settings: Settings, statement: str, params: tuple[object, ...] = ()) -> None:
    """As an attacker with database access: triggers bypassed (dropped, not committed)."""
    if settings.backend == "sqlite":
        conn = sqlite3.connect(settings.sqlite_path)
        try:
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'"):
                conn.execute(f"DROP TRIGGER {name}")
            conn.execute(statement, params)
            conn.commit()
        finally:
            conn.close()
        return
    with psycopg.connect(PG_URL) as conn:
        conn.execute(f"SET search_path TO {settings.postgres_schema}")
        conn.execute("SET session_replication_role = replica")  # triggers off
        conn.execute(statement.replace("?", "%s").replace("stored_", "backcheck_"), params)


def check(settings: Settings) -> Verdict:
    """Verify in one pass, and again over two processes (the tree's pass then runs beside
    them, on a connection of its own): same verdict."""
    with open_source(settings) as source:
        whole = verify(source)
        parallel = verify(
            source, opener=functools.partial(open_source, settings), workers=2, chunk=7
        )
    assert parallel.as_dict() == whole.as_dict()
    return whole


def test_the_stored_tree_is_the_recomputed_tree_at_every_size(
    settings: Settings, story: None
) -> None:
    with open_source(settings) as source:
        tree = LogTree(source)
        leaves = recomputed(source)
        where = positions(source)
        assert tree.size == len(leaves) > 40
        frontier = merkle.Frontier()
        roots = [merkle.EMPTY_ROOT]
        for size, leaf in enumerate(leaves, 1):
            frontier.append(leaf, [])
            roots.append(frontier.root())
            assert tree.tree_head(size).root == roots[size], size
        n = len(leaves)
        for index in range(n):  # every record's inclusion in the newest head, and in its own
            proof = tree.prove(where[index], n)
            assert (proof.index, proof.leaf) == (index, leaves[index])
            assert merkle.verify_inclusion(index, n, proof.leaf, proof.path, roots[n])
            own = tree.prove(where[index], index + 1)
            assert merkle.verify_inclusion(index, index + 1, own.leaf, own.path, roots[index + 1])
            assert tree.head_at(where[index]).root == roots[index + 1]
        for old in range(0, n + 1, 3):
            for new in range(old, n + 1, 5):
                proof = tree.consistency_proof(old, new)
                assert len(proof) <= 2 * max(1, (new - 1).bit_length())
                assert merkle.verify_consistency(old, new, roots[old], roots[new], proof)
        with pytest.raises(merkle.ProofError, match="beyond the stored tree"):
            tree.consistency_proof(1, n + 1)
    assert check(settings).intact


def test_the_database_refuses_to_change_the_tree(settings: Settings, story: None) -> None:
    app = build_app(settings)
    recorder = chained(app.recorder)
    app.close()
    schema = settings.postgres_schema if settings.backend == "postgres" else ""
    for table in (recorder.tree_table_name,):
        for statement in (f"UPDATE {table} SET hash = hash", f"DELETE FROM {table}"):
            if settings.backend == "sqlite":
                with (
                    sqlite3.connect(settings.sqlite_path) as db,
                    pytest.raises(sqlite3.DatabaseError, match="append-only"),
                ):
                    db.execute(statement)
            else:
                with (
                    psycopg.connect(PG_URL, options=f"-c search_path={schema}") as conn,
                    pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
                ):
                    conn.execute(statement)


@pytest.mark.parametrize(("level", "index"), [(0, 9), (1, 3), (3, 2), (5, 0)])
def test_a_changed_tree_node_is_named_by_audit_verify(
    settings: Settings, story: None, level: int, index: int
) -> None:
    with open_source(settings) as source:
        first_position = positions(source)[index << level]
    last_leaf = ((index + 1) << level) - 1  # the table's key of node (level, index)
    sql(
        settings,
        "UPDATE stored_tree SET hash = ? WHERE leaf = ? AND level = ?",
        (bytes(32), last_leaf, level),
    )
    verdict = check(settings)
    assert not verdict.intact
    (problem,) = verdict.problems
    assert (problem.kind, problem.position) == ("tree", first_position)
    named = f"tree leaf {index}" if level == 0 else f"tree node level {level} index {index}"
    assert named in problem.detail


def test_a_deleted_tree_node_is_named_missing(settings: Settings, story: None) -> None:
    with open_source(settings) as source:
        first_position = positions(source)[4 << 2]
    sql(settings, "DELETE FROM stored_tree WHERE leaf = ? AND level = ?", ((5 << 2) - 1, 2))
    (problem,) = check(settings).problems
    assert (problem.kind, problem.position) == ("tree", first_position)
    assert "tree node level 2 index 4" in problem.detail
    assert "missing" in problem.detail


def drop_tree(settings: Settings) -> None:
    """The store as the version before the tree left it."""
    if settings.backend == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as db:
            db.execute("DROP TABLE stored_tree")
        return
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {settings.postgres_schema}.backcheck_tree")


def register(app: Backcheck, n: int) -> None:
    for i in range(n):
        s.register(app, f"Later {i}")


def test_a_store_chained_before_the_tree_gets_it_by_a_resumable_backfill(
    settings: Settings, clock: FakeClock, story: None
) -> None:
    drop_tree(settings)
    app = build_app(settings, clock=clock)  # tables made again, empty: the tree lags
    try:
        register(app, 3)  # writers go on meanwhile, leaving the tree to the backfill
        with open_source(settings) as source:
            assert source.tree_end() == (0, 0)
            first = positions(source)[0]
        problem = check(settings).problems[0]
        assert (problem.kind, problem.position) == ("tree", first)
        assert "tree-backfill" in problem.detail

        recorder = chained(app.recorder)
        assert recorder.backfill_tree(7)[0] == 7
        assert recorder.backfill_tree(7)[0] == 7  # and then interrupted
        register(app, 2)
        with open_source(settings) as source:
            assert source.tree_end()[0] == 14
            fifteenth = positions(source)[14]
        assert check(settings).problems[0].position == fifteenth

        done = subprocess.run(  # resumed, to the end, by the command
            [BACKCHECK, "audit", "tree-backfill", "--batch", "10"],
            env=store_env(settings),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "the tree covers the log" in done.stdout
        register(app, 4)  # now each write extends the tree itself
    finally:
        app.close()
    with open_source(settings) as source:
        tree, leaves = LogTree(source), recomputed(source)
        assert tree.size == len(leaves)
        assert tree.tree_head().root == merkle.fold(
            [merkle.root(len(leaves), lambda keys: _memory(leaves, keys))]
        )
    assert check(settings).intact


def _memory(leaves: list[bytes], keys: object) -> dict[merkle.Key, bytes]:
    found: dict[merkle.Key, bytes] = {}
    for level, index in keys:  # type: ignore[attr-defined]
        hashes = leaves[index << level : (index + 1) << level]
        found[(level, index)] = merkle.fold(_perfect(hashes))
    return found


def _perfect(hashes: list[bytes]) -> list[bytes]:
    while len(hashes) > 1:
        hashes = [merkle.node_hash(a, b) for a, b in zip(hashes[::2], hashes[1::2], strict=True)]
    return hashes


def test_the_backfill_refuses_records_that_differ_from_their_chain(
    settings: Settings, clock: FakeClock, story: None
) -> None:
    drop_tree(settings)
    with open_source(settings) as source:
        victim = positions(source)[5]
    column = "rowid" if settings.backend == "sqlite" else "notification_id"
    sql(settings, f"UPDATE stored_events SET state = ? WHERE {column} = ?", (b"{}", victim))
    app = build_app(settings, clock=clock)
    try:
        with pytest.raises(TreeBackfillError, match=f"position {victim}: the record differs"):
            chained(app.recorder).backfill_tree(100)
        with open_source(settings) as source:  # nothing of the failed batch is kept
            assert source.tree_end() == (0, 0)
    finally:
        app.close()
    done = subprocess.run(
        [BACKCHECK, "audit", "tree-backfill"],
        env=store_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 65
    assert f"position {victim}: the record differs" in done.stderr
    assert "Traceback" not in done.stderr


def test_concurrent_writers_keep_one_tree(settings: Settings, story: None) -> None:
    apps = [build_app(settings) for _ in range(4)]
    errors: list[BaseException] = []

    def write(app: Backcheck) -> None:
        try:
            for i in range(20):
                app.register_candidate(RegisterCandidate(name=f"Writer {i}", actor="hr"))
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
    with open_source(settings) as source:
        leaves = recomputed(source)
        tree = LogTree(source)
        assert tree.size == len(leaves)
        frontier = merkle.Frontier()
        for leaf in leaves:
            frontier.append(leaf, [])
        assert tree.tree_head().root == frontier.root()
    assert check(settings).intact


def test_a_write_that_rolls_back_leaves_the_tree_as_it_was(settings: Settings, story: None) -> None:
    """A write refused (the library's optimistic-concurrency check: a version stored already)
    leaves the tree, and the right edge the recorder keeps between writes, as they were."""
    from uuid import uuid4

    from eventsourcing.persistence import IntegrityError, StoredEvent

    app = build_app(settings)
    try:
        recorder = chained(app.recorder)
        state = b'{"note": "bench"}'
        taken = uuid4()
        recorder.insert_events([StoredEvent(taken, 1, "test:Event", state)])
        with pytest.raises(IntegrityError):
            recorder.insert_events(
                [
                    StoredEvent(uuid4(), 1, "test:Event", state),
                    StoredEvent(taken, 1, "test:Event", state),  # stored already
                ]
            )
        for _ in range(3):
            recorder.insert_events([StoredEvent(uuid4(), 1, "test:Event", state)])
    finally:
        app.close()
    with open_source(settings) as source:
        leaves = recomputed(source)
        frontier = merkle.Frontier()
        for leaf in leaves:
            frontier.append(leaf, [])
        tree = LogTree(source)
        assert tree.size == len(leaves)
        assert tree.tree_head().root == frontier.root()
    assert check(settings).intact
