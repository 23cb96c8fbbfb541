"""Policy decision latency: p50/p99 of one decision per category read.

    .venv/bin/python bench/policy_decision.py [--decisions 20000]

Prints, in one run over the same request mix: a raw `cedarpy.is_authorized` call on the
pre-parsed policy set (the baseline), our decision point with its cache off, and with it on.
Target (issue #4): p99 < 200 µs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from uuid import uuid4

import cedarpy
from machine import speed_line

from domain.classification import CATEGORIES, Tier
from infra.access.cedar import CedarDecisionPoint
from services.access import AccessRequest, Role

PURPOSE = "pre-employment screening"


def requests(n: int, rng: random.Random) -> list[AccessRequest]:
    categories = [c for c, d in CATEGORIES.items() if d.tier is not Tier.PROHIBITED]
    out = []
    for _ in range(n):
        category = rng.choice(categories)
        out.append(
            AccessRequest(
                principal="x",
                role=rng.choice(list(Role)),
                purpose=rng.choice([PURPOSE, PURPOSE, PURPOSE, "marketing"]),
                subject=uuid4(),
                categories=(category,),
                consent_active=rng.random() < 0.9,
                consented_purposes=frozenset({PURPOSE}),
                named_categories=frozenset({category}) if rng.random() < 0.5 else frozenset(),
                handles=rng.random() < 0.5,
                assigned=rng.random() < 0.5,
                planned_categories=frozenset({category}) if rng.random() < 0.5 else frozenset(),
                is_subject=rng.random() < 0.1,
            )
        )
    return out


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


def measure(fn: Callable[[AccessRequest], object], reqs: list[AccessRequest]) -> list[float]:
    for r in reqs[:200]:
        fn(r)  # warm up
    samples = []
    clock = time.perf_counter_ns
    for r in reqs:
        started = clock()
        fn(r)
        samples.append((clock() - started) / 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    args = parser.parse_args()
    reqs = requests(args.decisions, random.Random(4))

    uncached = CedarDecisionPoint(cache_size=0)
    cached = CedarDecisionPoint()
    policies = cedarpy.PolicySet.from_str(uncached.text)
    entities = cedarpy.Entities.from_json_str("[]")

    def raw(r: AccessRequest) -> object:
        context = dict(uncached.context_for(r, r.categories[0]))  # the plain dict form
        return cedarpy.is_authorized(
            {
                "principal": 'Principal::"p"',
                "action": 'Action::"read"',
                "resource": 'Subject::"s"',
                "context": context,
            },
            policies,
            entities,
        )

    rows = [
        ("raw cedarpy.is_authorized (baseline)", measure(raw, reqs)),
        ("decision point, cache off", measure(uncached.decide, reqs)),
        ("decision point, cache on, first pass", measure(cached.decide, reqs)),
        ("decision point, cache on, steady", measure(cached.decide, reqs)),
    ]
    base_p99 = percentiles(rows[0][1])[1]
    print(f"{args.decisions:,} decisions, one category each, mixed roles and consent facts")
    for name, samples in rows:
        p50, p99 = percentiles(samples)
        print(
            f"  {name:<38} p50 {p50:7.1f} µs   p99 {p99:7.1f} µs"
            f"   (p99 / baseline p99 = {p99 / base_p99:.2f})"
        )
    for name, samples in rows[1:]:
        p99 = percentiles(samples)[1]
        print(f"target p99 < 200 µs, {name}: {'met' if p99 < 200 else 'NOT met'} ({p99:.1f} µs)")
    print(f"cache: {cached.cache_info()}")
    print(speed_line())


if __name__ == "__main__":
    main()
