"""What the reconciler reads as logged usage: the rollups priced by the catalog in effect when the usage
happened — a model with peak and off-peak prices costs exactly what pricing each request at its own hour
would, though its day is read as a few price segments rather than 24 hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ledger.periods import Period
from ledger.pricing.prices import PriceCatalog, load_bundled_prices
from ledger.queries.logged_days import load_logged_days
from ledger.reconciliation.run import reconcile_period
from ledger.settings import Settings
from ledger.storage.database import session_factory
from tests.conftest import TenantKeys
from tests.events_factory import usage_event

CATEGORIES = {"uncached_input": "input", "cached_input": "cached_input", "output": "output"}


def test_time_of_day_prices_cost_what_each_request_cost_at_its_hour(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    catalog = PriceCatalog(load_bundled_prices())
    day = datetime(2026, 10, 14, tzinfo=UTC)
    events = post_a_day_of_usage(client, tenant, day)

    expected: dict[str, dict[str, Decimal]] = {}
    for event in events:
        hour = datetime.fromisoformat(event["occurred_at"]).replace(minute=0)
        cached = event["cache_read_input_tokens"]
        quantities = {"uncached_input": event["input_tokens"] - cached, "cached_input": cached,
                      "output": event["output_tokens"]}  # fmt: skip
        costs = expected.setdefault(event["request_model"], dict.fromkeys(CATEGORIES, Decimal(0)))
        for category, token_type in CATEGORIES.items():
            row = catalog.unit_price(event["provider"], event["request_model"], token_type, at=hour)
            assert row is not None
            costs[category] += quantities[category] * row.price_per_token()

    with session_factory(engine)() as session:
        tenant_id = session.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
        logged = load_logged_days(session, tenant_id, Period.month("2026-10"), catalog)
    assert {row.model for row in logged} == {"deepseek-v4-flash", "gpt-5.4"}
    for row in logged:
        assert row.day == day.date()
        assert row.requests == 24
        for category in CATEGORIES:
            assert row.expected_cost_by_category[category] == expected[row.model][category], (row.model, category)
    # A day of several price segments states the unit prices of its first (here, from midnight).
    (flash,) = [row for row in logged if row.model == "deepseek-v4-flash"]
    at_midnight = catalog.unit_price("deepseek", "deepseek-v4-flash", "output", at=day)
    at_peak = catalog.unit_price("deepseek", "deepseek-v4-flash", "output", at=day.replace(hour=2))
    assert at_midnight is not None
    assert at_peak is not None
    assert at_midnight.price_per_token() != at_peak.price_per_token()
    assert flash.expected_unit_price["output"] == at_midnight.price_per_token()


def test_a_reconciliation_inside_the_callers_transaction_reads_what_a_standalone_one_reads(
    client: TestClient, tenant: TenantKeys, engine: Engine, settings: Settings
) -> None:
    """A standalone run reads statement lines and price segments on a second connection meanwhile; a
    session bound to one connection (the caller's transaction) reads everything on it, with equal results."""
    post_a_day_of_usage(client, tenant, datetime(2026, 10, 20, tzinfo=UTC))
    period = Period.month("2026-10")

    with session_factory(engine)() as session:
        tenant_id = session.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
        standalone = reconcile_period(session, tenant_id=tenant_id, period=period, settings=settings)
    with engine.connect() as connection, Session(bind=connection) as session:
        inside = reconcile_period(session, tenant_id=tenant_id, period=period, settings=settings)

    assert {row.model for row in standalone.drift} == {"deepseek-v4-flash", "gpt-5.4"}
    assert all(row.expected_cost for row in standalone.drift)
    assert inside.drift == standalone.drift
    assert inside.findings == standalone.findings


def post_a_day_of_usage(client: TestClient, tenant: TenantKeys, day: datetime) -> list[dict[str, Any]]:
    """An event an hour, all day, for a model with peak and off-peak prices and for one with a flat price."""
    events = [
        usage_event(
            occurred_at=(day + timedelta(hours=hour, minutes=20)).isoformat(),
            provider=provider,
            request_model=model,
            account="acct",
            api_key_id="key",
            input_tokens=10_000 + hour * 100,
            cache_read_input_tokens=1_000 * (hour % 3),
            output_tokens=500 + hour,
        )
        for hour in range(24)
        for provider, model in (("deepseek", "deepseek-v4-flash"), ("openai", "gpt-5.4"))
    ]
    assert client.post("/v1/events", json=events, headers=tenant.ingest).status_code == 202
    return events


def test_a_statement_day_summing_to_a_negative_quantity_stops_the_run_naming_it() -> None:
    """Statement days are read without re-checking what their columns guarantee; the core checks them once at its
    door, so a net negative quantity (a correction line larger than the usage it corrects), or a currency that is
    no code, stops the run with the statement scope and field named."""
    from datetime import date

    import pytest

    from ledger.periods import Period
    from ledger.queries.billed_days import billed_days
    from ledger.reconcile import BilledDay, ReconcileInputError, ReconcileSettings, reconcile

    def row(uncached: int, currency: str | None = None) -> tuple[object, ...]:
        quantities = (Decimal(uncached), None, None, None, Decimal(500))
        amounts = (None,) * 5
        return ("openai", "proj_1", "key_1", "gpt-5.4", None, date(2026, 10, 3), *quantities, *amounts,
                Decimal(10), None, currency, True, "csv")  # fmt: skip

    (plain,) = billed_days([row(1_000)])
    assert dict(plain.quantities) == {"uncached_input": 1_000, "output": 500}

    def reconciled(billed: list[BilledDay]) -> None:
        reconcile([], billed, period=Period.month("2026-10"), settings=ReconcileSettings())

    with pytest.raises(
        ReconcileInputError, match=r"BilledDay\[csv: openai/proj_1/key_1/gpt-5.4 2026-10-03\]\.quantities"
    ):
        reconciled(billed_days([row(-1_000)]))
    with pytest.raises(ReconcileInputError, match=r"\.currency: must be an ISO-4217 code, got 'EURO'"):
        reconciled(billed_days([row(1_000, currency="euro")]))


def test_a_price_negotiated_from_mid_month_prices_the_days_before_and_after_it_apart(
    client: TestClient, tenant: TenantKeys, engine: Engine, database_url: str, monkeypatch: Any
) -> None:
    """Prices are looked up once per span in which they do not change: a tenant price from 15 October prices
    the 16th, and the list price still prices the 14th."""
    from typer.testing import CliRunner

    from ledger.cli import app
    from ledger.pricing.catalog import load_catalog

    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    price = ["prices", "set", "--tenant", tenant.name, "--provider", "openai", "--model", "gpt-5.4"]
    price += ["--token-type", "output", "--price", "9.00", "--from", "2026-10-15", "--source", "MSA"]
    assert CliRunner().invoke(app, price).exit_code == 0
    for day in (14, 16):
        event = usage_event(occurred_at=f"2026-10-{day}T12:00:00+00:00", request_model="gpt-5.4", output_tokens=1_000)
        assert client.post("/v1/events", json=[event], headers=tenant.ingest).status_code == 202

    with session_factory(engine)() as session:
        tenant_id = session.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
        catalog = load_catalog(session, tenant_id)
        logged = load_logged_days(session, tenant_id, Period.month("2026-10"), catalog)

    output_cost = {row.day.day: row.expected_cost_by_category["output"] for row in logged}
    assert output_cost == {14: Decimal("0.015"), 16: Decimal("0.009")}  # $15 list, then $9 per 1M
