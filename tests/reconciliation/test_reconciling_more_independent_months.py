"""The reconciler on independently built months (tests/month_generator.py), beyond Anthropic's billing kinds:
OpenAI months (gpt-4o-mini, gpt-4.1, o4-mini) fetched with `tokenledger import openai` from a stand-in for the
Admin API on 127.0.0.1, with the same noise and the billing kinds at three sizes; the remaining kinds (model
substitution both ways, spend spike, silent truncation, missing finish reason) at three sizes on a noisy month;
a second tenant and a model no catalog knows."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from importers.openai import COSTS_PATH, USAGE_PATH
from ledger.cli.main import app
from ledger.pricing.catalog import add_overrides
from ledger.reconcile import Finding
from ledger.reconciliation.run import run_reconciliation
from ledger.settings import Settings
from ledger.storage.database import session_factory
from tests.conftest import TenantKeys, make_tenant
from tests.month_generator import (
    ANTHROPIC,
    DRIFT_FROM,
    OPENAI,
    PERIOD,
    RELABELED_FROM,
    SPIKE_DAY,
    UNKNOWN,
    KeyScope,
    Month,
    Plant,
    generate,
)
from tests.openai_admin_api import ADMIN_KEY, OpenAIAdminApi
from tests.reconciliation.test_reconciling_independent_months import NOW, negotiated_price, reconciled, send

MONEY_FLOOR = Decimal("1.00")  # the default money_abs_tolerance
RATE_TOLERANCE = Decimal("0.002")
"""Rates (share of a key's answers) are counted, not estimated: within 0.2 percentage points."""


@pytest.fixture
def cli(database_url: str, openai_api: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("TOKENLEDGER_OPENAI_BASE_URL", openai_api)
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    return CliRunner()


def imported_from_openai(
    cli: CliRunner, client: TestClient, engine: Engine, month: Month, tenant: TenantKeys | None = None
) -> tuple[TenantKeys, str]:
    """What a user of the service does with an OpenAI month: send the events, fetch the statements from the
    Admin API (first with a day wrong, then corrected), send the late events. Returns the import's output."""
    tenant = tenant or make_tenant(engine)
    with session_factory(engine).begin() as session:
        tenant_id = session.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
        add_overrides(session, tenant_id, [negotiated_price(month.shape)], now=NOW)
    send(client, tenant.ingest, month.sent(late=False))
    outputs = []
    for documents in (month.first_import, month.documents):
        usage, costs = (json.loads(document.content) for document in documents)
        OpenAIAdminApi.pages = {USAGE_PATH: usage, COSTS_PATH: costs}
        result = cli.invoke(app, ["import", "openai", "--period", PERIOD.label, "--tenant", tenant.name])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    send(client, tenant.ingest, month.sent(late=True))
    return tenant, outputs[-1]


def findings_of(engine: Engine, settings: Settings, tenant: TenantKeys) -> tuple[Finding, ...]:
    sessions = session_factory(engine)
    with sessions() as session:
        tenant_id = session.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
    outcome = run_reconciliation(sessions, tenant_id=tenant_id, period=PERIOD, settings=settings, now=NOW)
    assert outcome.result is not None, outcome.error
    return outcome.result.findings


def described(findings: tuple[Finding, ...]) -> list[tuple[object, ...]]:
    return [(f.kind, f.account, f.api_key_id, f.model, f.impact_usd, f.summary) for f in findings]


def found_on(findings: tuple[Finding, ...], kind: str, scope: KeyScope) -> Finding:
    matching = [f for f in findings if f.kind == kind]
    assert len(matching) == 1, described(findings)
    (finding,) = matching
    assert finding.account == scope.workspace
    assert finding.api_key_id in (scope.key, None)  # the costs are stated per project (workspace)
    return finding


def test_an_openai_month_of_noise_is_silent_its_unknown_model_unpriced_and_another_tenant_unseen(
    cli: CliRunner, client: TestClient, engine: Engine, settings: Settings
) -> None:
    other, _ = imported_from_openai(cli, client, engine, generate(Plant("price_drift", 2.0), shape=OPENAI))
    month = generate(shape=OPENAI, unknown_model=True)

    tenant, _ = imported_from_openai(cli, client, engine, month)
    reconciling = cli.invoke(app, ["reconcile", "--period", PERIOD.label, "--tenant", tenant.name])

    assert reconciling.exit_code == 0, reconciling.output
    assert "no findings" in reconciling.output
    assert f"openai/{UNKNOWN.model}" in reconciling.output.split("unpriced models", 1)[1]
    found = client.get("/v1/findings", params={"period": PERIOD.label}, headers=tenant.read).json()["findings"]
    assert found == []
    drift = client.get("/v1/reconciliation", params={"period": PERIOD.label}, headers=tenant.read).json()["rows"]
    accounts = {row["account"] for row in drift}
    assert UNKNOWN.workspace in accounts
    assert {row["expected_cost"] for row in drift if row["model"] == UNKNOWN.model} == {None}
    assert all(row["expected_cost"] is not None for row in drift if row["model"] != UNKNOWN.model)
    # The other tenant's month, with the same project names, is its own.
    other_findings = findings_of(engine, settings, other)
    assert [f.kind for f in other_findings] == ["price_drift"], described(other_findings)
    (drifted,) = other_findings
    assert (drifted.kind, drifted.account) == ("price_drift", OPENAI.drifted.workspace)


BILLING = {
    "padding_tokens": (OPENAI.padded, [2, 12, 60], "padding"),
    "system_prompt_double_count": (OPENAI.double_counted, [0.1, 1, 4], "system_prompt"),
    "cache_mischarge": (OPENAI.mischarged, [0.1, 0.4, 1.0], "cache_mischarge"),
    "price_drift": (OPENAI.drifted, [1.2, 1.5, 2.0], "price_drift"),
    "charged_errors": (OPENAI.charged, [0.01, 0.05, 0.3], "charged_errors"),
    "quantity_mismatch": (OPENAI.overbilled, [0.1, 0.3, 1.0], "quantity_mismatch"),
    "unlogged_usage": (OPENAI.leaked, [1, 5, 20], "unlogged_usage"),
    "unbilled_usage": (OPENAI.unbilled, [1, 4, 12], "unbilled_usage"),
}


@pytest.mark.parametrize(("kind", "size"), [(kind, size) for kind, (_, sizes, _) in BILLING.items() for size in sizes])
def test_each_billing_kind_is_found_at_every_size_on_a_noisy_openai_month(
    cli: CliRunner, client: TestClient, engine: Engine, settings: Settings, kind: str, size: float
) -> None:
    scope, sizes, plant = BILLING[kind]
    month = generate(Plant(plant, size), shape=OPENAI)
    truth = month.truth["impact_usd"]
    if size == sizes[0]:
        assert abs(truth) < MONEY_FLOOR, "the smallest size is below the money tolerance"

    tenant, _ = imported_from_openai(cli, client, engine, month)
    findings = findings_of(engine, settings, tenant)

    finding = found_on(findings, kind, scope)
    assert abs(finding.impact_usd - truth) <= Decimal("0.05") * abs(truth), (finding.impact_usd, truth)
    assert [f.kind for f in findings] == [kind], described(findings)
    if kind == "padding_tokens":
        estimated = Decimal(str(finding.evidence["tokens_per_request"]))
        assert abs(estimated - month.truth["tokens_per_request"]) <= 1
    if kind == "price_drift":
        assert finding.subject == "output"
        assert finding.evidence["since"] == DRIFT_FROM.isoformat()


OTHERS = {
    "billed_as_another": ("model_substitution", ANTHROPIC.relabeled, [1, 4, 12]),
    "served_by_another": ("model_substitution", ANTHROPIC.substituted, [0.01, 0.1, 0.5]),
    "spend_spike": ("spend_spike", ANTHROPIC.spiking, [100, 300, 1000]),
    "silent_truncation": ("silent_truncation", ANTHROPIC.truncated, [0.02, 0.1, 0.4]),
    "missing_finish_reason": ("missing_finish_reason", ANTHROPIC.streaming, [0.02, 0.1, 0.4]),
}


@pytest.mark.parametrize(
    ("plant", "size"), [(plant, size) for plant, (_, _, sizes) in OTHERS.items() for size in sizes]
)
def test_the_other_kinds_are_found_at_every_size_on_a_noisy_month(
    client: TestClient, engine: Engine, settings: Settings, plant: str, size: float
) -> None:
    kind, scope, _ = OTHERS[plant]
    month = generate(Plant(plant, size))

    findings = reconciled(client, engine, settings, month)

    assert [f.kind for f in findings] == [kind], described(findings)
    (finding,) = findings
    assert finding.account == scope.workspace
    if "rate" in month.truth:
        assert finding.api_key_id == scope.key
        rate = Decimal(str(finding.evidence["share" if kind == "silent_truncation" else "rate"]))
        assert abs(rate - month.truth["rate"]) <= RATE_TOLERANCE, (rate, month.truth["rate"])
        return
    truth = month.truth["impact_usd"]
    assert abs(finding.impact_usd - truth) <= Decimal("0.05") * abs(truth), (finding.impact_usd, truth)
    if plant == "served_by_another":
        assert (finding.subject, finding.model) == (f"requested:{scope.model}", ANTHROPIC.models[0])
    if plant == "billed_as_another":
        assert (finding.subject, finding.model) == (f"billed_as:{ANTHROPIC.models[1]}", scope.model)
        assert min(entry["day"] for entry in finding.evidence["series"]) == RELABELED_FROM.isoformat()
    if plant == "spend_spike":
        assert finding.api_key_id is None  # a spike is judged per account and model
        assert [entry["day"] for entry in finding.evidence["series"]] == [SPIKE_DAY.isoformat()]
