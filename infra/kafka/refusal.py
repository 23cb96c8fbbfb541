"""Telling a broker that refuses us from one that is not there.

To a Kafka client both look the same: it retries until its bootstrap times out. But a broker
that is down comes back, and one that refuses the TLS handshake or the credentials never will,
so the processes wait for the first and stop for the second, with one line saying which
setting to look at (`KafkaRefusedError`, exit 77).

When a bootstrap times out while the broker accepts connections, `refusal` asks it directly:
with TLS configured, it does the TLS handshake with the settings' CA and client certificate
(an unknown CA, a host name the certificate does not name, a client certificate the broker
wants and did not get: each is the handshake's own reason); without TLS, whether the listener
speaks TLS (a PLAINTEXT client there gets nothing back it can read). A broker that turns the
credentials down (SASL) says so in the Kafka protocol, and kafka-python raises it as
`SaslAuthenticationFailedError`, turned into the same error where clients are made.
"""

from __future__ import annotations

import socket
import ssl

from infra.config import KafkaSecurity

PROBE_TIMEOUT = 5.0  # seconds for one TCP connection and TLS handshake


class KafkaRefusedError(RuntimeError):
    """The broker answers, but refuses this client: its TLS or its credentials."""


def refusal(bootstrap: str, security: KafkaSecurity) -> KafkaRefusedError | None:
    """Why the broker at `bootstrap` refuses this client, if it does; None when it cannot be
    told (nothing listening, or the TLS handshake goes through)."""
    for server in bootstrap.split(","):
        host, _, port = server.rpartition(":")
        try:
            connection = socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT)
        except OSError:
            continue
        with connection:
            if security.protocol.tls:
                return _tls_refused(server, host, connection, security)
            if _speaks_tls(host, connection):
                return KafkaRefusedError(
                    f"the Kafka broker at {server} speaks TLS, and "
                    "BACKCHECK_KAFKA_SECURITY_PROTOCOL is PLAINTEXT: set it to SSL (or "
                    "SASL_SSL), with BACKCHECK_KAFKA_SSL_CAFILE its CA"
                )
            return None
    return None


def _tls_refused(
    server: str, host: str, connection: socket.socket, security: KafkaSecurity
) -> KafkaRefusedError | None:
    context = security.ssl_context()
    assert context is not None
    try:
        with context.wrap_socket(connection, server_hostname=host) as secured:
            # TLS 1.3 tells of a refused client certificate only after the handshake: a read
            # brings it (a broker that accepted us waits for a request: the read times out)
            secured.settimeout(0.5)
            secured.recv(1)
    except ssl.SSLError as e:
        reason = e.reason or str(e)
        return KafkaRefusedError(
            f"the Kafka broker at {server} refused the TLS handshake ({reason}): check "
            "BACKCHECK_KAFKA_SSL_CAFILE (the CA that signed the broker), and the client "
            "certificate in BACKCHECK_KAFKA_SSL_CERTFILE if the broker asks for one"
        )
    except OSError:
        return None
    return None


def _speaks_tls(host: str, connection: socket.socket) -> bool:
    """Whether a TLS handshake goes through here, certificate unchecked (only asked which
    protocol the listener speaks)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with context.wrap_socket(connection, server_hostname=host):
            return True
    except ssl.SSLError as e:
        # a listener that wants a client certificate still speaks TLS
        return "CERTIFICATE_REQUIRED" in str(e) or "handshake failure" in str(e).lower()
    except OSError:
        return False
