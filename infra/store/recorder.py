"""Event recorders that chain every stored record and refuse to change history.

They are the library's SQLite and PostgreSQL application recorders plus, inside the same
transaction as each insert, the chain links for the new records. Writers are already serialised
there (SQLite's single writer; PostgreSQL's EXCLUSIVE table lock taken by the library to keep
notification ids in commit order), so concurrent writers cannot fork the chain.

UPDATE, DELETE (and TRUNCATE on PostgreSQL) of events or links are refused by triggers in the
database itself. Concurrent writers are grouped into one transaction (infra/store/group_commit.py).
Each also keeps the subject index (infra/store/subjects.py) in that transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeAlias, cast
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Notification, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from domain.classification import CATEGORIES
from domain.errors import PersonalDataShreddedError
from infra.audit.chain import GENESIS, ChainBrokenError, Head, Link, extend
from infra.audit.merkle import NodeSource
from infra.privacy.erasures import ERASURE_TOPICS, erasures_in
from infra.store.filelock import for_database
from infra.store.group_commit import GroupCommit
from infra.store.pool import NotAStoreError, write_transaction
from infra.store.statements import chunks, values
from infra.store.subjects import backfill, index_rows, subjects_table
from infra.store.tree import (
    FrontierCache,
    TreeEnd,
    TreeRow,
    extend_tree,
    sqlite_ddl,
    sqlite_nodes,
    tree_table,
)
from infra.store.tree_backfill import BACKFILL_BATCH, backfill_rows

if TYPE_CHECKING:
    from eventsourcing.postgres import PostgresDatastore

    from infra.store.postgres_recorder import ChainedPostgresApplicationRecorder

APPEND_ONLY = "is append-only"


class Chained(GroupCommit):
    """What both backends' recorders (this module's, and infra/store/postgres_recorder.py's,
    imported only for a PostgreSQL store) add to the library's: the chain, the subject
    index (each reads it with its own `select_subject_notifications`, the `SubjectLog` port
    of services/ports.py), group commit."""

    chain_table_name: str
    subjects_table_name: str
    tree_table_name: str


def insert_new_keys(
    cursor: Any,
    stored_events: Sequence[StoredEvent],
    erasures_of: Callable[[UUID], list[tuple[str, bytes]]],
) -> None:
    """The data keys made to seal these events (infra/privacy/write_keys.py: NewKey), stored
    in their transaction, under the write lock (SQLite's writer lock, PostgreSQL's lock on the
    events table): each only if no erasure or retention run destroyed its subject's key of
    that scope since it was made (checked here, where no erasure can commit before the
    events: made earlier, a key would outlive an erasure recorded in between; `erasures_of`
    reads a subject's erasure records in this transaction), and only if no other writer
    stored it first (DataKeyRaceError: the write is made again, with theirs)."""
    new = [k for s in stored_events for k in getattr(s, "new_keys", ())]
    if not new:
        return
    # A subject whose own stream begins in this write has no erasure recorded: each is an
    # event of that stream, whose first record this insert would then collide with
    # (refused whole, the keys with it). A registration's keys are not checked again.
    beginning = {_uuid(s.originator_id) for s in stored_events if s.originator_version == 1}
    for subject in {k.subject for k in new if k.subject not in beginning}:
        erased, shredded = erasures_in(erasures_of(subject))
        for key in new:
            if key.subject == subject and (erased or key.scope in shredded):
                known = CATEGORIES.get(key.scope)  # a category's key (else a tier's)
                tier = known.tier.value if known else None
                raise PersonalDataShreddedError(subject, key.scope, tier)
    new[0].store.insert_made(cursor, new)  # one key store: the application's


def _check_head(head: Head, last_event_before: int | None, first_new: int) -> None:
    if (last_event_before or 0) != head.position:
        raise ChainBrokenError(
            f"the chain ends at position {head.position} but the log has records up to "
            f"{last_event_before} before the new position {first_new}: records were written "
            "around the recorder; run `backcheck audit verify`"
        )


def refuse_lost_events(where: str, events_table: str, links: int) -> None:
    """A store whose events table is gone (dropped outside backcheck) while its chain still
    links records is refused, not given a new, empty events table: every command would read
    an empty log without a word (only `audit verify`, and a write, would find it)."""
    if links:
        raise NotAStoreError(
            where,
            f"its events table {events_table} is gone while its chain links {links} records "
            "(removed outside backcheck; nothing was made)",
        )


class ChainedSQLiteApplicationRecorder(Chained, SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        self.chain_table_name = events_table_name.removesuffix("_events") + "_chain"
        self.subjects_table_name = subjects_table(events_table_name)
        self.tree_table_name = tree_table(events_table_name)
        self.frontier = FrontierCache()
        super().__init__(datastore, events_table_name)
        self.writer_lock = for_database(datastore.pool.db_name)
        self._subject_statement = (
            f"SELECT e.rowid, e.originator_id, e.originator_version, e.topic, e.state "
            f"FROM {self.subjects_table_name} s JOIN {events_table_name} e ON e.rowid = s.position "
            "WHERE s.subject = ? AND s.position >= ? ORDER BY s.position LIMIT ?"
        )
        # a subject's recorded erasure and retention runs (its candidate's own stream)
        self._erasures_statement = (
            f"SELECT topic, state FROM {events_table_name} WHERE originator_id = ? "
            f"AND topic IN ({', '.join('?' * len(ERASURE_TOPICS))})"
        )

    def exclusive(self) -> AbstractContextManager[Any]:
        """Writers of other processes on the same file wait in the kernel, not in SQLite's
        sleeping busy handler (infra/store/filelock.py)."""
        return self.writer_lock.held()

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {self.chain_table_name} ("
            "position INTEGER PRIMARY KEY, "
            "prev_position INTEGER NOT NULL, "
            "originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, "
            "hash BLOB NOT NULL)"
        )
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {self.subjects_table_name} ("
            "subject BLOB NOT NULL, position INTEGER NOT NULL, "
            "PRIMARY KEY (subject, position)) WITHOUT ROWID"
        )
        statements.append(sqlite_ddl(self.tree_table_name))
        tables = (self.events_table_name, self.chain_table_name, self.subjects_table_name)
        for table in (*tables, self.tree_table_name):
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_refuse_{op.lower()} "
                    f"BEFORE {op} ON {table} BEGIN "
                    f"SELECT RAISE(ABORT, '{table} {APPEND_ONLY}: {op} refused'); END"
                )
        # INSERT OR REPLACE deletes the row it collides with without firing the DELETE
        # trigger (SQLite fires it only under PRAGMA recursive_triggers, a per-connection
        # setting a hostile writer leaves off): refuse any insert that would collide. The
        # library's own optimistic-concurrency check still sees an IntegrityError (RAISE
        # answers SQLITE_CONSTRAINT), now from the trigger instead of the primary key.
        for table, key in (
            (
                self.events_table_name,
                "originator_id = NEW.originator_id AND originator_version = NEW.originator_version",
            ),
            (self.chain_table_name, "position = NEW.position"),
            (self.subjects_table_name, "subject = NEW.subject AND position = NEW.position"),
            (self.tree_table_name, "leaf = NEW.leaf AND level = NEW.level"),
        ):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_refuse_replace "
                f"BEFORE INSERT ON {table} WHEN EXISTS (SELECT 1 FROM {table} WHERE {key}) "
                f"BEGIN SELECT RAISE(ABORT, '{table} {APPEND_ONLY}: REPLACE refused'); END"
            )
        return statements

    def create_table(self) -> None:
        """The library's set-up, as a writer of the store: under its writer lock, and begun
        IMMEDIATE. Every process opening the store makes its tables (on a new store, all of
        them at once: two workers started together); begun DEFERRED outside the lock, the
        set-up read the schema, then its first CREATE found another process's set-up
        committed since and was refused at once ("database is locked", a worker stopped
        with exit 75), and it could refuse another process's write the same way."""
        with self.datastore.get_connection(commit=False):
            pass  # opened first: a store that cannot be opened here (a read-only directory, a
            # full disk) is told as SQLite tells it, naming the store, not the lock file beside it
        with self.writer_lock.held(), write_transaction(self.datastore) as c:
            self._create_table(c)

    def _create_table(self, c: SQLiteCursor) -> None:
        """The tables, and for a store written before the subject index, the index filled in
        from the log, in the same transaction; none over a chain whose records are gone."""
        c.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?, ?)",
            (self.subjects_table_name, self.events_table_name, self.chain_table_name),
        )
        found = {row[0] for row in c.fetchall()}
        if self.chain_table_name in found and self.events_table_name not in found:
            c.execute(f"SELECT COUNT(*) FROM {self.chain_table_name}")
            refuse_lost_events(self.datastore.pool.db_name, self.events_table_name, c.fetchone()[0])
        indexed = self.subjects_table_name in found
        super()._create_table(c)
        if not indexed:

            def read_after(position: int, limit: int) -> list[tuple[int, bytes]]:
                c.execute(
                    f"SELECT rowid, state FROM {self.events_table_name} "
                    "WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (position, limit),
                )
                return [(row[0], row[1]) for row in c.fetchall()]

            backfill(read_after, lambda rows: self._insert_subjects(c, rows))

    def _insert_subjects(self, c: SQLiteCursor, rows: list[tuple[UUID, int]]) -> None:
        for chunk in chunks(rows, 2):
            c.execute(
                f"INSERT INTO {self.subjects_table_name} {values(2, len(chunk))}",
                [value for subject, position in chunk for value in (subject.bytes, position)],
            )

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """The library's read of one aggregate's events, as one statement outside a
        transaction: a single SELECT reads one snapshot of the file by itself, and the
        library's BEGIN and ROLLBACK around it took half the cost of a small read (an exists
        check, an aggregate loaded, the erasure check before a key is made)."""
        statement = self.select_events_statement
        params: list[Any] = [
            originator_id.hex if isinstance(originator_id, UUID) else originator_id
        ]
        if gt is not None:
            statement += "AND originator_version>? "
            params.append(gt)
        if lte is not None:
            statement += "AND originator_version<=? "
            params.append(lte)
        statement += (
            "ORDER BY originator_version DESC " if desc else "ORDER BY originator_version ASC "
        )
        if limit is not None:
            statement += "LIMIT ? "
            params.append(limit)
        with self.datastore.get_connection(commit=False) as conn:
            cursor = conn.cursor()
            with cursor as c:
                c.execute(statement, params)
                rows = c.fetchall()
        convert = self.convert_originator_id
        return [StoredEvent(convert(r[0]), r[1], r[2], r[3]) for r in rows]

    def select_subject_notifications(
        self, subject: UUID, start: int = 1, limit: int = 500
    ) -> list[Notification]:
        """The events about `subject` from position `start` on, in log order, by the index."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._subject_statement, (subject.bytes, start, limit))
            return [
                Notification(
                    id=row[0],
                    originator_id=self.convert_originator_id(row[1]),
                    originator_version=row[2],
                    topic=row[3],
                    state=row[4],
                )
                for row in c.fetchall()
            ]

    def positions_of(self, events: Sequence[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        """The log position of each stored event named by (originator id, version), by the
        events' primary key; an event not stored is left out."""
        found: dict[tuple[UUID, int], int] = {}
        with self.datastore.transaction(commit=False) as c:
            for originator, version in events:
                c.execute(self._position_statement, (originator.hex, version))
                row = c.fetchone()
                if row is not None:
                    found[(originator, version)] = row[0]
        return found

    @property
    def _position_statement(self) -> str:
        return (
            f"SELECT rowid FROM {self.events_table_name} "
            "WHERE originator_id = ? AND originator_version = ?"
        )

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's insert, in as few statements as possible (infra/store/statements.py):
        the events in one multi-row INSERT, the chain's head and the log's last record
        before them in one SELECT, the links in one INSERT."""
        if not stored_events:
            return []
        self._insert_new_keys(c, stored_events)  # first: a key refused refuses the write
        ids: list[int] = []
        for chunk in chunks(stored_events, 4):
            c.execute(
                f"INSERT INTO {self.events_table_name} {values(4, len(chunk))}",
                [value for s in chunk for value in _event_row(s)],
            )
            # rowids of a table without INTEGER PRIMARY KEY are handed out as the largest
            # so far plus one: the rows of one statement, under the write lock, are
            # consecutive, ending at the last insert's rowid
            last = c.lastrowid
            ids.extend(range(last - len(chunk) + 1, last + 1))
        c.execute(self._head_statement, (ids[0],))
        before, position, hash_ = c.fetchone()
        head = Head(position, hash_) if position is not None else Head(0, GENESIS)
        _check_head(head, before, ids[0])
        digests: list[bytes] = []
        links = extend(
            head,
            [
                (i, _uuid(s.originator_id), s.originator_version, s.topic, s.state)
                for i, s in zip(ids, stored_events, strict=True)
            ],
            digests,
        )
        for chunk_of_links in chunks(links, 5):
            c.execute(
                f"INSERT INTO {self.chain_table_name} {values(5, len(chunk_of_links))}",
                [
                    value
                    for x in chunk_of_links
                    for value in (
                        x.position,
                        x.prev_position,
                        x.originator_id.hex,
                        x.originator_version,
                        x.hash,
                    )
                ],
            )
        self._insert_subjects(c, index_rows(ids, (s.state for s in stored_events)))
        self._extend_tree(c, head, links[-1], ids, digests)
        return ids

    def _insert_new_keys(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> None:
        def erasures_of(subject: UUID) -> list[tuple[str, bytes]]:
            c.execute(self._erasures_statement, (subject.hex, *ERASURE_TOPICS))
            return [(str(t), bytes(s)) for t, s in c.fetchall()]

        insert_new_keys(c, stored_events, erasures_of)

    def _extend_tree(
        self, c: SQLiteCursor, head: Head, last: Link, ids: list[int], digests: list[bytes]
    ) -> None:
        """The new records' leaves and the nodes they complete, when the tree is current."""

        def read_end() -> TreeEnd:
            c.execute(self._tree_end_statement)
            row = c.fetchone()
            return TreeEnd(row[0], row[1]) if row else TreeEnd(-1, 0)

        rows = extend_tree(
            self.frontier,
            (head.position, head.hash),
            (last.position, last.hash),
            read_end,
            lambda: self.tree_nodes(c),
            ids,
            digests,
        )
        if rows:
            self._insert_tree(c, rows)

    def tree_nodes(self, c: SQLiteCursor) -> NodeSource:
        def execute(statement: str, params: Sequence[object]) -> list[tuple[object, ...]]:
            c.execute(statement, params)
            return list(c.fetchall())

        return sqlite_nodes(execute, self.tree_table_name)

    def _insert_tree(self, c: SQLiteCursor, rows: list[TreeRow]) -> None:
        """One statement, run for each row: a multi-row INSERT into a table its own trigger
        reads (the REPLACE refusal) is first copied to a temporary table by SQLite, which
        costs a write of a leaf and its node more than the rows themselves."""
        c.executemany(self._insert_tree_statement, rows)

    def backfill_tree(self, limit: int = BACKFILL_BATCH) -> tuple[int, int]:
        """One batch of the tree's backfill (infra/store/tree_backfill.py), in a write
        transaction of its own: (leaves added, positions after the last leaf: records left
        to add but for the log's gaps)."""
        tree, chain = self.tree_table_name, self.chain_table_name
        with self.exclusive(), self.datastore.transaction(commit=True) as c:
            c.execute(
                f"SELECT leaf, position FROM {tree} WHERE level = 0 ORDER BY leaf DESC LIMIT 1"
            )
            row = c.fetchone()
            end = TreeEnd(row[0], row[1]) if row else TreeEnd(-1, 0)
            c.execute(f"SELECT hash FROM {chain} WHERE position = ?", (end.last_position,))
            link = c.fetchone()
            c.execute(
                "SELECT e.rowid, e.originator_id, e.originator_version, CAST(e.topic AS BLOB), "
                "CAST(e.state AS BLOB), c.prev_position, c.hash "
                f"FROM {self.events_table_name} e LEFT JOIN {chain} c ON c.position = e.rowid "
                "WHERE e.rowid > ? ORDER BY e.rowid LIMIT ?",
                (end.last_position, limit),
            )
            records = [
                (pos, bytes.fromhex(oid), ver, topic, state, prev, h)
                for pos, oid, ver, topic, state, prev, h in c.fetchall()
            ]
            rows = backfill_rows(end, link[0] if link else None, records, self.tree_nodes(c))
            self._insert_tree(c, rows)
            after = records[-1][0] if records else end.last_position
            c.execute(f"SELECT MAX(rowid) FROM {self.events_table_name}")
            return len(records), max(0, int(c.fetchone()[0] or 0) - after)

    @property
    def _insert_tree_statement(self) -> str:
        return f"INSERT INTO {self.tree_table_name} VALUES (?, ?, ?, ?)"

    @property
    def _tree_end_statement(self) -> str:
        return (
            f"SELECT leaf, position FROM {self.tree_table_name} WHERE level = 0 "
            "ORDER BY leaf DESC LIMIT 1"
        )

    @property
    def _head_statement(self) -> str:
        chain, events = self.chain_table_name, self.events_table_name
        return (
            f"SELECT (SELECT MAX(rowid) FROM {events} WHERE rowid < ?), "
            f"(SELECT position FROM {chain} ORDER BY position DESC LIMIT 1), "
            f"(SELECT hash FROM {chain} ORDER BY position DESC LIMIT 1)"
        )


