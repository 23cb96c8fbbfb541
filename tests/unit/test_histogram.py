"""The turnaround histogram: bounded, and its percentiles never below the true value and at
most one bucket step above it; and the dashboard's bounded counts, and the tiers an event
holds values of."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.classification import PersonalField
from projections import histogram as hist
from projections.tally import DAYS_KEPT, MAX_NAMES, OTHER, bump, keep_recent, tiers_in

STEP = 2 ** (1 / hist.STEPS_PER_DOUBLING)


def histogram_of(hours: list[float]) -> hist.Histogram:
    found: hist.Histogram = {}
    for h in hours:
        hist.add(found, hist.bucket_of(h))
    return found


def nearest_rank(hours: list[float], q: float) -> float:
    return sorted(hours)[math.ceil(q * len(hours)) - 1]


def test_percentiles_of_a_known_set_are_the_upper_edges_of_their_buckets() -> None:
    hours = [float(h) for h in range(1, 101)]  # 1 h .. 100 h
    found = histogram_of(hours)

    assert hist.total(found) == 100
    assert hist.percentile(found, 0.5) == pytest.approx(2 ** (23 / 4))  # 50 h: (45.3, 53.8]
    assert hist.percentile(found, 0.9) == pytest.approx(2 ** (26 / 4))  # 90 h: (76.1, 90.5]
    assert hist.percentile(found, 0.99) == pytest.approx(2 ** (27 / 4))  # 99 h: (90.5, 107.6]


@given(
    st.lists(st.floats(min_value=0.26, max_value=16000.0), min_size=1, max_size=200),
    st.sampled_from([0.5, 0.9, 0.99, 1.0]),
)
def test_a_percentile_is_never_below_the_true_one_nor_a_step_above(
    hours: list[float], q: float
) -> None:
    true = nearest_rank(hours, q)
    reported = hist.percentile(histogram_of(hours), q)
    assert reported is not None
    assert true <= reported <= true * STEP * (1 + 1e-9)


def test_the_histogram_stays_the_same_size_however_many_durations() -> None:
    found = histogram_of([float(h % 5000) for h in range(100_000)])
    assert len(found) <= hist.BUCKETS


def test_counts_taken_back_leave_no_empty_bucket_and_an_empty_histogram_has_no_percentile() -> None:
    found: hist.Histogram = {}
    hist.add(found, 3)
    hist.add(found, 3, -1)
    assert found == {}
    assert hist.percentile(found, 0.5) is None


def test_beyond_the_last_edge_the_percentile_is_that_edge_and_a_bad_q_is_refused() -> None:
    assert hist.percentile(histogram_of([1e9]), 0.5) == hist.EDGES[-1]
    with pytest.raises(ValueError, match="q must be in"):
        hist.percentile({"1": 1}, 0)


def test_names_past_the_bound_are_counted_together_and_only_recent_days_are_kept() -> None:
    counts: dict[str, int] = {}
    for n in range(MAX_NAMES + 20):
        bump(counts, f"principal-{n}", bounded=True)
    assert len(counts) == MAX_NAMES + 1
    assert counts[OTHER] == 20

    days = {f"2026-01-{d:02d}": {"total": 1} for d in range(1, 32)}
    days |= {f"2026-03-{d:02d}": {"total": 1} for d in range(1, 32)}
    days |= {f"2026-04-{d:02d}": {"total": 1} for d in range(1, 31)}
    keep_recent(days)
    # the 90 days up to the newest: 2026-01-31 .. 2026-04-30 (February had none)
    assert min(days) == "2026-01-31"
    assert max(days) == "2026-04-30"
    assert len(days) == 1 + 31 + 30
    assert DAYS_KEPT == 90


def test_the_days_kept_are_the_same_whatever_order_the_events_came_in() -> None:
    """A projection worker applies each partition at its own pace: an event of an old day may
    come after the newest day was seen (and the old days dropped). It is dropped too."""
    first = date(2026, 1, 1)

    def kept(order: list[int]) -> dict[str, Any]:
        days: dict[str, Any] = {}
        for offset in order:
            day = (first + timedelta(days=offset)).isoformat()
            bump(days.setdefault(day, {}), "events")
            keep_recent(days)
        return days

    in_log_order = kept([*range(91), 5, 200])
    late = kept([*range(91), 200, 5])  # day 5's second event on a partition behind the other

    assert in_log_order == late == {(first + timedelta(days=200)).isoformat(): {"events": 1}}


@dataclass(frozen=True)
class Held:
    label: str
    value: PersonalField | None


def test_the_tiers_of_values_are_found_however_deep_and_plain_state_holds_none() -> None:
    """Every event of the log is searched (`audit check`, the dashboard): plain values are
    passed over quickly, personal ones found inside dicts, tuples, lists and dataclasses."""
    name = PersonalField("name", "user.name", "Li Lei")
    plain = {
        "originator_id": uuid4(),
        "timestamp": datetime(2026, 3, 2, tzinfo=UTC),
        "day": date(2026, 3, 2),
        "returned": ("user.name", "user.health.mental"),
        "count": 3,
        "share": 0.5,
        "note": None,
        "held": Held("nothing", None),
    }
    nested = {
        **plain,
        "claims": [
            {"fields": (Held("exam", PersonalField("drug", "user.health.drug_test", "x")),)}
        ],
        "evaluation": Held("ref", PersonalField("eval", "user.employment.evaluation", "good")),
    }

    assert tiers_in(plain) == set()
    assert tiers_in(name) == {"general"}
    assert tiers_in({**nested, "name": name}) == {"general", "confidential", "secret"}
