"""How backcheck's Kafka clients reach a secured broker: TLS and SASL, from the settings.

BACKCHECK_KAFKA_SECURITY_PROTOCOL  PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
BACKCHECK_KAFKA_SSL_CAFILE        the CA certificates (PEM) the broker's certificate is checked
                                  by (default: the system's); its host name is checked too
BACKCHECK_KAFKA_SSL_CERTFILE      this client's certificate (PEM), when the broker asks for one
                                  (mutual TLS); may hold the private key too
BACKCHECK_KAFKA_SSL_KEYFILE       this client's private key (PEM), if not in the certificate file
BACKCHECK_KAFKA_SSL_KEY_PASSWORD  the key's password, if it has one (a secret)
BACKCHECK_KAFKA_SASL_MECHANISM    PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (required with SASL_*)
BACKCHECK_KAFKA_SASL_USERNAME     the user (required with SASL_*)
BACKCHECK_KAFKA_SASL_PASSWORD     its password (required with SASL_*; a secret)

Every Kafka client backcheck makes — the relay's producer, the topic admin, the intake's and the
workers' faust apps, the CLI's consumers — takes its settings from `KafkaSecurity`, so no
process can reach the broker differently from the others. A setting that its protocol does not
use is refused rather than ignored (a password given for PLAINTEXT would never be sent, and the
operator would not know). The files are checked when a client is made, so a command that never
touches Kafka does not need them.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, SecretStr

from infra.config.parsing import ConfigError
from infra.config.sources import Sources

if TYPE_CHECKING:
    import ssl

MAX_USERNAME = 256
MAX_PASSWORD = 1024

_PROTOCOL = "BACKCHECK_KAFKA_SECURITY_PROTOCOL"
_MECHANISM = "BACKCHECK_KAFKA_SASL_MECHANISM"
_SSL = {
    "BACKCHECK_KAFKA_SSL_CAFILE": "ssl_cafile",
    "BACKCHECK_KAFKA_SSL_CERTFILE": "ssl_certfile",
    "BACKCHECK_KAFKA_SSL_KEYFILE": "ssl_keyfile",
    "BACKCHECK_KAFKA_SSL_KEY_PASSWORD": "ssl_key_password",
}
_SASL = {
    _MECHANISM: "sasl_mechanism",
    "BACKCHECK_KAFKA_SASL_USERNAME": "sasl_username",
    "BACKCHECK_KAFKA_SASL_PASSWORD": "sasl_password",
}


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)

    @property
    def sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class KafkaSecurity(BaseModel):
    """The protocol and its credentials; PLAINTEXT with nothing else by default."""

    model_config = ConfigDict(frozen=True)

    protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    @classmethod
    def read(cls, sources: Sources) -> KafkaSecurity:
        text = (sources.get(_PROTOCOL) or SecurityProtocol.PLAINTEXT).strip().upper()
        if text not in SecurityProtocol.__members__:
            raise ConfigError(
                f"{_PROTOCOL}: {text[:64]!r} is not one of {', '.join(SecurityProtocol)}"
            )
        protocol = SecurityProtocol(text)
        values: dict[str, object] = {"protocol": protocol}
        for variables, used in ((_SSL, protocol.tls), (_SASL, protocol.sasl)):
            for variable, field in variables.items():
                value = sources.get(variable)
                if value is None:
                    continue
                if not used:
                    raise ConfigError(
                        f"{variable}: set, but {_PROTOCOL} is {protocol}, which does not use it; "
                        f"choose a protocol that does ({_uses(variable)}), or unset it"
                    )
                values[field] = _value(variable, field, value)
        if protocol.sasl:
            missing = [v for v, f in _SASL.items() if f not in values]
            if missing:
                raise ConfigError(
                    f"{', '.join(missing)}: required with {_PROTOCOL}={protocol} "
                    "(the mechanism, the user and the password)"
                )
        if "ssl_keyfile" in values and "ssl_certfile" not in values:
            raise ConfigError(
                "BACKCHECK_KAFKA_SSL_KEYFILE: set without BACKCHECK_KAFKA_SSL_CERTFILE; a client "
                "key is only sent with its certificate"
            )
        return cls.model_validate(values)

    def client_settings(self) -> dict[str, Any]:
        """The settings kafka-python's producer, consumer and admin client take."""
        self.check_files()
        settings: dict[str, Any] = {"security_protocol": self.protocol.value}
        if self.protocol.tls:
            settings |= {
                "ssl_check_hostname": True,
                "ssl_cafile": _text(self.ssl_cafile),
                "ssl_certfile": _text(self.ssl_certfile),
                "ssl_keyfile": _text(self.ssl_keyfile),
                "ssl_password": _secret(self.ssl_key_password),
            }
        if self.protocol.sasl:
            settings |= {
                "sasl_mechanism": self.sasl_mechanism and self.sasl_mechanism.value,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": _secret(self.sasl_password),
            }
        return settings

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for clients that take one (faust's): None without TLS."""
        if not self.protocol.tls:
            return None
        import ssl  # 20 ms: only for a process that speaks TLS

        self.check_files()
        context = ssl.create_default_context(cafile=_text(self.ssl_cafile))
        if self.ssl_certfile is not None:
            try:
                context.load_cert_chain(
                    str(self.ssl_certfile),
                    _text(self.ssl_keyfile),
                    _secret(self.ssl_key_password),
                )
            except (ssl.SSLError, OSError) as e:
                raise ConfigError(
                    f"BACKCHECK_KAFKA_SSL_CERTFILE: {self.ssl_certfile} and its key cannot be "
                    f"loaded: {e}"
                ) from None
        return context

    def check_files(self) -> None:
        """Each file named is a file this process can read, or a ConfigError naming it."""
        for variable, field in _SSL.items():
            path = getattr(self, field)
            if not isinstance(path, Path):
                continue
            try:
                with path.open("rb") as f:
                    f.read(1)
            except OSError as e:
                raise ConfigError(f"{variable}: cannot read {path}: {e.strerror or e}") from None

    def describe(self) -> str:
        """One line for logs and `config show`, without secrets."""
        if not self.protocol.sasl:
            return self.protocol.value
        return f"{self.protocol.value}, {self.sasl_mechanism} as {self.sasl_username}"


def _uses(variable: str) -> str:
    return "SSL or SASL_SSL" if variable in _SSL else "SASL_PLAINTEXT or SASL_SSL"


def _value(variable: str, field: str, text: str) -> object:
    if field == "sasl_mechanism":
        mechanism = text.strip().upper()
        if mechanism not in {m.value for m in SaslMechanism}:
            raise ConfigError(f"{variable}: {text[:64]!r} is not one of {', '.join(SaslMechanism)}")
        return SaslMechanism(mechanism)
    if field in ("sasl_password", "ssl_key_password"):
        if len(text) > MAX_PASSWORD:
            raise ConfigError(f"{variable}: over {MAX_PASSWORD} characters")
        return SecretStr(text)
    if field == "sasl_username":
        name = text.strip()
        if not name or len(name) > MAX_USERNAME or any(ord(c) < 32 for c in name):
            raise ConfigError(
                f"{variable}: empty, over {MAX_USERNAME} characters or holds control characters"
            )
        return name
    return Path(text.strip()).expanduser()


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()
