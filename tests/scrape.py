"""Reading a process's health endpoints and Prometheus metrics, as a monitoring system does."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """(status, body) of a GET; (0, why) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def ready(base: str) -> tuple[int, dict[str, Any]]:
    status, body = get(f"{base}/readyz")
    return status, (json.loads(body) if status in (200, 503) else {"error": body})


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition: (name, sorted labels) -> value."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def metric(
    base: str,
    name: str,
    combine: Callable[[Iterable[float]], float] = sum,
    **labels: str,
) -> float:
    """`name`'s samples whose labels include `labels`, combined (summed; 0 when none)."""
    status, body = get(f"{base}/metrics")
    if status != 200:
        return 0.0
    wanted = set(labels.items())
    values = [
        value
        for (found, have), value in samples(body).items()
        if found == name and wanted <= set(have)
    ]
    return combine(values) if values else 0.0
