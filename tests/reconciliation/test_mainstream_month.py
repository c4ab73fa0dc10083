"""A month of mainstream models reconciles with every model priced, and every billing finding on it carries a
money impact computed from the prices in effect (before genai-prices' data was the catalog's base layer, all of
them but Claude were unpriced, and those findings showed 0.00)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.cli.main import app
from ledger.pricing.catalog import shared_catalog
from tests import mainstream_month
from tests.conftest import TenantKeys


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    return CliRunner()


def list_price(provider: str, model: str, token_type: str, at: datetime) -> Decimal:
    row = shared_catalog().unit_price(provider, model, token_type, at=at)
    assert row is not None, (provider, model, token_type)
    return row.price_per_token() * 1_000_000


def test_a_month_of_mainstream_models_is_priced_and_every_finding_has_an_impact(
    cli: CliRunner, client: TestClient, tenant: TenantKeys, tmp_path: Path
) -> None:
    response = client.post("/v1/events", json=mainstream_month.events(), headers=tenant.ingest)
    assert response.status_code == 202, response.text
    export = mainstream_month.write_statement(tmp_path / "focus_2026-10.csv", list_price)
    imported = cli.invoke(app, ["import", "focus", "--file", str(export), "--tenant", tenant.name])
    assert imported.exit_code == 0, imported.output
    assert "unmatched model" not in imported.output

    output = cli.invoke(app, ["reconcile", "--period", "2026-10", "--tenant", tenant.name])

    assert output.exit_code == 0, output.output
    assert "unpriced" not in output.output
    drift = client.get("/v1/reconciliation", params={"period": "2026-10"}, headers=tenant.read).json()["rows"]
    assert {row["model"] for row in drift} >= {model for _, _, model in mainstream_month.MODELS}
    assert all(row["expected_cost"] is not None for row in drift)
    found = client.get("/v1/findings", params={"period": "2026-10"}, headers=tenant.read).json()["findings"]
    planted = {(f["kind"], f["model"]) for f in found}
    assert {
        ("cache_mischarge", "gpt-4o"),
        ("unlogged_usage", "deepseek-chat"),
        ("price_drift", "o4-mini"),
    } <= planted
    billing = [f for f in found if f["kind"] != "spend_spike"]
    assert billing
    assert all(Decimal(f["impact_usd"]) != 0 for f in billing), [(f["kind"], f["model"]) for f in billing]
