"""The whole loop on a realistic month: usage through the ingest API, statements through the importers in the
providers' shapes, the reconciler run from the CLI and the API — planted discrepancies are found with their
evidence, the clean control group is not, and a re-run updates findings instead of duplicating them."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ledger.cli.main import app
from ledger.demo.setup import DemoResult
from ledger.display import money, signed_money
from ledger.queries.footing import footed
from ledger.settings import Settings
from reports.monthly import compared_tokens
from tests.months import DEMO_NOW, sign_in

NOW = DEMO_NOW  # the demo month (tests/months.py) is reconciled as of this instant


def findings_of(client: TestClient, demo: DemoResult, **filters: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {demo.read_key}"}
    response = client.get("/v1/findings", params={"period": demo.period, **filters}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["findings"]


def test_every_planted_discrepancy_is_found_in_its_scope(client: TestClient, demo_month: DemoResult) -> None:
    assert demo_month.outcome.status == "succeeded"
    found = {(f["kind"], f["provider"], f["account"]) for f in findings_of(client, demo_month)}
    expected = {
        ("padding_tokens", "openai", "proj_support"),
        ("cache_mischarge", "openai", "proj_rag"),
        ("charged_errors", "openai", "proj_chat"),
        ("unlogged_usage", "openai", "proj_legacy"),
        ("system_prompt_double_count", "anthropic", "wrk_research"),
        ("price_drift", "anthropic", "wrk_apps"),
        ("model_substitution", "openrouter", "or_main"),
        ("silent_truncation", "deepseek", "ds_main"),
        ("missing_finish_reason", "qwen", "qw_main"),
        ("spend_spike", "google", "gcp-prod"),
    }
    assert expected <= found, f"missing: {expected - found}"


def test_the_control_group_has_no_finding_and_no_drift(client: TestClient, demo_month: DemoResult) -> None:
    control = [f for f in findings_of(client, demo_month) if f["account"] == "proj_web"]
    assert control == []
    read = {"Authorization": f"Bearer {demo_month.read_key}"}
    rows = client.get("/v1/reconciliation", params={"period": demo_month.period}, headers=read).json()["rows"]
    billed = [row for row in rows if row["account"] == "proj_web" and row["difference"] is not None]
    assert billed, "the control project's bill is compared"
    for row in billed:  # its bill is its own usage: no more drift than the statement's rounding
        assert abs(Decimal(row["difference"])) < Decimal("0.05"), row


def test_findings_carry_evidence_and_money(client: TestClient, demo_month: DemoResult) -> None:
    (leak,) = findings_of(client, demo_month, kind="unlogged_usage", provider="openai")
    assert leak["api_key_id"] == "key_leaked"
    impact = Decimal(leak["impact_usd"])
    assert impact > 0
    # Severity from money: below the $10 warning amount it is info, whatever its rate; above, all of it unlogged.
    assert leak["severity"] == ("info" if impact < 10 else "critical")
    assert "key_leaked" in leak["summary"]
    (double,) = findings_of(client, demo_month, kind="system_prompt_double_count")
    assert double["evidence"]["ratio"]
    assert 0.95 <= float(double["evidence"]["ratio"]) <= 1.05


def test_a_rerun_from_the_cli_updates_findings_and_keeps_their_status(
    client: TestClient, demo_month: DemoResult, database_url: str, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    admin = {"Authorization": f"Bearer {demo_month.admin_key}"}
    (truncation,) = findings_of(client, demo_month, kind="silent_truncation")
    patched = client.patch(
        f"/v1/findings/{truncation['id']}", json={"status": "acknowledged", "note": "known cap"}, headers=admin
    )
    assert patched.status_code == 200, patched.text
    before = len(findings_of(client, demo_month))

    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    monkeypatch.delenv("COLUMNS", raising=False)  # into a pipe: 80 columns, narrower than the drift table
    result = CliRunner().invoke(app, ["reconcile", "--period", demo_month.period, "--tenant", demo_month.tenant])
    assert result.exit_code == 0, result.output
    assert "silent_truncation" in result.output
    assert f"Drift {demo_month.period}" in result.output
    # Every figure and name of the drift table is printed whole, none cut short to fit ('$127…').
    read = {"Authorization": f"Bearer {demo_month.read_key}"}
    drift = client.get("/v1/reconciliation", params={"period": demo_month.period}, headers=read).json()["rows"]
    lines = result.output.splitlines()
    # Money is written so that each column adds up to its total row: rounded once, the remainder distributed.
    columns = [
        footed([None if row[name] is None else Decimal(row[name]) for row in drift])
        for name in ("expected_cost", "billed_cost", "difference")
    ]
    for index, row in enumerate(drift):
        logged, _, _ = compared_tokens(row["logged_by_category"], row["billed_by_category"], row["logged_tokens"])
        cells = [row["provider"], row["account"] or "(all)", row["model"] or "(all)", f"{logged:,}"]
        expected, billed, difference = (column[0][index] for column in columns)
        cells += [money(expected), money(billed), signed_money(difference)]
        assert any(all(f" {cell} " in line for cell in cells) for line in lines), cells
    (total_line,) = [line for line in lines if " total " in line]
    assert all(
        f" {money(column[1])} " in total_line or f" {signed_money(column[1])} " in total_line for column in columns
    )
    assert "…" not in result.output
    # The month's drift adds up on screen: explained by the findings' impacts plus an unexplained remainder.
    flat = " ".join(result.output.split())
    explained = re.search(
        r"drift ([-+]?[\d,.]+) USD = ([-+]?[\d,.]+) USD explained by findings.*? \+ ([-+]?[\d,.]+) USD unexplained",
        flat,
    )
    assert explained is not None, flat
    drift_usd, explained_usd, unexplained_usd = (Decimal(g.replace(",", "")) for g in explained.groups())
    assert drift_usd == explained_usd + unexplained_usd
    assert "at risk, not in the drift" in flat  # the spend spike, the truncation, the missing finish reasons
    # OpenRouter's activity states output tokens alone: its logged tokens are compared over output alone too.
    (openrouter_line,) = [line for line in lines if " openrouter " in line and " (all) " in line and "claude" in line]
    assert "(output only)" in openrouter_line

    after = findings_of(client, demo_month)
    assert len(after) == before
    (again,) = [f for f in after if f["id"] == truncation["id"]]
    assert again["status"] == "acknowledged"
    with engine.connect() as conn:
        runs = conn.execute(
            sa.text(
                "SELECT r.trigger, r.status FROM reconciliation_runs r JOIN tenants t ON t.id = r.tenant_id "
                "WHERE t.name = :n ORDER BY r.id"
            ),
            {"n": demo_month.tenant},
        ).all()
    assert [tuple(run) for run in runs] == [("demo", "succeeded"), ("cli", "succeeded")]


def test_an_admin_runs_the_reconciler_over_the_api(client: TestClient, demo_month: DemoResult) -> None:
    read = {"Authorization": f"Bearer {demo_month.read_key}"}
    admin = {"Authorization": f"Bearer {demo_month.admin_key}"}
    assert client.post("/v1/reconciliation/run", params={"period": demo_month.period}, headers=read).status_code == 403
    response = client.post("/v1/reconciliation/run", params={"period": demo_month.period}, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["counts"]["new_findings"] == 0
    drift = client.get("/v1/reconciliation", params={"period": demo_month.period}, headers=read).json()
    providers = {row["provider"] for row in drift["rows"]}
    assert {"openai", "anthropic", "google", "deepseek", "qwen", "openrouter"} <= providers
    # OpenAI states tokens per key (usage pages) and money per project (costs): one row carries both
    (rag,) = [row for row in drift["rows"] if row["provider"] == "openai" and row["account"] == "proj_rag"]
    assert rag["billed_tokens"] is not None
    assert rag["billed_cost"] is not None
    assert Decimal(rag["billed_cost"]) > Decimal(rag["expected_cost"])  # cache reads billed at the full rate


def test_the_drift_over_time_page_bills_each_token_once(client: TestClient, demo_month: DemoResult) -> None:
    """OpenAI's usage pages (per key) and its costs (per project) both state the month's tokens: the page's
    billed total is the reconciler's, not their sum."""
    read = {"Authorization": f"Bearer {demo_month.read_key}"}
    drift = client.get("/v1/reconciliation", params={"period": demo_month.period}, headers=read).json()["rows"]
    billed = sum(row["billed_tokens"] for row in drift if row["provider"] == "openai")
    sign_in(client, demo_month.read_key)
    page = client.get("/report/drift", params={"period": demo_month.period, "provider": "openai"}).text
    assert f"; billed {billed:,}." in page


