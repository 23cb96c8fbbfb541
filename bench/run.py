"""The benchmark suite: every figure of issue #19's targets, each the median of N runs with min,
max and the ratio against its baseline measured in the same run.

    python -m bench [--quick] [--sizes 50000 200000 1000000] [--runs 3] [--json FILE]
                    [--results FILE] [--postgres URL] [--seed 1]

The stores are built once through the real code and kept (bench/stores.py: in .bench-stores/
of the checkout, or BACKCHECK_BENCH_STORES). The full run measures stores of 50k, 200k and 1M
events and writes bench/RESULTS.md with bench/scaling.svg; the first full run builds the 1M
store (about 15 minutes on a quiet 2-core machine). `--quick` measures two small stores with
fewer runs and shorter rounds: every figure appears, in under two minutes; `make test` runs it
once (tests/e2e/test_bench_quick.py). Exit 0 whether or not targets are met: the figures and
their verdicts are the output; 2 for bad arguments; 1 if a measurement itself failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from figures import command_figures, help_figure, kafka_figures, signing_figure, store_figures
from merkle_tree import suite_figures as tree_figures
from stores import store
from suite import Figure, meta, read_json, write_json, write_results

FULL_SIZES = [50_000, 200_000, 1_000_000]
QUICK_SIZES = [1_500, 4_000]
RESULTS = Path(__file__).with_name("RESULTS.md")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small stores, one run each")
    parser.add_argument("--sizes", type=int, nargs="+", help="events in each store measured")
    parser.add_argument("--runs", type=int, help="runs of each figure (default 3; quick 1)")
    parser.add_argument(
        "--whole-store-runs",
        type=int,
        help="runs of audit verify, audit check and views rebuild, which read the whole store "
        "(default 1: at 1M events one views rebuild takes many minutes)",
    )
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument(
        "--results",
        type=Path,
        help="write this Markdown table (default on a full run: bench/RESULTS.md)",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: write the --results table (default bench/RESULTS.md) from the "
        "figures a run wrote with --json",
    )
    parser.add_argument("--postgres", help="also measure commands on this PostgreSQL URL")
    parser.add_argument("--seed", type=int, default=1, help="of the subjects and reads picked")
    args = parser.parse_args(argv)
    for name in ("runs", "whole_store_runs"):
        value = getattr(args, name)
        if value is not None and not 1 <= value <= 50:
            parser.error(f"--{name.replace('_', '-')}: between 1 and 50")
    if args.sizes and any(not 500 <= s <= 10_000_000 for s in args.sizes):
        parser.error("--sizes: each between 500 and 10,000,000 events")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.render:
        try:
            figures, described = read_json(args.render)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"--render {args.render}: not the figures of a run ({e})", file=sys.stderr)
            return 2
        results = args.results or RESULTS
        chart = write_results(results, figures, described)
        print(f"wrote {results} and {chart} from {args.render}")
        return 0
    quick = args.quick
    sizes = sorted(set(args.sizes or (QUICK_SIZES if quick else FULL_SIZES)))
    runs = args.runs or (1 if quick else 3)
    results = args.results or (RESULTS if not quick and sizes == FULL_SIZES else None)
    figures: list[Figure] = []

    def show(found: list[Figure]) -> None:
        for f in found:
            print(f"  {f.line()}", flush=True)
        figures.extend(found)

    print(f"backcheck benchmark suite ({'quick' if quick else 'full'}; {runs} run(s) a figure)")
    try:
        for size in sizes:
            settings, kept = store(size)
            print(f"store of {size:,} events ({settings.describe()}):", flush=True)
            reads = 300 if quick else 4000
            show(store_figures(settings, kept, runs, reads, args.seed, args.whole_store_runs or 1))
        print("commands against the raw library:", flush=True)
        show(command_figures(runs, 100 if quick else 1200, args.postgres))
        print("signed commands:", flush=True)
        show([signing_figure(runs, 100 if quick else 1000)])
        print("Kafka:", flush=True)
        show(kafka_figures(runs, 500 if quick else 20_000, 3 if quick else 20, 500))
        print("Merkle tree over the log:", flush=True)
        show(tree_figures(1 if quick else runs, quick))
        print("startup:", flush=True)
        show([help_figure(runs)])
    except KeyboardInterrupt:
        print("interrupted: figures so far are above", file=sys.stderr)
        return 130
    described = meta(runs, args.whole_store_runs or 1, quick)
    if args.json:
        write_json(args.json, figures, described)
        print(f"wrote {args.json}")
    if results:
        chart = write_results(results, figures, described)
        print(f"wrote {results} and {chart}")
    missed = [f.name for f in figures if f.met is False]
    print(f"{len(figures)} figures; targets missed: {', '.join(missed) if missed else 'none'}")
    return 0
