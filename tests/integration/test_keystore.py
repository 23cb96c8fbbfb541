"""The key table: a new key is committed without a flush of its own (the commit of the events
sealed with it flushes the log through it), so making one must leave every other write on the
store as durable as before."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from infra.privacy import key_pools
from infra.privacy.keystore import SQLKeyStore
from infra.privacy.providers import KeyProvider
from infra.store.recorder import datastore_of
from services.application import Backcheck
from services.dto import RegisterCandidate


def keys_of(app: Backcheck) -> SQLKeyStore:
    assert isinstance(app.keys, SQLKeyStore)
    return app.keys


def writer_synchronous(app: Backcheck) -> int:
    """The safety level of the connection the store writes its events with."""
    datastore = datastore_of(app.recorder)
    with datastore.get_connection(commit=True) as conn, conn.transaction(commit=False) as curs:
        curs.execute("PRAGMA synchronous")
        return int(curs.fetchone()[0])


def test_making_a_key_on_sqlite_leaves_the_store_writer_flushing_every_commit(
    sqlite_app: Backcheck,
) -> None:
    assert writer_synchronous(sqlite_app) == 2  # FULL: the library's default

    result = sqlite_app.register_candidate(RegisterCandidate(name="Zhou Min", actor="hr:li.na"))

    assert keys_of(sqlite_app).tiers(result.candidate_id) == {"user.name"}  # a key per category
    assert writer_synchronous(sqlite_app) == 2


def test_a_key_write_that_fails_on_sqlite_still_restores_the_flush(sqlite_app: Backcheck) -> None:
    keys = keys_of(sqlite_app)
    with pytest.raises(RuntimeError, match="in the middle"), keys._create():
        raise RuntimeError("failed in the middle of making a key")
    assert writer_synchronous(sqlite_app) == 2


@pytest.mark.postgres
def test_making_a_key_on_postgres_defers_only_its_own_flush(pg_app: Backcheck) -> None:
    keys = keys_of(pg_app)
    subject, provider = uuid4(), keys.provider
    args = {
        "subject": str(subject),
        "master": provider.key_id,
        "tiers": ["general"],
        "wrapped": [provider.wrap(bytes(32))],
        "scheme": provider.check_scheme,
        "kcv": provider.check_value(),
    }

    with keys._connect() as conn:
        with conn.transaction(force_rollback=True):  # the statement's own transaction, kept
            made = conn.execute(key_pools._MAKE, args).fetchall()
            inside = conn.execute("SHOW synchronous_commit").fetchone()[0]
        after = conn.execute("SHOW synchronous_commit").fetchone()[0]
    key = keys.data_key(subject, "general", create=True)

    assert [row[0] for row in made] == ["general"]
    assert inside == "off"  # its commit does not wait for the flush
    assert after == "on"  # every other write on the pool still does
    with keys._connect() as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"
    assert key is not None
    assert keys.data_key(subject, "general", create=False) == key
    assert keys.tiers(subject) == {"general"}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_an_events_keys_are_looked_up_and_made_together(
    backend: str, request: pytest.FixtureRequest
) -> None:
    app: Backcheck = request.getfixturevalue(f"{'sqlite' if backend == 'sqlite' else 'pg'}_app")
    keys = keys_of(app)
    subject = uuid4()
    name = keys.data_key(subject, "user.name", create=True)
    wanted = ("user.name", "user.education", "user.reference.contact")

    assert keys.data_keys(subject, wanted, create=False) == {"user.name": name}
    made = keys.data_keys(subject, wanted, create=True)

    assert set(made) == set(wanted)
    assert made["user.name"] == name  # an existing key is kept, never made again
    assert keys.tiers(subject) == set(wanted)
    keys.destroy(subject, ("user.education", "user.reference.contact"))
    assert keys.data_keys(subject, wanted, create=False) == {"user.name": name}
    assert keys.data_keys(subject, (), create=True) == {}


@pytest.mark.postgres
def test_a_key_another_writer_made_while_ours_was_being_made_is_the_key(
    pg_app: Backcheck,
) -> None:
    """Their insert committed after our statement began: ours skipped the row (it exists) and
    our statement's snapshot did not show it; it is read again, and theirs is the key."""
    keys = keys_of(pg_app)
    subject, provider = uuid4(), keys.provider
    theirs = bytes(range(32))
    make = keys._make
    assert make is not None

    def made_by_another_first(
        who: UUID, tiers: list[str], wrapped: list[bytes], by: KeyProvider
    ) -> list[Any]:
        with keys._connect() as conn:
            conn.execute(
                "INSERT INTO backcheck_keys (subject, tier, wrapped, master) "
                "VALUES (%s, %s, %s, %s)",
                (str(who), tiers[0], provider.wrap(theirs), provider.key_id),
            )
        made = make(who, tiers, wrapped, by)
        return [row for row in made if row[0] != tiers[0]]  # as our snapshot showed them

    keys._make = made_by_another_first

    got = keys.data_keys(subject, ("user.name", "user.email"), create=True)

    assert got["user.name"] == theirs
    assert set(got) == {"user.name", "user.email"}
    assert keys.data_key(subject, "user.name", create=False) == theirs