def test_runs_started_together_take_turns_and_all_succeed(engine: Engine, demo_month: DemoResult) -> None:
    """The scheduler, the CLI and two clicks on the API at once: each run waits for the one before it instead
    of colliding on the period's drift rows, and together they leave what one run alone leaves."""
    from ledger.periods import Period
    from ledger.reconciliation.run import run_reconciliation
    from ledger.storage.database import session_factory

    with engine.connect() as conn:
        tenant_id = conn.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": demo_month.tenant})
    settings = Settings(database_url=str(engine.url), scheduler_enabled=False)
    period = Period.month(demo_month.period)

    def run_once() -> str:
        outcome = run_reconciliation(
            session_factory(engine), tenant_id=tenant_id, period=period, settings=settings, now=NOW, trigger="api"
        )
        return outcome.status

    def stored_drift() -> list[tuple[object, ...]]:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT provider, account, model, logged_tokens, billed_tokens, expected_cost, billed_cost "
                    "FROM drift_rows WHERE tenant_id = :t ORDER BY 1, 2, 3"
                ),
                {"t": tenant_id},
            )
            return [tuple(row) for row in rows]

    start = threading.Barrier(4)

    def together(_: int) -> str:
        start.wait()
        return run_once()

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(together, range(4)))
    after_four = stored_drift()

    assert statuses == ["succeeded"] * 4
    assert run_once() == "succeeded"
    assert after_four == stored_drift()
    assert after_four


def test_the_demo_statements_went_through_the_importers(demo_month: DemoResult, engine: Engine, tmp_path: Path) -> None:
    with engine.connect() as conn:
        sources = (
            conn.execute(
                sa.text(
                    "SELECT DISTINCT l.source FROM statement_lines l JOIN tenants t ON t.id = l.tenant_id "
                    "WHERE t.name = :n"
                ),
                {"n": demo_month.tenant},
            )
            .scalars()
            .all()
        )
    assert set(sources) == {"openai", "anthropic", "openrouter", "focus", "csv"}


def test_usage_of_a_model_without_a_price_is_reported_never_priced_at_zero(
    client: TestClient, tenant, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.events_factory import usage_event

    events = [
        usage_event(
            occurred_at=f"2026-10-{day:02d}T12:00:00Z", request_model="gpt-imaginary", cache_read_input_tokens=0
        )
        for day in range(1, 6)
    ]
    assert client.post("/v1/events", json=events, headers=tenant.ingest).status_code == 202
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["reconcile", "--period", "2026-10", "--tenant", tenant.name])
    assert result.exit_code == 0, result.output
    assert "unpriced models" in result.output
    assert "openai/gpt-imaginary" in result.output
    drift = client.get("/v1/reconciliation", params={"period": "2026-10"}, headers=tenant.read).json()["rows"]
    assert [row["expected_cost"] for row in drift] == [None]
