"""Latency histograms merge exactly and answer percentiles within one bucket."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from ledger.sink import latency

durations = st.lists(st.integers(min_value=0, max_value=900_000), min_size=1, max_size=300)


@given(durations, durations)
def test_merging_histograms_equals_histogramming_everything(left: list[int], right: list[int]) -> None:
    assert latency.merge([latency.histogram_of(left), latency.histogram_of(right)]) == latency.histogram_of(
        left + right
    )


@given(durations)
def test_a_percentile_is_the_bound_of_the_bucket_holding_it(values: list[int]) -> None:
    histogram = latency.histogram_of(values)
    for fraction in (0.5, 0.95, 0.99):
        exact = sorted(values)[max(0, math.ceil(fraction * len(values)) - 1)]  # nearest rank
        estimate = latency.percentile(histogram, fraction)
        assert estimate is not None
        assert latency.bucket_of(exact) == latency.bucket_of(estimate) or exact > latency.BUCKET_BOUNDS_MS[-1]


def test_an_empty_histogram_has_no_percentile() -> None:
    assert latency.percentile(latency.empty_histogram(), 0.5) is None
