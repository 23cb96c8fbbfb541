"""A secured broker: the relay (kafka-python) and a projection worker (faust) reach Kafka over
mutual TLS with the settings alone, and a client the broker refuses — no TLS, a CA that did not
sign the broker, no client certificate, credentials a SASL broker does not know — stops with
one line and a non-zero exit, never a traceback loop.

TLS runs through `tests/tls.py`'s front (the test broker has no TLS listener of its own); SASL
against Tansu's own authentication (`--authentication`), which knows no user here, so what is
tested there is the refusal.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from infra.views.kept import KEPT
from infra.views.runner import ViewRunner
from tests.kafka import (
    BACKCHECK,
    Broker,
    Processes,
    relay_command,
    require_kafka,
    topic_name,
    wait_for,
    worker_command,
)
from tests.tls import Authority, TlsFront

pytestmark = pytest.mark.kafka
PARTITIONS = 2
REFUSED_WITHIN = 90  # seconds: the client's own bootstrap timeout, then one line


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    (tmp_path / "pki").mkdir()
    return Authority(tmp_path / "pki")


@pytest.fixture
def tls_broker(tmp_path: Path, authority: Authority) -> Iterator[tuple[Broker, TlsFront]]:
    """Tansu behind a TLS front asking for a client certificate from the test CA."""
    broker = Broker(require_kafka(), tmp_path)
    front = TlsFront(
        authority.issue("broker", server=True),
        ("127.0.0.1", broker.port),
        client_ca=authority.pem.certificate,
    )
    broker.advertised = front.port
    broker.start()
    yield broker, front
    front.close()
    broker.stop()


@pytest.fixture
def store(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)


def _env(settings: Settings, **security: str) -> dict[str, str]:
    plain = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    return plain | {
        "BACKCHECK_DATABASE_URL": str(settings.database_url),
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
        **{f"BACKCHECK_KAFKA_{name.upper()}": value for name, value in security.items()},
    }


def _mutual(authority: Authority, client: str = "relay") -> dict[str, str]:
    pem = authority.issue(client, server=False)
    return {
        "security_protocol": "SSL",
        "ssl_cafile": str(authority.pem.certificate),
        "ssl_certfile": str(pem.certificate),
        "ssl_keyfile": str(pem.key),
    }


def _in_process_views(settings: Settings) -> list[object]:
    app = build_app(settings)
    try:
        runners = [m for m in app.kept_views if isinstance(m, ViewRunner)]
        for runner in runners:
            runner.catch_up()
        return [runner.store.dump() for runner in runners]
    finally:
        app.close()


def test_relay_and_worker_reach_the_broker_over_mutual_tls_from_the_settings_alone(
    tls_broker: tuple[Broker, TlsFront], authority: Authority, store: Settings, tmp_path: Path
) -> None:
    from infra.kafka.worker import worker_store

    _, front = tls_broker
    bootstrap = f"127.0.0.1:{front.port}"
    topic, group = topic_name("backcheck.events"), topic_name("views")
    env = _env(store, **_mutual(authority))
    subprocess.run([BACKCHECK, "demo"], env=env, check=True, capture_output=True, timeout=300)
    processes = Processes(env, tmp_path)
    try:
        processes.start(worker_command(bootstrap, topic, group, PARTITIONS), name="worker")
        processes.start(relay_command(bootstrap, topic, PARTITIONS), name="relay")
        app = build_app(store)
        try:
            streams = [worker_store(kept, app, store) for kept in KEPT]
            expected = _in_process_views(store)
            wait_for(
                lambda: [s.dump() for s in streams] == expected,
                180,
                "the worker's views, fed over TLS, to equal the in-process views",
                processes,
            )
        finally:
            app.close()
    finally:
        outputs = processes.stop()
    assert all("Traceback" not in output for output in outputs)
    assert front.refusals == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("plaintext", "speaks TLS, and BACKCHECK_KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
        ("unknown-ca", "refused the TLS handshake (CERTIFICATE_VERIFY_FAILED)"),
        ("no-client-certificate", "refused the TLS handshake (TLSV13_ALERT_CERTIFICATE_REQUIRED)"),
    ],
)
def test_a_client_the_tls_broker_refuses_stops_in_one_line_with_exit_77(
    tls_broker: tuple[Broker, TlsFront],
    authority: Authority,
    store: Settings,
    tmp_path: Path,
    case: str,
    expected: str,
) -> None:
    _, front = tls_broker
    if case == "plaintext":
        security: dict[str, str] = {}
    elif case == "unknown-ca":
        (tmp_path / "other").mkdir()
        stranger = Authority(tmp_path / "other", "another CA")
        security = _mutual(authority) | {"ssl_cafile": str(stranger.pem.certificate)}
    else:
        security = {"security_protocol": "SSL", "ssl_cafile": str(authority.pem.certificate)}
    relay = relay_command(f"127.0.0.1:{front.port}", topic_name(), PARTITIONS)
    done = subprocess.run(
        relay, env=_env(store, **security), capture_output=True, text=True, timeout=REFUSED_WITHIN
    )
    assert done.returncode == 77, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Kafka refused: the Kafka broker at 127.0.0.1:{front.port} "), last
    assert expected in last
    assert "Traceback" not in done.stderr
    assert front.refusals, "the TLS front refused the handshake"


def test_a_sasl_broker_that_refuses_the_login_is_waited_for_with_one_line_naming_the_login(
    tmp_path: Path, store: Settings
) -> None:
    """kafka-python does not raise Tansu's SCRAM refusal as an authentication failure (its
    answer lacks the field the client expects), so the relay sees a broker that does not
    answer: it waits, saying once which login it tried, and stops cleanly when told."""
    import signal
    import time

    broker = Broker(require_kafka(), tmp_path)
    broker.extra = ["--authentication"]
    broker.start()
    sasl = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_username": "relay",
        "sasl_password": "not-the-password",
    }
    log = tmp_path / "relay.err"
    with log.open("w") as err:
        relay = subprocess.Popen(
            relay_command(broker.bootstrap, topic_name(), PARTITIONS),
            env=_env(store, **sasl),
            stderr=err,
            text=True,
        )
    try:
        deadline = time.monotonic() + REFUSED_WITHIN
        while "waiting for the broker" not in log.read_text() and time.monotonic() < deadline:
            assert relay.poll() is None, log.read_text()
            time.sleep(0.5)
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=60)
    finally:
        broker.stop()
    stderr = log.read_text()
    assert relay.returncode == 0, stderr
    # off a terminal each line is a JSON log record (infra/ops/logs.py)
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    waiting = [
        r["message"]
        for r in records
        if r["logger"] == "backcheck.relay" and "waiting for the broker" in r["message"]
    ]
    assert waiting == [
        f"waiting for the broker: no Kafka broker answered at {broker.bootstrap} over "
        "SASL_PLAINTEXT, SCRAM-SHA-256 as relay: a broker that refuses the credentials can look "
        "the same; check them"
    ], stderr
    assert "Traceback" not in stderr
