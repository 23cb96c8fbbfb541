"""`backcheck bench`: the benchmark suite of the checkout (bench/run.py), run as
`python -m bench` with the same arguments."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from infra.cli.common import app

CHECKOUT = Path(__file__).resolve().parents[2]


@app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Run the benchmark suite (python -m bench): every figure of the performance targets, the
    median of N runs with min, max and the ratio to its baseline measured in the same run.
    Its options: --quick (small stores, under two minutes), --sizes N..., --runs N, --json
    FILE, --results FILE, --postgres URL, --seed N (`python -m bench --help` says more). A full
    run writes bench/RESULTS.md."""
    if not (CHECKOUT / "bench" / "run.py").is_file():
        typer.echo(
            "Configuration error (config): the benchmark suite is part of a checkout of "
            f"backcheck (bench/), and {CHECKOUT} has none; run it from a clone",
            err=True,
        )
        raise typer.Exit(78)
    os.chdir(CHECKOUT)
    os.execv(sys.executable, [sys.executable, "-m", "bench", *ctx.args])
