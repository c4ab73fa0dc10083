"""Running the reconciler for a tenant and period: load logged usage (hourly rollup, priced by the catalog in
SQL so history is re-priced on every run) and billed usage (statement lines), run the pure detection core,
and store drift rows and findings. Each run is recorded in `reconciliation_runs`, failed ones included."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, sessionmaker

from ledger.catalog import load_catalog
from ledger.model_names import normalize_model_name, provider_of_model
from ledger.periods import Period
from ledger.pricing import PriceCatalog
from ledger.reconcile.model import (
    BilledDay,
    FinishCounts,
    LoggedDay,
    ReconcileResult,
    ReconcileSettings,
    TokenCounts,
    TruncationStats,
)
from ledger.reconcile.model import DriftRow as DriftResult
from ledger.reconcile.model import Finding as FindingResult
from ledger.reconcile.reconciler import reconcile
from ledger.settings import Settings
from ledger.tables import DriftRow, Finding, ReconciliationRun, StatementLine

log = logging.getLogger("tokenledger.reconcile")

CATEGORY_OF_USAGE_TYPE = {
    "uncached_input": "uncached_input",
    "cached_input": "cached_input",
    "cache_write_5m": "cache_write_5m",
    "cache_write_1h": "cache_write_1h",
    "output": "output",
}
PRICE_TYPES = {  # reconciler category -> catalog token type
    "uncached_input": "input",
    "cached_input": "cached_input",
    "cache_write_5m": "cache_write_5m",
    "cache_write_1h": "cache_write_1h",
    "output": "output",
}
STATEMENT_TIERS = {
    "default": "standard", "auto": "standard", "scale": "standard", "standard": "standard",
    "batch": "batch", "flex": "flex", "flex_discount": "flex", "priority": "priority",
    "priority_on_demand": "priority", "fast": "priority",
}
HISTORY_DAYS = 28
# OpenRouter: "we pass through the pricing of the underlying providers" (openrouter.ai/docs/faq, pricing).
PASS_THROUGH_GATEWAYS = frozenset({"openrouter", "litellm"})


def reconcile_settings(settings: Settings) -> ReconcileSettings:
    return ReconcileSettings(
        token_rel_tolerance=settings.tolerance_relative,
        token_abs_tolerance=settings.tolerance_tokens,
        money_rel_tolerance=settings.tolerance_relative,
        money_abs_tolerance=settings.tolerance_usd,
    )


# ---------------------------------------------------------------- logged side

_LOGGED_SQL = """
SELECT (h.hour AT TIME ZONE 'UTC')::date AS day, h.provider, h.account, h.api_key_id, h.response_model,
       h.request_model, h.service_tier,
       sum(h.requests) AS requests, sum(h.status_2xx) AS ok, sum(h.status_429) AS e429, sum(h.status_5xx) AS e5xx,
       sum(h.status_4xx) AS e4xx,
       sum(h.input_tokens - h.cache_read_input_tokens - h.cache_creation_input_tokens) AS uncached_input,
       sum(h.cache_read_input_tokens) AS cached_input,
       sum(h.cache_creation_input_tokens - h.cache_creation_1h_input_tokens) AS cache_write_5m,
       sum(h.cache_creation_1h_input_tokens) AS cache_write_1h,
       sum(h.output_tokens) AS output, sum(h.reasoning_tokens) AS reasoning,
       sum(h.system_prompt_tokens) AS system_prompt_tokens, sum(h.system_prompt_requests) AS system_prompt_requests,
       sum(h.streamed) AS streamed, sum(h.streamed_missing_finish) AS streamed_missing_finish,
       sum(h.finish_stop) AS f_stop, sum(h.finish_length) AS f_length, sum(h.finish_tool_calls) AS f_tool,
       sum(h.finish_content_filter) AS f_filter, sum(h.finish_other) AS f_other, sum(h.finish_missing) AS f_missing,
       sum(h.truncated_below_max) AS truncated, min(h.truncated_min_output) AS truncated_min,
       max(h.truncated_max_output) AS truncated_max,
       sum(h.reported_cost) AS reported_cost, sum(h.reported_cost_requests) AS reported_cost_requests,
       {cost_columns}
FROM usage_hourly h
LEFT JOIN reconcile_prices p ON p.provider = h.provider AND p.model = h.response_model
     AND p.service_tier = h.service_tier AND p.input_band = h.input_band AND p.hour = h.hour
