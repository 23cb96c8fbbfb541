"""Copying a store into a new one, its personal values sealed on the way (`store migrate`).

A store written before a field was sealed holds that field in clear, and its events never
change. The copy reads every stored event through the store's own mapper (upcasters run,
sealed values are opened in memory) and writes it, in order, through the new store's recorder
and mapper, which seal every personal value under the new store's keys and chain every record
anew. It knows no field: whatever the event classes mark personal is sealed. What must stay
unreadable stays so (infra/privacy/carrying.py): an erased subject's values, a shredded tier's,
values whose key is missing.

- The old chain is verified first (and held to its kept checkpoints); a store that does not
  verify is refused. The new store's first event is the migration record
  (domain/migration.py): the old store's verified head and its latest signed checkpoint (one
  is signed at the head and kept with the others when none reaches it).
- Event ids and versions stay; positions change. The signed position map
  (infra/store/position_map.py) is written beside the new store once every event is copied.
- Resumable: each batch is one transaction of the new store, so a crash leaves a prefix of the
  old log; run again, the copy finds its own migration record, the last event it copied, and
  goes on after it. A target holding anything else is refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import Notification

from domain.migration import StoreMigration
from infra.audit.chain import Head
from infra.audit.checkpoint import Checkpoint, generate_keys, load_private_key, read, sign
from infra.audit.keys import ERASURE_TOPICS, SEALED, missing_keys, note
from infra.audit.sources import open_source
from infra.audit.trail import StoreVerification, keep_checkpoint
from infra.config import Settings
from infra.privacy.carrying import CarryingSealer, Tally
from infra.privacy.erasures import RecordedErasures
from infra.privacy.providers import provider_from_settings
from infra.store.migration_errors import SourceNotVerifiedError, TargetNotEmptyError
from infra.store.migration_stores import Opened, open_store, refuse_foreign_file, where
from infra.store.position_map import Row, write_map
from projections.events import StoreMigrated
from services.shredding import KeyLedger

MIGRATED_TOPIC = f"{StoreMigrated.__module__}:{StoreMigrated.__qualname__}"
MAP_NAME = "position-map.jsonl"
Progress = Callable[[int, int], None]  # events copied so far, events to copy


@dataclass
class Summary:
    source: str
    target: str
    source_head: Head
    checkpoint: Checkpoint
    events: int  # events of the old store copied, in all (this run and earlier ones)
    copied: int  # by this run
    resumed_after: int  # the old position this run went on after (0: from the start)
    record_position: int
    map_path: Path
    map_rows: int
    values: Tally
    left_behind: int = 0  # events written to the old store after its head was taken
    key_missing_pairs: list[tuple[str, str]] = field(default_factory=list)
    new_checkpoint: Checkpoint | None = None  # the new store's head, signed once copied

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "source_head": {
                "position": self.source_head.position,
                "hash": self.source_head.hash.hex(),
            },
            "checkpoint": {"position": self.checkpoint.position, "time": self.checkpoint.time},
            "events": self.events,
            "copied": self.copied,
            "resumed_after": self.resumed_after,
            "migration_record_position": self.record_position,
            "map": str(self.map_path),
            "map_rows": self.map_rows,
            "values": self.values.as_dict(),
            "key_missing": [{"candidate_id": s, "tier": t} for s, t in self.key_missing_pairs],
            "left_behind": self.left_behind,
            "new_checkpoint": (
                {"position": self.new_checkpoint.position, "hash": self.new_checkpoint.hash}
                if self.new_checkpoint
                else None
            ),
        }


def _verified_head(source: Settings) -> tuple[Head, list[Checkpoint]]:
    """The old store's head, its chain recomputed and held to its kept checkpoints; a key
    missing is not the chain's fault (the copy carries such values as they are)."""
    with StoreVerification(source) as verification:
        verdict = verification.run()
    broken = sorted(
        (p for p in verdict.problems if p.kind != "key missing"), key=lambda p: p.position
    )
    if broken:
        first = broken[0]
        raise SourceNotVerifiedError(
            f"the store to migrate does not verify: first bad position {first.position}: "
            f"{first.kind}: {first.detail} (`backcheck audit verify`); nothing was copied"
        )
    return verdict.head, verification.checkpoints


