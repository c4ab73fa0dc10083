"""A daily rollup per provider × requested × served model, kept by a trigger on the hourly rollup

Reports that span a month (the Providers page: latency percentiles, error and finish rates) read 24 times
fewer rows. Whatever writes `usage_hourly` (ingest's upsert, a backfill, a COPY) keeps `usage_daily` in step
in the same transaction: statement-level triggers add each statement's change (new minus old) to its days.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ARRAY_FUNCTIONS = """
CREATE FUNCTION tl_array_add(a bigint[], b bigint[]) RETURNS bigint[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a
                ELSE ARRAY(SELECT x + y FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i) ORDER BY i) END
$$;
CREATE AGGREGATE tl_array_sum(bigint[]) (SFUNC = tl_array_add, STYPE = bigint[], PARALLEL = SAFE);
"""

CREATE_DAILY = """
CREATE TABLE usage_daily (
    tenant_id bigint NOT NULL,
    day date NOT NULL,
    provider text NOT NULL,
    request_model text NOT NULL,
    response_model text NOT NULL,
    requests bigint NOT NULL,
    input_tokens bigint NOT NULL,
    output_tokens bigint NOT NULL,
    cache_read_input_tokens bigint NOT NULL,
    cache_creation_input_tokens bigint NOT NULL,
    cache_creation_1h_input_tokens bigint NOT NULL,
    reasoning_tokens bigint NOT NULL,
    web_search_requests bigint NOT NULL,
    system_prompt_tokens bigint NOT NULL,
    system_prompt_requests bigint NOT NULL,
    status_2xx bigint NOT NULL,
    status_4xx bigint NOT NULL,
    status_429 bigint NOT NULL,
    status_5xx bigint NOT NULL,
    status_other bigint NOT NULL,
    error_rate_limit bigint NOT NULL,
    error_timeout bigint NOT NULL,
    error_server_error bigint NOT NULL,
    error_invalid_request bigint NOT NULL,
    error_auth bigint NOT NULL,
    error_content_filter bigint NOT NULL,
    error_other bigint NOT NULL,
    finish_stop bigint NOT NULL,
    finish_length bigint NOT NULL,
    finish_tool_calls bigint NOT NULL,
    finish_content_filter bigint NOT NULL,
    finish_other bigint NOT NULL,
    finish_missing bigint NOT NULL,
    streamed bigint NOT NULL,
    streamed_missing_finish bigint NOT NULL,
    truncated_below_max bigint NOT NULL,
    reported_cost numeric(20, 10) NOT NULL,
    reported_cost_requests bigint NOT NULL,
    truncated_min_output bigint,
    truncated_max_output bigint,
    latency_histogram bigint[] NOT NULL,
    ttft_histogram bigint[] NOT NULL,
    CONSTRAINT pk_usage_daily PRIMARY KEY (tenant_id, day, provider, request_model, response_model)
);
"""

APPLY_CHANGE = """
    INSERT INTO usage_daily AS d (tenant_id, day, provider, request_model, response_model, requests, input_tokens,
        output_tokens, cache_read_input_tokens, cache_creation_input_tokens,
        cache_creation_1h_input_tokens, reasoning_tokens, web_search_requests, system_prompt_tokens,
        system_prompt_requests, status_2xx, status_4xx, status_429, status_5xx, status_other,
        error_rate_limit, error_timeout, error_server_error, error_invalid_request, error_auth,
        error_content_filter, error_other, finish_stop, finish_length, finish_tool_calls,
        finish_content_filter, finish_other, finish_missing, streamed, streamed_missing_finish,
        truncated_below_max, reported_cost, reported_cost_requests, truncated_min_output,
        truncated_max_output, latency_histogram, ttft_histogram)
    SELECT tenant_id, (hour AT TIME ZONE 'UTC')::date, provider, request_model, response_model,
        sum(sign * requests), sum(sign * input_tokens), sum(sign * output_tokens),
        sum(sign * cache_read_input_tokens), sum(sign * cache_creation_input_tokens),
        sum(sign * cache_creation_1h_input_tokens), sum(sign * reasoning_tokens),
        sum(sign * web_search_requests), sum(sign * system_prompt_tokens),
        sum(sign * system_prompt_requests), sum(sign * status_2xx), sum(sign * status_4xx),
        sum(sign * status_429), sum(sign * status_5xx), sum(sign * status_other),
        sum(sign * error_rate_limit), sum(sign * error_timeout), sum(sign * error_server_error),
        sum(sign * error_invalid_request), sum(sign * error_auth), sum(sign * error_content_filter),
        sum(sign * error_other), sum(sign * finish_stop), sum(sign * finish_length),
        sum(sign * finish_tool_calls), sum(sign * finish_content_filter), sum(sign * finish_other),
        sum(sign * finish_missing), sum(sign * streamed), sum(sign * streamed_missing_finish),
        sum(sign * truncated_below_max), sum(sign * reported_cost),
        sum(sign * reported_cost_requests), min(truncated_min_output), max(truncated_max_output),
        -- element-wise sums of the 44-bucket histograms (ledger/latency.py)
        ARRAY[sum(sign * latency_histogram[1]), sum(sign * latency_histogram[2]),
            sum(sign * latency_histogram[3]), sum(sign * latency_histogram[4]),
            sum(sign * latency_histogram[5]), sum(sign * latency_histogram[6]),
            sum(sign * latency_histogram[7]), sum(sign * latency_histogram[8]),
            sum(sign * latency_histogram[9]), sum(sign * latency_histogram[10]),
            sum(sign * latency_histogram[11]), sum(sign * latency_histogram[12]),
            sum(sign * latency_histogram[13]), sum(sign * latency_histogram[14]),
            sum(sign * latency_histogram[15]), sum(sign * latency_histogram[16]),
            sum(sign * latency_histogram[17]), sum(sign * latency_histogram[18]),
            sum(sign * latency_histogram[19]), sum(sign * latency_histogram[20]),
            sum(sign * latency_histogram[21]), sum(sign * latency_histogram[22]),
            sum(sign * latency_histogram[23]), sum(sign * latency_histogram[24]),
            sum(sign * latency_histogram[25]), sum(sign * latency_histogram[26]),
            sum(sign * latency_histogram[27]), sum(sign * latency_histogram[28]),
            sum(sign * latency_histogram[29]), sum(sign * latency_histogram[30]),
            sum(sign * latency_histogram[31]), sum(sign * latency_histogram[32]),
            sum(sign * latency_histogram[33]), sum(sign * latency_histogram[34]),
            sum(sign * latency_histogram[35]), sum(sign * latency_histogram[36]),
            sum(sign * latency_histogram[37]), sum(sign * latency_histogram[38]),
            sum(sign * latency_histogram[39]), sum(sign * latency_histogram[40]),
            sum(sign * latency_histogram[41]), sum(sign * latency_histogram[42]),
            sum(sign * latency_histogram[43]), sum(sign * latency_histogram[44])],
        ARRAY[sum(sign * ttft_histogram[1]), sum(sign * ttft_histogram[2]), sum(sign * ttft_histogram[3]),
            sum(sign * ttft_histogram[4]), sum(sign * ttft_histogram[5]), sum(sign * ttft_histogram[6]),
            sum(sign * ttft_histogram[7]), sum(sign * ttft_histogram[8]), sum(sign * ttft_histogram[9]),
            sum(sign * ttft_histogram[10]), sum(sign * ttft_histogram[11]), sum(sign * ttft_histogram[12]),
            sum(sign * ttft_histogram[13]), sum(sign * ttft_histogram[14]), sum(sign * ttft_histogram[15]),
            sum(sign * ttft_histogram[16]), sum(sign * ttft_histogram[17]), sum(sign * ttft_histogram[18]),
            sum(sign * ttft_histogram[19]), sum(sign * ttft_histogram[20]), sum(sign * ttft_histogram[21]),
            sum(sign * ttft_histogram[22]), sum(sign * ttft_histogram[23]), sum(sign * ttft_histogram[24]),
            sum(sign * ttft_histogram[25]), sum(sign * ttft_histogram[26]), sum(sign * ttft_histogram[27]),
            sum(sign * ttft_histogram[28]), sum(sign * ttft_histogram[29]), sum(sign * ttft_histogram[30]),
            sum(sign * ttft_histogram[31]), sum(sign * ttft_histogram[32]), sum(sign * ttft_histogram[33]),
            sum(sign * ttft_histogram[34]), sum(sign * ttft_histogram[35]), sum(sign * ttft_histogram[36]),
            sum(sign * ttft_histogram[37]), sum(sign * ttft_histogram[38]), sum(sign * ttft_histogram[39]),
            sum(sign * ttft_histogram[40]), sum(sign * ttft_histogram[41]), sum(sign * ttft_histogram[42]),
            sum(sign * ttft_histogram[43]), sum(sign * ttft_histogram[44])]
    FROM ({changes}) AS change
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant_id, day, provider, request_model, response_model) DO UPDATE SET
        requests = d.requests + EXCLUDED.requests,
        input_tokens = d.input_tokens + EXCLUDED.input_tokens,
        output_tokens = d.output_tokens + EXCLUDED.output_tokens,
        cache_read_input_tokens = d.cache_read_input_tokens + EXCLUDED.cache_read_input_tokens,
        cache_creation_input_tokens = d.cache_creation_input_tokens + EXCLUDED.cache_creation_input_tokens,
        cache_creation_1h_input_tokens = d.cache_creation_1h_input_tokens + EXCLUDED.cache_creation_1h_input_tokens,
        reasoning_tokens = d.reasoning_tokens + EXCLUDED.reasoning_tokens,
        web_search_requests = d.web_search_requests + EXCLUDED.web_search_requests,
        system_prompt_tokens = d.system_prompt_tokens + EXCLUDED.system_prompt_tokens,
        system_prompt_requests = d.system_prompt_requests + EXCLUDED.system_prompt_requests,
        status_2xx = d.status_2xx + EXCLUDED.status_2xx,
        status_4xx = d.status_4xx + EXCLUDED.status_4xx,
        status_429 = d.status_429 + EXCLUDED.status_429,
        status_5xx = d.status_5xx + EXCLUDED.status_5xx,
        status_other = d.status_other + EXCLUDED.status_other,
        error_rate_limit = d.error_rate_limit + EXCLUDED.error_rate_limit,
        error_timeout = d.error_timeout + EXCLUDED.error_timeout,
        error_server_error = d.error_server_error + EXCLUDED.error_server_error,
        error_invalid_request = d.error_invalid_request + EXCLUDED.error_invalid_request,
        error_auth = d.error_auth + EXCLUDED.error_auth,
        error_content_filter = d.error_content_filter + EXCLUDED.error_content_filter,
        error_other = d.error_other + EXCLUDED.error_other,
        finish_stop = d.finish_stop + EXCLUDED.finish_stop,
        finish_length = d.finish_length + EXCLUDED.finish_length,
        finish_tool_calls = d.finish_tool_calls + EXCLUDED.finish_tool_calls,
        finish_content_filter = d.finish_content_filter + EXCLUDED.finish_content_filter,
        finish_other = d.finish_other + EXCLUDED.finish_other,
        finish_missing = d.finish_missing + EXCLUDED.finish_missing,
        streamed = d.streamed + EXCLUDED.streamed,
        streamed_missing_finish = d.streamed_missing_finish + EXCLUDED.streamed_missing_finish,
        truncated_below_max = d.truncated_below_max + EXCLUDED.truncated_below_max,
        reported_cost = d.reported_cost + EXCLUDED.reported_cost,
        reported_cost_requests = d.reported_cost_requests + EXCLUDED.reported_cost_requests,
        truncated_min_output = LEAST(d.truncated_min_output, EXCLUDED.truncated_min_output),
        truncated_max_output = GREATEST(d.truncated_max_output, EXCLUDED.truncated_max_output),
        latency_histogram = tl_array_add(d.latency_histogram, EXCLUDED.latency_histogram),
        ttft_histogram = tl_array_add(d.ttft_histogram, EXCLUDED.ttft_histogram);
