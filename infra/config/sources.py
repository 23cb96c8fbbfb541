"""Where settings come from: the environment, a secrets directory and a configuration file.

Every setting has one name, its environment variable (`BACKCHECK_DATABASE_URL`), and may be
given in three places. The first that holds it wins:

1. the environment: `BACKCHECK_DATABASE_URL=...`;
2. the secrets directory (`BACKCHECK_SECRETS_DIR`, e.g. /run/secrets where Docker and
   Kubernetes mount secrets): a file per setting named like its variable
   (`/run/secrets/BACKCHECK_KAFKA_SASL_PASSWORD`), holding the value (a final newline is
   dropped), so a password never stands in the environment or in a file everyone reads;
3. the configuration file (`BACKCHECK_CONFIG_FILE`, TOML): the variable's name without
   `BACKCHECK_`, in lower case, e.g. `database_url = "postgresql://..."`,
   `kafka_partitions = 12`.

The two locations themselves are read from the environment only. pydantic-settings reads the
secrets and the file; this module adds what it leaves to us: which place each value came from
(for `backcheck config show`), an unknown key in the file refused instead of ignored (a typo
would otherwise leave a default in force unseen), and every failure as a `ConfigError` naming
the variable.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.config.parsing import ConfigError

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

PREFIX = "BACKCHECK_"
CONFIG_FILE = "BACKCHECK_CONFIG_FILE"
SECRETS_DIR = "BACKCHECK_SECRETS_DIR"
MAX_VALUE = 8192  # characters of one setting's text (a JWKS path, a role map, a URL)
MAX_CONFIG_FILE = 1_000_000  # bytes


@dataclass(frozen=True)
class Variable:
    """One setting: what it is, and whether `config show` masks its value."""

    help: str
    secret: bool = False


# Every setting backcheck reads, by its variable. The one table: the file's keys, the secrets'
# file names and `config show` all come from it; a variable not here is not a setting.
VARIABLES: dict[str, Variable] = {
    "BACKCHECK_DATABASE_URL": Variable(
        "where the event store lives: sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB",
        secret=True,  # its password; `config show` masks only that part
    ),
    "BACKCHECK_DATA_DIR": Variable("where the embedded store, keys and outbox are kept"),
    "BACKCHECK_SIGNING_KEY": Variable("the Ed25519 private key (PEM) that signs checkpoints"),
    "BACKCHECK_VERIFY_KEY": Variable("the public key a verifier of checkpoints trusts"),
    "BACKCHECK_LOG_ORIGIN": Variable("the log's name in its signed checkpoints (C2SP notes)"),
    "BACKCHECK_WITNESS_KEYS": Variable(
        "the witnesses whose cosignatures the store collects: vkeys, by commas or spaces"
    ),
    "BACKCHECK_MASTER_KEY_FILE": Variable("the master key that wraps every subject's data keys"),
    "BACKCHECK_KEY_PROVIDER": Variable("who holds the master key: file (default) or pkcs11"),
    "BACKCHECK_PKCS11_MODULE": Variable("the PKCS#11 module (the HSM vendor's library)"),
    "BACKCHECK_PKCS11_TOKEN_LABEL": Variable("the label of the token holding the master key"),
    "BACKCHECK_PKCS11_PIN": Variable("the token's user PIN", secret=True),
    "BACKCHECK_PKCS11_KEY_LABEL": Variable("the master key's label on the token"),
    "BACKCHECK_RETENTION_DAYS": Variable("days each tier is kept once a case is quiet"),
    "BACKCHECK_RETENTION_CATEGORIES": Variable(
        "days a category is kept, in place of its tier's (user.education=1095)"
    ),
    "BACKCHECK_KAFKA_BOOTSTRAP": Variable("Kafka bootstrap servers, HOST:PORT[,HOST:PORT]"),
    "BACKCHECK_KAFKA_PARTITIONS": Variable("partitions of the topics backcheck creates"),
    "BACKCHECK_KAFKA_SECURITY_PROTOCOL": Variable("PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
    "BACKCHECK_KAFKA_SSL_CAFILE": Variable("the CA certificates (PEM) the broker is checked by"),
    "BACKCHECK_KAFKA_SSL_CERTFILE": Variable("this client's certificate (PEM), for mutual TLS"),
    "BACKCHECK_KAFKA_SSL_KEYFILE": Variable("this client's private key (PEM), for mutual TLS"),
    "BACKCHECK_KAFKA_SSL_KEY_PASSWORD": Variable("the password of that key", secret=True),
    "BACKCHECK_KAFKA_SASL_MECHANISM": Variable("PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    "BACKCHECK_KAFKA_SASL_USERNAME": Variable("the SASL user"),
    "BACKCHECK_KAFKA_SASL_PASSWORD": Variable("the SASL user's password", secret=True),
    "BACKCHECK_MAX_EVENT_BYTES": Variable("the most bytes one stored event may take"),
    "BACKCHECK_PUBLIC_URL": Variable("the address candidates reach `backcheck serve` at"),
    "BACKCHECK_SENDER_KEY": Variable("the private key (PEM) `send-command` signs commands with"),
    "BACKCHECK_HEALTH_HOST": Variable("where the daemons' health ports listen (127.0.0.1)"),
    "BACKCHECK_OIDC_ISSUER": Variable("staff may sign in with OIDC tokens from this issuer"),
    "BACKCHECK_OIDC_AUDIENCE": Variable("the audience OIDC tokens must be meant for"),
    "BACKCHECK_OIDC_JWKS": Variable("the issuer's public keys: an https URL or a JWKS file"),
    "BACKCHECK_OIDC_ROLE_MAP": Variable("the provider's roles/groups to backcheck staff roles"),
    "BACKCHECK_OIDC_ROLE_CLAIM": Variable("the claim holding the roles (default roles)"),
    "BACKCHECK_OIDC_PRINCIPAL_CLAIM": Variable("the claim naming the person (default sub)"),
    "BACKCHECK_OIDC_ASSIGNMENTS_CLAIM": Variable("a claim listing the candidates a token reads"),
    "BACKCHECK_SCHEDULE_RETENTION": Variable("when the scheduler runs retention"),
    "BACKCHECK_SCHEDULE_CONSENT_EXPIRY": Variable("when the scheduler ends expired consents"),
    "BACKCHECK_SCHEDULE_CHECKPOINT": Variable("when the scheduler signs a checkpoint"),
    "BACKCHECK_SCHEDULE_LEASE": Variable("how long a claimed scheduled run is held"),
    "BACKCHECK_SCHEDULER_ID": Variable("who a scheduler is in the runs it records"),
    "BACKCHECK_PORTAL_SESSION_IDLE": Variable("how long a portal session may go unused"),
    "BACKCHECK_PORTAL_SESSION_LIMIT": Variable("how long a portal session may last at most"),
}


class Origin(StrEnum):
    """Where an effective value came from."""

    DEFAULT = "default"
    FILE = "file"
    SECRETS = "secrets"
    ENVIRONMENT = "environment"


def _key(variable: str) -> str:
    return variable.removeprefix(PREFIX).lower()


@functools.cache
def _raw() -> type[BaseSettings]:
    """The model pydantic-settings reads into: one optional text per setting, named by its
    key. Made, and pydantic-settings imported (80 ms), only where a file or secrets are set."""
    from pydantic import create_model
    from pydantic_settings import BaseSettings

    model: type[BaseSettings] = create_model(  # type: ignore[call-overload]
        "_Raw", __base__=BaseSettings, **{_key(v): (str | None, None) for v in VARIABLES}
    )
    return model


@dataclass(frozen=True)
class Sources:
    """The settings' texts by variable, and where each came from."""

    values: Mapping[str, str]
    origins: Mapping[str, Origin]
    config_file: Path | None = None
    secrets_dir: Path | None = None

    def get(self, variable: str) -> str | None:
        if variable not in VARIABLES:
            raise KeyError(f"{variable} is not in infra/config/sources.py's VARIABLES")
        return self.values.get(variable)

    def origin(self, variable: str) -> Origin:
        return self.origins.get(variable, Origin.DEFAULT)

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Sources:
        """The three places, merged: the environment over the secrets over the file."""
        environ = os.environ if environ is None else environ
        config_file = _location(environ, CONFIG_FILE, "a TOML file", file=True)
        secrets_dir = _location(environ, SECRETS_DIR, "a directory", file=False)
        values: dict[str, str] = {}
        origins: dict[str, Origin] = {}
        places: list[tuple[Origin, dict[str, str]]] = []
        if config_file is not None:
            places.append((Origin.FILE, _from_file(config_file)))
        if secrets_dir is not None:
            places.append((Origin.SECRETS, _from_secrets(secrets_dir)))
        places.append((Origin.ENVIRONMENT, _from_environment(environ)))
        for origin, found in places:
            for variable, text in found.items():
                values[variable] = text
                origins[variable] = origin
        return cls(values, origins, config_file, secrets_dir)


