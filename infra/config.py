"""The one place that reads configuration from the environment.

BACKCHECK_DATABASE_URL  where the event store lives:
                          sqlite:///path/to/file.sqlite                     (embedded default)
                          postgresql://user:password@host:5432/db?schema=s  (PostgreSQL)
BACKCHECK_DATA_DIR      where the embedded SQLite store is created when no URL is given
                        (default: $XDG_DATA_HOME/backcheck, else ~/.local/share/backcheck)
BACKCHECK_SIGNING_KEY   Ed25519 private key (PEM) that signs checkpoints
                        (default: DATA_DIR/keys/checkpoint-signing.key)
BACKCHECK_VERIFY_KEY    the public key a verifier trusts (default: next to the signing key)
BACKCHECK_RETENTION_DAYS   days each tier is kept once a case is quiet, e.g.
                        "secret=180,consent_required=365,confidential=365,general=730" (default)
BACKCHECK_MASTER_KEY_FILE  the master key (64 hex digits) that wraps every subject's data keys
                        (default: DATA_DIR/keys/master.key, created for a new store; mode 600,
                        the owner's alone; the store refuses any key but its own)
BACKCHECK_KAFKA_BOOTSTRAP  Kafka bootstrap servers, host:port[,host:port] (default 127.0.0.1:9092)
BACKCHECK_KAFKA_PARTITIONS partitions of the topics backcheck creates when missing (default 6)
BACKCHECK_MAX_EVENT_BYTES  the most bytes one stored event may take (default 900000): a command
                        whose event would be larger is refused (exit 2), so every event fits in
                        one Kafka message, below the broker's default limit of 1 MiB
BACKCHECK_PUBLIC_URL    the address candidates reach `backcheck serve` at, scheme://host[:port]
                        (default http://127.0.0.1:8000): the portal links sent out when consent
                        is requested open <it>/portal (written to DATA_DIR/outbox/portal-links)
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
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from services.access import Role

POSTGRES_CONNECT_TIMEOUT = 5  # seconds libpq may take to reach each address of the host
# An event's stored state is the value of its Kafka message. Kafka's default limit for one
# message (message.max.bytes, max.message.bytes) is 1 MiB; the key, the CloudEvents headers and
# the record's framing take well under 1 KiB of the rest.
MAX_EVENT_BYTES = 900_000
MIN_EVENT_BYTES = 1024
MAX_OIDC_SETTING = 2048  # an issuer URL, an audience, a claim name
PUBLIC_URL = "http://127.0.0.1:8000"  # where `backcheck serve` listens unless told otherwise
MAX_PUBLIC_URL = 2048
MAX_ROLE_MAP_ENTRIES = 100
# The roles an OIDC token may carry: staff. Candidates sign in with their portal link,
# services with an API token or signed messages.
OIDC_STAFF_ROLES = frozenset(
    {Role.RECRUITER, Role.INVESTIGATOR, Role.REVIEWER, Role.HIRING_MANAGER, Role.COMPLIANCE}
)


class ConfigError(ValueError):
    """A setting is present but cannot be used; the message names the variable and the rule."""


def parse_retention(text: str) -> dict[str, int]:
    days: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        tier, sep, number = part.partition("=")
        if not sep or not number.strip().isdigit():
            raise ConfigError(
                f"BACKCHECK_RETENTION_DAYS: {part!r} is not TIER=DAYS "
                "(e.g. secret=180,confidential=365,general=730)"
            )
        days[tier.strip()] = int(number)
    return days


def parse_bootstrap(text: str) -> str:
    """host:port[,host:port]: each server with a host and a numeric port."""
    servers = [part.strip() for part in text.split(",") if part.strip()]
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(
                f"BACKCHECK_KAFKA_BOOTSTRAP: {server!r} is not HOST:PORT "
                "(e.g. 127.0.0.1:9092 or kafka-1:9092,kafka-2:9092)"
            )
    if not servers:
        raise ConfigError("BACKCHECK_KAFKA_BOOTSTRAP: empty; give HOST:PORT[,HOST:PORT]")
    return ",".join(servers)


def parse_role_map(text: str) -> dict[str, Role]:
    """GROUP=ROLE[,GROUP=ROLE]: each of the provider's role or group names to one backcheck
    staff role (a name may hold "=": the role is after the last one)."""
    variable = "BACKCHECK_OIDC_ROLE_MAP"
    staff = ", ".join(sorted(OIDC_STAFF_ROLES))
    mapping: dict[str, Role] = {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > MAX_ROLE_MAP_ENTRIES:
        raise ConfigError(f"{variable}: over {MAX_ROLE_MAP_ENTRIES} entries")
    for part in parts:
        group, sep, role = part.rpartition("=")
        group, role = group.strip(), role.strip()
        if not sep or not group or len(group) > 256:
            raise ConfigError(
                f"{variable}: {part[:300]!r} is not GROUP=ROLE "
                "(e.g. hr-staff=recruiter,auditors=compliance)"
            )
        if role not in OIDC_STAFF_ROLES:
            raise ConfigError(
                f"{variable}: {role[:64]!r} (for {group!r}) is not a backcheck staff role; use "
                f"one of {staff} (candidates sign in with their portal link, services with an "
                "API token)"
            )
        if mapping.get(group, Role(role)) != role:
            raise ConfigError(f"{variable}: {group!r} is mapped to two roles")
        mapping[group] = Role(role)
    if not mapping:
        raise ConfigError(f"{variable}: empty; map at least one group, e.g. hr-staff=recruiter")
    return mapping


def _oidc_text(variable: str) -> str | None:
    text = os.environ.get(variable, "").strip()
    if not text:
        return None
    if len(text) > MAX_OIDC_SETTING or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ConfigError(
            f"{variable}: over {MAX_OIDC_SETTING} characters or holds control characters"
        )
    return text


def oidc_from_env() -> dict[str, object]:
    """The BACKCHECK_OIDC_* settings: all or nothing around the issuer."""
    names = (
        *("ISSUER", "AUDIENCE", "JWKS", "ROLE_MAP"),
        *("ROLE_CLAIM", "PRINCIPAL_CLAIM", "ASSIGNMENTS_CLAIM"),
    )
    given = {name: _oidc_text(f"BACKCHECK_OIDC_{name}") for name in names}
    if given["ISSUER"] is None:
        stray = [f"BACKCHECK_OIDC_{n}" for n, v in given.items() if v is not None]
        if stray:
            raise ConfigError(
                f"{', '.join(stray)}: set, but BACKCHECK_OIDC_ISSUER is not; set the issuer "
                "too, or unset these"
            )
        return {}
    missing = [f"BACKCHECK_OIDC_{n}" for n in ("AUDIENCE", "JWKS", "ROLE_MAP") if not given[n]]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)}: required with BACKCHECK_OIDC_ISSUER (the audience tokens "
            "name, where the issuer's keys are, and which of its roles are which staff role)"
        )
    values: dict[str, object] = {
        "oidc_issuer": given["ISSUER"],
        "oidc_audience": given["AUDIENCE"],
        "oidc_jwks": given["JWKS"],
        "oidc_role_map": parse_role_map(given["ROLE_MAP"] or ""),
    }
    for name in ("ROLE_CLAIM", "PRINCIPAL_CLAIM", "ASSIGNMENTS_CLAIM"):
        if (claim := given[name]) is not None:
            if len(claim) > 256:
                raise ConfigError(f"BACKCHECK_OIDC_{name}: a claim name of over 256 characters")
            values[f"oidc_{name.lower()}"] = claim
    return values


def parse_public_url(text: str) -> str:
    """scheme://host[:port] with scheme http or https, and nothing after it: the portal is
    served at /portal of the server's root (a trailing / is dropped)."""
    variable = "BACKCHECK_PUBLIC_URL"
    text = text.strip()
    if len(text) > MAX_PUBLIC_URL or any(ord(c) < 33 or ord(c) == 127 for c in text):
        raise ConfigError(
            f"{variable}: over {MAX_PUBLIC_URL} characters, or holds spaces or control characters"
        )
    url = urlsplit(text)
    try:
        _ = url.port  # a port that is not a number raises here
    except ValueError:
        raise ConfigError(f"{variable}: {text[:300]!r} has a port that is not a number") from None
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(
            f"{variable}: {text[:300]!r} is not http(s)://HOST[:PORT] "
            "(e.g. https://backcheck.example.com)"
        )
    if url.path not in ("", "/") or url.query or url.fragment or url.username is not None:
        raise ConfigError(
            f"{variable}: {text[:300]!r} holds more than scheme://HOST[:PORT]; the portal is "
            "served at /portal of the server's root"
        )
    return f"{url.scheme}://{url.netloc}"


