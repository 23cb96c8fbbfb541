"""The fuzz suite at length: fresh random draws, thousands of commands and messages.

    .venv/bin/python bench/fuzz.py [--examples 3000] [--backend sqlite|postgres|both]

Runs tests/integration/test_fuzz_commands.py and test_fuzz_intake.py with FUZZ_RANDOM=1 (new
draws on every run, unlike `make test`) and prints how long each backend took. A failure prints
the command or message that caused it, shrunk by hypothesis.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/integration/test_fuzz_commands.py", "tests/integration/test_fuzz_intake.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=3000, help="draws per test")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    env = {**os.environ, "FUZZ_RANDOM": "1", "FUZZ_EXAMPLES": str(args.examples)}
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    failed = 0
    for backend in backends:
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", backend, *TESTS],
            cwd=ROOT,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - started
        verdict = "no exception, no partial write" if run.returncode == 0 else "FAILED"
        print(f"fuzz {backend:<8}: {args.examples:,} draws per test, {seconds:.0f} s: {verdict}")
        failed |= run.returncode
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
