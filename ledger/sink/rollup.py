"""The hourly rollup: what a set of events adds to `usage_hourly`, as SQL that PostgreSQL runs over the rows it
has just stored (`ledger.sink.ingest`), so the rollup is computed from exactly the events that were new. Every
figure is a sum (or min/max, or an element-wise histogram sum), so the rows of any batches merge exactly.
This module only builds the SQL text from the definitions below; it touches no database."""

from __future__ import annotations

from ledger.events.schema import COLUMNS, ERROR_TYPES, MEASURE_NAMES
from ledger.pricing.context_bands import CONTEXT_BAND_THRESHOLDS
from ledger.sink import latency

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
    *MEASURE_NAMES,  # each the sum of the event column of its name
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
    "failed_input_tokens",
    "failed_cache_read_input_tokens",
    "failed_cache_creation_input_tokens",
    "failed_output_tokens",
)
FAILED_SUMS = {
    "failed_input_tokens": "input_tokens",
    "failed_cache_read_input_tokens": "cache_read_input_tokens",
    "failed_cache_creation_input_tokens": "cache_creation_input_tokens",
    "failed_output_tokens": "output_tokens",
}
"""Tokens of failed requests (429 and 5xx), which should not be billed: the reconciler compares the others."""
MIN_COLUMNS = ("truncated_min_output",)
MAX_COLUMNS = ("truncated_max_output",)
HISTOGRAM_COLUMNS = ("latency_histogram", "ttft_histogram")
ALL_COLUMNS = KEY_COLUMNS + SUM_COLUMNS + MIN_COLUMNS + MAX_COLUMNS + HISTOGRAM_COLUMNS


def _finish_in(column: str) -> str:
    reasons = ", ".join(f"'{reason}'" for reason, target in FINISH_COLUMNS.items() if target == column)
    return f"finish_reason IN ({reasons})"


_KNOWN_FINISHES = ", ".join(f"'{reason}'" for reason in FINISH_COLUMNS)
_OK = "status_code BETWEEN 200 AND 299"
_FAILED = "status_code = 429 OR status_code BETWEEN 500 AND 599"
_TRUNCATED = (
    f"finish_reason IN ({', '.join(repr(r) for r in sorted(TRUNCATING_FINISHES))}) AND max_tokens IS NOT NULL "
    f"AND output_tokens < max_tokens AND {_OK}"
)
_COUNT_WHERE = {
    "status_2xx": _OK,
    "status_429": "status_code = 429",
    "status_4xx": "status_code BETWEEN 400 AND 499 AND status_code <> 429",
    "status_5xx": "status_code BETWEEN 500 AND 599",
    "status_other": "NOT (status_code BETWEEN 200 AND 299 OR status_code BETWEEN 400 AND 599)",
    **{f"error_{kind}": f"error_type = '{kind}'" for kind in ERROR_TYPES},
    **{column: _finish_in(column) for column in dict.fromkeys(FINISH_COLUMNS.values())},
    "finish_other": f"finish_reason NOT IN ({_KNOWN_FINISHES})",
    "finish_missing": "finish_reason IS NULL",
    # Streamed answers: a request that failed (429, 5xx) was answered by no stream and has no finish reason to miss.
    "streamed": f"stream AND {_OK}",
    "streamed_missing_finish": f"stream AND finish_reason IS NULL AND {_OK}",
    "truncated_below_max": _TRUNCATED,
}
_SUMMED = tuple(name for name in SUM_COLUMNS if name in COLUMNS)  # sums of the event column of that name


def _bucket(column: str, bounds: tuple[int, ...]) -> str:
    """The index of the first bound >= the value (bisect_left), for integer values: width_bucket counts the
    bounds <= its operand, so it is given the value minus one."""
    return f"width_bucket({column} - 1, ARRAY[{', '.join(map(str, bounds))}])"


