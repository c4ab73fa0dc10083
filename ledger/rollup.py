"""The hourly rollup: how a batch of new events adds to `usage_hourly`. Pure; the SQL upsert lives in
`ledger.ingest`. Every figure is a sum (or min/max) so deltas from any batches merge exactly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ledger import latency
from ledger.context_bands import context_band
from ledger.events import EventRow
from ledger.periods import hour_start

FINISH_COLUMNS = {
    "stop": "finish_stop",
    "end_turn": "finish_stop",
    "stop_sequence": "finish_stop",
    "length": "finish_length",
    "max_tokens": "finish_length",
    "tool_calls": "finish_tool_calls",
    "tool_use": "finish_tool_calls",
    "function_call": "finish_tool_calls",
    "content_filter": "finish_content_filter",
    "refusal": "finish_content_filter",
}
TRUNCATING_FINISHES = frozenset({"length", "max_tokens"})

KEY_COLUMNS = (
    "tenant_id",
    "hour",
    "provider",
    "account",
    "api_key_id",
    "request_model",
    "response_model",
    "app",
    "service_tier",
    "input_band",
)
SUM_COLUMNS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation_1h_input_tokens",
    "reasoning_tokens",
    "web_search_requests",
    "system_prompt_tokens",
    "system_prompt_requests",
    "status_2xx",
    "status_4xx",
    "status_429",
    "status_5xx",
    "status_other",
    "error_rate_limit",
    "error_timeout",
    "error_server_error",
    "error_invalid_request",
    "error_auth",
    "error_content_filter",
    "error_other",
    "finish_stop",
    "finish_length",
    "finish_tool_calls",
    "finish_content_filter",
    "finish_other",
    "finish_missing",
    "streamed",
    "streamed_missing_finish",
    "truncated_below_max",
    "reported_cost",
    "reported_cost_requests",
)
MIN_COLUMNS = ("truncated_min_output",)
MAX_COLUMNS = ("truncated_max_output",)
HISTOGRAM_COLUMNS = ("latency_histogram", "ttft_histogram")
ALL_COLUMNS = KEY_COLUMNS + SUM_COLUMNS + MIN_COLUMNS + MAX_COLUMNS + HISTOGRAM_COLUMNS

RollupKey = tuple[int, datetime, str, str, str, str, str, str, str, int]


_INDEX = {name: position for position, name in enumerate(SUM_COLUMNS)}
_FINISH_INDEX = {reason: _INDEX[column] for reason, column in FINISH_COLUMNS.items()}
_ERROR_INDEX = {name.removeprefix("error_"): _INDEX[name] for name in SUM_COLUMNS if name.startswith("error_")}


@dataclass(slots=True)
class HourlyDelta:
    """What one batch adds to one rollup row. `sums` follows the order of SUM_COLUMNS."""

    key: RollupKey
    sums: list[int | Decimal] = field(default_factory=lambda: [0] * len(SUM_COLUMNS))
    truncated_min_output: int | None = None
    truncated_max_output: int | None = None
    latency_histogram: list[int] = field(default_factory=latency.empty_histogram)
    ttft_histogram: list[int] = field(default_factory=latency.empty_histogram)

    def total(self, column: str) -> int | Decimal:
        return self.sums[_INDEX[column]]

    def as_row(self) -> tuple[object, ...]:
        return (
            *self.key,
            *self.sums,
            self.truncated_min_output,
            self.truncated_max_output,
            self.latency_histogram,
            self.ttft_histogram,
        )


def rollup_key(event: EventRow) -> RollupKey:
    return (
        event.tenant_id,
        hour_start(event.occurred_at),
        event.provider,
        event.account or "",
        event.api_key_id or "",
        event.request_model,
        event.response_model,
        event.app or "",
        event.service_tier or "",
        context_band(event.input_tokens),
    )


def aggregate(events: Iterable[EventRow]) -> list[HourlyDelta]:
    """Fold events into one delta per rollup key, sorted by key (a stable lock order for the upsert)."""
    deltas: dict[RollupKey, HourlyDelta] = {}
    for event in events:
        key = rollup_key(event)
        delta = deltas.get(key)
        if delta is None:
            delta = deltas[key] = HourlyDelta(key)
        _add(delta, event)
    return [deltas[key] for key in sorted(deltas)]


def merge(left: HourlyDelta, right: HourlyDelta) -> HourlyDelta:
    """Two deltas of one key added up, as the upsert in `ledger.ingest` adds a delta to a stored row."""
    assert left.key == right.key
    lows = [value for value in (left.truncated_min_output, right.truncated_min_output) if value is not None]
    highs = [value for value in (left.truncated_max_output, right.truncated_max_output) if value is not None]
    return HourlyDelta(
        left.key,
        [a + b for a, b in zip(left.sums, right.sums, strict=True)],
        min(lows) if lows else None,
        max(highs) if highs else None,
        [a + b for a, b in zip(left.latency_histogram, right.latency_histogram, strict=True)],
        [a + b for a, b in zip(left.ttft_histogram, right.ttft_histogram, strict=True)],
    )


_REQUESTS, _INPUT, _OUTPUT = _INDEX["requests"], _INDEX["input_tokens"], _INDEX["output_tokens"]
_CACHE_READ, _CACHE_WRITE = _INDEX["cache_read_input_tokens"], _INDEX["cache_creation_input_tokens"]
_CACHE_WRITE_1H, _REASONING = _INDEX["cache_creation_1h_input_tokens"], _INDEX["reasoning_tokens"]
_WEB_SEARCH, _SYSTEM, _SYSTEM_REQUESTS = (
    _INDEX["web_search_requests"],
    _INDEX["system_prompt_tokens"],
    _INDEX["system_prompt_requests"],
)
_FINISH_MISSING, _FINISH_OTHER = _INDEX["finish_missing"], _INDEX["finish_other"]
_STREAMED, _STREAMED_MISSING = _INDEX["streamed"], _INDEX["streamed_missing_finish"]
_TRUNCATED, _COST, _COST_REQUESTS = (
    _INDEX["truncated_below_max"],
    _INDEX["reported_cost"],
    _INDEX["reported_cost_requests"],
)


def _add(delta: HourlyDelta, event: EventRow) -> None:
    sums = delta.sums
    sums[_REQUESTS] += 1
    sums[_INPUT] += event.input_tokens
    sums[_OUTPUT] += event.output_tokens
    sums[_CACHE_READ] += event.cache_read_input_tokens
    sums[_CACHE_WRITE] += event.cache_creation_input_tokens
    sums[_CACHE_WRITE_1H] += event.cache_creation_1h_input_tokens
    sums[_REASONING] += event.reasoning_tokens
    sums[_WEB_SEARCH] += event.web_search_requests
    if event.system_prompt_tokens is not None:
        sums[_SYSTEM] += event.system_prompt_tokens
        sums[_SYSTEM_REQUESTS] += 1
    sums[_INDEX[_status_column(event.status_code)]] += 1
    if event.error_type is not None:
        sums[_ERROR_INDEX[event.error_type]] += 1
    finish = event.finish_reason
    sums[_FINISH_MISSING if finish is None else _FINISH_INDEX.get(finish, _FINISH_OTHER)] += 1
    if event.stream:
        sums[_STREAMED] += 1
        if finish is None:
            sums[_STREAMED_MISSING] += 1
    if (
        finish in TRUNCATING_FINISHES
        and event.max_tokens is not None
        and event.output_tokens < event.max_tokens
        and 200 <= event.status_code < 300
    ):
        sums[_TRUNCATED] += 1
        delta.truncated_min_output = _least(delta.truncated_min_output, event.output_tokens)
        delta.truncated_max_output = max(delta.truncated_max_output or 0, event.output_tokens)
    if event.reported_cost is not None:
        sums[_COST] += event.reported_cost
        sums[_COST_REQUESTS] += 1
    if event.latency_ms is not None:
        delta.latency_histogram[latency.bucket_of(event.latency_ms)] += 1
    if event.ttft_ms is not None:
        delta.ttft_histogram[latency.bucket_of(event.ttft_ms)] += 1


def _status_column(status_code: int) -> str:
    if 200 <= status_code < 300:
        return "status_2xx"
    if status_code == 429:
        return "status_429"
    if 400 <= status_code < 500:
        return "status_4xx"
    if 500 <= status_code < 600:
        return "status_5xx"
    return "status_other"


def _least(current: int | None, value: int) -> int:
    return value if current is None else min(current, value)
