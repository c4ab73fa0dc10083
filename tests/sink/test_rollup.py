"""The hourly rollup, as ingest keeps it: every row equals what a plain reading of the stored events says,
whatever mix of events arrived and however the requests split them (duplicates included)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ledger.sink import latency
from ledger.sink.rollup import ALL_COLUMNS, KEY_COLUMNS
from tests.conftest import TenantKeys
from tests.events_factory import usage_event

FINISHES = [None, "stop", "end_turn", "length", "max_tokens", "tool_use", "tool_calls", "refusal", "weird"]
STATUSES = [200, 201, 429, 400, 404, 500, 503, 302]
ERRORS = [None, "rate_limit", "timeout", "server_error", "invalid_request", "auth", "content_filter", "other"]


def varied_event(rng: random.Random, base: datetime) -> dict[str, Any]:
    input_tokens = rng.choice([0, 1, 900, 100_000, 100_001, 150_000, 272_001])
    output_tokens = rng.randrange(0, 2_000)
    return usage_event(
        occurred_at=(base + timedelta(minutes=rng.randrange(0, 180))).isoformat(),
        provider=rng.choice(["openai", "anthropic"]),
        account=rng.choice([None, "proj_a"]),
        api_key_id=rng.choice([None, "key_1"]),
        response_model=rng.choice([None, "gpt-5.4"]),
        app=rng.choice([None, "bot"]),
        service_tier=rng.choice([None, "batch", "priority"]),
        input_tokens=input_tokens,
        cache_read_input_tokens=input_tokens // 4,
        cache_creation_input_tokens=input_tokens // 8,
        output_tokens=output_tokens,
        reasoning_tokens=output_tokens // 3,
        system_prompt_tokens=rng.choice([None, 0, 350]),
        max_tokens=rng.choice([None, 500, 4_000]),
        finish_reason=rng.choice(FINISHES),
        status_code=rng.choice(STATUSES),
        error_type=rng.choice(ERRORS),
        latency_ms=rng.choice([None, 0, 10, 11, 999, 1_000, 700_000]),
        ttft_ms=rng.choice([None, 5, 250, 251]),
        stream=rng.random() < 0.5,
        reported_cost=rng.choice([None, "0.0001234567", "1.5"]),
    )


def expected_rollup(events: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The rollup by its definition, written out plainly over the stored events."""
    finish_column = {
        "stop": "finish_stop", "end_turn": "finish_stop", "stop_sequence": "finish_stop",
        "length": "finish_length", "max_tokens": "finish_length",
        "tool_calls": "finish_tool_calls", "tool_use": "finish_tool_calls", "function_call": "finish_tool_calls",
        "content_filter": "finish_content_filter", "refusal": "finish_content_filter",
    }  # fmt: skip
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in events:
        band = sum(1 for threshold in (100_000, 128_000, 200_000, 272_000) if e["input_tokens"] > threshold)
        hour = e["occurred_at"].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        key = (e["tenant_id"], hour, e["provider"], e["account"] or "", e["api_key_id"] or "", e["request_model"],
               e["response_model"], e["app"] or "", e["service_tier"] or "", band)  # fmt: skip
        row = rows.setdefault(key, defaultdict(int, truncated_min_output=None, truncated_max_output=None))
        row["requests"] += 1
        for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                     "cache_creation_1h_input_tokens", "reasoning_tokens", "web_search_requests"):  # fmt: skip
            row[name] += e[name]
        if e["system_prompt_tokens"] is not None:
            row["system_prompt_tokens"] += e["system_prompt_tokens"]
            row["system_prompt_requests"] += 1
        status = e["status_code"]
        row[
            "status_2xx" if 200 <= status < 300 else "status_429" if status == 429
            else "status_4xx" if 400 <= status < 500 else "status_5xx" if 500 <= status < 600 else "status_other"
        ] += 1  # fmt: skip
        if e["error_type"]:
            row[f"error_{e['error_type']}"] += 1
        finish = e["finish_reason"]
        row["finish_missing" if finish is None else finish_column.get(finish, "finish_other")] += 1
        if e["stream"] and 200 <= status < 300:  # a failed request had no stream to cut
            row["streamed"] += 1
            row["streamed_missing_finish"] += finish is None
        below_max = e["max_tokens"] is not None and e["output_tokens"] < e["max_tokens"]
        if finish in ("length", "max_tokens") and below_max and 200 <= status < 300:
            row["truncated_below_max"] += 1
            low, high = row["truncated_min_output"], row["truncated_max_output"]
            row["truncated_min_output"] = e["output_tokens"] if low is None else min(low, e["output_tokens"])
            row["truncated_max_output"] = e["output_tokens"] if high is None else max(high, e["output_tokens"])
        if e["reported_cost"] is not None:
            row["reported_cost"] += e["reported_cost"]
            row["reported_cost_requests"] += 1
        if status == 429 or 500 <= status < 600:  # failed: kept apart, they should not be billed
            for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens"):
                row[f"failed_{name}"] += e[name]
        for name, value in (("latency_histogram", e["latency_ms"]), ("ttft_histogram", e["ttft_ms"])):
            histogram = row.setdefault(name, latency.empty_histogram())
            if value is not None:
                histogram[sum(1 for bound in latency.BUCKET_BOUNDS_MS if value > bound)] += 1
    for row in rows.values():
        row.setdefault("reported_cost", Decimal(0))
    return rows


