"""Settings of how a process runs beside the store: the topics it makes, the size of one event,
and the address its health, readiness and metrics answer on (read by `Settings.from_sources`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from infra.config.parsing import MAX_EVENT_BYTES, MIN_EVENT_BYTES, ConfigError

HEALTH_HOST = "127.0.0.1"  # this machine alone: a health port tells anyone who can reach it
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")


def process_settings(get: Callable[[str], str | None]) -> dict[str, object]:
    values: dict[str, object] = {}
    if text := get("BACKCHECK_KAFKA_PARTITIONS"):
        if not text.strip().isdigit() or int(text) < 1:
            raise ConfigError(
                f"BACKCHECK_KAFKA_PARTITIONS: {text!r} is not a whole number of at least 1"
            )
        values["kafka_partitions"] = int(text)
    if text := get("BACKCHECK_MAX_EVENT_BYTES"):
        if not text.strip().isdigit() or int(text) < MIN_EVENT_BYTES:
            raise ConfigError(
                f"BACKCHECK_MAX_EVENT_BYTES: {text!r} is not a whole number of bytes of at "
                f"least {MIN_EVENT_BYTES} (default {MAX_EVENT_BYTES})"
            )
        values["max_event_bytes"] = int(text)
    if text := get("BACKCHECK_HEALTH_HOST"):
        values["health_host"] = parse_health_host(text)
    return values


def parse_health_host(text: str) -> str:
    """An IP address (0.0.0.0 or :: for every interface) or a host name."""
    host = text.strip()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if _HOST_NAME.fullmatch(host):
        return host
    raise ConfigError(
        f"BACKCHECK_HEALTH_HOST: {text!r} is not an address or a host name; e.g. 127.0.0.1 "
        f"(default {HEALTH_HOST}: this machine alone) or 0.0.0.0 (every interface)"
    )