def _checkpoint(source: Settings, head: Head, kept: list[Checkpoint]) -> Checkpoint:
    """The old store's latest signed checkpoint; one signed at its head now (and kept with
    its others) when none reaches the head."""
    latest = max(kept, key=lambda c: c.position, default=None)
    if latest is not None and latest.position >= head.position:
        return latest
    signed = sign(head, datetime.now(UTC), _signing_key(source))
    keep_checkpoint(source, head.position, signed.to_json())
    return signed


def _signing_key(source: Settings) -> Ed25519PrivateKey:
    """The checkpoint key; made in its default place when the store has none yet, as the
    first erasure receipt would (a configured key must exist)."""
    path = source.signing_key_path
    if source.signing_key is None and not path.exists():
        generate_keys(path.parent, exist_ok=True)
    return load_private_key(path)


def _new_checkpoint(target: Settings, source: Settings) -> Checkpoint:
    """The new store's head signed now and kept in its data directory, where `audit verify`
    on the new store holds its chain to it (the same when a finished copy is run again)."""
    with open_source(target) as records:
        head = records.head()
    for path in sorted(target.checkpoints_dir.glob("*.json")):
        kept = read(path)
        if (kept.position, kept.hash) == (head.position, head.hash.hex()):
            return kept
    signed = sign(head, datetime.now(UTC), _signing_key(source))
    keep_checkpoint(target, head.position, signed.to_json())
    return signed


def _ledger(source: Settings, stop: int) -> tuple[KeyLedger, set[tuple[UUID, str]]]:
    """What the old store's records up to `stop` (the head copied up to) say of its keys:
    erasures, shredded tiers, and the keys missing (values sealed with them, no erasure)."""
    ledger = KeyLedger()
    with open_source(source) as records:
        for position, oid, _, topic, state in records.records(1, stop):
            if SEALED in state or topic in ERASURE_TOPICS:
                note(ledger, position, oid, topic, state)
        gone = missing_keys(ledger, records.held_keys(), records.erasures)
    return ledger, {(f.candidate_id, f.tiers[0]) for f in gone}


def _destroyed(ledger: KeyLedger) -> Callable[[UUID, str, int], bool]:
    def destroyed(subject: UUID, scope: str, position: int) -> bool:
        if subject in ledger.erased:
            return True
        shred = ledger.shredded.get((subject, scope))
        return shred is not None and position < shred.position

    return destroyed