def _measure(name: str) -> str:
    if name == "requests":
        return "count(*)"
    if name in _SUMMED:
        return f"coalesce(sum({name}), 0)"  # numeric; stored in the column's type
    if name in FAILED_SUMS:
        return f"coalesce(sum({FAILED_SUMS[name]}) FILTER (WHERE {_FAILED}), 0)"
    if name == "system_prompt_requests":
        return "count(system_prompt_tokens)"
    if name == "reported_cost_requests":
        return "count(reported_cost)"
    if name == "truncated_min_output":
        return f"min(output_tokens) FILTER (WHERE {_TRUNCATED})"
    if name == "truncated_max_output":
        return f"max(output_tokens) FILTER (WHERE {_TRUNCATED})"
    if name in HISTOGRAM_COLUMNS:
        source = "latency_bucket" if name == "latency_histogram" else "ttft_bucket"
        counts = ", ".join(f"count(*) FILTER (WHERE {source} = {index})" for index in range(latency.BUCKET_COUNT))
        return f"ARRAY[{counts}]"
    return f"count(*) FILTER (WHERE {_COUNT_WHERE[name]})"


_KEY_OF = {
    "tenant_id": "tenant_id",
    "hour": "date_trunc('hour', occurred_at, 'UTC')",
    "provider": "provider",
    "account": "coalesce(account, '')",
    "api_key_id": "coalesce(api_key_id, '')",
    "request_model": "request_model",
    "response_model": "response_model",
    "app": "coalesce(app, '')",
    "service_tier": "coalesce(service_tier, '')",
    "input_band": f"{_bucket('input_tokens', CONTEXT_BAND_THRESHOLDS)}::smallint",
}
# The event columns the rollup reads: all but identities, labels it does not key on, and raw documents.
EVENT_COLUMNS = tuple(
    name
    for name in COLUMNS
    if name not in ("event_id", "received_at", "region", "user_label", "tags", "provider_request_id", "usage_raw")
)


def select_rollup(events: str) -> str:
    """SELECT the rollup rows (columns in ALL_COLUMNS order, sorted by key) of the events in relation
    `events`, which has at least EVENT_COLUMNS."""
    keys = ", ".join(f"{_KEY_OF[name]} AS {name}" for name in KEY_COLUMNS)
    measures = ", ".join(
        f"{_measure(name)} AS {name}" for name in SUM_COLUMNS + MIN_COLUMNS + MAX_COLUMNS + HISTOGRAM_COLUMNS
    )
    positions = ", ".join(str(position) for position in range(1, len(KEY_COLUMNS) + 1))
    buckets = (
        f"{_bucket('latency_ms', latency.BUCKET_BOUNDS_MS)} AS latency_bucket, "
        f"{_bucket('ttft_ms', latency.BUCKET_BOUNDS_MS)} AS ttft_bucket"
    )
    return (
        f"SELECT {keys}, {measures} FROM (SELECT *, {buckets} FROM {events}) AS events "
        f"GROUP BY {positions} ORDER BY {positions}"
    )


def _merge(name: str, existing: str = "usage_hourly") -> str:
    """How a measure of the row being upserted merges into the `existing` row (a table name or alias): sums add,
    minima and maxima keep the extreme, histograms add element-wise."""
    if name in SUM_COLUMNS:
        return f"{name} = {existing}.{name} + excluded.{name}"
    if name in MIN_COLUMNS:
        return f"{name} = LEAST({existing}.{name}, excluded.{name})"
    if name in MAX_COLUMNS:
        return f"{name} = GREATEST({existing}.{name}, excluded.{name})"
    return f"{name} = {histogram_sum(f'{existing}.{name}', f'excluded.{name}')}"


def histogram_sum(left: str, right: str) -> str:
    """The element-wise sum of two latency histograms (arrays of BUCKET_COUNT counts) as one ARRAY[...]
    expression: PostgreSQL evaluates it natively, where a call of the SQL function tl_array_add (migration
    0003) runs its own subquery each time, which made it most of the cost of merging a rollup row."""
    return "ARRAY[" + ", ".join(f"{left}[{i}] + {right}[{i}]" for i in range(1, latency.BUCKET_COUNT + 1)) + "]"


