"""The report as a finance lead reads it, on the demo's month (usage through the ingest API, statements through
the importers, reconciled): drift over time in USD whose figures are the reconciler's, tokens compared like with
like, a headline that adds up, and tables that foot."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.cli.main import app as cli_app
from ledger.demo.setup import DemoResult
from tests.months import sign_in

CENT = Decimal("0.01")


def reconciliation_by_provider(client: TestClient | httpx.Client, demo: DemoResult) -> dict[str, dict[str, Decimal]]:
    headers = {"Authorization": f"Bearer {demo.read_key}"}
    rows = client.get("/v1/reconciliation", params={"period": demo.period}, headers=headers).json()["rows"]
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        for figure in ("expected_cost", "billed_cost"):
            if row[figure] is not None:
                totals[row["provider"]][figure] += Decimal(row[figure])
    return totals


def written(amount: str) -> Decimal:
    """A figure as the page writes it ("1,234.56 USD", "+3.20 USD") as a Decimal."""
    return Decimal(amount.replace(",", "").replace(" USD", "").replace("+", ""))


def provider_figures(html: str, provider: str) -> dict[str, Decimal]:
    section = html.split(f'data-provider="{provider}"', 1)[1].split("</section>", 1)[0]
    return {name: written(value) for name, value in re.findall(r'data-figure="(\w+)"[^>]*>([^<]+)</strong>', section)}


def chart_data(html: str, chart_id: str) -> dict:
    import json

    match = re.search(rf'<script type="application/json" id="{chart_id}-data">(.*?)</script>', html, re.S)
    assert match, f"no chart {chart_id}"
    return json.loads(match[1])


def test_drift_over_time_shows_the_reconcilers_money_per_provider(client: TestClient, demo_month: DemoResult) -> None:
    """Each provider's expected and billed USD on the drift page are GET /v1/reconciliation's, to the cent;
    the daily chart's figures add up to them."""
    expected = reconciliation_by_provider(client, demo_month)
    sign_in(client, demo_month.read_key)
    html = client.get("/report/drift", params={"period": demo_month.period}).text
    providers = re.findall(r'<section class="provider-money" data-provider="([^"]+)">', html)
    assert set(providers) == set(expected)
    for index, provider in enumerate(providers, start=1):
        shown = provider_figures(html, provider)
        api = expected[provider]
        assert shown["expected"] == api["expected_cost"].quantize(CENT, ROUND_HALF_UP), provider
        if "billed_cost" in api:
            assert shown["billed"] == api["billed_cost"].quantize(CENT, ROUND_HALF_UP), provider
        chart = chart_data(html, f"money-{index}")
        expected_days = [Decimal(v) for v in chart["datasets"][0]["data"]]
        assert sum(expected_days) == shown["expected"], provider


def test_a_price_overcharge_with_equal_tokens_shows_in_money(client: TestClient, demo_month: DemoResult) -> None:
    """The demo bills Anthropic's wrk_apps above the catalog price with the logged token counts: invisible in
    tokens, it is a positive difference in USD on the drift page narrowed to that account."""
    sign_in(client, demo_month.read_key)
    html = client.get(
        "/report/drift", params={"period": demo_month.period, "provider": "anthropic", "account": "wrk_apps"}
    ).text
    figures = provider_figures(html, "anthropic")
    assert figures["difference"] > 0
    assert figures["billed"] - figures["expected"] == figures["difference"]


