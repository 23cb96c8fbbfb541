"""Store migrations: a store copied into a new one, whose first event says what was copied.

A store written before some personal values were sealed keeps them in clear: its events never
change. `backcheck store migrate` copies every event into a new store, where they are sealed
on the way in, and the new store has a chain of its own. What links the two chains is this
event, the new store's first: the old store's verified head (position and hash), how many
events it held, and the old store's latest signed checkpoint. Once the new chain covers it,
the new store proves the old chain's checkpoint, and the signed position map (kept beside the
new store) says where each old event went.

One aggregate per migration, its id derived from the old store's head, so a migration started
again (after a crash) finds its own record instead of writing a second one. About no data
subject: it holds positions, hashes, counts and the operator's name, never a personal value.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.errors import InvalidInputError
from domain.subject import RecordedAggregate, RecordedCreatedCalledSinceV2

# Fixed for ever: the ids of migrations already recorded are derived from it.
MIGRATION_NAMESPACE = UUID("5b0d2c7e-94a1-4f3e-8c62-1e7a9d4b3f58")
MAX_TEXT = 200  # where the old store was, who migrated it
MAX_CHECKPOINT = 4_000  # a signed checkpoint document is ~250 bytes


def migration_id(source_head_position: int, source_head_hash: str) -> UUID:
    """The one id the migration of a store with this head is recorded under."""
    return uuid5(MIGRATION_NAMESPACE, f"{source_head_position}:{source_head_hash}")


def _check_text(name: str, value: str, limit: int) -> None:
    if not value.strip() or len(value) > limit or any(ord(c) < 32 and c != "\n" for c in value):
        raise InvalidInputError(
            f"field {name!r}: 1 to {limit} characters, no control characters", field=name
        )


class StoreMigration(RecordedAggregate):
    class Migrated(RecordedCreatedCalledSinceV2):
        """v2: who called it, as authenticated (`authenticated`, domain/caller.py)."""

        source: str
        source_head_position: int
        source_head_hash: str
        source_events: int
        source_checkpoint: str
        migrated_by: str

    @classmethod
    def record(
        cls,
        source: str,
        source_head_position: int,
        source_head_hash: str,
        source_events: int,
        source_checkpoint: str,
        migrated_by: str,
    ) -> StoreMigration:
        """The copy of the store `source` (as a person reads its address, no password),
        verified up to its head, whose latest signed checkpoint is `source_checkpoint` (the
        checkpoint document as signed)."""
        _check_text("source", source, MAX_TEXT)
        _check_text("migrated_by", migrated_by, MAX_TEXT)
        _check_text("source_checkpoint", source_checkpoint, MAX_CHECKPOINT)
        if source_head_position < 0 or source_events < 0:
            raise InvalidInputError("field 'source_head_position': at least 0", field="source")
        if len(source_head_hash) != 64:
            raise InvalidInputError(
                "field 'source_head_hash': 64 hex digits", field="source_head_hash"
            )
        return cls._create(
            cls.Migrated,
            source=source,
            source_head_position=source_head_position,
            source_head_hash=source_head_hash,
            source_events=source_events,
            source_checkpoint=source_checkpoint,
            migrated_by=migrated_by,
        )

    @staticmethod
    def create_id(source_head_position: int, source_head_hash: str, **_: Any) -> UUID:
        return migration_id(source_head_position, source_head_hash)

    @event(Migrated)
    def __init__(
        self,
        source: str,
        source_head_position: int,
        source_head_hash: str,
        source_events: int,
        source_checkpoint: str,
        migrated_by: str,
    ) -> None:
        self.source = source
        self.source_head_position = source_head_position
        self.source_head_hash = source_head_hash
        self.source_events = source_events
        self.source_checkpoint = source_checkpoint
        self.migrated_by = migrated_by
