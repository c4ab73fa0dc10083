"""The daily rollup keeps the reconciliation scope: account × key × tier × input band as well

The reconciler compares usage per account, key, model, tier and day; with the daily rollup at that grain
it reads one row per scope and day instead of 24 hourly ones. Reports that read the daily rollup sum over
the extra columns. The statement-level triggers on `usage_hourly` are rebuilt for the new key, and the table
is refilled from the hourly rollup.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The measures of the rollups at the time of this migration (ledger/tables.py RollupMeasures).
SUMS = (
    "requests", "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
    "cache_creation_1h_input_tokens", "reasoning_tokens", "web_search_requests", "system_prompt_tokens",
    "system_prompt_requests", "status_2xx", "status_4xx", "status_429", "status_5xx", "status_other",
    "error_rate_limit", "error_timeout", "error_server_error", "error_invalid_request", "error_auth",
    "error_content_filter", "error_other", "finish_stop", "finish_length", "finish_tool_calls",
    "finish_content_filter", "finish_other", "finish_missing", "streamed", "streamed_missing_finish",
    "truncated_below_max", "reported_cost", "reported_cost_requests",
)  # fmt: skip
HISTOGRAMS = ("latency_histogram", "ttft_histogram")
BUCKETS = 44  # ledger/latency.py BUCKET_COUNT
EVENTS = {
    "insert": ("REFERENCING NEW TABLE AS new_rows", "SELECT 1 AS sign, * FROM new_rows"),
    "update": (
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "SELECT 1 AS sign, * FROM new_rows UNION ALL SELECT -1 AS sign, * FROM old_rows",
    ),
    "delete": ("REFERENCING OLD TABLE AS old_rows", "SELECT -1 AS sign, * FROM old_rows"),
}


def create_daily(key: dict[str, str]) -> str:
    columns = [f"{name} {kind} NOT NULL" for name, kind in key.items()]
    columns += [f"{name} {'numeric(20, 10)' if name == 'reported_cost' else 'bigint'} NOT NULL" for name in SUMS]
    columns += ["truncated_min_output bigint", "truncated_max_output bigint"]
    columns += [f"{name} bigint[] NOT NULL" for name in HISTOGRAMS]
    primary_key = f"CONSTRAINT pk_usage_daily PRIMARY KEY ({', '.join(key)})"
    return f"CREATE TABLE usage_daily ({', '.join([*columns, primary_key])})"


def _day_key(key: dict[str, str]) -> list[str]:
    return ["(hour AT TIME ZONE 'UTC')::date" if name == "day" else name for name in key]


def apply_change(key: dict[str, str], changes: str) -> str:
    """Add one statement's change to the hourly rollup (new rows +1, old rows -1) to its days, in key order
    so that concurrent writers lock daily rows in the same order."""
    histograms = [
        "ARRAY[" + ", ".join(f"sum(sign * {name}[{i}])" for i in range(1, BUCKETS + 1)) + "]" for name in HISTOGRAMS
    ]
    measures = [f"sum(sign * {name})" for name in SUMS]
    measures += ["min(truncated_min_output)", "max(truncated_max_output)", *histograms]
    updates = [f"{name} = d.{name} + EXCLUDED.{name}" for name in SUMS]
    updates += [
        "truncated_min_output = LEAST(d.truncated_min_output, EXCLUDED.truncated_min_output)",
        "truncated_max_output = GREATEST(d.truncated_max_output, EXCLUDED.truncated_max_output)",
        *(f"{name} = tl_array_add(d.{name}, EXCLUDED.{name})" for name in HISTOGRAMS),
    ]
    positions = ", ".join(str(n) for n in range(1, len(key) + 1))
    all_columns = [*key, *SUMS, "truncated_min_output", "truncated_max_output", *HISTOGRAMS]
    return (
        f"INSERT INTO usage_daily AS d ({', '.join(all_columns)}) "
        f"SELECT {', '.join([*_day_key(key), *measures])} FROM ({changes}) AS change "
        f"GROUP BY {positions} ORDER BY {positions} "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(updates)}"
    )


def create_triggers(key: dict[str, str]) -> list[str]:
    statements = []
    for event, (transition, changes) in EVENTS.items():
        statements.append(f"""
CREATE FUNCTION usage_daily_on_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {apply_change(key, changes)};
    RETURN NULL;
END
$$;
CREATE TRIGGER usage_daily_on_{event} AFTER {event.upper()} ON usage_hourly {transition}
    FOR EACH STATEMENT EXECUTE FUNCTION usage_daily_on_{event}();
""")
    return statements


def drop_triggers() -> None:
    for event in EVENTS:
        op.execute(f"DROP TRIGGER usage_daily_on_{event} ON usage_hourly")
        op.execute(f"DROP FUNCTION usage_daily_on_{event}()")


def rebuild(key: dict[str, str]) -> None:
    drop_triggers()
    op.execute("DROP TABLE usage_daily")
    op.execute(create_daily(key))
    for statement in create_triggers(key):
        op.execute(statement)
    op.execute(apply_change(key, "SELECT 1 AS sign, * FROM usage_hourly"))


SCOPE_KEY = {
    "tenant_id": "bigint",
    "day": "date",
    "provider": "text",
    "account": "text",
    "api_key_id": "text",
    "request_model": "text",
    "response_model": "text",
    "service_tier": "text",
    "input_band": "smallint",
}
MODEL_KEY = {
    "tenant_id": "bigint",
    "day": "date",
    "provider": "text",
    "request_model": "text",
    "response_model": "text",
}


def upgrade() -> None:
    rebuild(SCOPE_KEY)


def downgrade() -> None:
    rebuild(MODEL_KEY)
