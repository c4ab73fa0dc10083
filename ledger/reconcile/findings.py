"""Building findings: the severity rule, JSON-ready evidence, and number formatting for summaries.

Severity rule (documented contract):
- Money kinds (every kind but the quality kinds): severity comes from money. Below
  `severity_warning_usd` of `impact_usd` in absolute value a finding is `info`, whatever its rate. From
  there it is `critical` at `severity_critical_usd`, or when its rate (its relative size, in absolute
  value) reaches `severity_critical_rate`; else `warning`.
- Quality kinds (`silent_truncation`, `missing_finish_reason`, whose impact is not money): severity comes
  from their rate, `critical` at `severity_critical_rate`, `warning` at `severity_warning_rate`, else `info`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal

from ledger.reconcile.fingerprint import fingerprint
from ledger.reconcile.model import Comparison, Finding, JSONValue, ReconcileSettings, Scope

MILLION = Decimal(1_000_000)
EvidenceValue = JSONValue | Decimal | date | Sequence["EvidenceValue"] | Mapping[str, "EvidenceValue"]


QUALITY_KINDS = frozenset({"silent_truncation", "missing_finish_reason"})
"""Kinds whose size is a rate of affected requests, not money."""


def severity(kind: str, impact_usd: Decimal, rate: Decimal | None, settings: ReconcileSettings) -> str:
    size = abs(rate) if rate is not None else Decimal(0)
    if kind in QUALITY_KINDS:
        if size >= settings.severity_critical_rate:
            return "critical"
        return "warning" if size >= settings.severity_warning_rate else "info"
    money = abs(impact_usd)
    if money < settings.severity_warning_usd:
        return "info"
    if money >= settings.severity_critical_usd or size >= settings.severity_critical_rate:
        return "critical"
    return "warning"


def to_json(value: EvidenceValue) -> JSONValue:
    """Evidence as JSON: Decimals as strings, dates ISO, ints as ints; floats are refused (round first)."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, Sequence):
        return [to_json(item) for item in value]
    raise TypeError(f"evidence value {value!r} ({type(value).__name__}) is not JSON evidence")


def estimate(value: float, places: int = 2) -> Decimal:
    """A statistical estimate as a Decimal rounded to `places` (infinite values stay infinite)."""
    if not math.isfinite(value):
        return Decimal("Infinity") if value > 0 else Decimal("-Infinity")
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places))


def new_finding(
    *,
    kind: str,
    scope: Scope,
    period: tuple[datetime, datetime],
    impact_usd: Decimal,
    rate: Decimal | None,
    evidence: Mapping[str, EvidenceValue],
    summary: str,
    settings: ReconcileSettings,
    subject: str = "",
) -> Finding:
    start, end = period
    return Finding(
        kind=kind,
        severity=severity(kind, impact_usd, rate, settings),
        provider=scope.provider,
        account=scope.account,
        api_key_id=scope.api_key_id,
        model=scope.model,
        service_tier=scope.service_tier,
        subject=subject,
        period_start=start,
        period_end=end,
        impact_usd=impact_usd.quantize(Decimal("0.000001")),
        evidence={key: to_json(value) for key, value in evidence.items()},
        summary=summary,
        fingerprint=fingerprint(kind, scope, subject, start, end),
    )


def series_entry(bucket: Comparison, logged: EvidenceValue, billed: EvidenceValue) -> dict[str, EvidenceValue]:
    """One point of a finding's daily series; a midnight-merged bucket also names its last day."""
    entry: dict[str, EvidenceValue] = {"day": bucket.first_day, "logged": logged, "billed": billed}
    if bucket.last_day != bucket.first_day:
        entry["through"] = bucket.last_day
    return entry


def per_million(unit_price: Decimal) -> Decimal:
    """USD per token as USD per 1M tokens, rounded to 6 places."""
    return (unit_price * MILLION).quantize(Decimal("0.000001"))


def fmt_int(value: int) -> str:
    return f"{value:,}"


def fmt_usd(value: Decimal) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value).quantize(Decimal('0.01')):,}"


def fmt_pct(rate: Decimal) -> str:
    return f"{(rate * 100).quantize(Decimal('0.1'))}%"


def cost_of(tokens: int, unit_price: Decimal | None) -> Decimal | None:
    return None if unit_price is None else tokens * unit_price
