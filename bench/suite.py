"""The benchmark suite's frame: a figure, how it is run N times, printed, written as JSON and
as bench/RESULTS.md with its scaling chart. The figures themselves are bench/figures.py's.

Every figure is the median of its runs with min and max; where it has a baseline (the raw
`eventsourcing` library, the raw kafka-python producer, the bare interpreter) the baseline is
measured in the same run, beside it, and the ratio printed is ours to the baseline's medians.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

Check = Callable[[float], bool]  # is the figure's median within its target?


@dataclass
class Figure:
    """One measured quantity: `values` of ours, one per run, and its baseline's beside it."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    baseline_name: str = ""
    target: str = ""
    store: int | None = None  # events in the store it was measured on, if it depends on one
    met: bool | None = None
    note: str = ""  # what else it was measured on (e.g. how many candidates)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        base = statistics.median(self.baseline)
        return self.median / base if base else None

    def judge(self, within: Check | None) -> Figure:
        self.met = None if within is None else within(self.median)
        return self

    def line(self) -> str:
        v = self.values
        where = f" [{self.store:,} events]" if self.store is not None else ""
        where += f" ({self.note})" if self.note else ""
        text = (
            f"{self.name}{where}: {_num(self.median)} {self.unit} "
            f"(min {_num(min(v))}, max {_num(max(v))}, {len(v)} run{'s' * (len(v) > 1)})"
        )
        if self.baseline:
            text += (
                f"; {self.baseline_name} {_num(statistics.median(self.baseline))} {self.unit}"
                f", ratio {self.ratio:.2f}"
            )
        if self.target:
            verdict = {True: "met", False: "NOT met", None: "not judged"}[self.met]
            text += f"; target {self.target}: {verdict}"
        return text

    def as_dict(self) -> dict[str, object]:
        found = asdict(self)
        found |= {"median": self.median, "min": min(self.values), "max": max(self.values)}
        found["ratio"] = self.ratio
        return found


def _num(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def repeat(
    runs: int, once: Callable[[], tuple[float, float | None]]
) -> tuple[list[float], list[float]]:
    """`once` run `runs` times: each gives (ours, baseline or None), measured side by side."""
    ours: list[float] = []
    base: list[float] = []
    for _ in range(runs):
        value, baseline = once()
        ours.append(value)
        if baseline is not None:
            base.append(baseline)
    return ours, base


def machine() -> str:
    cpus = _cpu_model()
    return f"{platform.node()}: {cpus}, Python {platform.python_version()}, {platform.system()}"


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{len(models)} x {models[0]}" if models else "unknown CPU"


def commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return found.stdout.strip()


def write_json(path: Path, figures: list[Figure], meta: dict[str, object]) -> None:
    path.write_text(json.dumps(meta | {"figures": [f.as_dict() for f in figures]}, indent=2))


def write_results(path: Path, figures: list[Figure], meta: dict[str, object]) -> Path:
    """bench/RESULTS.md: machine, date, the per-store figures side by side, the others, and a
    scaling chart (an SVG beside it, drawn here)."""
    sizes = sorted({f.store for f in figures if f.store is not None})
    by_store = [f for f in figures if f.store is not None]
    names = list(dict.fromkeys(f.name for f in by_store))
    lines = [
        "# Benchmark results",
        "",
        f"Written by `python -m bench` on {meta['date']} at commit {meta['commit']}, on "
        f"{meta['machine']}. Each figure is the median of its runs ({meta['runs']} a figure; "
        f"{meta['whole_store_runs']} for audit verify, audit check and views rebuild), min-max "
        "in brackets; a ratio is ours to its baseline measured in the same run. Stores built "
        "through the use cases (bench/stores.py); a target stated at 1M events is judged on "
        "the 1M store only. Regenerate with `python -m bench` (about an hour with the stores "
        "kept).",
        "",
        "## Per store size",
        "",
        "| figure | " + " | ".join(f"{s:,} events" for s in sizes) + " | baseline ratio | target |",
        "|---|" + "---|" * len(sizes) + "---|---|",
    ]
    for name in names:
        row = {f.store: f for f in by_store if f.name == name}
        cells = [_cell(row[s]) if s in row else "" for s in sizes]
        last = row[sizes[-1]] if sizes and sizes[-1] in row else next(iter(row.values()))
        ratios = ", ".join(f"{row[s].ratio:.2f}" for s in sizes if s in row and row[s].ratio)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratios} | {_target(last)} |")
    lines += [
        "",
        "## Not tied to a store size",
        "",
        "| figure | value | baseline | ratio | target |",
    ]
    lines.append("|---|---|---|---|---|")
    for f in figures:
        if f.store is None:
            base = (
                f"{f.baseline_name} {_num(statistics.median(f.baseline))} {f.unit}"
                if f.baseline
                else ""
            )
            ratio = f"{f.ratio:.2f}" if f.ratio is not None else ""
            name = f"{f.name} ({f.note})" if f.note else f.name
            lines.append(f"| {name} | {_cell(f)} | {base} | {ratio} | {_target(f)} |")
    chart = path.with_name("scaling.svg")
    chart.write_text(scaling_svg(by_store, sizes))
    lines += ["", "## Scaling", "", f"![time against store size]({chart.name})", ""]
    misses = path.with_name("misses.md")
    if misses.is_file():  # written by hand: each missed target's profile and its fix
        lines += [misses.read_text().rstrip(), ""]
    path.write_text("\n".join(lines))
    return chart


