"""The benchmark suite's quick run (`backcheck bench --quick`, issue #19): run once by `make
test`, it checks only that every figure appears, each measured, with its baseline where it has
one; the figures themselves are judged in bench/RESULTS.md, not here (timed tests are flaky on
shared machines)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL, require_postgres

BACKCHECK = str(Path(sys.executable).with_name("backcheck"))
PER_STORE = {
    "one subject: events --subject": True,
    "one subject: audit timeline": True,
    "audited profile reads, 8 clients": True,
    "audit verify": True,
    "audit check": True,
    "audit check peak RSS": False,
    "views rebuild": True,
}
ONCE = {
    **{
        f"commands, {kind}, {backend}, {w} writer(s)": True
        for kind in ("register", "claims", "consent")
        for backend in ("SQLite", "PostgreSQL")
        for w in (1, 4)
    },
    "intake, signed commands": True,
    "relay": True,
    "projection lag p99 at 500 events/s": False,
    "backcheck --help": True,
    "append with the Merkle tree, SQLite, 1 writer(s)": True,
    "append with the Merkle tree, SQLite, 4 writer(s)": True,
    "register commands with the Merkle tree, SQLite": True,
    "tree backfill": False,
    "inclusion proof built": False,
    "inclusion proof verified": False,
    "consistency proof built": False,
    "consistency proof verified": False,
}


@pytest.mark.postgres
@pytest.mark.kafka
def test_the_quick_suite_gives_every_figure(tmp_path: Path) -> None:
    require_postgres()  # its PostgreSQL figures: skipped without it, never under CI
    out = tmp_path / "figures.json"
    env = os.environ | {"BACKCHECK_BENCH_STORES": str(tmp_path / "stores")}
    done = subprocess.run(
        [BACKCHECK, "bench", "--quick", "--json", str(out), "--postgres", PG_URL],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    found = json.loads(out.read_text())
    figures = found["figures"]
    sizes = sorted({f["store"] for f in figures if f["store"] is not None})
    assert len(sizes) == 2, sizes
    for size in sizes:
        names = {f["name"]: f for f in figures if f["store"] == size}
        assert set(names) == set(PER_STORE), (size, sorted(names))
        for name, baseline in PER_STORE.items():
            assert all(v > 0 for v in names[name]["values"]), names[name]
            assert bool(names[name]["baseline"]) is baseline, names[name]
    once = {f["name"]: f for f in figures if f["store"] is None}
    assert set(once) == set(ONCE), sorted(once)
    for name, baseline in ONCE.items():
        assert all(v > 0 for v in once[name]["values"]), once[name]
        assert bool(once[name]["baseline"]) is baseline, once[name]
        assert once[name]["ratio"] is None or once[name]["ratio"] > 0
    for f in figures:  # every figure printed as it was measured
        assert f["name"] in done.stdout
    assert found["quick"] is True