"""
CHANGES = {
    "insert": "SELECT 1 AS sign, * FROM new_rows",
    "update": "SELECT 1 AS sign, * FROM new_rows UNION ALL SELECT -1 AS sign, * FROM old_rows",
    "delete": "SELECT -1 AS sign, * FROM old_rows",
}
TRANSITION_TABLES = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
}


def daily_trigger(event: str) -> str:
    """A statement-level trigger adding one statement's change to the hourly rollup to the daily rollup:
    new rows count +1, replaced or deleted rows -1, summed per day and applied in key order, so concurrent
    writers lock daily rows in the same order and never deadlock."""
    return f"""
CREATE FUNCTION usage_daily_on_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{APPLY_CHANGE.format(changes=CHANGES[event])}
    RETURN NULL;
END
$$;
CREATE TRIGGER usage_daily_on_{event} AFTER {event.upper()} ON usage_hourly {TRANSITION_TABLES[event]}
    FOR EACH STATEMENT EXECUTE FUNCTION usage_daily_on_{event}();
"""


BACKFILL = """
INSERT INTO usage_daily (tenant_id, day, provider, request_model, response_model, requests, input_tokens, output_tokens,
    cache_read_input_tokens, cache_creation_input_tokens, cache_creation_1h_input_tokens,
    reasoning_tokens, web_search_requests, system_prompt_tokens, system_prompt_requests, status_2xx,
    status_4xx, status_429, status_5xx, status_other, error_rate_limit, error_timeout,
    error_server_error, error_invalid_request, error_auth, error_content_filter, error_other,
    finish_stop, finish_length, finish_tool_calls, finish_content_filter, finish_other,
    finish_missing, streamed, streamed_missing_finish, truncated_below_max, reported_cost,
    reported_cost_requests, truncated_min_output, truncated_max_output, latency_histogram,
    ttft_histogram)
