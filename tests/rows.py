"""Real rows for the report tests, written with the `ledger.storage.tables` classes: what the reconciler, the
importers and the ingest would have stored."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from ledger.periods import Period, day_start
from ledger.sink import latency
from ledger.sink.rollup import SUM_COLUMNS
from ledger.storage import tables

OCTOBER = Period.month("2026-10")
NOW = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


def drift_row(
    session: Session,
    tenant_id: int,
    *,
    provider: str,
    model: str,
    account: str = "proj_main",
    logged: int,
    billed: int | None,
    expected: str | None,
    billed_cost: str | None,
    period: Period = OCTOBER,
    logged_by_category: Mapping[str, int] | None = None,
    currency: str = "USD",
) -> tables.DriftRow:
    expected_cost = None if expected is None else Decimal(expected)
    billed_amount = None if billed_cost is None else Decimal(billed_cost)
    difference = billed_amount - expected_cost if billed_amount is not None and expected_cost is not None else None
    percent = (
        (difference / expected_cost * 100).quantize(Decimal("0.01"))
        if difference is not None and expected_cost
        else None
    )
    row = tables.DriftRow(
        tenant_id=tenant_id,
        period_start=period.start,
        period_end=period.end,
        provider=provider,
        account=account,
        model=model,
        logged_tokens=logged,
        billed_tokens=billed,
        logged_by_category=dict(logged_by_category or {"uncached_input": logged}),
        billed_by_category={} if billed is None else {"uncached_input": billed},
        expected_cost=expected_cost,
        billed_cost=billed_amount,
        difference=difference,
        percent=percent,
        currency=currency,
        computed_at=NOW,
    )
    session.add(row)
    session.flush()
    return row


def finding(
    session: Session,
    tenant_id: int,
    *,
    kind: str = "quantity_mismatch",
    severity: str = "warning",
    provider: str | None = "openai",
    account: str | None = "proj_main",
    model: str | None = "gpt-5.4-mini",
    impact: str = "120.50",
    evidence: Mapping[str, Any] | None = None,
    summary: str = "billed more than logged",
    status: str = "open",
    period: Period = OCTOBER,
    fingerprint: str | None = None,
) -> tables.Finding:
    row = tables.Finding(
        tenant_id=tenant_id,
        fingerprint=fingerprint or secrets.token_hex(16),
        kind=kind,
        severity=severity,
        status=status,
        provider=provider,
        account=account,
        api_key_id=None,
        model=model,
        period_start=period.start,
        period_end=period.end,
        impact_usd=Decimal(impact),
        evidence=dict(evidence or {}),
        summary=summary,
        first_seen=NOW - timedelta(days=2),
        last_seen=NOW,
    )
    session.add(row)
    session.flush()
    return row


def hourly(
    session: Session,
    tenant_id: int,
    *,
    hour: datetime,
    provider: str = "openai",
    model: str = "gpt-5.4-mini",
    request_model: str | None = None,
    requests: int = 10,
    input_tokens: int = 1_000,
    output_tokens: int = 200,
    cache_read: int = 0,
    cache_write: int = 0,
    reasoning: int = 0,
    latencies: Sequence[int] = (),
    ttfts: Sequence[int] = (),
    counts: Mapping[str, int] | None = None,
    app: str = "",
) -> None:
    sums: dict[str, Any] = dict.fromkeys(SUM_COLUMNS, 0)
    sums.update(
        requests=requests,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_write,
        reasoning_tokens=reasoning,
        status_2xx=requests,
        reported_cost=Decimal(0),
        **(counts or {}),
    )
    session.add(
        tables.UsageHourly(
            tenant_id=tenant_id,
            hour=hour,
            provider=provider,
            account="proj_main",
            api_key_id="",
            app=app,
            request_model=request_model or model,
            response_model=model,
            service_tier="",
            input_band=0,
            latency_histogram=latency.histogram_of(latencies),
            ttft_histogram=latency.histogram_of(ttfts),
            **sums,
        )
    )
    session.flush()


def statement_line(
    session: Session,
    tenant_id: int,
    *,
    day: date,
    provider: str = "openai",
    model: str | None = "gpt-5.4-mini",
    usage_type: str = "uncached_input",
    quantity: int | None = None,
    amount: str | None = None,
    source: str = "openai",
    days: int = 1,
) -> None:
    start = day_start(day)
    session.add(
        tables.StatementLine(
            tenant_id=tenant_id,
            source=source,
            document_id=1,
            provider=provider,
            account="proj_main",
            api_key_id=None,
            model_raw=model,
            model=model,
            service_tier=None,
            period_start=start,
            period_end=start + timedelta(days=days),
            usage_type=usage_type,
            quantity=None if quantity is None else Decimal(quantity),
            unit=None if quantity is None else "tokens",
            amount=None if amount is None else Decimal(amount),
            currency=None if amount is None else "USD",
            request_id=None,
            final=True,
            import_period_start=OCTOBER.start,
            location="line 1",
            raw={},
        )
    )
    session.flush()


def statement_import(
    session: Session,
    tenant_id: int,
    *,
    source: str = "openai",
    imported_at: datetime = NOW,
    lines: int = 62,
    period: Period = OCTOBER,
) -> None:
    session.add(
        tables.StatementImport(
            tenant_id=tenant_id,
            source=source,
            period_start=period.start,
            period_end=period.end,
            imported_at=imported_at,
            documents=2,
            lines=lines,
            unknown_lines=0,
        )
    )
    session.flush()


def run(
    session: Session,
    tenant_id: int,
    *,
    status: str = "succeeded",
    error: str | None = None,
    period: Period = OCTOBER,
    started_at: datetime = NOW,
) -> tables.ReconciliationRun:
    row = tables.ReconciliationRun(
        tenant_id=tenant_id,
        period_start=period.start,
        period_end=period.end,
        trigger="schedule",
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=4),
        status=status,
        counts={"findings": 1},
        error=error,
    )
    session.add(row)
    session.flush()
    return row


def channel(
    session: Session,
    tenant_id: int,
    *,
    name: str = "ops",
    kind: str = "webhook",
    config: Mapping[str, Any] | None = None,
    min_severity: str = "warning",
    min_impact_usd: str = "0",
    enabled: bool = True,
) -> tables.AlertChannel:
    row = tables.AlertChannel(
        tenant_id=tenant_id,
        name=name,
        kind=kind,
        config=dict(config or {"url": "http://127.0.0.1:9/hook", "secret": "s3cret"}),
        min_severity=min_severity,
        min_impact_usd=Decimal(min_impact_usd),
        enabled=enabled,
    )
    session.add(row)
    session.flush()
    return row


def unreadable_price(session: Session, tenant_id: int) -> None:
    """A tenant price whose time window no catalog can read (as if edited by hand): a reconciliation fails."""
    session.add(
        tables.PriceOverride(
            tenant_id=tenant_id,
            provider="openai",
            model="gpt-5.4",
            token_type="input",
            service_tier="standard",
            context_threshold=0,
            unit_price=1,
            unit="1M tokens",
            currency="USD",
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
            valid_to=None,
            time_window="every full moon",
            source="corrupted by hand",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