def read_json(path: Path) -> tuple[list[Figure], dict[str, object]]:
    """The figures and the description of a run written by `write_json`."""
    found = json.loads(path.read_text())
    known = {f.name for f in fields(Figure)}
    figures = [Figure(**{k: v for k, v in f.items() if k in known}) for f in found.pop("figures")]
    found.setdefault("whole_store_runs", 1)  # runs written before it was told
    return figures, found


def _cell(f: Figure) -> str:
    return f"{_num(f.median)} {f.unit} ({_num(min(f.values))}-{_num(max(f.values))})"


def _target(f: Figure) -> str:
    if not f.target:
        return ""
    return f"{f.target}: " + {True: "met", False: "**NOT met**", None: "not judged"}[f.met]


COLOURS = ("#1f5fa8", "#c0392b", "#27864a", "#8e44ad", "#b9770e", "#5d6d7e", "#117a65")


def scaling_svg(figures: list[Figure], sizes: list[int]) -> str:
    """Each timed figure (ms or s) against the store size, both axes logarithmic, each line
    relative to its value at the smallest store (1 = flat: the cost does not grow)."""
    w, h, left, right, top, bottom = 720, 400, 60, 230, 20, 50
    timed = [n for n in dict.fromkeys(f.name for f in figures if f.unit in ("ms", "s", "MB"))]
    series: dict[str, list[tuple[int, float]]] = {}
    for name in timed:
        points = sorted((f.store, f.median) for f in figures if f.name == name and f.store)
        if len(points) >= 2 and points[0][1] > 0:
            series[name] = [(s, v / points[0][1]) for s, v in points]
    ys = [v for pts in series.values() for _, v in pts] or [1.0]
    lo, hi = min(0.5, min(ys)), max(2.0, max(ys) * 1.2)
    xs = sizes or [1, 10]
    x0, x1 = (
        math.log10(min(xs)),
        math.log10(max(xs)) if max(xs) > min(xs) else math.log10(min(xs)) + 1,
    )

    def px(size: float) -> float:
        return left + (math.log10(size) - x0) / (x1 - x0) * (w - left - right)

    def py(ratio: float) -> float:
        return top + (
            1 - (math.log10(ratio) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        ) * (h - top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<line x1="{left}" y1="{py(1):.1f}" x2="{w - right}" y2="{py(1):.1f}" stroke="#999" '
        'stroke-dasharray="4 3"/>',
        f'<text x="{left - 6}" y="{py(1) + 4:.1f}" text-anchor="end">1x</text>',
        f'<text x="{left - 6}" y="{py(hi) + 4:.1f}" text-anchor="end">{hi:.1f}x</text>',
        f'<text x="{left - 6}" y="{py(lo) + 4:.1f}" text-anchor="end">{lo:.1f}x</text>',
        f'<text x="{(left + w - right) / 2}" y="{h - 10}" text-anchor="middle">events in the '
        "store (log scale); each line relative to its smallest store</text>",
    ]
    if len(xs) >= 2:  # what a cost proportional to the store would draw
        grow = min(hi, xs[-1] / xs[0])
        end = xs[0] * grow
        out.append(
            f'<line x1="{px(xs[0]):.1f}" y1="{py(1):.1f}" x2="{px(end):.1f}" y2="{py(grow):.1f}" '
            'stroke="#bbb" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{px(end) - 4:.1f}" y="{py(grow) - 6:.1f}" text-anchor="end" fill="#888">'
            "proportional to the store</text>"
        )
    for size in xs:
        out.append(
            f'<text x="{px(size):.1f}" y="{h - bottom + 16}" text-anchor="middle">{size:,}</text>'
        )
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for s, v in pts:
            out.append(f'<circle cx="{px(s):.1f}" cy="{py(v):.1f}" r="3" fill="{colour}"/>')
        y = top + 14 * i + 8
        out.append(
            f'<rect x="{w - right + 10}" y="{y - 8}" width="10" height="10" fill="{colour}"/>'
        )
        out.append(f'<text x="{w - right + 24}" y="{y + 1}">{_escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def meta(runs: int, whole_store_runs: int, quick: bool) -> dict[str, object]:
    return {
        "whole_store_runs": whole_store_runs,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "machine": machine(),
        "runs": runs,
        "quick": quick,
    }
