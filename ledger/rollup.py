"""The hourly rollup: how a batch of new events adds to `usage_hourly`. Pure; the SQL upsert lives in
`ledger.ingest`. Every figure is a sum (or min/max) so deltas from any batches merge exactly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ledger import latency
from ledger.events import EventRow
from ledger.periods import hour_start
from ledger.context_bands import context_band

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
    "tenant_id", "hour", "provider", "account", "api_key_id", "request_model", "response_model", "app",
    "service_tier", "input_band",
)
SUM_COLUMNS = (
    "requests", "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
    "cache_creation_1h_input_tokens", "reasoning_tokens", "web_search_requests", "system_prompt_tokens",
    "system_prompt_requests", "status_2xx", "status_4xx", "status_429", "status_5xx", "status_other",
    "error_rate_limit", "error_timeout", "error_server_error", "error_invalid_request", "error_auth",
    "error_content_filter", "error_other", "finish_stop", "finish_length", "finish_tool_calls",
    "finish_content_filter", "finish_other", "finish_missing", "streamed", "streamed_missing_finish",
    "truncated_below_max", "reported_cost", "reported_cost_requests",
)
MIN_COLUMNS = ("truncated_min_output",)
MAX_COLUMNS = ("truncated_max_output",)
HISTOGRAM_COLUMNS = ("latency_histogram", "ttft_histogram")
ALL_COLUMNS = KEY_COLUMNS + SUM_COLUMNS + MIN_COLUMNS + MAX_COLUMNS + HISTOGRAM_COLUMNS

RollupKey = tuple[int, datetime, str, str, str, str, str, str, str, int]


@dataclass(slots=True)
class HourlyDelta:
    """What one batch adds to one rollup row."""

    key: RollupKey
    sums: dict[str, int | Decimal] = field(default_factory=lambda: dict.fromkeys(SUM_COLUMNS, 0))
    truncated_min_output: int | None = None
    truncated_max_output: int | None = None
    latency_histogram: list[int] = field(default_factory=latency.empty_histogram)
    ttft_histogram: list[int] = field(default_factory=latency.empty_histogram)

    def as_row(self) -> tuple[object, ...]:
        return (
            *self.key,
            *(self.sums[name] for name in SUM_COLUMNS),
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


def _add(delta: HourlyDelta, event: EventRow) -> None:
    sums = delta.sums

    def bump(name: str, amount: int | Decimal = 1) -> None:
        sums[name] += amount

    bump("requests")
    bump("input_tokens", event.input_tokens)
    bump("output_tokens", event.output_tokens)
    bump("cache_read_input_tokens", event.cache_read_input_tokens)
    bump("cache_creation_input_tokens", event.cache_creation_input_tokens)
    bump("cache_creation_1h_input_tokens", event.cache_creation_1h_input_tokens)
    bump("reasoning_tokens", event.reasoning_tokens)
    bump("web_search_requests", event.web_search_requests)
    if event.system_prompt_tokens is not None:
        bump("system_prompt_tokens", event.system_prompt_tokens)
        bump("system_prompt_requests")
    bump(_status_column(event.status_code))
    if event.error_type is not None:
        bump(f"error_{event.error_type}")
    finish = event.finish_reason
    bump("finish_missing" if finish is None else FINISH_COLUMNS.get(finish, "finish_other"))
    if event.stream:
        bump("streamed")
        if finish is None:
            bump("streamed_missing_finish")
    if (
        finish in TRUNCATING_FINISHES
        and event.max_tokens is not None
        and event.output_tokens < event.max_tokens
        and 200 <= event.status_code < 300
    ):
        bump("truncated_below_max")
        delta.truncated_min_output = _least(delta.truncated_min_output, event.output_tokens)
        delta.truncated_max_output = max(delta.truncated_max_output or 0, event.output_tokens)
    if event.reported_cost is not None:
        bump("reported_cost", event.reported_cost)
        bump("reported_cost_requests")
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
