"""A bounded histogram of durations: log-spaced buckets in hours, and percentiles read from it.

Turnaround times are kept as counts per bucket, never as a list of times, so a dashboard row
stays the same size however many checks are concluded. Bucket `i` holds durations in
(EDGES[i-1], EDGES[i]] hours; the edges grow by a factor of 2**(1/4) (about 19 %) from a
quarter of an hour to 16384 hours (nearly two years), with one bucket below and one above. A
percentile is reported as the upper edge of the bucket the rank falls in: never below the
true value, and at most one bucket step (19 %) above it, for durations inside the range.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping

STEPS_PER_DOUBLING = 4
LOWEST_EXPONENT = -2  # 2**-2 hours: a quarter of an hour
HIGHEST_EXPONENT = 14  # 2**14 hours: about 683 days
EDGES: tuple[float, ...] = tuple(
    2 ** (k / STEPS_PER_DOUBLING)
    for k in range(LOWEST_EXPONENT * STEPS_PER_DOUBLING, HIGHEST_EXPONENT * STEPS_PER_DOUBLING + 1)
)
BUCKETS = len(EDGES) + 1  # the last one holds everything above the highest edge

Histogram = dict[str, int]  # bucket index (as text, a JSON key) → count; no zero counts


def bucket_of(hours: float) -> int:
    """The bucket a duration falls in (a negative one, from clocks out of step, in the first)."""
    return bisect.bisect_left(EDGES, max(hours, 0.0))


def upper_edge(bucket: int) -> float | None:
    """The largest duration a bucket holds (None: the overflow bucket has no bound)."""
    return EDGES[bucket] if bucket < len(EDGES) else None


def add(histogram: Histogram, bucket: int, n: int = 1) -> None:
    """Counts `n` more (or fewer, if negative) durations in `bucket`."""
    key = str(bucket)
    count = histogram.get(key, 0) + n
    if count:
        histogram[key] = count
    else:
        histogram.pop(key, None)


def total(histogram: Mapping[str, int]) -> int:
    return sum(histogram.values())


def percentile(histogram: Mapping[str, int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) by nearest rank: the upper edge of the bucket holding the
    ceil(q·n)-th smallest duration. None for an empty histogram; for a rank in the overflow
    bucket, the highest edge (a lower bound: the duration is longer still)."""
    if not 0 < q <= 1:
        raise ValueError(f"percentile: q must be in (0, 1], not {q}")
    n = total(histogram)
    if n <= 0:
        return None
    rank = math.ceil(q * n)
    seen = 0
    for bucket in sorted(int(k) for k in histogram):
        seen += histogram[str(bucket)]
        if seen >= rank:
            return upper_edge(bucket) or EDGES[-1]
    return EDGES[-1]  # unreachable while counts are positive
