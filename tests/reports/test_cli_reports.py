"""`tokenledger report` and `tokenledger alerts …` as an operator uses them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ledger.cli.main import app
from ledger.storage.database import session_factory
from ledger.storage.tables import AlertChannel
from reports import monthly
from tests.months import Month
from tests.rows import OCTOBER


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    return CliRunner()


@pytest.mark.parametrize("output_format", monthly.FORMATS)
def test_report_writes_the_monthly_report_in_each_format(
    cli: CliRunner, october: Month, tmp_path: Path, output_format: str
) -> None:
    output = tmp_path / f"october.{output_format}"
    result = cli.invoke(
        app,
        [
            "report",
            "--period",
            "2026-10",
            "--format",
            output_format,
            "--output",
            str(output),
            "--tenant",
            october.keys.name,
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"report of {october.keys.name} for 2026-10 (3 rows) written to" in result.output
    text = output.read_text(encoding="utf-8")
    assert {"html": "Total (USD)", "csv": "TOTAL,,,1740000", "json": '"difference": "120.5"'}[output_format] in text


def test_report_refuses_an_unknown_format_or_period_in_one_line(cli: CliRunner, october: Month, tmp_path: Path) -> None:
    bad_format = cli.invoke(
        app,
        [
            "report",
            "--period",
            "2026-10",
            "--format",
            "pdf",
            "--output",
            str(tmp_path / "x"),
            "--tenant",
            october.keys.name,
        ],
    )
    assert bad_format.exit_code == 1
    assert bad_format.output.strip() == "error: --format must be one of html, csv, json, got 'pdf'"
    bad_period = cli.invoke(
        app, ["report", "--period", "Oct", "--output", str(tmp_path / "x"), "--tenant", october.keys.name]
    )
    assert bad_period.exit_code == 1
    assert "period must look like 2026-10" in bad_period.output


def test_an_operator_adds_a_webhook_channel_and_gets_its_secret_once(
    cli: CliRunner, engine: Engine, october: Month
) -> None:
    added = cli.invoke(
        app,
        [
            "alerts",
            "add-channel",
            "--tenant",
            october.keys.name,
            "--name",
            "ops",
            "--kind",
            "webhook",
            "--url",
            "https://hooks.example.com/tokenledger",
            "--min-severity",
            "critical",
        ],
    )
    assert added.exit_code == 0, added.output
    secret = added.output.strip().splitlines()[-1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", secret)
    with session_factory(engine)() as session:
        channel = session.scalar(select(AlertChannel).where(AlertChannel.tenant_id == october.tenant_id))
    assert channel is not None
    assert (channel.kind, channel.min_severity, channel.config["secret"]) == ("webhook", "critical", secret)
    listed = cli.invoke(app, ["alerts", "list", "--tenant", october.keys.name])
    assert listed.exit_code == 0, listed.output
    assert "ops" in listed.output
    assert "https://hooks.example.com/…" in listed.output
    assert secret not in listed.output
    again = cli.invoke(
        app,
        [
            "alerts",
            "add-channel",
            "--tenant",
            october.keys.name,
            "--name",
            "ops",
            "--kind",
            "slack",
            "--url",
            "https://hooks.slack.com/services/x",
        ],
    )
    assert again.exit_code == 1
    assert again.output.strip() == "error: the tenant already has a channel named 'ops'"


def test_an_email_channel_needs_its_server_sender_and_recipients(cli: CliRunner, october: Month) -> None:
    base = ["alerts", "add-channel", "--tenant", october.keys.name, "--name", "mail", "--kind", "email"]
    missing = cli.invoke(app, [*base, "--from", "tl@example.com", "--to", "ops@example.com"])
    assert missing.output.strip() == "error: an email channel needs --smtp-host"
    bad_to = cli.invoke(app, [*base, "--smtp-host", "mail.example.com", "--from", "tl@example.com", "--to", "ops"])
    assert bad_to.output.strip() == "error: --to must be an email address, got 'ops'"
    added = cli.invoke(
        app,
        [
            *base,
            "--smtp-host",
            "mail.example.com",
            "--starttls",
            "--from",
            "tl@example.com",
            "--to",
            "ops@example.com",
            "--to",
            "cfo@example.com",
            "--smtp-user",
            "tl",
            "--smtp-password-env",
            "SMTP_PASSWORD",
        ],
    )
    assert added.exit_code == 0, added.output
    assert "ops@example.com, cfo@example.com via mail.example.com:587" in added.output
    bad_kind = cli.invoke(app, [*base[:-2], "--kind", "pager", "--url", "https://x.example"])
    assert bad_kind.output.strip() == "error: kind must be one of webhook, slack, email, pagerduty, got 'pager'"


def test_alerts_test_prints_the_outcome_and_fails_when_the_channel_does(cli: CliRunner, october: Month) -> None:
    added = cli.invoke(
        app,
        [
            "alerts",
            "add-channel",
            "--tenant",
            october.keys.name,
            "--name",
            "nowhere",
            "--kind",
            "slack",
            "--url",
            "http://127.0.0.1:9/services/x",
        ],
    )
    assert added.exit_code == 0, added.output
    result = cli.invoke(app, ["alerts", "test", "--channel", "nowhere", "--tenant", october.keys.name])
    assert result.exit_code == 1
    assert "test alert over 'nowhere' failed: ConnectError" in result.output
    listed = cli.invoke(app, ["alerts", "list", "--tenant", october.keys.name])
    assert "failed" in listed.output
    unknown = cli.invoke(app, ["alerts", "test", "--channel", "missing", "--tenant", october.keys.name])
    assert unknown.output.strip() == "error: no alert channel named 'missing'"


def test_alerts_deliver_sends_what_is_due(cli: CliRunner) -> None:
    result = cli.invoke(app, ["alerts", "deliver"])
    assert result.exit_code == 0, result.output
    assert re.match(r"sent \d+, will retry \d+, failed \d+", result.output)


def test_the_json_report_of_the_cli_is_the_one_the_web_serves(cli: CliRunner, october: Month, tmp_path: Path) -> None:
    output = tmp_path / "october.json"
    cli.invoke(
        app,
        [
            "report",
            "--period",
            OCTOBER.label,
            "--format",
            "json",
            "--output",
            str(output),
            "--tenant",
            october.keys.name,
        ],
    )
    data = json.loads(output.read_text(encoding="utf-8"))
    assert [row["model"] for row in data["rows"]] == ["claude-haiku-4-5", "gpt-5.4-mini", "my-finetune"]
