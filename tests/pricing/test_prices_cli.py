"""A tenant's own prices: set one, import a file of them, list what is in effect."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ledger.access.auth import tenant_by_name
from ledger.cli.main import app
from ledger.errors import InvalidRequest
from ledger.pricing.catalog import add_overrides, load_catalog
from ledger.pricing.prices import PriceRow, TokenUsage
from ledger.storage.database import session_factory
from tests.conftest import TenantKeys

HEADER = (
    "provider,model,token_type,service_tier,context_threshold,unit_price,unit,currency,valid_from,valid_to,"
    "window,source,source_date\n"
)


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    return CliRunner()


def cost_of(engine: Engine, tenant: TenantKeys, provider: str, model: str, usage: TokenUsage) -> object:
    with session_factory(engine)() as session:
        from ledger.access.auth import tenant_by_name

        catalog = load_catalog(session, tenant_by_name(session, tenant.name).id)
        return catalog.cost(provider, model, usage, at=datetime(2026, 10, 15, 12, tzinfo=UTC))


def test_a_negotiated_price_wins_over_the_list_price(cli: CliRunner, tenant: TenantKeys, engine: Engine) -> None:
    million_in = TokenUsage(uncached_input=1_000_000)
    assert cost_of(engine, tenant, "anthropic", "claude-sonnet-4-6", million_in).total == 3
    result = cli.invoke(
        app,
        [
            "prices",
            "set",
            "--tenant",
            tenant.name,
            "--provider",
            "anthropic",
            "--model",
            "claude-sonnet-4-6",
            "--token-type",
            "input",
            "--price",
            "2.40",
            "--from",
            "2026-10-01",
            "--source",
            "MSA 2026 discount",
        ],
    )
    assert result.exit_code == 0, result.output
    assert cost_of(engine, tenant, "anthropic", "claude-sonnet-4-6", million_in).total == Decimal("2.40")
    listed = cli.invoke(
        app,
        [
            "prices",
            "list",
            "--tenant",
            tenant.name,
            "--provider",
            "anthropic",
            "--model",
            "claude-sonnet-4-6",
            "--at",
            "2026-10-15",
        ],
    )
    assert "2.4 USD" in listed.output
    assert "tenant" in listed.output  # the layer it comes from
    assert "MSA 2026 discount" in listed.output  # its source


def test_a_self_hosted_model_priced_per_token_from_a_file(
    cli: CliRunner, tenant: TenantKeys, engine: Engine, tmp_path: Path
) -> None:
    prices = tmp_path / "vllm.csv"
    prices.write_text(
        HEADER + "vllm,llama-4-70b,input,standard,0,0.20,1M tokens,USD,2026-09-01,,,GPU cost/throughput,2026-09-01\n"
        "vllm,llama-4-70b,output,standard,0,0.60,1M tokens,USD,2026-09-01,,,GPU cost/throughput,2026-09-01\n"
    )
    result = cli.invoke(app, ["prices", "import", str(prices), "--provider", "vllm", "--tenant", tenant.name])
    assert result.exit_code == 0, result.output
    assert "2 prices imported" in result.output
    cost = cost_of(engine, tenant, "vllm", "llama-4-70b", TokenUsage(uncached_input=500_000, output=100_000))
    assert cost.total == Decimal("0.16")
    assert cost.unpriced == ()


def test_a_bad_price_file_names_the_line_and_column_and_writes_nothing(
    cli: CliRunner, tenant: TenantKeys, engine: Engine, tmp_path: Path
) -> None:
    prices = tmp_path / "bad.csv"
    prices.write_text(
        HEADER + "vllm,m,input,standard,0,0.20,1M tokens,USD,2026-09-01,,,x,2026-09-01\n"
        "vllm,m,output,standard,0,cheap,1M tokens,USD,2026-09-01,,,x,2026-09-01\n"
    )
    result = cli.invoke(app, ["prices", "import", str(prices), "--provider", "vllm", "--tenant", tenant.name])
    assert result.exit_code == 1
    assert result.output.strip() == "error: bad.csv:3: column 'unit_price': not a decimal number (value 'cheap')"
    assert cost_of(engine, tenant, "vllm", "m", TokenUsage(uncached_input=10)).unpriced == ("input",)


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("1e400", "unit_price 1E+400 is too large for a stored price (below 10,000,000,000)"),
        ("0.000000000002", "unit_price 2E-12 has more than 10 decimal places, which a stored price would round away"),
    ],
)
def test_a_price_that_would_not_be_stored_exactly_is_refused(
    cli: CliRunner, tenant: TenantKeys, engine: Engine, price: str, message: str
) -> None:
    result = cli.invoke(
        app,
        ["prices", "set", "--provider", "vllm", "--model", "m", "--token-type", "input", "--price", price,
         "--tenant", tenant.name],
    )  # fmt: skip

    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert cost_of(engine, tenant, "vllm", "m", TokenUsage(uncached_input=10)).unpriced == ("input",)


def test_two_people_setting_the_same_price_at_once_cannot_store_a_clash(tenant: TenantKeys, engine: Engine) -> None:
    """Both check against the prices stored so far; without taking turns, both would pass and store two prices
    for the same model and time, and every later reconciliation of the tenant would refuse its catalog."""
    with session_factory(engine)() as session:
        tenant_id = tenant_by_name(session, tenant.name).id
    start = threading.Barrier(2)

    def set_price(price: str) -> str:
        row = PriceRow(
            provider="vllm", model="m", token_type="input", service_tier="standard", context_threshold=0,
            unit_price=Decimal(price), unit="1M tokens", currency="USD", valid_from=datetime(2026, 1, 1, tzinfo=UTC),
            valid_to=None, window=None, source="contract", source_date=date(2026, 1, 1),
        )  # fmt: skip
        try:
            with session_factory(engine).begin() as session:
                start.wait()
                add_overrides(session, tenant_id, [row], now=datetime.now(UTC))
        except InvalidRequest as refused:
            return str(refused)
        return "stored"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(set_price, ["0.20", "0.30"]))

    assert outcomes[1] == "stored"
    assert "both price vllm/m/input/standard" in outcomes[0]
    assert cost_of(engine, tenant, "vllm", "m", TokenUsage(uncached_input=10)).unpriced == ()


def test_a_file_that_is_not_text_or_a_day_that_is_no_date_is_one_line_naming_it(
    cli: CliRunner, tenant: TenantKeys, tmp_path: Path
) -> None:
    binary = tmp_path / "prices.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe")

    not_text = cli.invoke(app, ["prices", "import", str(binary), "--provider", "vllm", "--tenant", tenant.name])
    no_day = cli.invoke(app, ["prices", "list", "--at", "2026-99-99"])

    assert not_text.exit_code == no_day.exit_code == 1
    assert not_text.output.strip() == "error: prices.xlsx: not UTF-8 text (byte 4: invalid start byte)"
    assert no_day.output.strip() == "error: --at: expected a day such as 2026-10-15, got '2026-99-99'"


def test_an_unknown_model_stays_unpriced_never_zero(tenant: TenantKeys, engine: Engine) -> None:
    cost = cost_of(engine, tenant, "openai", "gpt-imaginary", TokenUsage(uncached_input=10, output=5))
    assert cost.unpriced == ("input", "output")
    assert cost.currency is None


def set_price(cli: CliRunner, tenant: TenantKeys, *options: str) -> None:
    result = cli.invoke(
        app,
        ["prices", "set", "--tenant", tenant.name, "--token-type", "input", "--from", "2026-10-01", *options],
    )
    assert result.exit_code == 0, result.output


def billed_cost(engine: Engine, tenant: TenantKeys, billed_by: str, model: str, account: str | None = None) -> object:
    """What 1M input tokens of `model` cost when `billed_by` bills them (to `account`), as the reconciler prices
    them: a gateway's usage at the upstream provider's list price."""
    from ledger.pricing.prices import pricing_provider_of

    with session_factory(engine)() as session:
        catalog = load_catalog(session, tenant_by_name(session, tenant.name).id)
        return catalog.cost(
            pricing_provider_of(billed_by, model),
            model,
            TokenUsage(uncached_input=1_000_000),
            at=datetime(2026, 10, 15, 12, tzinfo=UTC),
            billed_by=billed_by,
            account=account,
        ).total


def test_a_negotiated_price_holds_for_the_provider_that_bills_it_only(
    cli: CliRunner, tenant: TenantKeys, engine: Engine
) -> None:
    set_price(cli, tenant, "--provider", "anthropic", "--model", "claude-sonnet-4-5", "--price", "2.40")

    assert billed_cost(engine, tenant, "anthropic", "claude-sonnet-4-5-20250929") == Decimal("2.40")
    # The same model bought through OpenRouter or Bedrock keeps its list price there.
    assert billed_cost(engine, tenant, "openrouter", "anthropic/claude-sonnet-4.5") == Decimal(3)
    assert billed_cost(engine, tenant, "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0") == Decimal(3)

    set_price(cli, tenant, "--provider", "openrouter", "--model", "anthropic/claude-sonnet-4.5", "--price", "2.70")
    assert billed_cost(engine, tenant, "openrouter", "anthropic/claude-sonnet-4.5") == Decimal("2.70")


def test_a_price_for_one_account_wins_there_and_nowhere_else(
    cli: CliRunner, tenant: TenantKeys, engine: Engine
) -> None:
    set_price(cli, tenant, "--provider", "openai", "--model", "gpt-4.1", "--price", "1.80")
    set_price(
        cli, tenant, "--provider", "openai", "--account", "proj_big", "--model", "gpt-4.1", "--price", "1.50",
        "--until", "2026-11-01",
    )  # fmt: skip

    assert billed_cost(engine, tenant, "openai", "gpt-4.1", "proj_big") == Decimal("1.50")
    assert billed_cost(engine, tenant, "openai", "gpt-4.1", "proj_small") == Decimal("1.80")
    listed = cli.invoke(app, ["prices", "list", "--tenant", tenant.name, "--provider", "openai", "--model", "gpt-4.1"])
    assert "openai (proj_big)" not in listed.output  # no longer in effect today (--until 2026-11-01)


def test_a_price_file_for_another_provider_is_refused_naming_the_line(
    cli: CliRunner, tenant: TenantKeys, tmp_path: Path
) -> None:
    prices = tmp_path / "negotiated.csv"
    prices.write_text(
        HEADER + "anthropic,claude-sonnet-4-5,input,standard,0,2.4,1M tokens,USD,2026-10-01,,,MSA,2026-10-01\n"
    )

    result = cli.invoke(app, ["prices", "import", str(prices), "--provider", "openrouter", "--tenant", tenant.name])

    assert result.exit_code == 1
    assert (
        "negotiated.csv:2: column 'provider' is 'anthropic', but these prices are imported for --provider openrouter"
    ) in result.output


def test_prices_list_says_which_layer_and_data_each_price_comes_from(cli: CliRunner) -> None:
    listed = cli.invoke(app, ["prices", "list", "--provider", "openai", "--model", "gpt-4o", "--at", "2026-10-15"])

    assert listed.exit_code == 0, listed.output
    assert "genai-prices 0.2." in listed.output.splitlines()[0]
    assert "bundled snapshot" in listed.output.splitlines()[0]
    assert "genai-prices" in listed.output.split("\n", 1)[1]  # the layer column
    assert "https://pypi.org/project/genai-prices/" in listed.output


def test_prices_update_without_network_says_so_and_keeps_the_data_in_use(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setenv("TOKENLEDGER_DATA_DIR", str(tmp_path))
    with socket.socket() as probe:  # a port nobody listens on: the connection is refused, as offline
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]

    result = cli.invoke(app, ["prices", "update", "--url", f"http://127.0.0.1:{closed}/data.json", "--timeout", "2"])

    assert result.exit_code == 1
    assert "could not update the price data" in result.output
    assert "Still using genai-prices 0.2." in result.output
    assert list(tmp_path.iterdir()) == []
    listed = cli.invoke(app, ["prices", "list", "--provider", "openai", "--model", "gpt-4o", "--at", "2026-10-15"])
    assert "bundled snapshot" in listed.output.splitlines()[0]


def test_prices_update_stores_what_genai_prices_fetched_and_uses_it(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from genai_prices import data_snapshot

    from ledger.pricing.catalog import forget_loaded_prices

    document = json.dumps(
        [
            {
                "id": "openai",
                "name": "OpenAI",
                "api_pattern": "https://api\\.openai\\.com",
                "model_match": {"starts_with": "gpt-"},
                "models": [
                    {"id": "gpt-4o", "match": {"equals": "gpt-4o"}, "prices": {"input_mtok": 2, "output_mtok": 8}}
                ],
            }
        ]
    ).encode()

    class PriceData(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), PriceData)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("TOKENLEDGER_DATA_DIR", str(tmp_path))
    try:
        result = cli.invoke(app, ["prices", "update", "--url", f"http://127.0.0.1:{server.server_port}/data.json"])
        assert result.exit_code == 0, result.output
        assert "price data updated" in result.output
        assert (tmp_path / "genai-prices.json").read_bytes() == document
        listed = cli.invoke(app, ["prices", "list", "--provider", "openai", "--model", "gpt-4o", "--at", "2026-10-15"])
        assert "genai-prices data fetched" in listed.output.splitlines()[0]
        assert "(1 models)" in listed.output.splitlines()[0]
    finally:
        server.shutdown()
        monkeypatch.delenv("TOKENLEDGER_DATA_DIR")
        data_snapshot.set_custom_snapshot(None)
        forget_loaded_prices()


def test_a_provider_without_prices_is_one_line_naming_those_with_prices(cli: CliRunner) -> None:
    result = cli.invoke(app, ["prices", "list", "--provider", "nosuch", "--at", "2026-10-15"])
    assert result.exit_code == 1
    assert result.output.startswith("error: no price in effect on 2026-10-15 matches --provider nosuch; ")
    assert "anthropic, " in result.output
