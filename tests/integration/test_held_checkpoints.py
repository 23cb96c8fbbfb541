"""`audit verify` holds the store to its checkpoints as a compliance officer needs it to
(infra/audit/holding.py), on each backend: each checkpoint to the key that signed it, also
after `keygen --force`; a checkpoint whose signature fails is unusable input, not a tampered
store; a stored tree node changed alone is the tree's fault; and a rewritten history is placed
where the records depart when that can be known, else bounded by the checkpoints that hold."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from infra.audit import checkpoint as v1
from infra.audit.chain import GENESIS, link
from infra.audit.checkpoint import CheckpointError
from infra.audit.log_checkpoint import sign_tree, signer
from infra.audit.log_tree import LogTree
from infra.audit.sources import open_source
from infra.audit.trail import StoreVerification, keep_checkpoint, key_pair, sign_head
from infra.audit.verification import Verdict
from infra.bootstrap import build_app
from infra.config import Settings
from infra.store.recorder import chained
from services.dto import RegisterCandidate
from tests.integration.test_audit_trail import PostgresTamper, SQLiteTamper, Tamper

RECORDS = 12


@pytest.fixture
def store(settings: Settings) -> Settings:
    """The store on each backend, RECORDS records in it, and a checkpoint key."""
    settings = settings.model_copy(update={"log_origin": "example.com/backcheck"})
    key_pair(settings.keys_dir, origin=settings.origin)
    app = build_app(settings)
    for n in range(RECORDS):
        app.register_candidate(RegisterCandidate(name=f"Cand {n}", actor="hr:li"))
    app.close()
    return settings


@pytest.fixture
def tamper(store: Settings) -> Tamper:
    if store.backend == "sqlite":
        return SQLiteTamper(store.sqlite_path)
    return PostgresTamper(str(store.database_url).rpartition("schema=")[2])


def verdict(settings: Settings, files: list[Path] | None = None) -> Verdict:
    with StoreVerification(settings, files) as verification:
        return verification.run()


def positions(settings: Settings) -> list[int]:
    with open_source(settings) as source:
        return [r[0] for r in source.records()]


def register(settings: Settings, count: int) -> None:
    app = build_app(settings)
    for n in range(count):
        app.register_candidate(RegisterCandidate(name=f"Later {n}", actor="hr:li"))
    app.close()


def keep_note(settings: Settings, size: int) -> Path:
    """A checkpoint note of the first `size` records, signed with the store's key now."""
    with open_source(settings) as source:
        signed = sign_tree(LogTree(source), signer(settings), size)
    return keep_checkpoint(settings, size, str(signed.note), suffix=".note")


def rechain(t: Tamper) -> None:
    """Every chain link recomputed over the records as they now are: the chain alone holds."""
    rows = t.sql(
        f"SELECT c.position, e.originator_id, e.originator_version, e.topic, e.state "
        f"FROM {t.chain} c JOIN {t.events} e ON e.{t.position} = c.position ORDER BY c.position"
    )
    prev, prev_pos = GENESIS, 0
    for pos, oid, ver, topic, state in rows:
        oid_bytes = oid.bytes if isinstance(oid, UUID) else UUID(str(oid)).bytes
        h = link(prev, pos, prev_pos, oid_bytes, ver, str(topic).encode(), bytes(state))
        t.sql(
            f"UPDATE {t.chain} SET prev_position = ?, hash = ? WHERE position = ?",
            (prev_pos, h, pos),
        )
        prev, prev_pos = h, pos


def change_record(t: Tamper, position: int) -> None:
    ((state,),) = t.sql(f"SELECT state FROM {t.events} WHERE {t.position} = ?", (position,))
    t.sql(
        f"UPDATE {t.events} SET state = ? WHERE {t.position} = ?",
        (bytes(state) + b" ", position),  # still valid JSON, different bytes
    )


def delete_record(t: Tamper, position: int) -> None:
    """The record cut out of the log and the chain recomputed without it; the stored tree
    is left as it was."""
    t.sql(f"DELETE FROM {t.events} WHERE {t.position} = ?", (position,))
    t.sql(f"DELETE FROM {t.chain} WHERE position = ?", (position,))
    rechain(t)


def rebuild_tree(settings: Settings, t: Tamper) -> None:
    t.sql(f"DELETE FROM {t.chain.removesuffix('_chain')}_tree")
    app = build_app(settings)
    try:
        while chained(app.recorder).backfill_tree(1000)[0]:
            pass
    finally:
        app.close()


# --- keys ----------------------------------------------------------------------------------


