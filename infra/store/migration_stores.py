"""The stores a migration reads and writes (infra/store/migration.py): the new store's
settings, and each store opened with its key table and the mapper that opens and seals its
values (no views, no use cases)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.sqlite import SQLiteDatastore

from infra.config import ConfigError, Settings, parse_database_url
from infra.privacy.erasures import RecordedErasures
from infra.privacy.key_pools import postgres_keystore, sqlite_keystore
from infra.privacy.keystore import SQLKeyStore
from infra.privacy.providers import KeyProvider
from infra.privacy.sealing import Sealer
from infra.store.migration_errors import TargetNotEmptyError
from infra.store.recorder import chained, datastore_of
from infra.store.transcoder import TypedMapper, typed_mapper

if TYPE_CHECKING:
    from infra.store.recorder import ChainedRecorder


def target_settings(source: Settings, url: str, data_dir: Path | None) -> Settings:
    """The new store's settings: the old one's, with the store at `url` and its own data
    directory (its checkpoints must not be the old store's); the same keys (the master key
    wraps the new store's data keys, the checkpoint key signs for both)."""
    if len(url) > 2_000:
        raise ConfigError("--to: at most 2000 characters")
    scheme = urlsplit(url).scheme
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(
            f"--to: {url[:80]!r} is no store address; use sqlite:///FILE or "
            "postgresql://USER@HOST:PORT/DB?schema=S"
        )
    parse_database_url(url, "--to")  # its schema a name the store's statements can use
    if data_dir is None:
        if scheme != "sqlite":
            raise ConfigError("--to-data-dir: a PostgreSQL target needs a data directory")
        path = urlsplit(url).path
        if not path or path == "/":
            raise ConfigError("--to: a sqlite URL needs a file path")
        data_dir = Path(path[1:]).parent
    target = source.model_copy(
        update={
            "database_url": url,
            "data_dir": data_dir,
            "master_key_file": source.master_key_path,
            "signing_key": source.signing_key_path,
            "verify_key": source.verify_key_path,
        }
    )
    if _where(target) == _where(source):
        raise ConfigError("--to: names the store being migrated; name a new store")
    if target.data_dir.resolve() == source.data_dir.resolve():
        raise ConfigError(
            "--to-data-dir: the new store needs a data directory of its own (its checkpoints "
            f"are not the old store's); {data_dir} is the old store's"
        )
    return target


def where(settings: Settings) -> str:
    """A store's address as a person reads it, with no password: the file, or the server,
    database and schema."""
    return settings.location()


def _where(settings: Settings) -> tuple[str, ...]:
    if settings.backend == "sqlite":
        return ("sqlite", str(settings.sqlite_path.resolve()))
    return ("postgres", settings.postgres_conninfo(), settings.postgres_schema)


class Store(Application[UUID]):
    name = "backcheck"
    is_snapshotting_enabled = False


@dataclass
class Opened:
    app: Store
    keys: SQLKeyStore
    recorder: ChainedRecorder
    mapper: TypedMapper

    def close(self) -> None:
        try:
            self.keys.close()
        finally:
            self.app.close()


def open_store(settings: Settings, master: KeyProvider, setting: str = "") -> Opened:
    """A store with its key table and the mapper that opens (and seals) its values; no views,
    no use cases. `setting`: what names the store, when not BACKCHECK_DATABASE_URL (the
    target's --to): a refusal names it. A PostgreSQL target's schema is made if missing; its
    database must exist."""
    if settings.backend == "postgres":
        from infra.store.server import StoreMisconfiguredError, check_server

        try:
            check_server(settings.postgres_conninfo(), settings.describe())
        except StoreMisconfiguredError as e:
            if not setting:
                raise
            told = str(e).replace("BACKCHECK_DATABASE_URL", setting, 1)
            raise StoreMisconfiguredError(told) from None
        _ensure_schema(settings)
    try:
        env = settings.store_env()  # a SQLite store's directory made here
    except ConfigError as e:
        if not setting:
            raise
        raise ConfigError(str(e).replace("BACKCHECK_DATABASE_URL", setting, 1)) from None
    app = Store(env)
    try:
        datastore = datastore_of(app.recorder)
        if isinstance(datastore, SQLiteDatastore):
            keys = sqlite_keystore(datastore, master)
        else:
            keys = postgres_keystore(settings.postgres_conninfo(), settings.postgres_schema, master)
    except BaseException:
        app.close()
        raise
    mapper = typed_mapper(app.mapper)
    mapper.sealer = Sealer(keys, RecordedErasures(app.recorder.select_events).covers)
    return Opened(app, keys, chained(app.recorder), mapper)


def _ensure_schema(settings: Settings) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(settings.postgres_schema)
            )
        )


SQLITE_HEADER = b"SQLite format 3\x00"


def refuse_foreign_file(target: Settings) -> None:
    """A SQLite target that exists must be a database (a store begun by this migration, or an
    empty one): any other file is refused before it is opened, and so never written."""
    if target.backend != "sqlite":
        return
    path = target.sqlite_path
    if path.is_dir():
        raise ConfigError(f"--to: {path} is a directory; name the new store's file")
    try:
        with path.open("rb") as f:
            start = f.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as e:
        raise ConfigError(f"--to: {path} cannot be read: {e.strerror}") from None
    if start and start != SQLITE_HEADER:
        raise TargetNotEmptyError(f"--to: {path} exists and is no SQLite store; name a new file")
