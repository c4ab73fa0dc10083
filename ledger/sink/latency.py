"""Mergeable latency histograms: fixed bucket bounds, so counts from any hours add up element-wise
and percentiles can be read for any period. Pure."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

# Upper bounds (inclusive, milliseconds) of every bucket but the last, which is open-ended.
# Roughly 12% apart from 10 ms to 10 min: a percentile read from them is within one bucket's width.
BUCKET_BOUNDS_MS: tuple[int, ...] = (
    10,
    20,
    30,
    40,
    50,
    60,
    80,
    100,
    125,
    150,
    200,
    250,
    300,
    400,
    500,
    600,
    800,
    1_000,
    1_250,
    1_500,
    2_000,
    2_500,
    3_000,
    4_000,
    5_000,
    6_000,
    8_000,
    10_000,
    12_500,
    15_000,
    20_000,
    25_000,
    30_000,
    40_000,
    50_000,
    60_000,
    80_000,
    100_000,
    125_000,
    150_000,
    200_000,
    300_000,
    600_000,
)
BUCKET_COUNT = len(BUCKET_BOUNDS_MS) + 1


def bucket_of(milliseconds: int) -> int:
    """Index of the bucket that holds `milliseconds`."""
    return bisect_left(BUCKET_BOUNDS_MS, milliseconds)


def empty_histogram() -> list[int]:
    return [0] * BUCKET_COUNT


def histogram_of(values: Iterable[int]) -> list[int]:
    counts = empty_histogram()
    for value in values:
        counts[bucket_of(value)] += 1
    return counts


def merge(histograms: Iterable[Sequence[int]]) -> list[int]:
    total = empty_histogram()
    for histogram in histograms:
        for index, count in enumerate(histogram):
            total[index] += count
    return total


def percentile(histogram: Sequence[int], fraction: float) -> int | None:
    """The upper bound of the bucket holding the `fraction` quantile (None for an empty histogram).
    The open-ended last bucket reports the largest bound."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank and count:
            return BUCKET_BOUNDS_MS[min(index, len(BUCKET_BOUNDS_MS) - 1)]
    return BUCKET_BOUNDS_MS[-1]
