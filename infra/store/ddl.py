"""Schema set-up on PostgreSQL, one process at a time.

Every process (the API, the relay, each projection worker, the intake) creates what it needs on
start: tables if missing, and it replaces the append-only triggers. Run by several processes at
once (docker compose starts them together) those statements can deadlock on the catalogue, so
each set-up transaction first takes this transaction-level advisory lock; ordinary reads and
writes never take it.
"""

from __future__ import annotations

from typing import Any

# an arbitrary 64-bit number of our own ("bckddl" in ASCII)
DDL_LOCK = 0x62636B64646C


def serialise_ddl(curs: Any) -> None:
    """Waits for any other backcheck process setting up the schema; released at commit."""
    curs.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))


class SerialisedTrackingDDL:
    """For a subclass of the library's PostgreSQL tracking recorder: its set-up under the lock.

    The library looks for the tracking table (and its migration record) before the set-up
    transaction; with the lock taken, look again, since another process may have created both
    in between. Looked up in the catalogue tables with a snapshot taken after the lock, not
    with to_regclass: that answers from this session's catalogue cache, which may not have
    seen the other process's commit yet."""

    def _create_table(self, curs: Any) -> None:
        serialise_ddl(curs)
        if not self.tracking_table_exists:  # type: ignore[has-type]
            curs.execute(
                "SELECT count(*) AS found FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                (self.datastore.schema, self.tracking_table_name),  # type: ignore[attr-defined]
            )
            if curs.fetchone()["found"]:
                curs.execute(
                    self.max_tracking_id_statement,  # type: ignore[attr-defined]
                    (self.table_migration_identifier,),  # type: ignore[attr-defined]
                )
                found = curs.fetchone()["max"]
                self.tracking_table_exists = True
                self.tracking_migration_previous = self.tracking_migration_current = found
        super()._create_table(curs)  # type: ignore[misc]
