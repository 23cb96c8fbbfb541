"""The kept answers of `Idempotency-Key` hold the answer's ETag, so a replay carries it; a
table kept before they did is given the column when opened, and its answers replay as they
were kept (without one)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from infra.config import Settings
from infra.http.idempotency import IdempotencyStore, Kept, kept_answers

OLD_SQLITE = (
    "CREATE TABLE idempotency (principal TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT "
    "NOT NULL, status INTEGER NOT NULL, body BLOB NOT NULL, location TEXT, created_at TEXT "
    "NOT NULL, PRIMARY KEY (principal, key))"
)
OLD_POSTGRES = (
    "CREATE TABLE {} (principal text NOT NULL, key text NOT NULL, fingerprint text NOT NULL, "
    "status integer NOT NULL, body bytea NOT NULL, location text, created_at timestamptz NOT "
    "NULL, PRIMARY KEY (principal, key))"
)


def kept_before(settings: Settings, when: datetime) -> None:
    """A kept-answers table of before 12-05, with one answer in it."""
    row = ("hr:li", "old-key", "f" * 64, 201, b"{}", "/v1/candidates/x/profile")
    if settings.backend == "sqlite":
        path = settings.sqlite_path.with_name(f"{settings.sqlite_path.name}.http-answers")
        with sqlite3.connect(path) as db:
            db.execute(OLD_SQLITE)
            db.execute(
                "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?)", (*row, when.isoformat())
            )
        return
    table = sql.Identifier(settings.postgres_schema, "backcheck_http_idempotency")
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as db:
        db.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(settings.postgres_schema)
            )
        )
        db.execute(sql.SQL(OLD_POSTGRES).format(table))
        db.execute(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s, %s)").format(table),
            (*row, when),
        )


def opened(settings: Settings) -> IdempotencyStore:
    sqlite = settings.sqlite_path if settings.backend == "sqlite" else None
    return kept_answers(
        settings.backend,
        sqlite,
        "" if sqlite else settings.postgres_conninfo(),
        "" if sqlite else settings.postgres_schema,
    )


def test_a_kept_answer_keeps_its_etag_and_an_older_table_gains_the_column(
    settings: Settings,
) -> None:
    now = datetime.now(UTC)
    kept_before(settings, now)
    answers = opened(settings)
    try:
        old = answers.get("hr:li", "old-key")
        assert old is not None
        assert (old.status, old.location, old.etag) == (201, "/v1/candidates/x/profile", None)

        answers.put("hr:li", "new-key", Kept("e" * 64, 201, b'{"a":1}', None, now, '"3"'))
        new = answers.get("hr:li", "new-key")
        assert new is not None
        assert (new.body, new.etag) == (b'{"a":1}', '"3"')
    finally:
        answers.close()
    again = opened(settings)  # opened a second time: the column is there, nothing to add
    try:
        assert again.get("hr:li", "new-key") == new
    finally:
        again.close()