LEFT JOIN reconcile_prices q ON q.provider = h.provider AND q.model = h.request_model
     AND q.service_tier = h.service_tier AND q.input_band = h.input_band AND q.hour = h.hour
WHERE h.tenant_id = :tenant AND h.hour >= :start AND h.hour < :end
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""

_QUANTITY = {
    "uncached_input": "(h.input_tokens - h.cache_read_input_tokens - h.cache_creation_input_tokens)",
    "cached_input": "h.cache_read_input_tokens",
    "cache_write_5m": "(h.cache_creation_input_tokens - h.cache_creation_1h_input_tokens)",
    "cache_write_1h": "h.cache_creation_1h_input_tokens",
    "output": "h.output_tokens",
}


def _cost_columns() -> str:
    columns = []
    for category, quantity in _QUANTITY.items():
        columns += [
            f"sum({quantity} * p.{category}) AS cost_{category}",
            f"bool_or({quantity} > 0 AND p.{category} IS NULL) AS unpriced_{category}",
            f"max(p.{category}) AS price_{category}",
            f"sum({quantity} * q.{category}) AS requested_cost_{category}",
            f"bool_or({quantity} > 0 AND q.{category} IS NULL) AS requested_unpriced_{category}",
        ]
    return ",\n       ".join(columns)


def _price_table(session: Session, tenant_id: int, window: Period, catalog: PriceCatalog) -> None:
    """Fill a temporary table with the per-token price of every (provider, model, tier, band, hour) the
    rollup holds for the window: a bounded set (models × hours), priced once each, joined in SQL."""
    session.execute(text(
        "CREATE TEMP TABLE IF NOT EXISTS reconcile_prices (provider text, model text, service_tier text, "
        "input_band smallint, hour timestamptz, uncached_input numeric, cached_input numeric, "
        "cache_write_5m numeric, cache_write_1h numeric, output numeric) ON COMMIT DROP"
    ))
    keys = session.execute(text(
        "SELECT DISTINCT provider, model, service_tier, input_band, hour FROM ("
        " SELECT provider, response_model AS model, service_tier, input_band, hour FROM usage_hourly"
        "  WHERE tenant_id = :tenant AND hour >= :start AND hour < :end"
        " UNION SELECT provider, request_model, service_tier, input_band, hour FROM usage_hourly"
        "  WHERE tenant_id = :tenant AND hour >= :start AND hour < :end) AS k"
    ), {"tenant": tenant_id, "start": window.start, "end": window.end}).all()
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy("COPY reconcile_prices FROM STDIN") as copy:
        for provider, model, tier, band, hour in keys:
            prices = []
            pricing_provider = pricing_provider_of(provider, model)
            for category in PRICE_TYPES:
                row = catalog.unit_price(pricing_provider, model, PRICE_TYPES[category], at=hour,
                                         service_tier=tier or "standard", input_band=band)
                prices.append(None if row is None else row.price_per_token())
            copy.write_row((provider, model, tier, band, hour, *prices))


def pricing_provider_of(provider: str, model: str) -> str:
    """Whose list price applies: a gateway that passes the upstream price through (OpenRouter, LiteLLM)
    is priced as the provider its model name names (`anthropic/claude-sonnet-4.6` → anthropic)."""
    if provider in PASS_THROUGH_GATEWAYS:
        return provider_of_model(model) or provider
    return provider


def load_logged_days(session: Session, tenant_id: int, window: Period, catalog: PriceCatalog) -> list[LoggedDay]:
    _price_table(session, tenant_id, window, catalog)
    rows = session.execute(
        text(_LOGGED_SQL.format(cost_columns=_cost_columns())),
        {"tenant": tenant_id, "start": window.start, "end": window.end},
    ).mappings()
    merged: dict[tuple[Any, ...], LoggedDay] = {}
    for row in rows:
        day = _logged_day(row)
        key = (day.day, day.provider, day.account, day.api_key_id, day.model, day.request_model, day.service_tier)
        merged[key] = _merge_logged(merged[key], day) if key in merged else day
    return list(merged.values())


