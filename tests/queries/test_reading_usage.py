"""Reading back: listing events page by page, rollup totals, and one tenant never seeing another's data."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ledger.server import create_app
from ledger.settings import Settings
from tests.conftest import TenantKeys, make_tenant
from tests.events_factory import usage_event


def seed(client: TestClient, tenant: TenantKeys) -> None:
    events = [
        usage_event(
            event_id=f"e{n:02d}",
            occurred_at=f"2026-10-{1 + n % 3:02d}T{n % 24:02d}:15:00Z",
            provider="anthropic" if n % 2 else "openai",
            request_model="m-a" if n % 2 else "m-b",
            input_tokens=100 * (n + 1),
            output_tokens=10,
            cache_read_input_tokens=0,
            app="batch" if n < 5 else "chat",
        )
        for n in range(12)
    ]
    assert client.post("/v1/events", json=events, headers=tenant.ingest).status_code == 202


def test_events_are_listed_in_pages_without_gaps_or_repeats(client: TestClient, tenant: TenantKeys) -> None:
    seed(client, tenant)
    seen, cursor = [], None
    while True:
        params = {"limit": 5, "period": "2026-10"} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/events", params=params, headers=tenant.read).json()
        seen += [event["event_id"] for event in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"e{n:02d}" for n in range(12)]
    assert len(seen) == 12
    filtered = client.get("/v1/events", params={"provider": "anthropic", "app": "chat"}, headers=tenant.read).json()
    assert {event["event_id"] for event in filtered["events"]} == {"e05", "e07", "e09", "e11"}


def test_usage_totals_group_by_any_dimension(client: TestClient, tenant: TenantKeys) -> None:
    seed(client, tenant)
    body = client.get(
        "/v1/usage", params={"period": "2026-10", "group_by": "provider,model"}, headers=tenant.read
    ).json()
    rows = {(row["provider"], row["model"]): row for row in body["rows"]}
    assert set(rows) == {("anthropic", "m-a"), ("openai", "m-b")}
    assert rows[("openai", "m-b")]["requests"] == 6
    assert rows[("openai", "m-b")]["input_tokens"] == sum(100 * (n + 1) for n in range(0, 12, 2))
    by_day = client.get("/v1/usage", params={"period": "2026-10", "group_by": ["day"]}, headers=tenant.read).json()
    assert [row["requests"] for row in by_day["rows"]] == [4, 4, 4]
    total = client.get(
        "/v1/usage", params={"since": "2026-10-02T00:00:00Z", "until": "2026-10-03T00:00:00Z"}, headers=tenant.read
    ).json()
    assert total["rows"][0]["requests"] == 4


def test_reported_cost_is_exact_digits_and_unknown_where_nobody_reported_one(
    client: TestClient, tenant: TenantKeys
) -> None:
    events = [
        usage_event(occurred_at="2026-10-04T10:00:00Z", provider="openrouter", reported_cost="0.0123"),
        usage_event(occurred_at="2026-10-04T11:00:00Z", provider="openrouter", reported_cost=1),
        usage_event(occurred_at="2026-10-04T12:00:00Z", provider="openai"),
    ]
    assert client.post("/v1/events", json=events, headers=tenant.ingest).status_code == 202
    rows = client.get("/v1/usage", params={"period": "2026-10", "group_by": "provider"}, headers=tenant.read).json()
    assert {row["provider"]: row["reported_cost"] for row in rows["rows"]} == {"openai": None, "openrouter": "1.0123"}
    listed = client.get("/v1/events", params={"provider": "openrouter"}, headers=tenant.read).json()["events"]
    assert sorted(event["reported_cost"] for event in listed) == ["0.0123", "1"]


def test_usage_rejects_unknown_groupings_and_missing_ranges(client: TestClient, tenant: TenantKeys) -> None:
    response = client.get("/v1/usage", params={"period": "2026-10", "group_by": "colour"}, headers=tenant.read)
    assert response.status_code == 422
    assert "colour" in response.json()["error"]["message"]
    assert client.get("/v1/usage", headers=tenant.read).status_code == 422
    assert client.get("/v1/usage", params={"period": "October"}, headers=tenant.read).status_code == 422


def test_a_tenant_sees_only_its_own_usage(client: TestClient, tenant: TenantKeys, engine: Engine) -> None:
    seed(client, tenant)
    other = make_tenant(engine)
    assert client.get("/v1/events", headers=other.read).json() == {"events": [], "next_cursor": None}
    assert client.get("/v1/usage", params={"period": "2026-10"}, headers=other.read).json()["rows"] == []
    # the same event id in another tenant is that tenant's own event, not a duplicate
    same_id = usage_event(event_id="e00", occurred_at="2026-10-01T00:15:00Z")
    assert client.post("/v1/events", json=same_id, headers=other.ingest).json() == {"accepted": 1, "duplicates": 0}
    assert len(client.get("/v1/events", params={"period": "2026-10"}, headers=tenant.read).json()["events"]) == 12


def test_an_ingest_key_cannot_read(client: TestClient, tenant: TenantKeys) -> None:
    assert client.get("/v1/events", headers=tenant.ingest).status_code == 403
    assert client.get("/v1/events", headers=tenant.admin).status_code == 200


def test_health_readiness_and_metrics(client: TestClient, tenant: TenantKeys) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok"}
    client.post("/v1/events", json=[usage_event(), usage_event()], headers=tenant.ingest)
    client.post("/v1/events", json=usage_event(output_tokens=-1), headers=tenant.ingest)
    metrics = client.get("/metrics").text
    assert "tokenledger_events_accepted_total 2.0" in metrics
    assert "tokenledger_events_rejected_total 1.0" in metrics
    assert "tokenledger_commit_batch_events_bucket" in metrics
    assert "tokenledger_commit_seconds_count" in metrics


def test_the_metrics_can_be_kept_to_the_operator_with_a_token(database_url: str, engine: Engine) -> None:
    settings = Settings(database_url=database_url, scheduler_enabled=False, metrics_token="scrape-me")
    with TestClient(create_app(settings, engine=engine)) as client:
        anonymous = client.get("/metrics")
        tenant_key = client.get("/metrics", headers=make_tenant(engine).admin)
        non_ascii = client.get("/metrics", headers={"Authorization": "Bearer scrapé".encode()})
        operator = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})

    assert (anonymous.status_code, tenant_key.status_code, non_ascii.status_code) == (401, 401, 401)
    assert "TOKENLEDGER_METRICS_TOKEN" in anonymous.json()["error"]["message"]
    assert operator.status_code == 200
    assert "tokenledger_events_accepted_total" in operator.text