def _location(environ: Mapping[str, str], variable: str, what: str, *, file: bool) -> Path | None:
    text = environ.get(variable, "").strip()
    if not text:
        return None
    path = Path(text).expanduser()
    exists = path.is_file() if file else path.is_dir()
    if not exists:
        raise ConfigError(f"{variable}: {text[:300]!r} is not {what} that exists")
    return path


def _checked(variable: str, value: object, where: str) -> str:
    """A value as text, refused when it is not a string or a number, or too long."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(
            f"{variable} ({where}): a {type(value).__name__}; give a string or a number"
        )
    text = str(value)
    if len(text) > MAX_VALUE:
        raise ConfigError(f"{variable} ({where}): over {MAX_VALUE} characters")
    return text


def _by_variable(found: Mapping[str, Any], where: str) -> dict[str, str]:
    return {
        f"{PREFIX}{key.upper()}": _checked(f"{PREFIX}{key.upper()}", value, where)
        for key, value in found.items()
        if value is not None
    }


def _from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    found = {_key(variable): environ[variable] for variable in VARIABLES if variable in environ}
    # An empty variable is unset, as it always was here (BACKCHECK_X= in a shell or compose)
    return {v: t for v, t in _by_variable(found, "environment").items() if t.strip()}


def _from_secrets(directory: Path) -> dict[str, str]:
    from pydantic_settings import SecretsSettingsSource

    try:
        found = SecretsSettingsSource(
            _raw(), secrets_dir=directory, env_prefix=PREFIX, case_sensitive=False
        )()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{SECRETS_DIR}: cannot read {directory}: {e}") from None
    return _by_variable(found, f"secret in {directory}")


def _from_file(path: Path) -> dict[str, str]:
    from pydantic_settings import TomlConfigSettingsSource

    where = f"{CONFIG_FILE} {path}"
    try:
        if path.stat().st_size > MAX_CONFIG_FILE:
            raise ConfigError(f"{where}: over {MAX_CONFIG_FILE} bytes")
        found = TomlConfigSettingsSource(_raw(), toml_file=path)()
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: cannot read it: {e}") from None
    known = {_key(v) for v in VARIABLES}
    unknown = sorted(set(found) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting {unknown[0][:100]!r}; the keys are the variables' names "
            "without BACKCHECK_, in lower case (`backcheck config show` lists them)"
        )
    return _by_variable(found, where)