def _logged_day(row: Any) -> LoggedDay:
    costs: dict[str, Decimal | None] = {}
    prices: dict[str, Decimal | None] = {}
    unpriced = requested_unpriced = False
    requested_total = Decimal(0)
    for category in _QUANTITY:
        if row[f"unpriced_{category}"]:
            unpriced = True
        else:
            costs[category] = row[f"cost_{category}"] or Decimal(0)
        prices[category] = row[f"price_{category}"]
        if row[f"requested_unpriced_{category}"]:
            requested_unpriced = True
        else:
            requested_total += row[f"requested_cost_{category}"] or Decimal(0)
    provider = row["provider"]
    return LoggedDay(
        provider=provider,
        account=row["account"],
        api_key_id=row["api_key_id"],
        model=normalize_model_name(provider, row["response_model"]),
        request_model=normalize_model_name(provider, row["request_model"]),
        service_tier=row["service_tier"] or "standard",
        day=row["day"],
        requests=int(row["requests"]),
        successful_requests=int(row["ok"]),
        errors_429=int(row["e429"]),
        errors_5xx=int(row["e5xx"]),
        errors_4xx=int(row["e4xx"]),
        tokens=TokenCounts(**{category: int(row[category]) for category in _QUANTITY}),
        reasoning_tokens=int(row["reasoning"]),
        system_prompt_tokens=int(row["system_prompt_tokens"]),
        requests_with_system_prompt=int(row["system_prompt_requests"]),
        streamed_requests=int(row["streamed"]),
        streamed_missing_finish=int(row["streamed_missing_finish"]),
        finish=FinishCounts(stop=int(row["f_stop"]), length=int(row["f_length"]), tool_calls=int(row["f_tool"]),
                            content_filter=int(row["f_filter"]), other=int(row["f_other"]),
                            missing=int(row["f_missing"])),
        truncation=TruncationStats(count=int(row["truncated"]), min_output=int(row["truncated_min"] or 0),
                                   max_output=int(row["truncated_max"] or 0)),
        expected_cost=None if unpriced else sum((cost for cost in costs.values() if cost is not None), Decimal(0)),
        expected_cost_by_category=costs,
        expected_unit_price=prices,
        expected_cost_at_requested_model=None if requested_unpriced else requested_total,
        reported_cost=row["reported_cost"] if row["reported_cost_requests"] else None,
    )


def _merge_logged(left: LoggedDay, right: LoggedDay) -> LoggedDay:
    """Two rollup rows whose raw model names normalize to the same model."""

    def add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
        return None if a is None or b is None else a + b

    costs = {c: add(left.expected_cost_by_category.get(c), right.expected_cost_by_category.get(c))
             for c in _QUANTITY}
    return replace(
        left,
        requests=left.requests + right.requests,
        successful_requests=left.successful_requests + right.successful_requests,
        errors_429=left.errors_429 + right.errors_429,
        errors_5xx=left.errors_5xx + right.errors_5xx,
        errors_4xx=left.errors_4xx + right.errors_4xx,
        tokens=left.tokens + right.tokens,
        reasoning_tokens=left.reasoning_tokens + right.reasoning_tokens,
        system_prompt_tokens=left.system_prompt_tokens + right.system_prompt_tokens,
        requests_with_system_prompt=left.requests_with_system_prompt + right.requests_with_system_prompt,
        streamed_requests=left.streamed_requests + right.streamed_requests,
        streamed_missing_finish=left.streamed_missing_finish + right.streamed_missing_finish,
        finish=FinishCounts(**{name: getattr(left.finish, name) + getattr(right.finish, name)
                               for name in ("stop", "length", "tool_calls", "content_filter", "other", "missing")}),
        truncation=_merge_truncation(left.truncation, right.truncation),
        expected_cost=add(left.expected_cost, right.expected_cost),
        expected_cost_by_category={c: v for c, v in costs.items() if v is not None},
        expected_cost_at_requested_model=add(left.expected_cost_at_requested_model,
                                             right.expected_cost_at_requested_model),
        reported_cost=add(left.reported_cost, right.reported_cost)
        if left.reported_cost is not None and right.reported_cost is not None
        else left.reported_cost if right.reported_cost is None else right.reported_cost,
    )


def _merge_truncation(left: TruncationStats, right: TruncationStats) -> TruncationStats:
    if not left.count:
        return right
    if not right.count:
        return left
    return TruncationStats(count=left.count + right.count, min_output=min(left.min_output, right.min_output),
                           max_output=max(left.max_output, right.max_output))