def migrate(
    source: Settings,
    target: Settings,
    migrated_by: str,
    progress: Progress | None = None,
    batch: int = 500,
) -> Summary:
    """Copies the store `source` into the new store `target` (or goes on with a copy cut
    off), then writes the signed position map beside it."""
    head, kept = _verified_head(source)
    refuse_foreign_file(target)
    with contextlib.ExitStack() as stack:
        master, _ = provider_from_settings(source, create=False)  # the old store's, kept
        stack.callback(master.close)
        old = open_store(source, master)
        stack.callback(old.close)
        new = open_store(target, master, setting="--to")
        stack.callback(new.close)
        # on a copy begun earlier, the head is the one it began with (recorded first)
        record, checkpoint, head = _record(source, target, new, old, head, kept, migrated_by)
        total = _count_up_to(old, head.position)
        ledger, missing = _ledger(source, head.position)  # what is after the head is not copied
        sealer = CarryingSealer(
            new.keys,
            RecordedErasures(new.app.recorder.select_events).covers,
            _destroyed(ledger),
            missing,
        )
        new.mapper.sealer = sealer
        after = _resume_point(new, old, record)
        copied_before = _count_up_to(new, new.recorder.max_notification_id() or 0) - 1
        copied = 0
        for page in _pages(old, after, head.position, batch):
            stored = []
            for notification in page:
                event = old.mapper.to_domain_event(notification)
                sealer.copying(notification.id, notification.state)
                stored.append(new.mapper.to_stored_event(event))
            new.recorder.insert_events(stored)
            copied += len(stored)
            if progress is not None:
                progress(copied_before + copied, total)
        map_path = target.data_dir / "migration" / MAP_NAME
        rows = write_map(
            map_path,
            {
                "source": where(source),
                "target": where(target),
                "source_head": {"position": head.position, "hash": head.hash.hex()},
                "migration_record": {"id": str(record[0]), "position": record[1]},
            },
            _rows(old, new, head.position, record[1]),
            _signing_key(source),
        )
        left_behind = sum(len(page) for page in _pages(old, head.position, 2**62, 5_000))
        new_checkpoint = _new_checkpoint(target, source)
        return Summary(
            where(source),
            where(target),
            head,
            checkpoint,
            copied_before + copied,
            copied,
            after,
            record[1],
            map_path,
            rows,
            sealer.tally,
            left_behind,
            sorted((str(s), t) for s, t in missing),
            new_checkpoint,
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _record(
    source: Settings,
    target: Settings,
    new: Opened,
    old: Opened,
    head: Head,
    kept: list[Checkpoint],
    migrated_by: str,
) -> tuple[tuple[UUID, int], Checkpoint, Head]:
    """The migration record: written first into an empty target; found again in one this
    migration began (its head is then the head copied up to, which must still be the old
    store's at that position). Anything else in the target is refused."""
    first = new.recorder.select_notifications(start=1, limit=1)
    if not first:
        checkpoint = _checkpoint(source, head, kept)
        migration = StoreMigration.record(
            where(source),
            head.position,
            head.hash.hex(),
            _count_up_to(old, head.position),
            checkpoint.to_json(),
            migrated_by,
        )
        events = migration.collect_events()
        ids = new.recorder.insert_events([new.mapper.to_stored_event(e) for e in events])
        return (migration.id, ids[0] if ids else 1), checkpoint, head
    notification = first[0]
    if notification.topic != MIGRATED_TOPIC:
        raise TargetNotEmptyError(
            f"--to: {where(target)} holds events already and is no copy begun by "
            "`store migrate`; name a new, empty store"
        )
    event = new.mapper.to_domain_event(notification)
    recorded = Head(event.source_head_position, bytes.fromhex(event.source_head_hash))
    with open_source(source) as records:
        now = records.head_before(recorded.position + 1)
    if now != recorded or event.source != where(source):
        raise SourceNotVerifiedError(
            f"--to: {where(target)} holds a copy of another store, or of this one before "
            f"its chain changed (copied up to position {recorded.position}); name a new store"
        )
    from infra.audit.checkpoint import parse

    checkpoint = parse(event.source_checkpoint, "the migration record")
    return (_uuid(notification.originator_id), notification.id), checkpoint, recorded


def _resume_point(new: Opened, old: Opened, record: tuple[UUID, int]) -> int:
    """The old position of the last event copied (0: none yet)."""
    last = new.recorder.max_notification_id() or 0
    if last <= record[1]:
        return 0
    found = new.recorder.select_notifications(start=last, limit=1)
    key = (_uuid(found[0].originator_id), found[0].originator_version)
    position = old.recorder.positions_of([key]).get(key)
    if position is None:
        raise TargetNotEmptyError(
            f"the new store's last event ({key[0]} v{key[1]}) is not in the old store; the "
            "target was written by something else: name a new store"
        )
    return position


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _count_up_to(store: Opened, position: int) -> int:
    count = 0
    for page in _pages(store, 0, position, 5_000):
        count += len(page)
    return count


def _pages(store: Opened, after: int, stop: int, size: int) -> Iterator[list[Notification]]:
    while after < stop:
        page = list(
            store.recorder.select_notifications(
                start=after, limit=size, stop=stop, inclusive_of_start=False
            )
        )
        if not page:
            return
        yield page
        after = page[-1].id


def _rows(old: Opened, new: Opened, stop: int, record_position: int) -> Iterator[Row]:
    """Old position → new position of every copied event, read from both stores side by side
    (the copy keeps their order and their ids); a pair that differs is refused."""
    copies = (n for page in _pages(new, record_position, 2**62, 2_000) for n in page)
    for page in _pages(old, 0, stop, 2_000):
        for original in page:
            copy = next(copies, None)
            if copy is None or (_uuid(copy.originator_id), copy.originator_version) != (
                _uuid(original.originator_id),
                original.originator_version,
            ):
                raise SourceNotVerifiedError(
                    f"the old store's event at position {original.id} has no copy in its place "
                    "in the new store; nothing was signed"
                )
            yield (
                original.id,
                copy.id,
                str(_uuid(original.originator_id)),
                original.originator_version,
            )
