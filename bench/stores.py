"""The suite's stores: built once through the real use cases (bench/dashboard.py's build:
background checks run to the end, then pages of recorded profile reads), kept between runs in a
folder of their own, one per size, and reused while the build's version is the same.

The build is a fixed sequence of commands on the application's own clock (a `FakeClock`), so
two builds of one size hold the same events in the same order; only the ids the use cases
draw (uuid4) differ. A store is marked complete only once its build finished (`bench-store.json`,
bench/dashboard.py's `kept_store`); an interrupted one is removed and built again. The figures
measured on a store add the reads they record to it, so a kept store grows a little with each
run: every figure names the events the store held when it was measured.
"""

from __future__ import annotations

import os
from pathlib import Path

from dashboard import kept_store, open_store

from infra.config import Settings

BUILD_VERSION = 1  # bump when the build or the stored events change: every store is rebuilt
DEFAULT_ROOT = Path(__file__).resolve().parents[1] / ".bench-stores"


def root() -> Path:
    """Where the stores are kept: BACKCHECK_BENCH_STORES, or .bench-stores in the checkout."""
    found = os.environ.get("BACKCHECK_BENCH_STORES")
    return Path(found) if found else DEFAULT_ROOT


def store(events: int, say: bool = True) -> tuple[Settings, dict[str, object]]:
    """A finished store of at least `events` events (built now if need be), and its marker."""
    folder = root() / f"events-{events}-v{BUILD_VERSION}"
    settings, kept = kept_store(folder, events)
    if kept is None:
        if say:
            print(f"  building a store of {events:,} events in {folder} (kept for later runs)")
        app, came = open_store(settings, events, folder, None)
        app.close()
        settings, kept = kept_store(folder, events)
        assert kept is not None, came
    return settings, kept