# ---------------------------------------------------------------- billed side

def load_billed_days(session: Session, tenant_id: int, period: Period) -> list[BilledDay]:
    lines = session.scalars(
        select(StatementLine).where(
            StatementLine.tenant_id == tenant_id,
            StatementLine.period_start >= period.start,
            StatementLine.period_start < period.end,
        )
    )
    return billed_days(lines)


@dataclass
class _BilledAccumulator:
    quantities: dict[str, Decimal]
    amounts: dict[str, Decimal]
    total: Decimal | None
    requests: Decimal | None
    currency: str
    final: bool
    sources: set[str]


def billed_days(lines: Iterable[StatementLine]) -> list[BilledDay]:
    """Statement lines summed per scope × UTC day. Lines without a usage quantity or amount the reconciler
    can compare (credits, `other`) are left to the drift report."""
    groups: dict[tuple[Any, ...], _BilledAccumulator] = {}
    for line in lines:
        if line.usage_type not in (*CATEGORY_OF_USAGE_TYPE, "requests", "web_search"):
            continue
        tier = STATEMENT_TIERS.get(line.service_tier or "", line.service_tier) if line.service_tier else None
        key = (line.provider, line.account, line.api_key_id, line.model, tier, line.period_start.date())
        group = groups.setdefault(key, _BilledAccumulator(defaultdict(Decimal), defaultdict(Decimal), None, None,
                                                          line.currency or "USD", True, set()))
        group.final = group.final and line.final
        group.sources.add(line.source)
        category = CATEGORY_OF_USAGE_TYPE.get(line.usage_type)
        if category and line.quantity is not None:
            group.quantities[category] += line.quantity
        if line.usage_type == "requests" and line.quantity is not None:
            group.requests = (group.requests or Decimal(0)) + line.quantity
        if line.amount is not None:
            if category:
                group.amounts[category] += line.amount
            group.total = (group.total or Decimal(0)) + line.amount
            group.currency = line.currency or group.currency
    return [
        BilledDay(
            provider=provider, account=account, api_key_id=key_id, model=model, service_tier=tier, day=day,
            quantities={c: int(q) for c, q in group.quantities.items()},
            requests=None if group.requests is None else int(group.requests),
            amounts=dict(group.amounts), total_amount=group.total, currency=group.currency, final=group.final,
            source="+".join(sorted(group.sources)),
        )
        for (provider, account, key_id, model, tier, day), group in groups.items()
    ]


# ---------------------------------------------------------------- running and storing

@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    status: str
    counts: dict[str, int]
    error: str | None
    result: ReconcileResult | None


def run_reconciliation(
    sessions: sessionmaker[Session], *, tenant_id: int, period: Period, settings: Settings, now: datetime,
    trigger: str = "manual",
) -> RunOutcome:
    """Reconcile and store the results in one transaction; the run row is committed either way."""
    with sessions.begin() as session:
        run = ReconciliationRun(tenant_id=tenant_id, period_start=period.start, period_end=period.end,
                                trigger=trigger, started_at=now, status="running", counts={})
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        with sessions.begin() as session:
            result = reconcile_period(session, tenant_id=tenant_id, period=period, settings=settings)
            counts = store_results(session, tenant_id=tenant_id, period=period, result=result, run_id=run_id, now=now)
            finished = session.get(ReconciliationRun, (tenant_id, run_id))
            assert finished is not None
            finished.status, finished.finished_at, finished.counts = "succeeded", now, counts
        return RunOutcome(run_id, "succeeded", counts, None, result)
    except Exception as error:
        log.exception("reconciliation of %s for tenant %s failed", period.label, tenant_id)
        message = f"{type(error).__name__}: {error}"
        with sessions.begin() as session:
            failed = session.get(ReconciliationRun, (tenant_id, run_id))
            assert failed is not None
            failed.status, failed.finished_at, failed.error = "failed", now, message[:2000]
            _queue_run_failure_alert(session, tenant_id, failed, now)
        return RunOutcome(run_id, "failed", {}, message, None)


