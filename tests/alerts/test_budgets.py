"""Monthly budgets as an operator keeps them (`tokenledger budgets set|list|remove`), measured against the month's
spend (logged usage priced as the reconciler prices it) and its month-end forecast; alerts at 50, 80 and 100%
of each, once per month and budget; the report's overview shows them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ledger.alerts.budgets import RUN_RATE, SAME_DAYS_LAST_MONTH, month_forecast
from ledger.cli.main import app
from ledger.periods import Period
from ledger.queries.money_over_time import LoggedMoney
from ledger.server import create_app
from ledger.service.scheduler import ScheduledWork
from ledger.settings import Settings
from ledger.storage.database import session_factory
from ledger.storage.tables import AlertOutbox
from reports.monthly import send_monthly_report
from tests import rows
from tests.clocks import FixedClock
from tests.conftest import TenantKeys, make_tenant
from tests.events_factory import usage_event
from tests.months import sign_in, tenant_id_of

MILLION_INPUT_TOKENS = {"input_tokens": 1_000_000, "output_tokens": 0, "cache_read_input_tokens": None}


def spent(day: date, usd: str, provider: str = "openai") -> LoggedMoney:
    return LoggedMoney(
        day=day, provider=provider, account="proj_main", api_key_id="", model="m", expected=Decimal(usd), tokens={}
    )


def test_the_forecast_adds_the_same_remaining_days_of_last_month_to_the_month_so_far() -> None:
    now = datetime(2026, 12, 10, 12, tzinfo=UTC)
    this_month = [spent(date(2026, 12, day), "10") for day in range(1, 11)]
    last_month = [spent(date(2026, 11, day), "5") for day in range(1, 31)]
    # So far $100; the days after the 10th of November: 20 days at $5.
    assert month_forecast(this_month, last_month, now=now) == (Decimal("200"), SAME_DAYS_LAST_MONTH)


def test_a_month_longer_than_the_last_adds_only_the_days_last_month_had() -> None:
    now = datetime(2026, 10, 29, tzinfo=UTC)  # September has no 30th+1: its 30th alone remains
    last_month = [spent(date(2026, 9, day), "1") for day in range(1, 31)]
    assert month_forecast([spent(date(2026, 10, 1), "7")], last_month, now=now) == (
        Decimal("8"),
        SAME_DAYS_LAST_MONTH,
    )


def test_without_spend_last_month_the_forecast_is_the_run_rate() -> None:
    now = datetime(2026, 11, 10, 0, tzinfo=UTC)  # 9 of 30 days gone
    forecast, method = month_forecast([spent(date(2026, 11, 1), "90")], [], now=now)
    assert (forecast, method) == (Decimal("300"), RUN_RATE)


@pytest.fixture
def operator(fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> tuple[CliRunner, int, TenantKeys]:
    """The CLI on a database with one tenant (so no command needs --tenant)."""
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", fresh_engine.url.render_as_string(hide_password=False))
    keys = make_tenant(fresh_engine, "acme")
    return CliRunner(), tenant_id_of(fresh_engine, keys.name), keys


def budgets(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, ["budgets", *args])
    assert result.exit_code == 0, result.output
    return result.output


def refused(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, ["budgets", *args])
    assert result.exit_code != 0, result.output
    return result.output


@pytest.fixture
def service(settings: Settings, fresh_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=fresh_engine)) as client:
        yield client


def log_usage(client: TestClient, keys: TenantKeys, count: int, *, at: datetime, **fields: object) -> None:
    """Usage as applications send it: `count` requests of a million input tokens of gpt-5.4-mini each."""
    events = [usage_event(occurred_at=at.isoformat(), **(MILLION_INPUT_TOKENS | fields)) for _ in range(count)]
    answer = client.post("/v1/events", json=events, headers=keys.ingest)
    assert answer.status_code == 202, answer.text


def budget_alerts(engine: Engine, tenant_id: int) -> list[str]:
    with engine.connect() as conn:
        return sorted(
            conn.scalars(
                sa.select(AlertOutbox.dedupe_key).where(
                    AlertOutbox.tenant_id == tenant_id, AlertOutbox.topic == "budget"
                )
            )
        )


def price_each_request(cli: CliRunner, env: dict[str, str] | None = None) -> Decimal:
    """The tenant's own price of gpt-5.4-mini input, $2 per 1M tokens: each request `log_usage` logs costs $2."""
    result = cli.invoke(
        app,
        ["prices", "set", "--provider", "openai", "--model", "gpt-5.4-mini", "--token-type", "input", "--price", "2"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    return Decimal(2)


def test_budgets_are_set_listed_changed_and_removed_per_tenant_provider_and_account(
    operator: tuple[CliRunner, int, TenantKeys],
) -> None:
    cli, _, _ = operator
    assert "no budgets for acme" in budgets(cli, "list")
    assert "monthly budget of tenant (acme): 500.00 USD" in budgets(cli, "set", "--usd", "500")
    assert "provider openai" in budgets(cli, "set", "--usd", "300", "--provider", "openai")
    budgets(cli, "set", "--usd", "50", "--account", "proj_main")
    budgets(cli, "set", "--usd", "75", "--account", "proj_main")  # changes it

    listed = budgets(cli, "list")
    for line in ("tenant", "500.00 USD", "provider openai", "300.00 USD", "account proj_main", "75.00 USD"):
        assert line in listed
    assert "50.00 USD" not in listed

    assert "budget of provider openai removed" in budgets(cli, "remove", "--provider", "openai")
    assert "provider openai" not in budgets(cli, "list")
    assert "has no budget of provider openai" in refused(cli, "remove", "--provider", "openai")


def test_a_budget_that_cannot_be_is_refused_naming_the_field(operator: tuple[CliRunner, int, TenantKeys]) -> None:
    cli, _, _ = operator
    assert "amount: 'lots' is not a number of USD" in refused(cli, "set", "--usd", "lots")
    assert "amount: '-5' must be more than 0 USD" in refused(cli, "set", "--usd", "-5")
    assert "give one of --provider, --account and --app, not several" in refused(
        cli, "set", "--usd", "5", "--provider", "openai", "--account", "proj_main"
    )
    assert "no budgets for acme" in budgets(cli, "list")


def test_a_reconcile_alerts_each_spend_threshold_a_budget_reaches_once_in_the_month(
    operator: tuple[CliRunner, int, TenantKeys], fresh_engine: Engine, service: TestClient
) -> None:
    cli, tenant_id, keys = operator
    with session_factory(fresh_engine).begin() as session:
        rows.channel(session, tenant_id, name="ops")
    now = datetime.now(UTC)
    month = Period.containing(now).label
    unit = price_each_request(cli)
    budgets(cli, "set", "--usd", str(unit * 10), "--provider", "openai")
    budgets(cli, "set", "--usd", str(unit * 1000), "--account", "proj_other")  # spends nothing

    def reconcile() -> None:
        result = cli.invoke(app, ["reconcile", "--period", month])
        assert result.exit_code == 0, result.output

    log_usage(service, keys, 8, at=now - timedelta(minutes=1))
    reconcile()
    spend_alerts = [key for key in budget_alerts(fresh_engine, tenant_id) if ":spent:" in key]
    assert [key.rsplit(":", 1)[1] for key in spend_alerts] == ["80"]  # the highest reached, not 50 too

    listed = budgets(cli, "list")
    assert f"{unit * 8:,.2f} USD" in listed
    assert "80.0%" in listed

    reconcile()  # the same spend again: no second alert
    assert [key for key in budget_alerts(fresh_engine, tenant_id) if ":spent:" in key] == spend_alerts

    log_usage(service, keys, 3, at=now - timedelta(minutes=1))
    reconcile()
    spend_alerts = [key for key in budget_alerts(fresh_engine, tenant_id) if ":spent:" in key]
    assert [key.rsplit(":", 1)[1] for key in spend_alerts] == ["100", "80"]
    with fresh_engine.connect() as conn:
        title = conn.scalar(
            sa.select(AlertOutbox.payload["title"].astext).where(AlertOutbox.dedupe_key == spend_alerts[0])
        )
    assert title == f"Budget of provider openai: spend at 100% ({unit * 11:,.2f} USD of {unit * 10:,.2f} USD, {month})"


def test_an_apps_budget_counts_its_share_of_the_spend_it_shares_a_key_with(
    operator: tuple[CliRunner, int, TenantKeys], service: TestClient
) -> None:
    cli, _, keys = operator
    unit = price_each_request(cli)
    now = datetime.now(UTC) - timedelta(minutes=1)
    log_usage(service, keys, 6, at=now, app="support-bot")
    log_usage(service, keys, 2, at=now, app="batch-jobs")  # the same key, model and day
    budgets(cli, "set", "--usd", str(unit * 10), "--app", "support-bot")
    budgets(cli, "set", "--usd", str(unit * 10), "--app", "batch-jobs")

    listed = budgets(cli, "list")

    assert "app support-bot" in listed
    assert "app batch-jobs" in listed
    assert f"{unit * 6:,.2f} USD" in listed
    assert "60.0%" in listed
    assert f"{unit * 2:,.2f} USD" in listed
    assert "20.0%" in listed
    assert "budget of app batch-jobs removed" in budgets(cli, "remove", "--app", "batch-jobs")


def test_an_apps_failed_requests_are_no_share_of_the_spend(
    operator: tuple[CliRunner, int, TenantKeys], service: TestClient
) -> None:
    """Tokens of requests that failed (429, 5xx) are not billed, so the reconciler leaves them out of the expected
    cost; an app's share of it leaves them out too."""
    cli, _, keys = operator
    unit = price_each_request(cli)
    now = datetime.now(UTC) - timedelta(minutes=1)
    log_usage(service, keys, 6, at=now, app="support-bot")
    log_usage(service, keys, 2, at=now, app="batch-jobs", status_code=429, finish_reason=None)  # same scope-day
    budgets(cli, "set", "--usd", str(unit * 10), "--app", "support-bot")
    budgets(cli, "set", "--usd", str(unit * 10), "--app", "batch-jobs")

    listed = budgets(cli, "list")

    assert f"{unit * 6:,.2f} USD" in listed
    assert "60.0%" in listed
    assert f"{0:,.2f} USD" in listed
    assert "0.0%" in listed


NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_the_daily_job_alerts_a_forecast_past_the_budget_and_the_overview_shows_it(
    fresh_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """October spent 20 requests on its last ten days; November has spent 6 so far: its forecast is 6 + 20
    against a budget of 25 (100%), while its spend is at 24% (none of the spend thresholds)."""
    for credential in ("OPENAI_ADMIN_KEY", "ANTHROPIC_ADMIN_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(credential, raising=False)  # the daily job pulls nothing
    keys = make_tenant(fresh_engine, "acme")
    tenant_id = tenant_id_of(fresh_engine, keys.name)
    clock = FixedClock(NOW)
    with session_factory(fresh_engine).begin() as session:
        rows.channel(session, tenant_id, name="ops")
    with TestClient(create_app(settings, engine=fresh_engine, clock=clock)) as client:
        log_usage(client, keys, 6, at=NOW - timedelta(days=2))
        log_usage(client, keys, 10, at=datetime(2026, 10, 10, tzinfo=UTC))  # before the 20th: not forecast
        log_usage(client, keys, 20, at=datetime(2026, 10, 25, tzinfo=UTC))
        runner = CliRunner()
        env = {"TOKENLEDGER_DATABASE_URL": fresh_engine.url.render_as_string(hide_password=False)}
        unit = price_each_request(runner, env)
        result = runner.invoke(app, ["budgets", "set", "--usd", str(unit * 25)], env=env)
        assert result.exit_code == 0, result.output

        work = ScheduledWork(settings, fresh_engine, session_factory(fresh_engine), clock, send_monthly_report)
        work.daily()
        work.daily()  # once a month

        assert budget_alerts(fresh_engine, tenant_id) == ["budget:1:2026-11:forecast:100"]
        sign_in(client, keys.read["Authorization"].split(" ", 1)[1])
        page = client.get("/report/?period=2026-10")  # another month's overview: budgets are this month's
    assert page.status_code == 200
    block = page.text.split('<section id="budgets"', 1)[1].split("</section>", 1)[0]
    assert "Budgets · 2026-11" in block
    assert f"{unit * 6:,.2f} USD (24.0%)" in block
    assert f"{unit * 26:,.2f} USD (104.0%)" in block
    assert SAME_DAYS_LAST_MONTH in block
