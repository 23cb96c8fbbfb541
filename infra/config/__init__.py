"""The one place that reads configuration.

Each setting is an environment variable, which may also be given as a file in the secrets
directory or a key of the configuration file (infra/config/sources.py: BACKCHECK_SECRETS_DIR,
BACKCHECK_CONFIG_FILE; the environment wins, then the secrets, then the file).
`backcheck config show` prints the effective settings, where each came from, secrets masked.

BACKCHECK_DATABASE_URL  where the event store lives:
                          sqlite:///path/to/file.sqlite                     (embedded default)
                          postgresql://user:password@host:5432/db?schema=s  (PostgreSQL)
BACKCHECK_DATA_DIR      where the embedded SQLite store is created when no URL is given
                        (default: $XDG_DATA_HOME/backcheck, else ~/.local/share/backcheck)
BACKCHECK_SIGNING_KEY   Ed25519 private key (PEM) that signs checkpoints
                        (default: DATA_DIR/keys/checkpoint-signing.key)
BACKCHECK_VERIFY_KEY    the public key a verifier trusts (default: next to the signing key)
BACKCHECK_LOG_ORIGIN    the log's name in its checkpoints (C2SP signed notes) and the name of
                        its key there: 1 to 256 printable characters, no space, no "+"
                        (default: backcheck/ and 16 hex digits of SHA-256 of where the store is,
                        so each store's checkpoints name it; set it before publishing any)
BACKCHECK_WITNESS_KEYS  the witnesses whose cosignatures the store collects and exports carry:
                        their vkeys (type 0x04, as `audit witness-keygen` prints them), by
                        commas or spaces (default: none)
BACKCHECK_RETENTION_DAYS   days each tier is kept once a case is quiet, e.g.
                        "secret=180,consent_required=365,confidential=365,general=730" (default)
BACKCHECK_MASTER_KEY_FILE  the master key (64 hex digits) that wraps every subject's data keys
                        (default: DATA_DIR/keys/master.key, created for a new store; mode 600,
                        the owner's alone; the store refuses any key but its own)
BACKCHECK_KEY_PROVIDER  who holds the master key: file (the key file above, default) or pkcs11
                        (an HSM through its PKCS#11 module; the key never leaves the token):
BACKCHECK_PKCS11_MODULE the module's path, e.g. /usr/lib/softhsm/libsofthsm2.so
BACKCHECK_PKCS11_TOKEN_LABEL  the token's label
BACKCHECK_PKCS11_PIN    the token's user PIN (a secret: give it in the secrets directory)
BACKCHECK_PKCS11_KEY_LABEL  the master key's label on the token (default backcheck-master; an
                        AES-256 key, made non-extractable there for a new store)
BACKCHECK_KAFKA_BOOTSTRAP  Kafka bootstrap servers, host:port[,host:port] (default 127.0.0.1:9092)
BACKCHECK_KAFKA_PARTITIONS partitions of the topics backcheck creates when missing (default 6)
BACKCHECK_MAX_EVENT_BYTES  the most bytes one stored event may take (default 900000): a command
                        whose event would be larger is refused (exit 2), so every event fits in
                        one Kafka message, below the broker's default limit of 1 MiB
BACKCHECK_PUBLIC_URL    the address candidates reach `backcheck serve` at, scheme://host[:port]
                        (default http://127.0.0.1:8000): the portal links sent out when consent
                        is requested open <it>/portal (written to DATA_DIR/outbox/portal-links)
BACKCHECK_SENDER_KEY    the Ed25519 private key (PEM) `send-command` signs commands with
BACKCHECK_HEALTH_HOST   where the daemons' --health-port listens (default 127.0.0.1: this
                        machine alone; 0.0.0.0 for every interface, as in a container)
BACKCHECK_PORTAL_SESSION_IDLE, _LIMIT  a candidate's portal session ends this long after its
                        last call (default 30m), and this long after it opened (default 8h)
BACKCHECK_OIDC_ISSUER   staff may sign in with an OIDC bearer token from this issuer (its `iss`);
                        unset: API tokens only. With it, the next two are required:
BACKCHECK_OIDC_AUDIENCE the audience (`aud`) tokens must be meant for
BACKCHECK_OIDC_JWKS     the issuer's public keys: an https URL (http only to the loopback
                        interface) or the path of a JWKS file
BACKCHECK_OIDC_ROLE_MAP the provider's roles/groups to backcheck staff roles, required with an
                        issuer, e.g. "hr-staff=recruiter,auditors=compliance"
BACKCHECK_OIDC_ROLE_CLAIM       the claim holding them (default "roles"; a dotted path reaches
                        into nested claims, e.g. "realm_access.roles")
BACKCHECK_OIDC_PRINCIPAL_CLAIM  the claim naming the person (default "sub"): principal oidc:<it>
BACKCHECK_OIDC_ASSIGNMENTS_CLAIM  a claim listing the candidate ids a token is scoped to
                        (default unset: tokens are not scoped)
BACKCHECK_KAFKA_SECURITY_PROTOCOL and BACKCHECK_KAFKA_SSL_* / BACKCHECK_KAFKA_SASL_*: how the
                        Kafka clients reach a secured broker (infra/config/kafka_security.py)
BACKCHECK_SCHEDULE_RETENTION       when `backcheck scheduler` runs each duty: "every N<unit>"
BACKCHECK_SCHEDULE_CONSENT_EXPIRY  (unit s, m, h or d; 1m to 31d; slots aligned to midnight
BACKCHECK_SCHEDULE_CHECKPOINT      UTC) or "off"; defaults every 1d, every 1h, every 1h
BACKCHECK_SCHEDULE_LEASE  how long a claimed run is held before another scheduler may take it
                        over, "N<unit>", 1m to 7d (default 1h): longer than the longest run
BACKCHECK_SCHEDULER_ID  who a scheduler is in the runs it records (default HOST:PID)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from infra.config.kafka_security import KafkaSecurity
from infra.config.parsing import (
    DEFAULT_LEASE,
    LIBPQ_SETTING,
    MAX_EVENT_BYTES,
    MIN_EVENT_BYTES,
    OIDC_STAFF_ROLES,
    PORTAL_SESSION,
    PUBLIC_URL,
    SCHEDULES,
    ConfigError,
    conninfo,
    default_data_dir,
    default_schedules,
    directory_setting,
    file_setting,
    key_provider_settings,
    oidc_settings,
    parse_bootstrap,
    parse_database_url,
    parse_origin,
    parse_public_url,
    parse_retention,
    parse_retention_categories,
    parse_witness_keys,
    portal_session_settings,
    postgres_parameters,
    schedule_settings,
)
from infra.config.process import HEALTH_HOST, process_settings
from infra.config.sources import Sources
from services.access import Role

__all__ = [
    "MAX_EVENT_BYTES",
    "OIDC_STAFF_ROLES",
    "PUBLIC_URL",
    "SCHEDULES",
    "ConfigError",
    "KafkaSecurity",
    "Settings",
    "Sources",
    "file_setting",
    "parse_bootstrap",
    "parse_database_url",
    "parse_public_url",
]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    database_url: str | None = Field(
        default=None, description="sqlite:///FILE or postgresql://USER@HOST:PORT/DB?schema=S"
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    signing_key: Path | None = None
    verify_key: Path | None = None
    log_origin: str | None = None
    witness_keys: tuple[str, ...] = ()  # vkeys (type 0x04), checked by parse_witness_keys
    master_key_file: Path | None = None
    key_provider: Literal["file", "pkcs11"] = "file"
    pkcs11_module: Path | None = None
    pkcs11_token_label: str | None = None
    pkcs11_pin: str | None = Field(default=None, repr=False)
    pkcs11_key_label: str = "backcheck-master"
    retention_days: dict[str, int] | None = None
    retention_categories: dict[str, int] | None = None
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="host:port[,host:port]")
    kafka_partitions: int = Field(default=6, ge=1)
    max_event_bytes: int = Field(default=MAX_EVENT_BYTES, ge=MIN_EVENT_BYTES)
    health_host: str = HEALTH_HOST  # where daemons' /healthz, /readyz, /metrics listen
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks: str | None = None
    oidc_role_map: dict[str, Role] = Field(default_factory=dict)
    oidc_role_claim: str = "roles"
    oidc_principal_claim: str = "sub"
    oidc_assignments_claim: str | None = None
    public_url: str = Field(default=PUBLIC_URL, description="scheme://host[:port]")
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)
    # duty -> seconds between its slots; a duty left out is off (schedule_settings)
    schedules: dict[str, int] = Field(default_factory=lambda: default_schedules())
    schedule_lease: int = Field(default=DEFAULT_LEASE, ge=60)
    scheduler_id: str | None = None
    sender_key: Path | None = None  # the private key `send-command` signs with
    portal_session_idle: int = Field(default=PORTAL_SESSION["portal_session_idle"][1], ge=60)
    portal_session_limit: int = Field(default=PORTAL_SESSION["portal_session_limit"][1], ge=60)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The effective settings: the environment (os.environ unless given), the secrets
        directory and the configuration file (see infra/config/sources.py)."""
        return cls.from_sources(Sources.read(environ))

    @classmethod
    def from_sources(cls, sources: Sources) -> Settings:
        env = sources.get
        values: dict[str, object] = {}
        if url := env("BACKCHECK_DATABASE_URL"):
            values["database_url"] = parse_database_url(url)
        if data_dir := env("BACKCHECK_DATA_DIR"):
            values["data_dir"] = Path(data_dir).expanduser()
        if key := env("BACKCHECK_SIGNING_KEY"):
            values["signing_key"] = Path(key).expanduser()
        if key := env("BACKCHECK_VERIFY_KEY"):
            values["verify_key"] = Path(key).expanduser()
        if origin := env("BACKCHECK_LOG_ORIGIN"):
            values["log_origin"] = parse_origin(origin)
        if text := env("BACKCHECK_WITNESS_KEYS"):
            values["witness_keys"] = parse_witness_keys(text)
        if key := env("BACKCHECK_MASTER_KEY_FILE"):
            values["master_key_file"] = Path(key).expanduser()
        values |= key_provider_settings(env)
        if text := env("BACKCHECK_RETENTION_DAYS"):
            values["retention_days"] = parse_retention(text)
        if text := env("BACKCHECK_RETENTION_CATEGORIES"):
            values["retention_categories"] = parse_retention_categories(text)
        if servers := env("BACKCHECK_KAFKA_BOOTSTRAP"):
            values["kafka_bootstrap"] = parse_bootstrap(servers)
        values |= process_settings(env)
        if text := env("BACKCHECK_PUBLIC_URL"):
            values["public_url"] = parse_public_url(text)
        values |= oidc_settings(env)
        values["kafka_security"] = KafkaSecurity.read(sources)
        values |= schedule_settings(env)
        values |= portal_session_settings(env)
        if key := env("BACKCHECK_SENDER_KEY"):
            values["sender_key"] = Path(key).expanduser()
        return cls.model_validate(values)

    def make_directories(self) -> None:
        """Makes DATA_DIR and, on SQLite, the store's directory if they are missing: the store,
        its keys, checkpoints, outbox and the demo's lock are kept there, so one that cannot
        be made (a file in its way, a place where no directory can be made) is refused here,
        naming its setting, before any of them is made (ConfigError, exit 78)."""
        directory_setting("BACKCHECK_DATA_DIR", self.data_dir, "store's files and keys")
        if self.backend == "sqlite":
            self.sqlite_file()

    def sqlite_file(self) -> Path:
        """The SQLite store's file, its directory made (ConfigError naming the setting that
        put it there if it cannot be)."""
        variable = "BACKCHECK_DATABASE_URL" if self.database_url else "BACKCHECK_DATA_DIR"
        return file_setting(variable, self.sqlite_path, "store")

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key or self.keys_dir / "checkpoint-signing.key"

    @property
    def verify_key_path(self) -> Path:
        return self.verify_key or self.signing_key_path.with_suffix(".pub")

    @property
    def origin(self) -> str:
        """The log's origin line in its checkpoints: BACKCHECK_LOG_ORIGIN, else derived from
        where the store is (the SQLite file's absolute path, or PostgreSQL's host, port,
        database and schema), so two stores never sign checkpoints under one name."""
        if self.log_origin:
            return self.log_origin
        if self.backend == "sqlite":
            where = f"sqlite:{self.sqlite_path.absolute()}"
        else:
            url = urlsplit(self.database_url or "")
            where = f"postgres:{url.hostname}:{url.port or 5432}{url.path}:{self.postgres_schema}"
        return "backcheck/" + hashlib.sha256(where.encode()).hexdigest()[:16]

    @property
    def master_key_path(self) -> Path:
        return self.master_key_file or self.keys_dir / "master.key"

    def postgres_conninfo(self) -> str:
        """The libpq connection string of every connection the store makes outside the event
        store's pool (which `store_env` gives the same parameters): the URL's parts and its
        libpq parameters (sslmode, ...), `connect_timeout` unless it gives one."""
        env = self.store_env()
        parts = {
            "dbname": env["POSTGRES_DBNAME"],
            "host": env["POSTGRES_HOST"],
            "port": env["POSTGRES_PORT"],
            "user": env["POSTGRES_USER"],
        }
        if env["POSTGRES_PASSWORD"]:
            parts["password"] = env["POSTGRES_PASSWORD"]
        return conninfo(parts | self.postgres_parameters())

    def postgres_parameters(self) -> dict[str, str]:
        """The libpq parameters the store URL gives (LIBPQ_PARAMETERS), with connect_timeout."""
        return postgres_parameters(self.database_url or "")

    @property
    def postgres_schema(self) -> str:
        return self.store_env().get("POSTGRES_SCHEMA", "public")

    @property
    def checkpoints_dir(self) -> Path:
        return self.data_dir / "checkpoints"

    @property
    def outbox_dir(self) -> Path:
        """What backcheck hands on for another program to send: candidates' portal links."""
        return self.data_dir / "outbox"

    @property
    def backend(self) -> str:
        if not self.database_url:
            return "sqlite"
        scheme = urlsplit(self.database_url).scheme
        if scheme == "sqlite":
            return "sqlite"
        if scheme in ("postgresql", "postgres"):
            return "postgres"
        raise ConfigError(
            f"BACKCHECK_DATABASE_URL: unsupported scheme {scheme!r}; "
            "use sqlite:///FILE or postgresql://USER@HOST:PORT/DB"
        )

    @property
    def sqlite_path(self) -> Path:
        if self.database_url:
            path = urlsplit(self.database_url).path
            if not path or path == "/":
                raise ConfigError("BACKCHECK_DATABASE_URL: sqlite URL needs a file path")
            # sqlite:///relative.db -> "relative.db"; sqlite:////abs.db -> "/abs.db"
            return Path(unquote(path[1:]))
        return self.data_dir / "backcheck.sqlite"

    def beside_store(self, name: str) -> Path:
        """The SQLite file `<store>.NAME.sqlite` beside the embedded store (its suffix if it
        has one): each of the store's own files (views, the relay's state) is named so."""
        head, tail = self._beside_store()
        return self.sqlite_path.with_name(f"{head}{name}{tail}")

    def named_beside_store(self, filename: str) -> bool:
        """Whether `filename` is one `beside_store` gives, whatever the NAME: the store's own
        files are known by it even where their NAME changes (the projection workers', with
        their projection's version)."""
        head, tail = self._beside_store()
        return (
            len(filename) > len(head) + len(tail)
            and filename.startswith(head)
            and filename.endswith(tail)
        )

    def after_store(self, what: str) -> Path:
        """`<store file>.WHAT` beside the embedded store: what the app keeps for the store that
        is no store of its own (its writer lock, the HTTP server's kept answers and portal
        sessions, the demo's and each relay's lock) is named so."""
        return self.sqlite_path.with_name(f"{self.sqlite_path.name}.{what}")

    def named_after_store(self, filename: str) -> bool:
        """Whether `filename` is one `after_store` gives, whatever WHAT (`…http-answers-wal`)."""
        prefix = f"{self.sqlite_path.name}."
        return len(filename) > len(prefix) and filename.startswith(prefix)

    def _beside_store(self) -> tuple[str, str]:
        store = self.sqlite_path
        return f"{store.stem}.", store.suffix or ".sqlite"

    @property
    def views_path(self) -> Path:
        """The embedded read views: a rebuildable SQLite file next to the event store."""
        return self.beside_store("views")

    @property
    def dashboard_path(self) -> Path:
        """The embedded dashboard views (counts only): a rebuildable SQLite file of their own."""
        return self.beside_store("dashboard")

    @property
    def relay_state_path(self) -> Path:
        """The relay's position on the embedded store: a SQLite file of its own, so recording
        it never takes the store's write lock from the writers."""
        return self.beside_store("relay")

    def store_env(self) -> dict[str, str]:
        """The eventsourcing environment for this store (persistence module and its settings)."""
        env = {
            "TRANSCODER_TOPIC": "infra.store.transcoder:OrjsonTranscoder",
            "MAPPER_TOPIC": "infra.store.transcoder:TypedMapper",
            "IS_SNAPSHOTTING_ENABLED": "no",
        }
        if self.backend == "sqlite":
            env |= {
                "PERSISTENCE_MODULE": "infra.store.pool:Factory",  # statements kept
                "SQLITE_DBNAME": str(self.sqlite_file()),
                "SQLITE_LOCK_TIMEOUT": "10",
                "APPLICATION_RECORDER_TOPIC": (
                    "infra.store.recorder:ChainedSQLiteApplicationRecorder"
                ),
            }
            return env
        assert self.database_url is not None
        url = urlsplit(self.database_url)
        query = parse_qs(url.query)
        env |= {
            "PERSISTENCE_MODULE": "infra.store.pg_pool:Factory",  # dead connections let go
            "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_ENABLE_DB_FUNCTIONS": "no",
            "APPLICATION_RECORDER_TOPIC": (
                "infra.store.postgres_recorder:ChainedPostgresApplicationRecorder"
            ),
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"][0]
        # the URL's libpq parameters, for the event store's pool (infra/store/pg_pool.py)
        env[LIBPQ_SETTING] = conninfo(self.postgres_parameters())
        return env

    def describe(self) -> str:
        if self.backend == "sqlite":
            return f"SQLite {self.sqlite_path}"
        url = urlsplit(self.database_url or "")
        return f"PostgreSQL {url.hostname}:{url.port or 5432}{url.path}"

    def location(self) -> str:
        """Where the store is, as `info` and `config show` say it: the file, or the server,
        database and schema (stores in two schemas of one database are two stores); never a
        password."""
        if self.backend == "sqlite":
            return self.describe()
        return f"{self.describe()} schema {self.postgres_schema}"
