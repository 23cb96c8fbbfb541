"""A migrated store held to its position map and its migration record (`store verify-map
--store`): what the signature alone cannot say.

The map's signature says the map is the one the migration wrote. Held to the new store, read
straight from its tables (infra/audit/sources.py, nothing decoded, no key needed), it says
more: the store's first event is the migration record the map names; the old store's
checkpoint inside it is signed by the trusted key and pins the head the record names; and
every row's new position holds the event (id and version) the row names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infra.audit.checkpoint import CheckpointError, check_signature, parse
from infra.audit.sources import RecordSource
from infra.store.position_map import MapVerdict, Row, rows_of

MIGRATED_TOPIC = b"domain.migration:StoreMigration.Migrated"


def check_store(
    path: Path, verdict: MapVerdict, store: RecordSource, public_key: Ed25519PublicKey
) -> list[str]:
    """What does not hold between the (signature-checked) map at `path` and the store; an
    empty list when everything does."""
    records = store.records()
    first = next(records, None)
    named = verdict.header.get("migration_record", {})
    if first is None or first[3] != MIGRATED_TOPIC:
        return ["the store's first event is no migration record"]
    problems = _record(first, named, verdict, public_key)
    return problems + list(_rows(rows_of(path), records))


def _record(
    first: tuple[int, bytes, int, bytes, bytes],
    named: dict[str, object],
    verdict: MapVerdict,
    public_key: Ed25519PublicKey,
) -> list[str]:
    position, oid, _, _, state = first
    if (str(UUID(bytes=oid)), position) != (named.get("id"), named.get("position")):
        return [f"the store's migration record ({UUID(bytes=oid)} at {position}) is not the map's"]
    record = json.loads(state)
    head = verdict.header.get("source_head", {})
    recorded = {"position": record["source_head_position"], "hash": record["source_head_hash"]}
    if recorded != head:
        return ["the migration record names another old head than the map"]
    try:
        checkpoint = parse(str(record["source_checkpoint"]), "the migration record")
    except CheckpointError as e:
        return [str(e)]
    wrong = check_signature(checkpoint, public_key)
    if wrong is not None:
        return [f"the old store's checkpoint in the migration record: {wrong}"]
    if (checkpoint.position, checkpoint.hash) != (recorded["position"], recorded["hash"]):
        return ["the old store's checkpoint in the migration record is not of the head it names"]
    return []


def _rows(
    rows: Iterator[Row], records: Iterator[tuple[int, bytes, int, bytes, bytes]]
) -> Iterator[str]:
    """Each row's new position against the store's record there (both in position order)."""
    record = next(records, None)
    for old, new, event_id, version in rows:
        while record is not None and record[0] < new:
            record = next(records, None)
        if record is None or record[0] != new:
            yield f"old position {old}: the store has no event at position {new}"
            return
        if (str(UUID(bytes=record[1])), record[2]) != (event_id, version):
            yield f"old position {old}: position {new} holds another event than the map says"
            return
