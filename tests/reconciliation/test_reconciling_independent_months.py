"""The reconciler on months it was not written beside (tests/month_generator.py): usage through the ingest API,
Anthropic's usage and cost reports through the real importer, the real reconciliation service on PostgreSQL.
Ordinary noise is silent; each planted kind is found at three sizes, one below the money tolerance, on its
scope, from the right day, with its impact within 5% of the constructed truth; scaling the traffic scales
every impact; renaming scopes and shuffling rows changes nothing but names."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from importers.anthropic import AnthropicImporter
from ledger.pricing.catalog import add_overrides
from ledger.pricing.prices import PRICE_FILE_COLUMNS, parse_price_csv
from ledger.reconcile import Finding
from ledger.reconciliation.run import run_reconciliation
from ledger.settings import Settings
from ledger.statements.store import store_statements
from ledger.storage.database import session_factory
from tests.conftest import make_tenant
from tests.month_generator import (
    CHARGED,
    DOUBLE_COUNTED,
    DRIFT_FROM,
    DRIFTED,
    LEAKED,
    MISCHARGED,
    OVERBILLED,
    PADDED,
    PERIOD,
    UNBILLED,
    KeyScope,
    Month,
    Plant,
    Shape,
    generate,
    renamed,
)

NOW = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
MONEY_FLOOR = Decimal("1.00")  # the default money_abs_tolerance


def reconciled(client: TestClient, engine: Engine, settings: Settings, month: Month) -> tuple[Finding, ...]:
    """Send the month, import its statements (first with a day wrong, then corrected), send the late events,
    reconcile: what a user of the service does, in that order."""
    tenant = make_tenant(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        tenant_id = session.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
        add_overrides(session, tenant_id, [negotiated_price(month.shape)], now=NOW)
    send(client, tenant.ingest, month.sent(late=False))
    importer = AnthropicImporter()
    for documents in (month.first_import, month.documents):
        lines = [line for document in documents for line in importer.parse(document)]
        with sessions.begin() as session:
            store_statements(
                session, tenant_id=tenant_id, source="anthropic", period=PERIOD, documents=documents, lines=lines,
                now=NOW,
            )  # fmt: skip
    send(client, tenant.ingest, month.sent(late=True))
    outcome = run_reconciliation(sessions, tenant_id=tenant_id, period=PERIOD, settings=settings, now=NOW)
    assert outcome.result is not None, outcome.error
    return outcome.result.findings


def negotiated_price(shape: Shape) -> Any:
    values = {
        "provider": shape.provider, "model": shape.models[1], "token_type": "input", "service_tier": "standard",
        "context_threshold": "0", "unit_price": str(shape.negotiated_input), "unit": "1M tokens", "currency": "USD",
        "valid_from": "2026-01-01", "valid_to": "", "window": "", "source": "MSA", "source_date": "2026-01-01",
        "note": "negotiated",
    }  # fmt: skip
    header = ",".join(PRICE_FILE_COLUMNS)
    (row,) = parse_price_csv(f"{header}\n{','.join(values[c] for c in PRICE_FILE_COLUMNS)}\n", origin="test")
    return row


def send(client: TestClient, headers: dict[str, str], events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 10_000):
        body = "\n".join(json.dumps(event) for event in events[start : start + 10_000])
        response = client.post("/v1/events", content=body, headers={**headers, "Content-Type": "application/x-ndjson"})
        assert response.status_code == 202, response.text


def test_a_month_of_ordinary_noise_has_no_finding(client: TestClient, engine: Engine, settings: Settings) -> None:
    findings = reconciled(client, engine, settings, generate())

    assert [(f.kind, f.account, f.api_key_id, f.summary) for f in findings] == []


PLANTS = {
    "padding_tokens": (PADDED, [2, 12, 60], "padding"),
    "system_prompt_double_count": (DOUBLE_COUNTED, [0.1, 1, 4], "system_prompt"),
    "cache_mischarge": (MISCHARGED, [0.1, 0.4, 1.0], "cache_mischarge"),
    "price_drift": (DRIFTED, [1.2, 1.5, 2.0], "price_drift"),
    "charged_errors": (CHARGED, [0.01, 0.05, 0.3], "charged_errors"),
    "quantity_mismatch": (OVERBILLED, [0.1, 0.3, 1.0], "quantity_mismatch"),
    "unlogged_usage": (LEAKED, [1, 5, 20], "unlogged_usage"),
    "unbilled_usage": (UNBILLED, [1, 4, 12], "unbilled_usage"),
}
CASES = [(kind, size) for kind, (_, sizes, _) in PLANTS.items() for size in sizes]


def found_on(findings: tuple[Finding, ...], kind: str, scope: KeyScope) -> Finding:
    matching = [f for f in findings if f.kind == kind]
    assert len(matching) == 1, [(f.kind, f.account, f.api_key_id, f.summary) for f in findings]
    (finding,) = matching
    assert finding.account == scope.workspace
    assert finding.api_key_id in (scope.key, None)  # the cost report prices per workspace
    return finding


@pytest.mark.parametrize(("kind", "size"), CASES)
def test_each_kind_is_found_at_every_size_on_a_noisy_month(
    client: TestClient, engine: Engine, settings: Settings, kind: str, size: float
) -> None:
    scope, sizes, plant = PLANTS[kind]
    month = generate(Plant(plant, size))
    truth = month.truth["impact_usd"]
    if size == sizes[0]:
        assert abs(truth) < MONEY_FLOOR, "the smallest size is below the money tolerance"

    findings = reconciled(client, engine, settings, month)

    finding = found_on(findings, kind, scope)
    assert abs(finding.impact_usd - truth) <= Decimal("0.05") * abs(truth), (finding.impact_usd, truth)
    if abs(truth) < Decimal(10):  # the warning amount
        assert finding.severity == "info"
    assert [f.kind for f in findings] == [kind], [(f.kind, f.summary) for f in findings]
    if kind == "padding_tokens":
        estimated = Decimal(str(finding.evidence["tokens_per_request"]))
        assert abs(estimated - month.truth["tokens_per_request"]) <= 1
    if kind == "charged_errors":  # no request counts in Anthropic's usage report: the prompts tell
        assert finding.evidence["error_requests"] == month.failed(CHARGED)
        assert finding.evidence["error_prompt_tokens"] == month.failed_prompt_tokens(CHARGED)
    if kind == "price_drift":
        assert finding.subject == "output"
        assert finding.evidence["since"] == DRIFT_FROM.isoformat()
        assert finding.evidence["quantity_source"] == "billed_rolled_up"


def test_scaling_the_traffic_scales_every_impact(client: TestClient, engine: Engine, settings: Settings) -> None:
    plant = Plant("padding", 12)
    once = reconciled(client, engine, settings, generate(plant))
    thrice = reconciled(client, engine, settings, generate(plant, copies=3))

    assert [f.kind for f in thrice] == [f.kind for f in once] == ["padding_tokens"]
    for single, tripled in zip(once, thrice, strict=True):
        assert abs(tripled.impact_usd - 3 * single.impact_usd) <= Decimal("0.01") * 3 * single.impact_usd


def test_renaming_scopes_and_shuffling_rows_changes_only_names(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    month = generate(Plant("price_drift", 1.2))
    original = reconciled(client, engine, settings, month)
    shuffled = reconciled(client, engine, settings, renamed(month, random.Random(5)))

    def nameless(finding: Finding) -> tuple[object, ...]:
        evidence = {k: v for k, v in finding.evidence.items() if k not in ("account", "api_key_id")}
        return finding.kind, finding.subject, finding.impact_usd, finding.severity, json.dumps(evidence, sort_keys=True)

    assert sorted(map(nameless, shuffled)) == sorted(map(nameless, original))
    assert {f.account for f in shuffled}.isdisjoint({f.account for f in original})