def _event_row(s: StoredEvent) -> tuple[str, int, str, bytes]:
    """A stored event as the library's SQLite recorder writes it."""
    oid = s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id
    return oid, s.originator_version, s.topic, s.state


def _uuid(originator_id: UUID | str) -> UUID:
    return originator_id if isinstance(originator_id, UUID) else UUID(originator_id)


if TYPE_CHECKING:
    ChainedRecorder: TypeAlias = (
        ChainedSQLiteApplicationRecorder | ChainedPostgresApplicationRecorder
    )


def chained(recorder: ApplicationRecorder) -> ChainedRecorder:
    """The application's recorder as infra/config has the library make it: chained, with
    group commit (and its note of what this process wrote)."""
    if isinstance(recorder, Chained):
        return cast("ChainedRecorder", recorder)
    raise TypeError(
        f"{type(recorder).__name__} is not a backcheck recorder; the store's environment names "
        "one of infra/store/recorder.py or infra/store/postgres_recorder.py (infra/config: "
        "APPLICATION_RECORDER_TOPIC)"
    )


def datastore_of(recorder: ApplicationRecorder) -> SQLiteDatastore | PostgresDatastore:
    """The event store's database (its connection pool), which the key store, the views and
    the relay share: the one way to it from an application's recorder."""
    return chained(recorder).datastore