def test_openrouter_tokens_are_compared_over_output_alone(client: TestClient, demo_month: DemoResult) -> None:
    """OpenRouter's activity states output tokens only: the token view sets logged output against billed
    output and says so, never every logged token against billed output."""
    sign_in(client, demo_month.read_key)
    html = client.get("/report/drift", params={"period": demo_month.period, "provider": "openrouter"}).text
    assert "Tokens: output only, as the statement states them" in html
    logged, billed = (
        int(value.replace(",", ""))
        for value in re.search(r"Logged ([\d,]+) tokens \(output only\); billed ([\d,]+)\.", html).groups()
    )
    assert abs(logged - billed) <= max(1_000, billed // 100)
    assert "Not compared, since the statement does not state them" in html


def test_the_overview_headline_adds_up(client: TestClient, demo_month: DemoResult) -> None:
    """The month in USD first: expected, billed and drift are the reconciliation's totals; the drift's split
    into billing findings and the unexplained remainder adds up to it on screen; the provider rows foot."""
    totals = reconciliation_by_provider(client, demo_month)
    sign_in(client, demo_month.read_key)
    html = client.get("/report/", params={"period": demo_month.period}).text
    headline = dict(re.findall(r'<dd data-figure="(\w+)">([^<]+)<small>', html))
    expected = sum((t["expected_cost"] for t in totals.values()), Decimal(0))
    billed = sum((t.get("billed_cost", Decimal(0)) for t in totals.values()), Decimal(0))
    assert written(headline["expected"]) == expected.quantize(CENT, ROUND_HALF_UP)
    assert written(headline["billed"]) == billed.quantize(CENT, ROUND_HALF_UP)
    assert "no reconciled 2026-09 to compare" in html
    split = html.split('id="drift-split"', 1)[1].split("</table>", 1)[0]
    parts = [written(v) for v in re.findall(r'<tr class="part">.*?<td class="num"[^>]*>([^<]+)</td>', split)]
    drift = written(re.search(r'data-figure="split-drift">([^<]+)<', split)[1])
    assert sum(parts) == drift
    assert drift == written(headline["drift"])
    assert "Cache mischarge" in split
    assert "At risk, not part of the drift" in html
    assert_table_foots(html, "providers-money")


def assert_table_foots(html: str, table_id: str) -> None:
    """Every money column of the table adds up to its total row, as written."""
    table = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    body, foot = table.split("<tfoot>", 1)
    labels = ("Expected", "Billed", "Drift")
    for label in labels:
        cells = re.findall(rf'data-label="{label}">([^<]+)</td>', body)
        (total,) = re.findall(rf'data-label="{label}">([^<]+)</td>', foot)
        known = [written(cell) for cell in cells if cell != "—"]
        assert sum(known, Decimal(0)) == written(total), label


def test_the_monthly_report_foots_in_html(client: TestClient, demo_month: DemoResult) -> None:
    """Every row rounded on its own left the demo's columns a cent off their totals; as written they add up."""
    sign_in(client, demo_month.read_key)
    html = client.get("/report/monthly", params={"period": demo_month.period}).text
    assert_table_foots(html, "monthly-table")


def test_a_reconciliation_run_finishes_after_it_started(client: TestClient, demo_month: DemoResult) -> None:
    headers = {"Authorization": f"Bearer {demo_month.read_key}"}
    runs = client.get("/v1/reconciliation", params={"period": demo_month.period}, headers=headers).json()["runs"]
    assert runs
    assert all(run["finished_at"] > run["started_at"] for run in runs)


def test_spend_analytics_prices_the_usage_as_the_reconciler_and_every_table_foots(
    client: TestClient, demo_month: DemoResult
) -> None:
    totals = reconciliation_by_provider(client, demo_month)
    expected = sum((t["expected_cost"] for t in totals.values()), Decimal(0)).quantize(CENT, ROUND_HALF_UP)
    sign_in(client, demo_month.read_key)
    html = client.get("/report/spend", params={"period": demo_month.period, "top": 3}).text
    assert written(re.search(r'data-figure="spend">([^<]+)<small>', html)[1]) == expected
    assert "nothing to compare before" in html  # the demo has no usage the month before
    for dimension in ("provider", "model", "account", "api_key_id", "app"):
        table = html.split(f'id="spend-{dimension}"', 1)[1].split("</table>", 1)[0]
        body, foot = table.split("<tfoot>", 1)
        cells = [written(cell) for cell in re.findall(r'data-label="Spend">([^<]+)</td>', body)]
        (total,) = re.findall(r'data-label="Spend">([^<]+)</td>', foot)
        assert sum(cells) == written(total) == expected, dimension
    assert re.search(r"<th scope=\"row\">other \d+</th>", html.split('id="spend-model"', 1)[1])  # beyond the top 3
    exported = client.get(
        "/report/spend.csv", params={"since": "2026-10-01", "until": "2026-10-31", "table": "provider"}
    ).text.splitlines()
    assert exported[0] == "provider,cost_usd,previous_cost_usd,change_usd,unpriced_tokens"
    assert Decimal(exported[-1].split(",")[1]).quantize(CENT, ROUND_HALF_UP) == expected
    narrow = client.get("/report/spend", params={"since": "2026-10-10", "until": "2026-10-11"}).text
    assert "against the 2 days before (2026-10-08 onwards)" in narrow
    assert client.get("/report/spend", params={"since": "2026-10-11", "until": "2026-10-10"}).status_code == 422
    assert "No table by user or tag" in html


def test_the_drift_page_narrows_to_an_app(client: TestClient, demo_month: DemoResult) -> None:
    """Narrowed to an app, the drift page shows that app's expected cost (the demo's summarizer is the one app
    of Anthropic's wrk_apps) and says why billed is left out: statements do not break down by app."""
    sign_in(client, demo_month.read_key)
    by_app = client.get(
        "/report/drift", params={"period": demo_month.period, "provider": "anthropic", "app": "summarizer"}
    ).text
    by_account = client.get(
        "/report/drift", params={"period": demo_month.period, "provider": "anthropic", "account": "wrk_apps"}
    ).text
    assert '<option value="summarizer" selected>summarizer</option>' in by_app
    expected = re.compile(r'data-figure="expected">([^<]+)</strong>')
    assert written(expected.findall(by_app)[0]) == written(expected.findall(by_account)[0]) > 0
    assert re.search(r'data-figure="billed">—</strong>', by_app)  # no statement line states an app
    assert "Statements do not break down by app" in by_app
    assert "No statement amount for anthropic" not in by_app


def ingest(client: TestClient, demo: DemoResult, *events: dict[str, object]) -> None:
    answer = client.post("/v1/events", json=list(events), headers={"Authorization": f"Bearer {demo.ingest_key}"})
    assert answer.status_code == 202, answer.text


def spend_csv(client: TestClient, day: str, table: str) -> dict[str, Decimal]:
    lines = client.get(
        "/report/spend.csv", params={"since": day, "until": day, "table": table, "top": 100}
    ).text.splitlines()
    return {line.split(",")[0]: Decimal(line.split(",")[1]) for line in lines[1:]}


def test_two_apps_of_one_key_share_its_cost_by_their_tokens(client: TestClient, demo_month: DemoResult) -> None:
    """Two apps calling one model through one key on one day: the spend page's table by app gives each the cost
    of its own tokens (twice the tokens in every category, twice the cost), adding up to the key's."""
    sign_in(client, demo_month.read_key)
    base = {"provider": "openai", "account": "proj_split", "api_key_id": "key_split", "request_model": "gpt-5.4"}
    ingest(
        client,
        demo_month,
        {
            **base,
            "event_id": "split-a",
            "occurred_at": "2026-10-27T09:00:00Z",
            "app": "alpha",
            "input_tokens": 20_000,
            "cache_read_input_tokens": 8_000,
            "output_tokens": 4_000,
        },
        {
            **base,
            "event_id": "split-b",
            "occurred_at": "2026-10-27T15:00:00Z",
            "app": "beta",
            "input_tokens": 10_000,
            "cache_read_input_tokens": 4_000,
            "output_tokens": 2_000,
        },
    )
    apps = spend_csv(client, "2026-10-27", "app")
    keys = spend_csv(client, "2026-10-27", "api_key_id")
    assert apps["alpha"] > 0
    assert (apps["alpha"] - 2 * apps["beta"]).copy_abs() < Decimal("1e-20")
    assert apps["alpha"] + apps["beta"] == keys["key_split"]


def test_an_alias_set_after_a_page_was_shown_reprices_its_usage(
    client: TestClient, demo_month: DemoResult, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Usage of a model the catalog does not know is unpriced; once an alias names it (or names it anew), the
    pages price it at once, though no usage arrived since."""
    sign_in(client, demo_month.read_key)
    ingest(
        client,
        demo_month,
        {
            "event_id": "house-1",
            "occurred_at": "2026-10-26T10:00:00Z",
            "provider": "openai",
            "account": "proj_house",
            "request_model": "house-tuned-7",
            "input_tokens": 1_000_000,
            "output_tokens": 200_000,
        },
    )

    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)

    def alias(label: str, model: str) -> None:
        result = CliRunner().invoke(
            cli_app, ["models", "alias", label, model, "--provider", "openai", "--tenant", demo_month.tenant]
        )
        assert result.exit_code == 0, result.output

    def house_cost() -> Decimal:
        return spend_csv(client, "2026-10-26", "account")["proj_house"]

    assert house_cost() == 0  # unpriced: counted apart, no spend
    alias("house-tuned-7", "gpt-5.4-mini")
    mini = house_cost()
    assert mini > 0
    alias("house-tuned-7", "gpt-5.4")  # the same alias, replaced in place
    assert house_cost() > mini  # gpt-5.4 costs more than its mini


def test_the_demos_latencies_differ_by_model_with_a_long_tail(client: TestClient, demo_month: DemoResult) -> None:
    """The providers page on the demo's month: each model answers at a pace of its own (no two p50s alike
    among the models with a latency profile), and the long tail sets p99 apart from p95."""
    sign_in(client, demo_month.read_key)
    html = client.get("/report/providers", params={"period": demo_month.period}).text
    table = html.split('id="providers-quality"', 1)[1].split("</table>", 1)[0]
    latencies = {
        (provider, model): figures.split(" / ")
        for provider, model, figures in re.findall(
            r'<th scope="row">([^<]+)</th>\s*<td data-label="Model">([^<]+)</td>\s*'
            r'<td class="num" data-label="Latency p50 / p95 / p99">([^<]+)</td>',
            table,
        )
    }
    assert len(latencies) >= 6
    p50s = [figures[0] for figures in latencies.values()]
    assert len(set(p50s)) >= 5, latencies
    assert all(len(figures) == 3 for figures in latencies.values())
    assert sum(figures[1] != figures[2] for figures in latencies.values()) >= len(latencies) - 1, latencies
