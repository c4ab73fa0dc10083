"""POST /v1/events: what a client sending usage sees, and what lands in PostgreSQL."""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ledger.settings import Settings
from tests.conftest import TenantKeys
from tests.events_factory import usage_event


def stored(engine: Engine, tenant: TenantKeys, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        tenant_id = conn.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
        return [tuple(row) for row in conn.execute(sa.text(sql), {"tenant": tenant_id})]


def test_one_event_is_acknowledged_after_it_is_stored(client: TestClient, tenant: TenantKeys, engine: Engine) -> None:
    event = usage_event(event_id="req-1", input_tokens=1_000, output_tokens=250)
    response = client.post("/v1/events", json=event, headers=tenant.ingest)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert stored(
        engine, tenant, "SELECT event_id, input_tokens, output_tokens FROM usage_events WHERE tenant_id = :tenant"
    ) == [("req-1", 1_000, 250)]


def test_array_and_ndjson_bodies_are_accepted(client: TestClient, tenant: TenantKeys, engine: Engine) -> None:
    batch = [usage_event() for _ in range(3)]
    assert client.post("/v1/events", json=batch, headers=tenant.ingest).json() == {"accepted": 3, "duplicates": 0}
    ndjson = "\n".join(json.dumps(usage_event()) for _ in range(2)) + "\n"
    response = client.post(
        "/v1/events", content=ndjson, headers={**tenant.ingest, "Content-Type": "application/x-ndjson"}
    )
    assert response.json() == {"accepted": 2, "duplicates": 0}
    assert stored(engine, tenant, "SELECT count(*) FROM usage_events WHERE tenant_id = :tenant") == [(5,)]


def test_a_gzip_compressed_body_is_read_and_a_bad_or_unknown_encoding_is_refused(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    batch = json.dumps([usage_event() for _ in range(3)]).encode()
    zipped = {**tenant.ingest, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = client.post("/v1/events", content=gzip.compress(batch), headers=zipped)
    assert response.json() == {"accepted": 3, "duplicates": 0}
    assert stored(engine, tenant, "SELECT count(*) FROM usage_events WHERE tenant_id = :tenant") == [(3,)]

    not_gzip = client.post("/v1/events", content=batch, headers=zipped)
    assert (not_gzip.status_code, not_gzip.json()["error"]["message"]) == (
        400,
        "the body is not valid gzip: Error -3 while decompressing data: incorrect header check",
    )
    brotli = client.post("/v1/events", content=batch, headers={**zipped, "Content-Encoding": "br"})
    assert (brotli.status_code, brotli.json()["error"]["message"]) == (
        415,
        "Content-Encoding 'br' is not supported; send gzip or none",
    )


def test_a_body_that_decompresses_past_the_limit_is_413(settings: Settings, engine: Engine, tenant: TenantKeys) -> None:
    from ledger.server import create_app

    small = settings.model_copy(update={"max_body_bytes": 10_000})
    bomb = gzip.compress(b"[" + b" " * 1_000_000 + b"]")  # 1 MB of spaces, a few KB compressed
    with TestClient(create_app(small, engine=engine)) as limited:
        response = limited.post("/v1/events", content=bomb, headers={**tenant.ingest, "Content-Encoding": "gzip"})
    assert (response.status_code, response.json()["error"]["message"]) == (
        413,
        "the decompressed body is over 10000 bytes",
    )


def test_a_retry_with_another_occurred_at_is_a_duplicate_not_a_second_event(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    first = usage_event(event_id="retry-me", occurred_at="2026-10-31T23:59:59+00:00", input_tokens=500)
    retry = {**first, "occurred_at": "2026-11-01T00:00:02+00:00"}
    assert client.post("/v1/events", json=first, headers=tenant.ingest).json() == {"accepted": 1, "duplicates": 0}
    assert client.post("/v1/events", json=retry, headers=tenant.ingest).json() == {"accepted": 0, "duplicates": 1}
    assert client.post("/v1/events", json=[first, first], headers=tenant.ingest).json() == {
        "accepted": 0,
        "duplicates": 2,
    }
    assert stored(engine, tenant, "SELECT event_id, occurred_at FROM usage_events WHERE tenant_id = :tenant") == [
        ("retry-me", datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC))
    ]
    assert stored(
        engine, tenant, "SELECT sum(requests), sum(input_tokens) FROM usage_hourly WHERE tenant_id = :tenant"
    ) == [(1, 500)]


def test_repeats_inside_one_request_count_once(client: TestClient, tenant: TenantKeys) -> None:
    event = usage_event(event_id="twice")
    assert client.post("/v1/events", json=[event, event], headers=tenant.ingest).json() == {
        "accepted": 1,
        "duplicates": 1,
    }


def test_provider_request_id_serves_as_the_event_id(client: TestClient, tenant: TenantKeys, engine: Engine) -> None:
    event = usage_event(event_id=None, provider_request_id="chatcmpl-abc123")
    assert client.post("/v1/events", json=event, headers=tenant.ingest).status_code == 202
    assert client.post("/v1/events", json=event, headers=tenant.ingest).json() == {"accepted": 0, "duplicates": 1}
    assert stored(engine, tenant, "SELECT event_id FROM usage_events WHERE tenant_id = :tenant") == [
        ("chatcmpl-abc123",)
    ]


def test_defaults_fill_the_optional_fields(client: TestClient, tenant: TenantKeys) -> None:
    event = {
        "event_id": "minimal",
        "occurred_at": "2026-10-05T10:00:00Z",
        "provider": "mistral",
        "request_model": "mistral-large-latest",
        "input_tokens": 10,
        "output_tokens": 5,
    }
    assert client.post("/v1/events", json=event, headers=tenant.ingest).status_code == 202
    listed = client.get("/v1/events", headers=tenant.read).json()["events"][0]
    assert listed["response_model"] == "mistral-large-latest"
    assert listed["status_code"] == 200
    assert listed["stream"] is False
    assert listed["cache_read_input_tokens"] == 0
    assert listed["finish_reason"] is None


def test_an_event_in_a_past_month_creates_that_months_partition(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    event = usage_event(occurred_at="2023-02-14T08:30:00+01:00")
    assert client.post("/v1/events", json=event, headers=tenant.ingest).status_code == 202
    with engine.connect() as conn:
        partition = conn.scalar(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent "
                "WHERE p.relname = 'usage_events' AND c.relname = 'usage_events_2023_02'"
            )
        )
    assert partition == "usage_events_2023_02"
    assert stored(engine, tenant, "SELECT count(*) FROM usage_events_2023_02 WHERE tenant_id = :tenant") == [(1,)]


def test_rollup_totals_equal_the_events_after_concurrent_ingests(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    base = datetime(2026, 10, 7, 11, 0, tzinfo=UTC)

    def send(worker: int) -> None:
        for n in range(10):
            batch = [
                usage_event(
                    occurred_at=(base + timedelta(minutes=7 * n + i)).isoformat(),
                    input_tokens=1_000 + worker * 10 + i,
                    output_tokens=100 + n,
                    status_code=429 if i == 0 else 200,
                    error_type="rate_limit" if i == 0 else None,
                    stream=i % 2 == 0,
                    finish_reason=None if i == 2 else "stop",
                    account=f"proj_{worker % 3}",
                )
                for i in range(5)
            ]
            assert client.post("/v1/events", json=batch, headers=tenant.ingest).status_code == 202

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(8)))

    events = stored(
        engine,
        tenant,
        "SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cache_read_input_tokens), "
        "count(*) FILTER (WHERE status_code = 429), "
        "count(*) FILTER (WHERE stream AND status_code BETWEEN 200 AND 299), "
        "count(*) FILTER (WHERE finish_reason IS NULL) FROM usage_events WHERE tenant_id = :tenant",
    )
    rollup = stored(
        engine,
        tenant,
        "SELECT sum(requests), sum(input_tokens), sum(output_tokens), sum(cache_read_input_tokens), sum(status_429), "
        "sum(streamed), sum(finish_missing) FROM usage_hourly WHERE tenant_id = :tenant",
    )
    assert events == rollup
    assert events[0][0] == 400
    daily = stored(
        engine,
        tenant,
        "SELECT sum(requests), sum(input_tokens), sum(output_tokens), sum(cache_read_input_tokens), sum(status_429), "
        "sum(streamed), sum(finish_missing) FROM usage_daily WHERE tenant_id = :tenant",
    )
    assert daily == rollup
    histogram_total = stored(
        engine, tenant, "SELECT sum(n) FROM usage_hourly, unnest(latency_histogram) AS n WHERE tenant_id = :tenant"
    )
    assert histogram_total == [(400,)]
    daily_histogram_total = stored(
        engine, tenant, "SELECT sum(n) FROM usage_daily, unnest(latency_histogram) AS n WHERE tenant_id = :tenant"
    )
    assert daily_histogram_total == [(400,)]


def test_reported_costs_add_up_exactly_in_the_rollup(client: TestClient, tenant: TenantKeys) -> None:
    batch = [
        usage_event(occurred_at="2026-10-09T10:00:00Z", reported_cost="0.0235224"),
        usage_event(occurred_at="2026-10-09T10:05:00Z", reported_cost=0.1),
        usage_event(occurred_at="2026-10-09T10:10:00Z", account="proj_other"),
    ]
    assert client.post("/v1/events", json=batch, headers=tenant.ingest).status_code == 202
    body = client.get("/v1/usage", params={"period": "2026-10"}, headers=tenant.read).json()
    assert body["rows"][0]["reported_cost"].rstrip("0") == "0.1235224"


def test_a_raw_usage_object_is_kept_with_every_digit_of_its_cost(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    usage = (
        '{"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280, '
        '"cost": 0.000123456789012345678901, "cost_details": {"upstream_inference_cost": 1e-7}}'
    )
    body = (
        '{"event_id": "or-1", "occurred_at": "2026-10-07T11:05:00Z", "provider": "openrouter", '
        f'"request_model": "openai/gpt-5.4-mini", "usage": {usage}}}'
    )
    response = client.post("/v1/events", content=body, headers={**tenant.ingest, "Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    (row,) = stored(
        engine,
        tenant,
        "SELECT reported_cost, usage_raw->>'cost', usage_raw->'cost_details'->>'upstream_inference_cost' "
        "FROM usage_events WHERE tenant_id = :tenant",
    )
    assert row == (Decimal("0.0001234568"), "0.000123456789012345678901", "0.0000001")


def test_one_hour_cache_writes_and_web_searches_are_taken_listed_and_rolled_up(
    client: TestClient, tenant: TenantKeys
) -> None:
    event = usage_event(
        occurred_at="2026-10-09T10:00:00Z",
        provider="anthropic",
        request_model="claude-sonnet-4-6",
        input_tokens=5_000,
        cache_read_input_tokens=0,
        cache_creation_input_tokens=3_000,
        cache_creation_1h_input_tokens=2_000,
        web_search_requests=2,
    )
    assert client.post("/v1/events", json=event, headers=tenant.ingest).status_code == 202

    (listed,) = client.get("/v1/events", params={"period": "2026-10"}, headers=tenant.read).json()["events"]
    assert (listed["cache_creation_1h_input_tokens"], listed["web_search_requests"]) == (2_000, 2)
    (row,) = client.get("/v1/usage", params={"period": "2026-10"}, headers=tenant.read).json()["rows"]
    assert (row["cache_creation_1h_input_tokens"], row["web_search_requests"]) == (2_000, 2)

    more_than_written = {**event, "event_id": "too-many-1h", "cache_creation_1h_input_tokens": 3_001}
    response = client.post("/v1/events", json=more_than_written, headers=tenant.ingest)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "cache_creation_1h_input_tokens"