def test_after_keygen_force_each_kept_checkpoint_is_held_to_the_key_that_signed_it(
    store: Settings, tamper: Tamper
) -> None:
    old_key = v1.load_private_key(store.signing_key_path)
    with open_source(store) as source:
        old_json = v1.sign(source.head(), datetime.now(UTC), old_key)
    keep_checkpoint(store, old_json.position, old_json.to_json())
    sign_head(store)  # a note, by the key about to be replaced
    replaced = key_pair(store.keys_dir, replace=True, origin=store.origin)
    assert replaced.replaced is not None
    assert replaced.replaced.exists()

    intact = verdict(store)
    assert (intact.intact, intact.checkpoints, intact.unheld) == (True, 2, [])

    change_record(tamper, positions(store)[2])
    rechain(tamper)
    rebuild_tree(store, tamper)
    rewritten = verdict(store)

    assert not rewritten.intact
    assert sorted(p.kind for p in rewritten.problems) == ["checkpoint", "checkpoint"]


def test_a_kept_checkpoint_whose_key_is_gone_is_named_in_the_verdict(store: Settings) -> None:
    sign_head(store)
    replaced = key_pair(store.keys_dir, replace=True, origin=store.origin)
    assert replaced.replaced is not None
    replaced.replaced.unlink()  # the old public key truly absent

    found = verdict(store)

    assert found.intact
    assert found.checkpoints == 0
    (unheld,) = found.unheld
    assert unheld.checkpoint.endswith(f"checkpoint-{RECORDS}.note")
    assert "not by the trusted key example.com/backcheck" in unheld.reason
    assert found.as_dict()["unheld"] == [unheld.__dict__]


def test_a_checkpoint_with_one_character_changed_is_unusable_input_given_or_kept(
    store: Settings, tmp_path: Path
) -> None:
    _, kept = sign_head(store)
    text = kept.read_text()
    forged = tmp_path / "forged.note"
    forged.write_text(text.replace(f"\n{RECORDS}\n", f"\n{RECORDS - 1}\n", 1))

    with pytest.raises(CheckpointError) as given:
        verdict(store, [forged])
    kept.write_text(text.replace(f"\n{RECORDS}\n", f"\n{RECORDS - 1}\n", 1))
    with pytest.raises(CheckpointError) as kept_forged:
        verdict(store)

    assert f"{forged}: the signature by example.com/backcheck does not verify" in str(given.value)
    assert "changed after it was signed, or forged" in str(given.value)
    assert str(kept) in str(kept_forged.value)


# --- where the history departs --------------------------------------------------------------


def test_a_stored_tree_node_changed_alone_is_the_trees_departure_not_rewritten_records(
    store: Settings, tamper: Tamper
) -> None:
    sign_head(store)
    tree = f"{tamper.chain.removesuffix('_chain')}_tree"
    tamper.sql(f"UPDATE {tree} SET hash = ? WHERE level = 2 AND leaf = 7", (bytes(32),))

    found = verdict(store)

    (problem,) = found.problems
    assert problem.kind == "tree"
    assert problem.detail.startswith("tree node level 2 index 1")
    assert problem.after is None
    assert found.held == [positions(store)[-1]]  # the note holds: the records are as signed


def test_a_record_cut_with_the_chain_recomputed_is_placed_where_the_records_depart(
    store: Settings, tamper: Tamper
) -> None:
    keep_note(store, 4)
    sign_head(store)
    register(store, 3)  # written after the checkpoint
    cut = positions(store)[6]

    delete_record(tamper, cut)  # the stored tree still holds the signed history
    found = verdict(store)

    checkpoints = [p for p in found.problems if p.kind == "checkpoint"]
    assert [(p.position, p.after) for p in checkpoints] == [(positions(store)[6], None)]
    assert "the stored tree still holds the signed tree of 12 records" in checkpoints[0].detail
    assert found.first is not None
    assert found.first.position == positions(store)[6]


def test_a_history_rewritten_with_chain_and_tree_is_bounded_by_the_checkpoints_that_hold(
    store: Settings, tamper: Tamper
) -> None:
    keep_note(store, 4)
    signed, _ = sign_head(store)
    register(store, 3)
    before = positions(store)

    delete_record(tamper, before[6])
    rebuild_tree(store, tamper)
    found = verdict(store)

    (problem,) = found.problems
    assert problem.kind == "checkpoint"
    assert problem.position == positions(store)[RECORDS - 1]  # the signed size's last now
    assert problem.after == before[3]  # the note of 4 records holds
    assert problem.detail.startswith(
        f"the history up to the checkpoint at {problem.position} ({signed.size} records) "
        "differs from what it signed"
    )
    assert found.as_dict()["problems"][0]["after"] == before[3]