MEASURES = ALL_COLUMNS[len(KEY_COLUMNS) :]


def expected_daily(hourly: Iterable[dict[str, Any]], day_key: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The hourly rows summed per UTC day and scope, written out plainly."""
    days: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in hourly:
        scope = {**row, "day": row["hour"].astimezone(UTC).date()}
        key = tuple(scope[name] for name in day_key)
        total = days.get(key)
        if total is None:
            days[key] = {name: scope[name] for name in day_key + list(MEASURES)}
            continue
        for name in MEASURES:
            mine, theirs = total[name], row[name]
            if name.endswith("_histogram"):
                total[name] = [a + b for a, b in zip(mine, theirs, strict=True)]
            elif name == "truncated_min_output":
                total[name] = (
                    min(v for v in (mine, theirs) if v is not None) if (mine, theirs) != (None, None) else None
                )
            elif name == "truncated_max_output":
                total[name] = (
                    max(v for v in (mine, theirs) if v is not None) if (mine, theirs) != (None, None) else None
                )
            else:
                total[name] = mine + theirs
    return days


def test_the_rollup_is_exactly_the_sum_of_the_stored_events(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    rng = random.Random(20261007)
    base = datetime(2026, 10, 7, 9, 0, tzinfo=UTC)
    events = [varied_event(rng, base) for _ in range(600)]
    sent = 0
    while sent < len(events):
        size = rng.choice([1, 7, 50, 120])
        batch = events[sent : sent + size]
        retried = events[max(0, sent - 3) : sent]  # retries of events already stored count as duplicates
        response = client.post("/v1/events", json=batch + retried, headers=tenant.ingest)
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": len(batch), "duplicates": len(retried)}
        sent += size

    with engine.connect() as conn:
        tenant_id = conn.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
        stored = [dict(row._mapping) for row in conn.execute(
            sa.text("SELECT * FROM usage_events WHERE tenant_id = :t"), {"t": tenant_id})]  # fmt: skip
        rollup = {
            tuple(row[: len(KEY_COLUMNS)]): dict(zip(ALL_COLUMNS, row, strict=True))
            for row in conn.execute(
                sa.text(f"SELECT {', '.join(ALL_COLUMNS)} FROM usage_hourly WHERE tenant_id = :t"), {"t": tenant_id}
            )
        }
    assert len(stored) == len(events)
    expected = expected_rollup(stored)
    assert rollup.keys() == expected.keys()
    for key, row in rollup.items():
        for column in ALL_COLUMNS[len(KEY_COLUMNS) :]:
            assert row[column] == expected[key][column], (key, column)

    # The daily rollup holds the same sums per UTC day and scope (hour and app dropped), bucket by bucket.
    day_key = ["tenant_id", "day", *(name for name in KEY_COLUMNS if name not in ("tenant_id", "hour", "app"))]
    with engine.connect() as conn:
        daily = {
            tuple(row[: len(day_key)]): dict(zip(day_key + list(MEASURES), row, strict=True))
            for row in conn.execute(
                sa.text(f"SELECT {', '.join(day_key + list(MEASURES))} FROM usage_daily WHERE tenant_id = :t"),
                {"t": tenant_id},
            )
        }
    assert daily == expected_daily(rollup.values(), day_key)


def test_truncation_extremes_merge_across_requests(client: TestClient, tenant: TenantKeys, engine: Engine) -> None:
    def event(output_tokens: int, finish: str) -> dict[str, Any]:
        return usage_event(occurred_at="2026-10-07T11:05:00Z", max_tokens=1000, output_tokens=output_tokens,
                           finish_reason=finish, cache_read_input_tokens=0)  # fmt: skip

    for pair in ((event(400, "length"), event(380, "length")), (event(90, "stop"), event(410, "length"))):
        assert client.post("/v1/events", json=list(pair), headers=tenant.ingest).status_code == 202
    with engine.connect() as conn:
        tenant_id = conn.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
        row = conn.execute(
            sa.text(
                "SELECT requests, truncated_below_max, truncated_min_output, truncated_max_output "
                "FROM usage_hourly WHERE tenant_id = :t"
            ),
            {"t": tenant_id},
        ).one()
    assert tuple(row) == (4, 3, 380, 410)


def test_a_failed_streamed_request_is_no_stream_cut_short(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    def event(status: int, finish: str | None) -> dict[str, Any]:
        return usage_event(occurred_at="2026-10-07T11:05:00Z", stream=True, status_code=status, finish_reason=finish)

    events = [event(200, "stop"), event(200, None), event(500, None), event(429, None)]
    assert client.post("/v1/events", json=events, headers=tenant.ingest).status_code == 202
    with engine.connect() as conn:
        tenant_id = conn.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
        row = conn.execute(
            sa.text("SELECT requests, streamed, streamed_missing_finish FROM usage_hourly WHERE tenant_id = :t"),
            {"t": tenant_id},
        ).one()
    assert tuple(row) == (4, 2, 1)
