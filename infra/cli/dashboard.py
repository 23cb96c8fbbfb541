"""The compliance dashboard in a terminal: `dashboard [--json] [--rebuild]`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from infra.cli.common import app, console, fail, open_app
from infra.terminal import cells

if TYPE_CHECKING:
    from services.dashboard import DashboardSummary

_TOP = 10  # principals and policies shown per table (--json has them all)


@app.command("dashboard")
def dashboard(
    as_json: Annotated[bool, typer.Option("--json", help="the summary as one JSON object")] = False,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="build the dashboard's views again from the log")
    ] = False,
) -> None:
    """What the whole store holds, as counts, rates and percentiles (never a personal value):
    the pipeline, checks and their turnaround, consents, erasures and retention due, refused
    reads, the chain's last checkpoint and how far behind the log the views were."""
    from infra.audit.health import chain_health
    from infra.views.runner import ViewRunner

    try:
        application, settings = open_app(existing=True)
        if rebuild:
            runner = application.dashboard_views
            if not isinstance(runner, ViewRunner):
                raise RuntimeError("this application keeps no dashboard views")
            runner.rebuild()
        summary = application.dashboard_summary(chain_health(settings))
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        sys.stdout.write(summary.model_dump_json() + "\n")
        return
    _print(summary)


def _counts(title: str, counts: dict[str, int], top: int | None = None) -> Table:
    table = Table(title, "n", title_justify="left")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    for name, n in ranked[:top] if top else ranked:
        table.add_row(*cells(name, n))
    if top and len(ranked) > top:
        table.add_row(*cells(f"… {len(ranked) - top} more", ""))
    return table


def _print(s: DashboardSummary) -> None:
    lag = s.lag
    console.print(
        f"dashboard at position {lag.head} ({lag.behind} event(s) applied on asking, "
        f"{lag.catch_up_ms:.1f} ms), {s.generated_at:%Y-%m-%d %H:%M} UTC"
    )
    p = s.pipeline
    pipeline = Table("pipeline", "by status", title_justify="left")
    for kind, counts in (
        ("candidates", p.candidates),
        ("investigations", p.investigations),
        ("reports", p.reports),
    ):
        pipeline.add_row(*cells(kind, ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))))
    pipeline.add_row(*cells("awaiting review", p.reports_awaiting_review))
    pipeline.add_row(*cells("legal holds", p.legal_holds))
    console.print(pipeline)

    c = s.checks
    checks = Table("check type", "planned", "confirmed", "discrepancy", "unverifiable")
    for kind in sorted(set(c.planned) | set(c.concluded)):
        done = c.concluded.get(kind, {})
        checks.add_row(
            *cells(
                kind,
                c.planned.get(kind, 0),
                done.get("confirmed", 0),
                done.get("discrepancy", 0),
                done.get("unverifiable", 0),
            )
        )
    console.print(checks)
    console.print(
        f"discrepancy rate {_pct(c.discrepancy_rate)}, dispute rate {_pct(c.dispute_rate)} "
        f"(disputes: {_pairs(c.disputes)}; on reports: {_pairs(c.report_disputes)})"
    )
    methods = Table("finding method", "by outcome")
    for method, by in sorted(c.findings.items()):
        methods.add_row(*cells(method, _pairs(by)))
    console.print(methods)

    turnaround = Table("turnaround (hours)", "n", "p50", "p90", "p99")
    for t in s.turnaround:
        turnaround.add_row(
            *cells(t.check_type, t.count, *map(_hours, (t.p50_hours, t.p90_hours, t.p99_hours)))
        )
    console.print(turnaround)

    e = s.erasures
    console.print(
        f"consents: {_pairs(s.consents.by_stage)}; {s.consents.withdrawals} withdrawn, "
        f"{s.consents.expiries} expired"
    )
    console.print(
        f"erasures: {e.requested} requested, {e.completed} done, {e.pending} pending; "
        f"tiers shredded: {_pairs(e.tiers_shredded)}; categories shredded: "
        f"{_pairs(e.categories_shredded)}; retention due now: "
        f"{_pairs(e.retention_due)}, within 30 days: {_pairs(e.retention_due_30_days)}"
    )

    r = s.refusals
    console.print(f"refused reads: {r.total} (reads by outcome: {_pairs(s.access)})")
    if r.total:
        console.print(_counts("refused: principal", r.by_principal, _TOP))
        console.print(_counts("refused: deciding policy", r.by_policy, _TOP))
        days = Table("day", "refused", "principals", "policies")
        for day in r.days[-14:]:
            days.add_row(*cells(day.day, day.total, len(day.by_principal), len(day.by_policy)))
        console.print(days)

    ch = s.chain
    size = f" ({ch.last_checkpoint_size} records)" if ch.last_checkpoint_size is not None else ""
    age = f"{(ch.last_checkpoint_age_seconds or 0) / 3600:.1f} h ago"
    if ch.last_checkpoint_position is not None:
        console.print(
            f"chain: last checkpoint at position {ch.last_checkpoint_position}{size}, {age}, "
            f"{ch.events_since_checkpoint} event(s) since"
        )
    elif ch.last_checkpoint_size is not None:  # a note the stored tree does not reach
        console.print(
            f"chain: last checkpoint of {ch.last_checkpoint_size} records, {age}; the stored "
            "tree does not hold that many (`backcheck audit verify`)"
        )
    else:
        console.print("chain: no checkpoint kept yet (`backcheck audit checkpoint`)")
    console.print("last verification: not recorded")


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "none"


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def _hours(hours: float | None) -> str:
    return "" if hours is None else f"≤ {hours:.2f}"
