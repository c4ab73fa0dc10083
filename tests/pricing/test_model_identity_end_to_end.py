"""Model identity across statements and logged usage, end to end: usage through the ingest API, statements
through `tokenledger import`, the month through `tokenledger reconcile`. A Bedrock FOCUS export names Claude
Sonnet 4.5 by usage type, inference-profile ARN and product name and matches the logged usage; a label no
known model answers to is *unmatched* (listed with the command that fixes it), never a finding by itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.cli.main import app
from tests.conftest import TenantKeys
from tests.events_factory import usage_event
from tests.months import sign_in

DAY = datetime(2026, 10, 6, tzinfo=UTC)
FOCUS_HEADER = (
    "BilledCost,BillingCurrency,ChargeCategory,ChargeDescription,ChargePeriodStart,ChargePeriodEnd,"
    "ConsumedQuantity,ConsumedUnit,ProviderName,ResourceId,ServiceCategory,ServiceName,SkuMeter,SubAccountId,"
    "x_UsageType"
)
PROFILE_ARN = "arn:aws:bedrock:us-east-1:444455556666:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
BILLING_FINDINGS = {"model_substitution", "unlogged_usage", "unbilled_usage"}


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    return CliRunner()


def post_usage(client: TestClient, tenant: TenantKeys, provider: str, model: str, account: str) -> dict[str, int]:
    """Twenty requests on DAY; returns the tokens per statement category."""
    events = [
        usage_event(
            occurred_at=(DAY + timedelta(hours=hour)).isoformat(),
            provider=provider,
            account=account,
            api_key_id=None,
            request_model=model,
            input_tokens=120_000,
            cache_read_input_tokens=80_000,
            output_tokens=9_000,
        )
        for hour in range(20)
    ]
    assert client.post("/v1/events", json=events, headers=tenant.ingest).status_code == 202
    return {"uncached_input": 20 * 40_000, "cached_input": 20 * 80_000, "output": 20 * 9_000}


def focus_row(amount: Decimal, quantity: int, **columns: str) -> str:
    start, end = DAY.strftime("%Y-%m-%dT%H:%M:%SZ"), (DAY + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ",".join(
        [
            f"{amount}",
            "USD",
            "Usage",
            columns.get("description", ""),
            start,
            end,
            str(quantity),
            "Tokens",
            columns["provider"],
            columns.get("resource", ""),
            "AI and Machine Learning",
            columns["service"],
            columns.get("meter", ""),
            columns["account"],
            columns.get("usage_type", ""),
        ]
    )


def import_focus(cli: CliRunner, tenant: TenantKeys, path: Path, rows: list[str]) -> str:
    path.write_text("\n".join([FOCUS_HEADER, *rows]) + "\n", encoding="utf-8")
    result = cli.invoke(app, ["import", "focus", "--tenant", tenant.name, "--period", "2026-10", "--file", str(path)])
    assert result.exit_code == 0, result.output
    return result.output


def reconcile(cli: CliRunner, tenant: TenantKeys) -> str:
    result = cli.invoke(app, ["reconcile", "--tenant", tenant.name, "--period", "2026-10"])
    assert result.exit_code == 0, result.output
    return result.output


def findings(client: TestClient, tenant: TenantKeys) -> list[dict]:
    response = client.get("/v1/findings", params={"period": "2026-10"}, headers=tenant.read)
    assert response.status_code == 200, response.text
    return response.json()["findings"]


def drift(client: TestClient, tenant: TenantKeys) -> list[dict]:
    response = client.get("/v1/reconciliation", params={"period": "2026-10"}, headers=tenant.read)
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def test_a_bedrock_focus_export_of_claude_sonnet_4_5_matches_the_logged_usage(
    cli: CliRunner, client: TestClient, tenant: TenantKeys, tmp_path: Path
) -> None:
    """The export names the model `USE1-Claude4.5Sonnet-…` (usage type), by an inference-profile ARN on some
    rows only, and as "Claude Sonnet 4.5 (Amazon Bedrock Edition)": every row is claude-sonnet-4-5, billed to
    the cent what the logged usage costs, so there is nothing to report."""
    tokens = post_usage(client, tenant, "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "444455556666")
    per_million = {"uncached_input": Decimal(3), "cached_input": Decimal("0.3"), "output": Decimal(15)}
    suffixes = {
        "uncached_input": "input-tokens",
        "cached_input": "cache-read-input-token-count",
        "output": "output-tokens",
    }
    rows = [
        focus_row(
            tokens[category] * per_million[category] / 1_000_000,
            tokens[category],
            provider="AWS",
            service="Claude Sonnet 4.5 (Amazon Bedrock Edition)",
            account="444455556666",
            usage_type=f"USE1-Claude4.5Sonnet-{suffixes[category]}",
            resource=PROFILE_ARN if category != "output" else "",
        )
        for category in tokens
    ]

    imported = import_focus(cli, tenant, tmp_path / "bedrock_focus.csv", rows)
    output = reconcile(cli, tenant)

    assert "unmatched model" not in imported
    assert "claude4-5sonnet" not in imported.lower()
    assert "unpriced" not in output
    assert not [f for f in findings(client, tenant) if f["kind"] in BILLING_FINDINGS]
    [row] = drift(client, tenant)
    assert (row["provider"], row["model"]) == ("bedrock", "claude-sonnet-4-5")
    assert Decimal(row["expected_cost"]) == Decimal(row["billed_cost"]) == Decimal("5.58")


def azure_rows(tokens: dict[str, int], meter_model: str, *, scale: Decimal = Decimal(1)) -> list[str]:
    """An Azure FOCUS export of gpt-4.1 usage whose meters name the deployment, not the model."""
    per_million = {"uncached_input": Decimal(2), "cached_input": Decimal("0.5"), "output": Decimal(8)}
    words = {"uncached_input": "Input", "cached_input": "Cached Input", "output": "Output"}
    return [
        focus_row(
            tokens[category] * per_million[category] * scale / 1_000_000,
            int(tokens[category] * scale),
            provider="Microsoft",
            service="Azure OpenAI",
            account="sub-prod",
            meter=f"{meter_model} {words[category]} Tokens",
        )
        for category in tokens
    ]


def test_an_unmatched_label_billed_for_what_one_logged_model_used_is_probably_that_model(
    cli: CliRunner, client: TestClient, tenant: TenantKeys, tmp_path: Path
) -> None:
    tokens = post_usage(client, tenant, "azure", "gpt-4.1", "sub-prod")

    imported = import_focus(cli, tenant, tmp_path / "azure.csv", azure_rows(tokens, "Contoso Chat Deployment"))
    output = reconcile(cli, tenant)

    fix = "tokenledger models alias contoso-chat-deployment MODEL --provider azure"
    assert "unmatched model azure/contoso-chat-deployment (3 lines, 2,580,000 tokens)" in imported
    assert fix in imported
    assert not [f for f in findings(client, tenant) if f["kind"] in BILLING_FINDINGS]
    assert "probably the same model, alias it" in output
    assert "models alias contoso-chat-deployment gpt-4.1 --provider azure" in output
    [row] = drift(client, tenant)
    assert row["model"] == "gpt-4.1"
    assert "probably the same model" in row["note"]


def test_an_alias_makes_the_label_the_model_from_the_next_run(
    cli: CliRunner, client: TestClient, tenant: TenantKeys, tmp_path: Path
) -> None:
    """Billed 10% more than logged: not probably the same model, so the label is compared as itself until the
    tenant aliases it; then the excess is a finding on gpt-4.1 with its price impact."""
    tokens = post_usage(client, tenant, "azure", "gpt-4.1", "sub-prod")
    billed_more = azure_rows(tokens, "Contoso Chat Deployment", scale=Decimal("1.1"))
    import_focus(cli, tenant, tmp_path / "azure.csv", billed_more)

    before = reconcile(cli, tenant)
    assert "unmatched model azure/contoso-chat-deployment" in before
    sign_in(client, tenant.read["Authorization"].removeprefix("Bearer "))
    overview = client.get("/report/?period=2026-10").text
    assert "<strong>1</strong> statement label no known model answers to" in overview
    assert "tokenledger models alias contoso-chat-deployment MODEL --provider azure" in overview
    assert "genai-prices 0.2." in overview
    assert {f["model"] for f in findings(client, tenant) if f["kind"] == "unlogged_usage"} == {
        "contoso-chat-deployment"
    }

    aliased = cli.invoke(
        app, ["models", "alias", "Contoso Chat Deployment", "gpt-4.1", "--provider", "azure", "--tenant", tenant.name]
    )
    assert aliased.exit_code == 0, aliased.output
    after = reconcile(cli, tenant)

    assert "unmatched model" not in after
    assert "Every model the statements name is a known model." in client.get("/report/?period=2026-10").text
    assert "contoso-chat-deployment" not in after  # in neither the drift nor this run's findings
    assert not BILLING_FINDINGS & set(after.split())
    assert "quantity_mismatch" in after
    assert "0.48 USD" in after  # 240,000 input tokens billed beyond the logged, at gpt-4.1's $2 per 1M
    [row] = drift(client, tenant)
    assert row["model"] == "gpt-4.1"
    assert Decimal(row["billed_cost"]) - Decimal(row["expected_cost"]) == Decimal("0.384")


def test_an_alias_must_name_a_model_with_a_known_price(cli: CliRunner, tenant: TenantKeys) -> None:
    result = cli.invoke(
        app, ["models", "alias", "contoso-chat", "gpt-9-ultra", "--provider", "azure", "--tenant", tenant.name]
    )
    assert result.exit_code != 0
    assert "model 'gpt-9-ultra' has no known price for provider azure" in result.output


def test_an_alias_names_the_model_as_logged_usage_spells_it(cli: CliRunner, tenant: TenantKeys) -> None:
    """`mistral-large-latest` is priced as genai-prices' `mistral-large`, but logged usage of it is compared
    under its own name: the alias must name it so, or the label would match no logged usage."""
    result = cli.invoke(
        app,
        ["models", "alias", "Mistral Large 24.11", "mistral-large-latest", "--provider", "mistral",
         "--tenant", tenant.name],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "'Mistral Large 24.11' in mistral statements now names mistral-large-latest" in result.output
