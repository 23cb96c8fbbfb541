"""docker-compose.yml cannot run here (no Docker engine); keep it consistent with the code:
every setting it passes is one the configuration reads and accepts, every command it runs
exists and parses with the flags it is given, and the image it builds runs `backcheck`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

import infra.config
from infra.cli import app

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "backcheck:local"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def backcheck_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose()["services"].items() if s.get("image") == IMAGE}


def test_every_backcheck_setting_in_compose_is_read_and_accepted_by_the_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from infra.config.sources import CONFIG_FILE, SECRETS_DIR, VARIABLES

    for name, service in backcheck_services().items():
        environment = dict(service["environment"])
        assert set(environment) <= set(VARIABLES) | {CONFIG_FILE, SECRETS_DIR}, name
        if SECRETS_DIR in environment:  # the pki volume's, made by the `pki` service
            assert environment[SECRETS_DIR] == "/pki/secrets"
            environment[SECRETS_DIR] = str(tmp_path)
            (tmp_path / "BACKCHECK_KAFKA_SASL_PASSWORD").write_text("made-by-pki")
        for key, value in environment.items():
            monkeypatch.setenv(key, str(value))
        settings = infra.config.Settings.load()
        assert settings.backend == "postgres"
        assert settings.postgres_conninfo()  # the URL parses
        security = settings.kafka_security
        if "secure" in service.get("profiles", []):
            assert settings.kafka_bootstrap == "kafka-secure:9094", name
            assert security.describe() == "SASL_SSL, PLAIN as backcheck"
            assert security.ssl_cafile == Path("/pki/ca.pem")
            assert security.sasl_password is not None
            assert security.sasl_password.get_secret_value() == "made-by-pki"
        else:
            assert settings.kafka_bootstrap == "kafka:9092", name
            assert security.describe() == "PLAINTEXT"
        for key in environment:
            monkeypatch.delenv(key)


def test_the_secure_profile_s_broker_speaks_sasl_ssl_as_its_clients_do() -> None:
    services = compose()["services"]
    broker = services["kafka-secure"]["environment"]
    listener, _, port = broker["KAFKA_ADVERTISED_LISTENERS"].partition("://")[2].partition(":")
    assert f"{listener}:{port}" == "kafka-secure:9094"
    assert "SECURE:SASL_SSL" in broker["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert broker["KAFKA_SASL_ENABLED_MECHANISMS"] == "PLAIN"
    assert "SSL" not in broker["KAFKA_ADVERTISED_LISTENERS"]  # the image's start script
    secure = [n for n, s in backcheck_services().items() if "secure" in s.get("profiles", [])]
    assert sorted(secure) == ["ingest-secure", "relay-secure"]
    pki = services["pki"]["command"][0]
    assert "secrets/BACKCHECK_KAFKA_SASL_PASSWORD" in pki
    for name in secure:
        assert services[name]["depends_on"]["kafka-secure"] == {"condition": "service_healthy"}


def test_every_backcheck_command_in_compose_exists_and_parses_its_flags() -> None:
    cli = get_command(app)
    services = backcheck_services()
    assert {"init", "backcheck", "relay", "worker-1", "worker-2", "ingest", "scheduler"} <= set(
        services
    )
    for name, service in services.items():
        words = list(service["command"])
        command: Any = cli
        while hasattr(command, "commands") and words and not words[0].startswith("-"):
            found = command.commands.get(words[0])
            assert found is not None, f"{name}: `backcheck {' '.join(service['command'])}`"
            command, words = found, words[1:]
        assert not hasattr(command, "commands"), f"{name}: names a group, not a command"
        command.make_context(command.name or name, words)  # raises on an unknown flag or value


def test_two_projection_workers_share_one_consumer_group() -> None:
    workers = [
        s["command"]
        for n, s in backcheck_services().items()
        if n.startswith("worker-") and "profiles" not in s
    ]
    assert len(workers) == 2
    assert workers[0] == workers[1]
    assert workers[0][0] == "worker"


def test_kafka_runs_in_kraft_mode_and_backcheck_creates_the_topics() -> None:
    services = compose()["services"]
    kafka = services["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert not any("zookeeper" in name for name in services)
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for name in ("relay", "worker-1", "worker-2", "ingest"):
        assert services[name]["depends_on"]["kafka"] == {"condition": "service_healthy"}


def test_the_others_start_once_init_has_created_the_keys() -> None:
    for name, service in backcheck_services().items():
        if name != "init":
            assert service["depends_on"]["init"] == {
                "condition": "service_completed_successfully"
            }, name


def test_the_image_runs_backcheck_from_the_project_sources() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["backcheck"]' in dockerfile
    for source in re.findall(r"^COPY (\S+)", dockerfile, flags=re.MULTILINE):
        assert (ROOT / source).exists(), source
    for service in backcheck_services().values():
        assert service["build"] == "."


def test_every_service_has_a_health_check() -> None:
    for name, service in compose()["services"].items():
        check = service.get("healthcheck")
        assert check is not None, f"{name}: no healthcheck"
        assert not check.get("disable"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), (name, check["test"])
        for key in ("interval", "timeout", "retries"):
            assert key in check, (name, key)


def test_each_backcheck_health_check_asks_the_port_its_process_serves_health_on() -> None:
    """The image has no curl: a check runs `backcheck health --url …/readyz` (or a command of
    the CLI), parsed here as the CLI parses it, against the port the service's own command
    serves health on (--health-port, or serve's --port)."""
    cli = get_command(app)
    for name, service in backcheck_services().items():
        test = service["healthcheck"]["test"]
        assert test[:2] == ["CMD", "backcheck"], (name, test)
        command = cli.commands[test[2]]  # type: ignore[attr-defined]
        command.make_context(test[2], list(test[3:]))  # raises on an unknown flag or value
        if test[2] != "health":
            continue
        words = service["command"]
        flag = "--port" if words[0] == "serve" else "--health-port"
        assert flag in words, f"{name}: {words} serves no health"
        port = words[words.index(flag) + 1]
        url = test[test.index("--url") + 1]
        assert url == f"http://127.0.0.1:{port}/readyz", (name, url)


def test_each_service_serving_health_listens_where_prometheus_can_scrape_it() -> None:
    """Health ports listen on 127.0.0.1 unless BACKCHECK_HEALTH_HOST says otherwise;
    Prometheus scrapes <service>:9100 from its own container, so compose says otherwise."""
    for name, service in backcheck_services().items():
        words = [str(w) for w in service.get("command", [])]
        if "--health-port" in words:
            assert service["environment"].get("BACKCHECK_HEALTH_HOST") == "0.0.0.0", name


def test_docker_compose_accepts_the_file_with_every_profile() -> None:
    """`docker-compose config` (Debian's, which needs no Docker engine) parses and checks the
    file against the compose schema, the secure profile's services included."""
    import os
    import shutil
    import subprocess

    binary = shutil.which("docker-compose")
    if binary is None:
        reason = "no docker-compose (Debian's package; .ci/run installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true requires it: {reason}")
        pytest.skip(reason)
    checked = subprocess.run(
        [binary, "--profile", "secure", "config", "--services"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert set(checked.stdout.split()) == set(compose()["services"])
