"""`backcheck keys rotate-master`: every data key rewrapped under a new master key, while the
store's writers go on.

1. Recorded first: `MasterKeyRotation.Started` (domain/master_key.py; its id derived from the
   new key, so a second run finds it and resumes).
2. Each data key not yet wrapped by the new key is wrapped by it *beside* its wrapping by the
   old (`next_wrapped`, `next_master`), in batches, one short transaction each that keeps the
   writers out (the store's writer lock on SQLite, a table lock on PostgreSQL). The old
   wrapping stays what every process reads, so processes still holding the old key read and
   write as before. A row is matched by its old blob, so a key destroyed meanwhile stays
   destroyed; a crash leaves the batches done, and a rerun picks up from the rows without.
3. The switch: in one transaction, with the writers kept out, the data keys made by the
   writers meanwhile get their new wrapping too, every new wrapping replaces the old, and the
   store is bound to the new key (its check value replaces the old). A data key is only made
   while the key wrapping it is the store's (one statement, infra/privacy/keystore.py), so
   none wrapped by the old key can appear after it. The writers of this process go on with
   the new key; another process still holding the old one is refused in one line (exit 78)
   on its next new data key or unwrap: restart it with the new key.
4. Recorded last: `MasterKeyRotation.Finished` with the counts. A crash between 3 and 4 leaves
   the store on the new key; run the rotation again (configured with the new key or the old):
   it records the finish.

After that nothing is wrapped by the old key: it can be destroyed.

A rotation cut off before its switch whose new key is then lost can neither be finished nor
left (a rotation to another key is refused while one is unfinished): `abandon_rotation` gives
it up. It records `MasterKeyRotation.Abandoned` first (so a run cut off after it is resumed by
running it again, as a rotation is), then clears the new key's wrappings beside the old in one
transaction that keeps the writers out. Every data key was, and stays, wrapped by the store's
key alone; the store's binding is not touched (decision 0057). A rotation cut off after its
start was recorded but before its first batch wrapped anything leaves nothing in the key table
to find it by: it is found by its events (started, neither finished nor abandoned, its key not
the store's nor ever the store's since), and abandoned the same way, with nothing to clear
(decision 0059).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from hmac import compare_digest as same_check
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap
from eventsourcing.utils import get_topic

from domain.errors import RuleBrokenError
from domain.master_key import (
    MasterKeyRotation,
    NothingToAbandonError,
    RotationUnfinishedError,
    rotation_id,
)
from infra.privacy.keystore import SQLKeyStore
from infra.privacy.providers import KEY_CHECK_TABLE, KeyProvider, same_key
from projections import events as ev
from services.unit import UnitOfWork

BATCH = 200  # data keys rewrapped in one transaction: the writers wait for at most one batch

Progress = Callable[[int, int], None]  # (done, pending)


@dataclass(frozen=True)
class RotationReport:
    rotation: UUID
    from_key: str
    to_key: str
    rewrapped: int  # by this run
    unreadable: int  # data keys the old key did not unwrap either: left as they were
    resumed: bool  # an unfinished rotation was found and finished

    def as_dict(self) -> dict[str, Any]:
        return {
            "rotation": str(self.rotation),
            "from_key": self.from_key,
            "to_key": self.to_key,
            "rewrapped": self.rewrapped,
            "unreadable": self.unreadable,
            "resumed": self.resumed,
        }


@dataclass(frozen=True)
class AbandonReport:
    rotation: UUID
    key: str  # the store's key, which every data key stays wrapped by
    abandoned_key: str  # the unfinished rotation's new key
    cleared: int  # data keys whose wrapping by it this run cleared
    recorded: bool  # this run recorded the abandonment (not: a run cut off had)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rotation": str(self.rotation),
            "key": self.key,
            "abandoned_key": self.abandoned_key,
            "cleared": self.cleared,
            "recorded": self.recorded,
        }


class AlreadyThatKeyError(RuleBrokenError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"the store's master key is {key_id} already: nothing to rotate")


def rotate_master(
    app: UnitOfWork,
    keys: SQLKeyStore,
    new: KeyProvider,
    progress: Progress | None = None,
    batch: int = BATCH,
) -> RotationReport:
    """Rewraps every data key of the store under `new` and binds the store to it (see the
    module's doc), `batch` data keys a transaction; `progress(done, pending)` after each."""
    old = keys.provider
    rid = rotation_id(new.key_id)
    if same_key(old, new):  # switched already: a run cut off before it recorded the finish
        if not app.exists(rid):
            raise AlreadyThatKeyError(new.key_id)
        rotation = app.load(MasterKeyRotation, rid)
        if rotation.finished:
            raise AlreadyThatKeyError(new.key_id)
        rotation.finish(rewrapped=0, unreadable=0)
        app.commit(rotation)
        return RotationReport(rid, rotation.from_key, new.key_id, 0, 0, resumed=True)
    refuse_unfinished(keys, new.key_id)
    pending = _pending(keys, new)
    resumed = False
    if app.exists(rid):
        rotation = app.load(MasterKeyRotation, rid)
        resumed = not rotation.again(old.key_id, pending)
    else:
        rotation = MasterKeyRotation.start(old.key_id, new.key_id, pending)
    if not resumed:
        app.commit(rotation)
    keys.hold(new)  # this process reads keys already rewrapped with the new one
    skipped: set[bytes] = set()
    done = 0
    while True:
        moved = _rewrap(keys, old, new, skipped, batch)
        done += moved
        if progress is not None:
            progress(done + len(skipped), max(pending, done + len(skipped)))
        if moved == 0:
            break
    done += _switch(keys, old, new, skipped)
    if progress is not None:
        progress(max(pending, done + len(skipped)), max(pending, done + len(skipped)))
    rotation.finish(rewrapped=done, unreadable=len(skipped))
    app.commit(rotation)
    return RotationReport(rid, old.key_id, new.key_id, done, len(skipped), resumed)


def refuse_unfinished(keys: SQLKeyStore, new_key: str | None) -> None:
    """Raises RotationUnfinishedError if some data key is wrapped, or wrapped beside, by a key
    that is neither the store's nor `new_key` (None: a key not made yet, which no rotation
    can have started to): a rotation to it was cut off, and is finished (or abandoned)
    first. Asked before a new key is made, so that a refused rotation makes nothing."""
    current = keys.provider.key_id
    for master in sorted(m for m in _masters(keys) if m not in (None, current, new_key)):
        raise RotationUnfinishedError(master)


def abandon_rotation(app: UnitOfWork, keys: SQLKeyStore) -> AbandonReport:
    """Gives up the rotation left unfinished before its switch (see the module's doc): the
    data keys wrapped by its new key beside the store's lose that wrapping, so the store, on
    its key as before, may be rotated to another. One cut off before its first batch wraps
    nothing: found in the log instead, recorded as abandoned with nothing to clear (decision
    0059). Refused if none is unfinished before its switch."""
    current = keys.provider.key_id
    targets = sorted(m for m in _next_masters(keys) if m != current)
    if targets:
        # one at most: a rotation to another key is refused while one is unfinished
        to_key = targets[0]
    else:
        unfinished = _unfinished_rounds(app)
        cut = [r.to_key for r in unfinished if not r.switched and r.to_key != current]
        if not cut:
            here = [r.to_key for r in unfinished if r.to_key == current]
            raise NothingToAbandonError(current, switched=here[0] if here else None)
        to_key = cut[0]  # the first started; another is given up by running it again
    rid = rotation_id(to_key)
    recorded = False
    if app.exists(rid):
        rotation = app.load(MasterKeyRotation, rid)
        if not rotation.abandoned:  # else a run cut off after recording it: clear the rest
            rotation.abandon(cleared=_beside(keys, to_key))
            app.commit(rotation)
            recorded = True
    with _writers_kept_out(keys) as conn:
        cursor = conn.execute(
            _sql(
                keys,
                "UPDATE backcheck_keys SET next_wrapped = NULL, next_master = NULL "
                "WHERE next_master = ?",
            ),
            (to_key,),
        )
        cleared = max(int(cursor.rowcount), 0)
    return AbandonReport(rid, current, to_key, cleared, recorded)


@dataclass
class _Round:
    """A rotation's latest round as its events in the log tell it."""

    to_key: str
    ended: bool = False  # finished or abandoned
    switched: bool = False  # a later rotation started from `to_key`: the store was on it


_ROUND_EVENTS = (
    ev.RotationStarted,
    ev.RotationStartedAgain,
    ev.RotationFinished,
    ev.RotationAbandoned,
)


def _unfinished_rounds(app: UnitOfWork) -> list[_Round]:
    """The rotations recorded as started (or started again) and neither finished nor
    abandoned since, in the order they started, read from their events alone (a few a
    rotation). A rotation cut off before its first batch is one, though nothing in the key
    table shows it; so is one cut off after its switch, whose key the store is on (or was, if
    a later rotation started from it: `switched`)."""
    topics = [get_topic(cls) for cls in _ROUND_EVENTS]
    rounds: dict[UUID, _Round] = {}
    start = 1
    while page := app.recorder.select_notifications(start=start, limit=500, topics=topics):
        for notification in page:
            event: Any = app.mapper.to_domain_event(notification)
            rid, kind = event.originator_id, type(event)
            if kind is ev.RotationStarted or kind is ev.RotationStartedAgain:
                for other in rounds.values():
                    other.switched = other.switched or other.to_key == event.from_key
                to_key = event.to_key if kind is ev.RotationStarted else rounds[rid].to_key
                rounds.pop(rid, None)  # in the order of its latest start
                rounds[rid] = _Round(to_key)
            else:
                rounds[rid].ended = True
        start = page[-1].id + 1
    return [r for r in rounds.values() if not r.ended]


def master_key_problem(keys: SQLKeyStore) -> str | None:
    """None while the store is bound to the master key this process holds; else why not, in
    one line: a rotation run elsewhere moved the store to another key, and every new data key
    and every unwrap is refused here (readiness: the process is up but cannot do its work)."""
    provider = keys.provider
    rows = keys.key_checks()
    if not rows or any(
        scheme == provider.check_scheme and same_check(kcv, provider.check_value())
        for scheme, kcv in rows
    ):
        return None
    return (
        f"{provider.setting}: {provider.describe()} is not this store's master key: the "
        "store's data keys do not open with it (rotated to another key since this process "
        "started?); restart it with the store's key"
    )


@contextmanager
def _writers_kept_out(keys: SQLKeyStore) -> Iterator[Any]:
    """One transaction on the key table that no writer of the store can change meanwhile."""
    with keys.transaction() as conn:
        if keys.placeholder == "?":  # SQLite: under the store's writer lock
            yield conn
            return
        with conn.transaction():
            # no insert, update or delete by others until the commit; a writer's insert that
            # waited for it then sees the store's binding as it is after it
            conn.execute("LOCK TABLE backcheck_keys IN SHARE ROW EXCLUSIVE MODE")
            yield conn


def _sql(keys: SQLKeyStore, text: str) -> str:
    return text.replace("?", keys.placeholder)


def _masters(keys: SQLKeyStore) -> set[str | None]:
    """Every key id that wraps a data key, or wraps one beside (an unfinished rotation's)."""
    with keys.transaction() as conn:
        rows = conn.execute("SELECT DISTINCT master, next_master FROM backcheck_keys").fetchall()
    return {None if v is None else str(v) for row in rows for v in row}


def _next_masters(keys: SQLKeyStore) -> set[str]:
    """The keys that wrap a data key beside its wrapping: an unfinished rotation's new key."""
    with keys.transaction() as conn:
        rows = conn.execute(
            "SELECT DISTINCT next_master FROM backcheck_keys WHERE next_master IS NOT NULL"
        ).fetchall()
    return {str(row[0]) for row in rows}


def _beside(keys: SQLKeyStore, key_id: str) -> int:
    """How many data keys `key_id` wraps beside their wrapping."""
    with keys.transaction() as conn:
        row = conn.execute(
            _sql(keys, "SELECT COUNT(*) FROM backcheck_keys WHERE next_master = ?"), (key_id,)
        ).fetchone()
    return int(row[0])


# a row still to be wrapped by the new key (`?`: its id)
_PENDING = "(master IS NULL OR master <> ?) AND (next_master IS NULL OR next_master <> ?)"


def _pending(keys: SQLKeyStore, new: KeyProvider) -> int:
    with keys.transaction() as conn:
        row = conn.execute(
            _sql(keys, f"SELECT COUNT(*) FROM backcheck_keys WHERE {_PENDING}"),
            (new.key_id, new.key_id),
        ).fetchone()
    return int(row[0])


def _rewrap_rows(
    conn: Any,
    keys: SQLKeyStore,
    old: KeyProvider,
    new: KeyProvider,
    skipped: set[bytes],
    limit: int | None,
) -> int:
    """Wraps by `new`, beside the old wrapping, up to `limit` data keys without one."""
    select = f"SELECT wrapped FROM backcheck_keys WHERE {_PENDING}"
    args: tuple[Any, ...] = (new.key_id, new.key_id)
    if limit is not None:  # the rows skipped stay selected: read past them
        select += " LIMIT ?"
        args += (limit + len(skipped),)
    rows = conn.execute(_sql(keys, select), args).fetchall()
    moved = 0
    update = _sql(
        keys, "UPDATE backcheck_keys SET next_wrapped = ?, next_master = ? WHERE wrapped = ?"
    )
    for (wrapped,) in rows:
        blob = bytes(wrapped)
        if blob in skipped:
            continue
        if limit is not None and moved >= limit:
            break
        try:
            data_key = old.unwrap(blob)
        except InvalidUnwrap:  # wrapped by another key before the store was bound to its own
            skipped.add(blob)
            continue
        conn.execute(update, (new.wrap(data_key), new.key_id, blob))
        moved += 1
    return moved


def _rewrap(
    keys: SQLKeyStore, old: KeyProvider, new: KeyProvider, skipped: set[bytes], limit: int
) -> int:
    with _writers_kept_out(keys) as conn:
        return _rewrap_rows(conn, keys, old, new, skipped, limit)


def _switch(keys: SQLKeyStore, old: KeyProvider, new: KeyProvider, skipped: set[bytes]) -> int:
    """The last data keys rewrapped and the store bound to `new`, in one transaction; this
    process's writers wrap with `new` from then on."""
    try:
        with _writers_kept_out(keys) as conn:
            moved = _rewrap_rows(conn, keys, old, new, skipped, None)
            conn.execute(
                _sql(
                    keys,
                    "UPDATE backcheck_keys SET wrapped = next_wrapped, master = next_master, "
                    "next_wrapped = NULL, next_master = NULL WHERE next_master = ?",
                ),
                (new.key_id,),
            )
            conn.execute(f"DELETE FROM {KEY_CHECK_TABLE}")
            conn.execute(
                _sql(keys, f"INSERT INTO {KEY_CHECK_TABLE} (scheme, kcv) VALUES (?, ?)"),
                (new.check_scheme, new.check_value()),
            )
            keys.use(new)  # before the writer lock is let go
    except BaseException:
        keys.use(old)
        raise
    return moved
