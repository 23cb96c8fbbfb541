"""The Kafka security settings: read and checked once, the same for every client (kafka-python's
and faust's), each misconfiguration one error naming the variable."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from infra.config import ConfigError, KafkaSecurity, Settings
from tests.tls import Authority

P = "BACKCHECK_KAFKA_"


def _security(**given: str) -> KafkaSecurity:
    environ = {f"{P}{name.upper()}": value for name, value in given.items()}
    return Settings.load(environ).kafka_security


def test_plaintext_by_default_and_nothing_else_is_sent() -> None:
    security = _security()
    assert security.client_settings() == {"security_protocol": "PLAINTEXT"}
    assert security.ssl_context() is None
    assert security.describe() == "PLAINTEXT"


def test_sasl_ssl_reaches_kafka_python_whole(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    client = authority.issue("relay", server=False)
    security = _security(
        security_protocol="sasl_ssl",
        ssl_cafile=str(authority.pem.certificate),
        ssl_certfile=str(client.certificate),
        ssl_keyfile=str(client.key),
        sasl_mechanism="scram-sha-512",
        sasl_username="relay",
        sasl_password="pw",
    )
    assert security.client_settings() == {
        "security_protocol": "SASL_SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": str(authority.pem.certificate),
        "ssl_certfile": str(client.certificate),
        "ssl_keyfile": str(client.key),
        "ssl_password": None,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "relay",
        "sasl_plain_password": "pw",
    }
    assert "pw" not in repr(security)  # a SecretStr, masked in any log of the settings
    context = security.ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_faust_gets_the_same_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import faust

    from infra.kafka import streams, topics

    authority = Authority(tmp_path)
    monkeypatch.setenv(f"{P}SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv(f"{P}SSL_CAFILE", str(authority.pem.certificate))
    monkeypatch.setenv(f"{P}SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv(f"{P}SASL_USERNAME", "worker")
    monkeypatch.setenv(f"{P}SASL_PASSWORD", "pw")
    topics.broker_security.cache_clear()
    try:
        credentials = streams.faust_credentials()
    finally:
        topics.broker_security.cache_clear()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("worker", "pw")
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert credentials.protocol.value == "SASL_SSL"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"security_protocol": "TLS"}, r"SECURITY_PROTOCOL: 'TLS' is not one of PLAINTEXT, SSL"),
        (
            {"sasl_username": "x"},
            r"SASL_USERNAME: set, but BACKCHECK_KAFKA_SECURITY_PROTOCOL is PLAINTEXT",
        ),
        (
            {"security_protocol": "SASL_SSL", "ssl_cafile": "/x", "sasl_password": "p"},
            r"SASL_MECHANISM, BACKCHECK_KAFKA_SASL_USERNAME: required with",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "ssl_cafile": "/x"},
            r"SSL_CAFILE: set, but .* is SASL_PLAINTEXT, which does not use it; .*SSL or SASL_SSL",
        ),
        (
            {"security_protocol": "SSL", "ssl_keyfile": "/k"},
            r"SSL_KEYFILE: set without BACKCHECK_KAFKA_SSL_CERTFILE",
        ),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "GSSAPI",
                "sasl_username": "u",
                "sasl_password": "p",
            },
            r"SASL_MECHANISM: 'GSSAPI' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "u" * 300,
                "sasl_password": "p",
            },
            r"SASL_USERNAME: empty, over 256 characters",
        ),
    ],
)
def test_a_setting_that_cannot_be_used_is_refused_naming_it(
    given: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _security(**given)


def test_a_file_that_cannot_be_read_is_named_when_a_client_is_made(tmp_path: Path) -> None:
    security = _security(security_protocol="SSL", ssl_cafile=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"BACKCHECK_KAFKA_SSL_CAFILE: cannot read .*missing"):
        security.client_settings()
    with pytest.raises(ConfigError, match=r"BACKCHECK_KAFKA_SSL_CAFILE: cannot read"):
        security.ssl_context()


def test_a_certificate_without_its_key_is_refused_naming_the_certificate(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    client = authority.issue("relay", server=False)
    security = _security(
        security_protocol="SSL",
        ssl_cafile=str(authority.pem.certificate),
        ssl_certfile=str(client.certificate),
    )
    with pytest.raises(ConfigError, match=r"BACKCHECK_KAFKA_SSL_CERTFILE: .* cannot be loaded"):
        security.ssl_context()