SELECT tenant_id, (hour AT TIME ZONE 'UTC')::date, provider, request_model, response_model,
    sum(requests), sum(input_tokens), sum(output_tokens), sum(cache_read_input_tokens),
    sum(cache_creation_input_tokens), sum(cache_creation_1h_input_tokens), sum(reasoning_tokens),
    sum(web_search_requests), sum(system_prompt_tokens), sum(system_prompt_requests),
    sum(status_2xx), sum(status_4xx), sum(status_429), sum(status_5xx), sum(status_other),
    sum(error_rate_limit), sum(error_timeout), sum(error_server_error), sum(error_invalid_request),
    sum(error_auth), sum(error_content_filter), sum(error_other), sum(finish_stop),
    sum(finish_length), sum(finish_tool_calls), sum(finish_content_filter), sum(finish_other),
    sum(finish_missing), sum(streamed), sum(streamed_missing_finish), sum(truncated_below_max),
    sum(reported_cost), sum(reported_cost_requests), min(truncated_min_output),
    max(truncated_max_output), tl_array_sum(latency_histogram), tl_array_sum(ttft_histogram)
FROM usage_hourly
GROUP BY tenant_id, (hour AT TIME ZONE 'UTC')::date, provider, request_model, response_model;
"""


def upgrade() -> None:
    op.execute(ARRAY_FUNCTIONS)
    op.execute(CREATE_DAILY)
    for event in CHANGES:
        op.execute(daily_trigger(event))
    op.execute(BACKFILL)


def downgrade() -> None:
    for event in CHANGES:
        op.execute(f"DROP TRIGGER usage_daily_on_{event} ON usage_hourly")
        op.execute(f"DROP FUNCTION usage_daily_on_{event}()")
    op.drop_table("usage_daily")
    op.execute("DROP AGGREGATE tl_array_sum(bigint[])")
    op.execute("DROP FUNCTION tl_array_add(bigint[], bigint[])")
