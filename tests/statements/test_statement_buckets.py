"""A statement grouped by workspace and key has buckets with neither: Anthropic's default workspace has no
workspace id, Console Workbench usage no API key. They are usage of their own, reconciled like any other
(against events logged without an account or key id), never dropped for being "less detailed" than the
keyed buckets beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.cli.main import app
from tests.conftest import TenantKeys
from tests.events_factory import usage_event

DAY = "2026-10-05"


def usage_row(workspace: str | None, key: str | None, *, uncached: int, output: int) -> dict[str, Any]:
    """A row of `GET /v1/organizations/usage_report/messages` grouped by workspace, key, model and tier."""
    return {
        "uncached_input_tokens": uncached,
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
        "cache_read_input_tokens": 0,
        "output_tokens": output,
        "server_tool_use": {"web_search_requests": 0},
        "api_key_id": key,
        "workspace_id": workspace,
        "model": "claude-sonnet-4-6",
        "service_tier": "standard",
        "context_window": "0-200k",
    }


@pytest.fixture
def reconciled(
    client: TestClient, tenant: TenantKeys, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A day of Anthropic usage logged by two applications, one in a named workspace and one in the default
    workspace (events without an account), and the provider's usage report of that day: the two keys, and
    Console usage nobody logged."""
    events = [
        usage_event(
            provider="anthropic",
            account=account,
            api_key_id=key,
            request_model="claude-sonnet-4-6",
            occurred_at=f"{DAY}T{hour:02d}:00:00Z",
            input_tokens=10_000,
            cache_read_input_tokens=0,
            output_tokens=1_000,
        )
        for hour in range(10)
        for account, key in (("wrk_research", "key_research"), (None, "key_default"))
    ]
    assert client.post("/v1/events", json=events, headers=tenant.ingest).status_code == 202
    page = {
        "data": [
            {
                "starting_at": f"{DAY}T00:00:00Z",
                "ending_at": "2026-10-06T00:00:00Z",
                "results": [
                    usage_row("wrk_research", "key_research", uncached=100_000, output=10_000),
                    usage_row(None, "key_default", uncached=100_000, output=10_000),
                    usage_row(None, None, uncached=400_000, output=200_000),  # the Console Workbench
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    report = tmp_path / "usage_report.json"
    report.write_text(json.dumps(page), encoding="utf-8")
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    imported = CliRunner().invoke(app, ["import", "anthropic", "--tenant", tenant.name, "--file", str(report)])
    assert imported.exit_code == 0, imported.output
    run = client.post("/v1/reconciliation/run", params={"period": "2026-10"}, headers=tenant.admin)
    assert run.status_code == 200, run.text
    drift = client.get("/v1/reconciliation", params={"period": "2026-10"}, headers=tenant.read).json()["rows"]
    findings = client.get("/v1/findings", params={"period": "2026-10"}, headers=tenant.read).json()["findings"]
    printed = CliRunner().invoke(app, ["reconcile", "--period", "2026-10", "--tenant", tenant.name])
    assert printed.exit_code == 0, printed.output
    return {"drift": drift, "findings": findings, "printed": printed.output}


def test_the_default_workspace_is_reconciled_against_events_logged_without_an_account(
    reconciled: dict[str, Any],
) -> None:
    default = [row for row in reconciled["drift"] if row["provider"] == "anthropic" and row["account"] == ""]
    assert [(row["logged_tokens"], row["billed_tokens"]) for row in default] == [(110_000, 110_000 + 600_000)]
    named = [row for row in reconciled["drift"] if row["account"] == "wrk_research"]
    assert [(row["logged_tokens"], row["billed_tokens"]) for row in named] == [(110_000, 110_000)]


def test_console_usage_that_nobody_logged_is_a_finding(reconciled: dict[str, Any]) -> None:
    unlogged = [finding for finding in reconciled["findings"] if finding["kind"] == "unlogged_usage"]
    assert [(finding["account"], finding["api_key_id"]) for finding in unlogged] == [("", "")]
    assert unlogged[0]["evidence"]["billed"] == 600_000


def test_the_drift_table_tells_usage_without_a_workspace_from_usage_of_all_workspaces(
    reconciled: dict[str, Any],
) -> None:
    (default,) = [line for line in reconciled["printed"].splitlines() if " anthropic " in line and "(none)" in line]
    assert "710,000" in default
    assert "(all)" not in reconciled["printed"]  # every row of this statement names its workspace, or none