DAILY_KEY_COLUMNS = (
    "tenant_id",
    "day",
    "provider",
    "account",
    "api_key_id",
    "request_model",
    "response_model",
    "service_tier",
    "input_band",
)
MEASURE_COLUMNS = SUM_COLUMNS + MIN_COLUMNS + MAX_COLUMNS + HISTOGRAM_COLUMNS
DAILY_ROLLUP_SETTING = "tokenledger.daily_rollup"
"""A session that sets this to `by_statement` folds what its statements add to `usage_hourly` into
`usage_daily` itself (`upsert_daily`), and the insert and update triggers of `usage_hourly` (migration 0008)
leave it to them."""


def upsert_hourly(rows: str) -> str:
    """INSERT the rollup rows of relation `rows` (columns ALL_COLUMNS) into usage_hourly, adding to rows that
    exist, in key order; RETURNING one row per row written."""
    return (
        f"INSERT INTO usage_hourly ({', '.join(ALL_COLUMNS)}) SELECT {', '.join(ALL_COLUMNS)} FROM {rows} "
        f"ORDER BY {', '.join(KEY_COLUMNS)} "
        f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET "
        + ", ".join(_merge(name) for name in MEASURE_COLUMNS)
        + " RETURNING 1"
    )


def _daily_measure(name: str) -> str:
    if name in SUM_COLUMNS:
        return f"sum({name})"
    if name in MIN_COLUMNS:
        return f"min({name})"
    if name in MAX_COLUMNS:
        return f"max({name})"
    return "ARRAY[" + ", ".join(f"sum({name}[{i}])" for i in range(1, latency.BUCKET_COUNT + 1)) + "]"


def upsert_daily(rows: str, *, after: str) -> str:
    """INSERT the hourly rollup rows of relation `rows`, summed per UTC day and scope, into usage_daily, adding
    to rows that exist, in key order: what the triggers of usage_hourly do, but once for the whole statement.
    Its rows are read only once relation `after` (the hourly upsert) has been written to the end, so a writer
    locks every hourly row it needs before any daily one, and daily ones in key order: two writers can then
    never wait for each other in a circle. (The triggers, one for the rows an upsert inserts and another for
    those it updates, each in key order but one after the other, could: a deadlock.)"""
    keys = ", ".join("(hour AT TIME ZONE 'UTC')::date" if name == "day" else name for name in DAILY_KEY_COLUMNS)
    positions = ", ".join(str(position) for position in range(1, len(DAILY_KEY_COLUMNS) + 1))
    return (
        f"INSERT INTO usage_daily AS d ({', '.join(DAILY_KEY_COLUMNS + MEASURE_COLUMNS)}) "
        f"SELECT {keys}, {', '.join(_daily_measure(name) for name in MEASURE_COLUMNS)} FROM {rows} "
        f"WHERE (SELECT count(*) FROM {after}) >= 0 GROUP BY {positions} ORDER BY {positions} "
        f"ON CONFLICT ({', '.join(DAILY_KEY_COLUMNS)}) DO UPDATE SET "
        + ", ".join(_merge(name, "d") for name in MEASURE_COLUMNS)
    )


def upsert_rollup(events: str) -> str:
    """INSERT the rollup of relation `events` into usage_hourly, adding to rows that exist. Rows go in key
    order, so concurrent writers lock them in the same order."""
    return (
        f"INSERT INTO usage_hourly ({', '.join(ALL_COLUMNS)}) {select_rollup(events)} "
        f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET "
        + ", ".join(_merge(name) for name in SUM_COLUMNS + MIN_COLUMNS + MAX_COLUMNS + HISTOGRAM_COLUMNS)
    )
