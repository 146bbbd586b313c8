"""A log-scale histogram of run durations, so that p95 can be kept per client and day.

Exact percentiles need every duration; reports over 200,000 runs must answer in milliseconds.
Bucket 0 holds [0, 1 s); bucket i ≥ 1 holds [1.15^(i-1), 1.15^i) s; the last bucket holds
everything longer (1.15^118 s is about five months). A percentile is read as the geometric middle
of its bucket, so it is within 7.5 % of the true value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

GROWTH = 1.15
BUCKETS = 120
_LOG_GROWTH = math.log(GROWTH)


def empty() -> list[int]:
    return [0] * BUCKETS


def bucket_of(seconds: float) -> int:
    if seconds < 1.0:
        return 0
    return min(BUCKETS - 1, 1 + int(math.log(seconds) / _LOG_GROWTH))


def bounds(bucket: int) -> tuple[float, float]:
    if bucket == 0:
        return 0.0, 1.0
    return GROWTH ** (bucket - 1), GROWTH**bucket


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q ≤ 1) of the durations counted, or None when there are none."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = math.ceil(q * total)
    seen = 0
    for bucket, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            low, high = bounds(bucket)
            return round(math.sqrt(low * high) if low > 0 else high / 2, 3)
    raise AssertionError("unreachable: rank is at most the total")


def merged(histograms: Sequence[Sequence[int]]) -> list[int]:
    return [sum(column) for column in zip(*histograms, strict=True)] if histograms else empty()