def file_setting(variable: str, path: Path, what: str) -> Path:
    """A setting that names a file to be read or made: refused (ConfigError, naming the
    variable) when it names a directory, or when a file stands where its directory must be."""
    if path.is_dir():
        raise ConfigError(f"{variable}: {path} is a directory; name the {what} file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(
            f"{variable}: cannot make the directory {path.parent} for the {what}: a file is in "
            "the way"
        ) from None
    except OSError as e:
        raise ConfigError(
            f"{variable}: cannot make the directory {path.parent} for the {what}: {e.strerror or e}"
        ) from None
    return path


def default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "backcheck"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    database_url: str | None = Field(
        default=None, description="sqlite:///FILE or postgresql://USER@HOST:PORT/DB?schema=S"
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    signing_key: Path | None = None
    verify_key: Path | None = None
    master_key_file: Path | None = None
    retention_days: dict[str, int] | None = None
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="host:port[,host:port]")
    kafka_partitions: int = Field(default=6, ge=1)
    max_event_bytes: int = Field(default=MAX_EVENT_BYTES, ge=MIN_EVENT_BYTES)
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks: str | None = None
    oidc_role_map: dict[str, Role] = Field(default_factory=dict)
    oidc_role_claim: str = "roles"
    oidc_principal_claim: str = "sub"
    oidc_assignments_claim: str | None = None
    public_url: str = Field(default=PUBLIC_URL, description="scheme://host[:port]")
    sender_key: Path | None = None  # the private key `send-command` signs with

    @classmethod
    def from_env(cls) -> Settings:
        values: dict[str, object] = {}
        if url := os.environ.get("BACKCHECK_DATABASE_URL"):
            values["database_url"] = url
        if data_dir := os.environ.get("BACKCHECK_DATA_DIR"):
            values["data_dir"] = Path(data_dir).expanduser()
        if key := os.environ.get("BACKCHECK_SIGNING_KEY"):
            values["signing_key"] = Path(key).expanduser()
        if key := os.environ.get("BACKCHECK_VERIFY_KEY"):
            values["verify_key"] = Path(key).expanduser()
        if key := os.environ.get("BACKCHECK_MASTER_KEY_FILE"):
            values["master_key_file"] = Path(key).expanduser()
        if text := os.environ.get("BACKCHECK_RETENTION_DAYS"):
            values["retention_days"] = parse_retention(text)
        if servers := os.environ.get("BACKCHECK_KAFKA_BOOTSTRAP"):
            values["kafka_bootstrap"] = parse_bootstrap(servers)
        if text := os.environ.get("BACKCHECK_KAFKA_PARTITIONS"):
            if not text.strip().isdigit() or int(text) < 1:
                raise ConfigError(
                    f"BACKCHECK_KAFKA_PARTITIONS: {text!r} is not a whole number of at least 1"
                )
            values["kafka_partitions"] = int(text)
        if text := os.environ.get("BACKCHECK_MAX_EVENT_BYTES"):
            if not text.strip().isdigit() or int(text) < MIN_EVENT_BYTES:
                raise ConfigError(
                    f"BACKCHECK_MAX_EVENT_BYTES: {text!r} is not a whole number of bytes of at "
                    f"least {MIN_EVENT_BYTES} (default {MAX_EVENT_BYTES})"
                )
            values["max_event_bytes"] = int(text)
        if text := os.environ.get("BACKCHECK_PUBLIC_URL"):
            values["public_url"] = parse_public_url(text)
        if key := os.environ.get("BACKCHECK_SENDER_KEY"):
            values["sender_key"] = Path(key).expanduser()
        values |= oidc_from_env()
        return cls.model_validate(values)

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
    def master_key_path(self) -> Path:
        return self.master_key_file or self.keys_dir / "master.key"

    def postgres_conninfo(self) -> str:
        env = self.store_env()
        parts = {
            "dbname": env["POSTGRES_DBNAME"],
            "host": env["POSTGRES_HOST"],
            "port": env["POSTGRES_PORT"],
            "user": env["POSTGRES_USER"],
            "connect_timeout": str(POSTGRES_CONNECT_TIMEOUT),
        }
        if env["POSTGRES_PASSWORD"]:
            parts["password"] = env["POSTGRES_PASSWORD"]
        return " ".join(f"{k}='{v}'" for k, v in parts.items())

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

    @property
    def views_path(self) -> Path:
        """The embedded read views: a rebuildable SQLite file next to the event store."""
        store = self.sqlite_path
        return store.with_name(f"{store.stem}.views{store.suffix or '.sqlite'}")

    @property
    def dashboard_path(self) -> Path:
        """The embedded dashboard views (counts only): a rebuildable SQLite file of their own."""
        store = self.sqlite_path
        return store.with_name(f"{store.stem}.dashboard{store.suffix or '.sqlite'}")

    @property
    def relay_state_path(self) -> Path:
        """The relay's position on the embedded store: a SQLite file of its own, so recording
        it never takes the store's write lock from the writers."""
        store = self.sqlite_path
        return store.with_name(f"{store.stem}.relay{store.suffix or '.sqlite'}")

    @property
    def stream_views_path(self) -> Path:
        """The projection workers' views on the embedded store: a SQLite file of their own."""
        store = self.sqlite_path
        return store.with_name(f"{store.stem}.stream-views{store.suffix or '.sqlite'}")

    @property
    def stream_dashboard_path(self) -> Path:
        """The projection workers' dashboard views on the embedded store: a file of their own."""
        store = self.sqlite_path
        return store.with_name(f"{store.stem}.stream-dashboard{store.suffix or '.sqlite'}")

    def store_env(self) -> dict[str, str]:
        """The eventsourcing environment for this store (persistence module and its settings)."""
        env = {
            "TRANSCODER_TOPIC": "infra.store.transcoder:OrjsonTranscoder",
            "MAPPER_TOPIC": "infra.store.transcoder:TypedMapper",
            "IS_SNAPSHOTTING_ENABLED": "no",
        }
        if self.backend == "sqlite":
            variable = "BACKCHECK_DATABASE_URL" if self.database_url else "BACKCHECK_DATA_DIR"
            path = file_setting(variable, self.sqlite_path, "store")
            env |= {
                "PERSISTENCE_MODULE": "infra.store.pool:Factory",  # statements kept
                "SQLITE_DBNAME": str(path),
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
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
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
        return env

    def describe(self) -> str:
        if self.backend == "sqlite":
            return f"SQLite {self.sqlite_path}"
        url = urlsplit(self.database_url or "")
        return f"PostgreSQL {url.hostname}:{url.port or 5432}{url.path}"
