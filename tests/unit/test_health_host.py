"""A process's health port (/healthz, /readyz, /metrics) listens on this machine alone unless
BACKCHECK_HEALTH_HOST names another address: it tells whoever reaches it what the process
reads and how far behind it is."""

from __future__ import annotations

import socket

import pytest

from infra.config import ConfigError, Settings
from infra.ops.health import serve_health


def outward_address() -> str:
    """This machine's address on the interface a packet out would take (none is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only routed, never reached
        return str(probe.getsockname()[0])


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_a_health_port_listens_on_the_loopback_interface_alone_by_default() -> None:
    settings = Settings.load({})
    assert settings.health_host == "127.0.0.1"
    served = serve_health(0, {}, settings.health_host)
    assert served is not None
    try:
        assert served.server.server_address[0] == "127.0.0.1"
        assert answers("127.0.0.1", served.port)
        outward = outward_address()
        assert outward != "127.0.0.1"
        assert not answers(outward, served.port)
    finally:
        served.close()


def test_the_health_host_setting_opens_it_to_every_interface() -> None:
    settings = Settings.load({"BACKCHECK_HEALTH_HOST": "0.0.0.0"})
    served = serve_health(0, {}, settings.health_host)
    assert served is not None
    try:
        assert answers(outward_address(), served.port)
    finally:
        served.close()


def test_a_health_host_that_is_no_address_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.load({"BACKCHECK_HEALTH_HOST": "127.0.0.1:9100"})
    assert str(refused.value) == (
        "BACKCHECK_HEALTH_HOST: '127.0.0.1:9100' is not an address or a host name; e.g. "
        "127.0.0.1 (default 127.0.0.1: this machine alone) or 0.0.0.0 (every interface)"
    )
