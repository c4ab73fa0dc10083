"""Per provider × model service quality for a period, from the hourly rollup: requests, tokens by category,
latency and time-to-first-token percentiles (merged histograms), error rate by type, truncation, missing
finish reasons on streams, model substitution, and cost per 1k requests (from the drift rows). Pure.

Models are the served (response) model, normalized as statements name them; a request is substituted when
its normalized requested model differs from the served one (a dated snapshot of the same model is not a
substitution)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ledger.pricing.model_names import normalize_model_name
from ledger.queries.sources import DriftLine, ModelUsage
from ledger.sink import latency

ERROR_TYPES = ("rate_limit", "timeout", "server_error", "invalid_request", "auth", "content_filter", "other")
THOUSAND = Decimal(1000)


@dataclass(frozen=True, slots=True)
class ModelQuality:
    provider: str
    model: str
    requests: int
    uncached_input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    latency_ms: tuple[int | None, int | None, int | None]
    """p50, p95, p99 (upper bound of the histogram bucket; None without data)."""
    ttft_ms: tuple[int | None, int | None, int | None]
    error_rates: dict[str, Decimal]
    """Share of requests per error type, for the types that occurred."""
    length_stop_rate: Decimal | None
    silent_truncation_rate: Decimal | None
    stream_missing_finish_rate: Decimal | None
    substitution_rate: Decimal | None
    substituted_from: tuple[str, ...]
    cost_per_1k_requests: Decimal | None
    currency: str

    @property
    def error_rate(self) -> Decimal | None:
        return sum(self.error_rates.values(), Decimal(0)) if self.requests else None


def model_quality(usage: Iterable[ModelUsage], drift: Sequence[DriftLine]) -> tuple[ModelQuality, ...]:
    """One row per provider × served model, sorted by provider then requests (busiest first)."""
    sums: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    latency_parts: dict[tuple[str, str], list[Sequence[int]]] = defaultdict(list)
    ttft_parts: dict[tuple[str, str], list[Sequence[int]]] = defaultdict(list)
    substituted_from: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in usage:
        served = normalize_model_name(row.provider, row.response_model)
        requested = normalize_model_name(row.provider, row.request_model)
        key = (row.provider, served)
        for name, value in row.sums.items():
            sums[key][name] += value
        if requested != served:
            sums[key]["substituted"] += row.sums["requests"]
            substituted_from[key].add(requested)
        latency_parts[key].append(row.latency_histogram)
        ttft_parts[key].append(row.ttft_histogram)
    costs = _expected_costs(drift)
    rows = [
        _quality(
            key,
            totals,
            latency.merge(latency_parts[key]),
            latency.merge(ttft_parts[key]),
            substituted_from[key],
            costs.get(key),
        )
        for key, totals in sums.items()
    ]
    return tuple(sorted(rows, key=lambda q: (q.provider, -q.requests, q.model)))


def _quality(
    key: tuple[str, str],
    totals: dict[str, int],
    latency_histogram: list[int],
    ttft_histogram: list[int],
    substituted_from: set[str],
    cost: tuple[Decimal, str] | None,
) -> ModelQuality:
    requests = totals["requests"]
    cache_write = totals["cache_creation_input_tokens"]
    return ModelQuality(
        provider=key[0],
        model=key[1],
        requests=requests,
        uncached_input_tokens=totals["input_tokens"] - totals["cache_read_input_tokens"] - cache_write,
        cache_read_tokens=totals["cache_read_input_tokens"],
        cache_write_tokens=cache_write,
        output_tokens=totals["output_tokens"],
        reasoning_tokens=totals["reasoning_tokens"],
        latency_ms=_percentiles(latency_histogram),
        ttft_ms=_percentiles(ttft_histogram),
        error_rates={
            kind: Decimal(totals[f"error_{kind}"]) / requests for kind in ERROR_TYPES if totals[f"error_{kind}"]
        },
        length_stop_rate=_share(totals["finish_length"], requests),
        silent_truncation_rate=_share(totals["truncated_below_max"], requests),
        stream_missing_finish_rate=_share(totals["streamed_missing_finish"], totals["streamed"]),
        substitution_rate=_share(totals["substituted"], requests),
        substituted_from=tuple(sorted(substituted_from)),
        cost_per_1k_requests=(cost[0] / requests * THOUSAND).quantize(Decimal("0.0001")) if cost and requests else None,
        currency=cost[1] if cost else "USD",
    )


def _expected_costs(drift: Sequence[DriftLine]) -> dict[tuple[str, str], tuple[Decimal, str]]:
    """Expected cost per provider × model, summed over accounts; a model with any unpriced row has none."""
    costs: dict[tuple[str, str], tuple[Decimal, str]] = {}
    unpriced: set[tuple[str, str]] = set()
    for line in drift:
        key = (line.provider, line.model)
        if line.expected_cost is None:
            unpriced.add(key)
            continue
        known = costs.get(key, (Decimal(0), line.currency))
        costs[key] = (known[0] + line.expected_cost, line.currency)
    return {key: value for key, value in costs.items() if key not in unpriced}


def _percentiles(histogram: Sequence[int]) -> tuple[int | None, int | None, int | None]:
    return (
        latency.percentile(histogram, 0.50),
        latency.percentile(histogram, 0.95),
        latency.percentile(histogram, 0.99),
    )


def _share(part: int, whole: int) -> Decimal | None:
    return Decimal(part) / Decimal(whole) if whole else None
