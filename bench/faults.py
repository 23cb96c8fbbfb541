"""The fault suite at length: thousands of writers killed, and the relay and worker with them.

    .venv/bin/python bench/faults.py [--kills 2000] [--rounds 100] [--backend sqlite|postgres|both]

Runs tests/integration/test_faults.py (writers SIGKILLed `--kills` times) and
tests/e2e/test_pipeline_faults.py (`--rounds` rounds of three writer kills and one relay or
worker kill), and prints how long each took and its verdict: every acknowledged command stored
once, the chain whole, the views equal a rebuild, every event on Kafka, every erasure finished.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=2000, help="writer kills per backend")
    parser.add_argument("--rounds", type=int, default=100, help="pipeline rounds per backend")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    env = {**os.environ, "FAULT_KILLS": str(args.kills), "FAULT_ROUNDS": str(args.rounds)}
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    suites = {
        "writers": ("tests/integration/test_faults.py", f"{args.kills:,} writer kills"),
        "pipeline": (
            "tests/e2e/test_pipeline_faults.py",
            f"{3 * args.rounds:,} writer and {args.rounds:,} relay or worker kills",
        ),
    }
    failed = 0
    for backend in backends:
        for name, (path, what) in suites.items():
            started = time.perf_counter()
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "-k",
                    backend,
                    path,
                ],
                cwd=ROOT,
                env=env,
                check=False,
            )
            seconds = time.perf_counter() - started
            verdict = "nothing lost" if run.returncode == 0 else "FAILED"
            print(f"faults {backend:<8} {name:<8}: {what}, {seconds:.0f} s: {verdict}")
            failed |= run.returncode
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
