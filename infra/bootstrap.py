"""Composition root: the application on the configured store, with every collaborator.

The order matters and is kept here: the event store is opened first (by the application's
constructor), then the key store (on SQLite through the store's own connection pool), the
sealer on the store's mapper (asking the store which erasures are recorded), and the views on
the store's log; the signer, the access policy, the retention periods and the outbox portal
links are written to need nothing of the store.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.sqlite import SQLiteDatastore

from domain.classification import Tier
from domain.errors import InvalidInputError
from domain.retention import RetentionSchedule
from infra.access.cedar import CedarDecisionPoint
from infra.audit.checkpoint import FileKeySigner
from infra.config import ConfigError, Settings
from infra.http.link import portal_link
from infra.ops.decisions import CountedDecisions
from infra.outbox.links import LinkOutbox
from infra.privacy.erasures import RecordedErasures
from infra.privacy.key_pools import postgres_keystore, sqlite_keystore
from infra.privacy.keystore import (
    SQLKeyStore,
    WrongMasterKeyError,
)
from infra.privacy.providers import (
    FileKeyProvider,
    KeyProvider,
    master_key_file,
    provider_from_settings,
)
from infra.privacy.sealing import Sealer
from infra.store.recorder import chained, datastore_of
from infra.store.transcoder import typed_mapper
from infra.views.kept import DASHBOARD, KEPT, READ
from infra.views.runner import ViewRunner
from infra.views.sqlite import sqlite_runner
from services.application import Backcheck
from services.identity import AssignedDecisions
from services.unit import Clock, Collaborators, system_clock

if TYPE_CHECKING:
    from eventsourcing.postgres import PostgresDatastore


def build_app(
    settings: Settings | None = None,
    clock: Clock = system_clock,
    provider: KeyProvider | None = None,
) -> Backcheck:
    """The application; its master key held by the configured provider unless `provider` is
    given (a rotation that finds the store moved to its new key already)."""
    settings = settings or Settings.load()
    retention = retention_schedule(settings.retention_days, settings.retention_categories)
    if settings.backend == "postgres":
        # told at once, in one line, rather than after the library's pool gave up waiting
        from infra.store.server import check_server  # PostgreSQL's driver, for it alone

        check_server(settings.postgres_conninfo(), settings.describe(), settings.postgres_schema)
    store_env = settings.store_env()  # the store's own path first, then the key's
    if settings.key_provider == "file" and provider is None:
        master_key_file(settings.master_key_path)
    signer = FileKeySigner(
        settings.signing_key_path, create_if_missing=settings.signing_key is None
    )
    links = LinkOutbox(settings.outbox_dir, partial(portal_link, settings.public_url))

    def wiring(store: Application[UUID]) -> Collaborators:
        keys = build_keystore(settings, datastore_of(store.recorder), provider)
        try:
            # a value may read as erased only once an erasure is recorded in this store
            sealer = Sealer(keys, RecordedErasures(store.recorder.select_events).covers)
            mapper = typed_mapper(store.mapper)
            mapper.sealer = sealer
            mapper.max_event_bytes = settings.max_event_bytes
            runners = build_views(settings, store, sealer)
        except BaseException:
            keys.close()
            raise
        return Collaborators(
            keys=keys,
            signer=signer,
            views=runners[READ.name],
            dashboard=runners[DASHBOARD.name],
            # a principal assigned to some candidates reads about them alone; every decision
            # counted (the read decisions metric)
            decision_point=CountedDecisions(AssignedDecisions(CedarDecisionPoint())),
            retention=retention,
            links=links,
            subjects=chained(store.recorder),
        )

    return Backcheck(store_env, wiring, clock=clock)


def build_keystore(
    settings: Settings,
    datastore: SQLiteDatastore | PostgresDatastore,
    provider: KeyProvider | None = None,
) -> SQLKeyStore:
    """The key table beside the events: on SQLite through the store's own connection pool,
    its master key held by the configured provider (or `provider`, given by a rotation). The
    key store refuses a master key that is not the store's before anything is written; a key
    made just now, for a store that has one already, is taken back."""
    made = False
    if provider is None:
        provider, made = provider_from_settings(settings, create=True)
    try:
        if isinstance(datastore, SQLiteDatastore):
            return sqlite_keystore(datastore, provider)
        return postgres_keystore(settings.postgres_conninfo(), settings.postgres_schema, provider)
    except WrongMasterKeyError:
        if not made:
            provider.close()
            raise
        take_back(provider)
        where = f"at {provider.path}" if isinstance(provider, FileKeyProvider) else ""
        if not where:
            from infra.privacy.pkcs11 import Pkcs11KeyProvider

            assert isinstance(provider, Pkcs11KeyProvider)
            where = f"labelled {provider.key_label!r} {provider.place()}"
        raise ConfigError(
            f"{provider.setting}: this store was made with a master key but there is no "
            f"master key {where}; point {provider.setting} at the store's key"
        ) from None
    except BaseException:
        provider.close()
        raise


def take_back(provider: KeyProvider) -> None:
    """A master key made just now for a store that has another: removed again."""
    if isinstance(provider, FileKeyProvider) and provider.path is not None:
        provider.path.unlink(missing_ok=True)
    elif provider.kind == "pkcs11":
        from infra.privacy.pkcs11 import Pkcs11KeyProvider

        assert isinstance(provider, Pkcs11KeyProvider)
        provider.destroy_key()
    provider.close()


def build_views(
    settings: Settings, store: Application[UUID], sealer: Sealer
) -> dict[str, ViewRunner]:
    """A runner for each of the kept views (`KEPT`, infra/views/kept.py), by name, on the
    store's log: on SQLite each on a file of its own next to the store, on PostgreSQL on
    tables of its own beside the events, on the store's pool. If one cannot be opened, those
    opened before it are closed again."""
    log = chained(store.recorder)
    datastore = datastore_of(log)
    decode = store.mapper.to_domain_event
    runners: dict[str, ViewRunner] = {}
    try:
        for kept in KEPT:
            if isinstance(datastore, SQLiteDatastore):
                events = (datastore.pool.db_name, log.events_table_name)
                path = str(kept.path(settings))
                runner = sqlite_runner(kept, log, decode, store.name, path, sealer, events)
            else:
                from infra.views.postgres import postgres_runner

                runner = postgres_runner(kept, log, decode, store.name, datastore, sealer)
            runners[kept.name] = runner
    except BaseException:
        for opened in runners.values():
            opened.close()
        raise
    return runners


def retention_schedule(
    days: dict[str, int] | None, categories: dict[str, int] | None = None
) -> RetentionSchedule:
    """The tiers' periods (the defaults unless set) and the categories' own rules."""
    tiers = RetentionSchedule().days
    if days is not None:
        try:
            tiers = {Tier(tier): n for tier, n in days.items()}
            RetentionSchedule(tiers)
        except (ValueError, InvalidInputError) as e:
            raise ConfigError(
                f"BACKCHECK_RETENTION_DAYS: {e}; tiers are secret, consent_required, "
                "confidential, general"
            ) from None
    try:
        return RetentionSchedule(tiers, dict(categories or {}))
    except InvalidInputError as e:  # an unknown or a prohibited category, days out of range
        raise ConfigError(f"BACKCHECK_RETENTION_CATEGORIES: {e}") from None