def reconcile_period(session: Session, *, tenant_id: int, period: Period, settings: Settings) -> ReconcileResult:
    """Load both sides and run the detection core (no writes)."""
    catalog = load_catalog(session, tenant_id)
    history_window = Period(period.start - timedelta(days=HISTORY_DAYS), period.end)
    logged_all = load_logged_days(session, tenant_id, history_window, catalog)
    first_day = period.start.date()
    logged = [row for row in logged_all if row.day >= first_day]
    history = [row for row in logged_all if row.day < first_day]
    billed = load_billed_days(session, tenant_id, period)
    return reconcile(logged, billed, period=period, settings=reconcile_settings(settings), history=history)


def store_results(session: Session, *, tenant_id: int, period: Period, result: ReconcileResult, run_id: int,
                  now: datetime) -> dict[str, int]:
    _store_drift(session, tenant_id, period, result.drift, now)
    created = updated = 0
    for finding in result.findings:
        was_new = _upsert_finding(session, tenant_id, finding, run_id, now)
        created += was_new
        updated += not was_new
    counts = {"findings": len(result.findings), "new_findings": created, "updated_findings": updated,
              "drift_rows": len(result.drift), "comparisons": len(result.comparisons)}
    for finding in result.findings:
        counts[f"kind:{finding.kind}"] = counts.get(f"kind:{finding.kind}", 0) + 1
    return counts


def _store_drift(session: Session, tenant_id: int, period: Period, drift: Sequence[DriftResult], now: datetime) -> None:
    session.execute(delete(DriftRow).where(DriftRow.tenant_id == tenant_id, DriftRow.period_start == period.start))
    seen: set[tuple[str, str, str]] = set()
    for row in drift:
        key = (row.provider, row.account or "", row.model or "")
        if key in seen:
            continue
        seen.add(key)
        session.add(DriftRow(
            tenant_id=tenant_id, period_start=period.start, provider=row.provider, account=row.account or "",
            model=row.model or "", period_end=period.end, logged_tokens=row.logged_total_tokens,
            billed_tokens=row.billed_total_tokens, logged_by_category=dict(row.logged_tokens),
            billed_by_category=dict(row.billed_tokens), expected_cost=row.expected_cost, billed_cost=row.billed_cost,
            difference=row.difference, percent=row.percent, currency="USD", computed_at=now,
        ))
    session.flush()


SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def _upsert_finding(session: Session, tenant_id: int, finding: FindingResult, run_id: int, now: datetime) -> bool:
    """Insert a new finding or update the one with the same fingerprint (keeping the status a person gave it).
    Queues an alert when it is new or worse than before. Returns True when it was new."""
    previous = session.execute(
        select(Finding.severity, Finding.impact_usd).where(
            Finding.tenant_id == tenant_id, Finding.fingerprint == finding.fingerprint)
    ).first()
    values = {
        "kind": finding.kind, "severity": finding.severity, "provider": finding.provider,
        "account": finding.account, "api_key_id": finding.api_key_id, "model": finding.model,
        "period_start": finding.period_start, "period_end": finding.period_end, "impact_usd": finding.impact_usd,
        "evidence": dict(finding.evidence), "summary": finding.summary, "last_seen": now, "last_run_id": run_id,
    }
    statement = pg_insert(Finding).values(tenant_id=tenant_id, fingerprint=finding.fingerprint, status="open",
                                          first_seen=now, **values)
    statement = statement.on_conflict_do_update(index_elements=["tenant_id", "fingerprint"], set_=values)
    session.execute(statement)
    stored = session.scalars(
        select(Finding).where(Finding.tenant_id == tenant_id, Finding.fingerprint == finding.fingerprint)
    ).one()
    _queue_finding_alert(session, tenant_id, stored, previous, now)
    return previous is None


def _queue_finding_alert(session: Session, tenant_id: int, finding: Finding, previous: Any, now: datetime) -> None:
    try:
        from reports.alerts import queue_finding_alert
    except ImportError:
        return
    queue_finding_alert(
        session, tenant_id=tenant_id, finding=finding,
        previous_severity=None if previous is None else previous.severity,
        previous_impact=None if previous is None else previous.impact_usd, now=now,
    )


def _queue_run_failure_alert(session: Session, tenant_id: int, run: ReconciliationRun, now: datetime) -> None:
    try:
        from reports.alerts import queue_run_failure_alert
    except ImportError:
        return
    queue_run_failure_alert(session, tenant_id=tenant_id, run=run, now=now)

