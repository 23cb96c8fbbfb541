"""Composition root: builds the application on the configured store, with its key store."""

from __future__ import annotations

from domain.classification import Tier
from domain.retention import RetentionPolicy
from infra.access.cedar import CedarPolicy
from infra.audit.checkpoint import FileKeySigner
from infra.config import ConfigError, Settings
from infra.privacy.keystore import SQLKeyStore, load_master_key, postgres_keystore, sqlite_keystore
from infra.privacy.sealing import Sealer
from infra.store.transcoder import TypedMapper
from infra.views.runner import postgres_views, sqlite_views
from services.application import Backcheck
from services.unit import Clock, system_clock


def build_keystore(settings: Settings, app: Backcheck) -> SQLKeyStore:
    """The key table beside the events: on SQLite through the store's own connection pool."""
    path = settings.master_key_path
    existed = path.exists()
    master = load_master_key(path, create=True)
    if settings.backend == "sqlite":
        keys = sqlite_keystore(app.recorder.datastore, master)  # type: ignore[attr-defined]
    else:
        keys = postgres_keystore(settings.postgres_conninfo(), settings.postgres_schema, master)
    if not existed and keys.count() > 0:
        keys.close()
        path.unlink()
        raise ConfigError(
            f"BACKCHECK_MASTER_KEY_FILE: this store holds sealed personal data but there is no "
            f"master key at {path}; point BACKCHECK_MASTER_KEY_FILE at the store's key"
        )
    return keys


def build_app(settings: Settings | None = None, clock: Clock = system_clock) -> Backcheck:
    settings = settings or Settings.from_env()
    signer = FileKeySigner(
        settings.signing_key_path, create_if_missing=settings.signing_key is None
    )
    app = Backcheck(env=settings.store_env(), clock=clock, signer=signer)
    try:
        app.keys = keys = build_keystore(settings, app)
    except Exception:
        app.close()
        raise
    assert isinstance(app.mapper, TypedMapper)
    app.mapper.sealer = Sealer(keys)
    if settings.backend == "sqlite":
        app.views = sqlite_views(app, str(settings.views_path), app.mapper.sealer)
    else:
        app.views = postgres_views(app, app.mapper.sealer)
    app.policy = CedarPolicy()
    if settings.retention_days is not None:
        app.retention = retention_policy(settings.retention_days)
    return app


def retention_policy(days: dict[str, int]) -> RetentionPolicy:
    try:
        return RetentionPolicy({Tier(tier): n for tier, n in days.items()})
    except ValueError as e:
        raise ConfigError(
            f"BACKCHECK_RETENTION_DAYS: {e}; tiers are secret, consent_required, confidential, "
            "general"
        ) from None
