"""The key table as someone with access to the database sees it: rows listed and deleted
straight in SQLite or PostgreSQL, around the application."""

from __future__ import annotations

import sqlite3
from uuid import UUID

import psycopg

from infra.config import Settings
from infra.views.integrity import ROWS_SCOPE, ROWS_SUBJECT
from tests.conftest import PG_URL


def _run(settings: Settings, sql: str, params: tuple[str, ...]) -> list[tuple[str, str]]:
    if settings.backend == "sqlite":
        conn = sqlite3.connect(settings.sqlite_path)
        try:
            with conn:
                return [(str(a), str(b)) for a, b in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()
    table = f"{settings.postgres_schema}.backcheck_keys"
    with psycopg.connect(PG_URL, autocommit=True) as pg:
        cursor = pg.execute(sql.replace("backcheck_keys", table).replace("?", "%s"), params)
        return [(str(a), str(b)) for a, b in cursor.fetchall()] if cursor.description else []


def key_rows(settings: Settings) -> set[tuple[UUID, str]]:
    """(subject, tier) of every subject's data key stored: not the views' MAC key, which is
    no one's (`views_key_stored`)."""
    rows = _run(settings, "SELECT subject, tier FROM backcheck_keys", ())
    return {(UUID(s), t) for s, t in rows if UUID(s) != ROWS_SUBJECT}


def views_key_stored(settings: Settings) -> bool:
    """Whether the key the view rows' MACs are made with is in the key table."""
    sql = "SELECT subject, tier FROM backcheck_keys WHERE subject = ? AND tier = ?"
    return bool(_run(settings, sql, (str(ROWS_SUBJECT), ROWS_SCOPE)))


def delete_keys(settings: Settings, subject: UUID, tier: str | None = None) -> None:
    """Deletes a subject's data key rows (of one tier, or all), as a DELETE typed into the
    database would: no erasure, no retention run, nothing recorded."""
    if tier is None:
        _run(settings, "DELETE FROM backcheck_keys WHERE subject = ?", (str(subject),))
    else:
        sql = "DELETE FROM backcheck_keys WHERE subject = ? AND tier = ?"
        _run(settings, sql, (str(subject), tier))


def swap_key(settings: Settings, subject: UUID, other: UUID, scope: str) -> None:
    """Puts `other`'s wrapped data key of `scope` in `subject`'s row of that scope, as an
    UPDATE typed into the database would: every column of the row but its subject and scope
    copied (the key, the master key that wrapped it, any rotation's rewrapping)."""
    columns = ("wrapped", "master", "next_wrapped", "next_master")
    sets = ", ".join(
        f"{c} = (SELECT {c} FROM backcheck_keys WHERE subject = ? AND tier = ?)" for c in columns
    )
    sql = f"UPDATE backcheck_keys SET {sets} WHERE subject = ? AND tier = ?"
    _run(settings, sql, (*(str(other), scope) * len(columns), str(subject), scope))
