"""Daily spend far above its trailing baseline, by robust statistics: the day's expected spend exceeds the
trailing median by at least `spike_min_usd`, is at least `spike_min_ratio` × the median, and its robust
z-score (excess ÷ (1.4826 × MAD), the normal-consistent median absolute deviation) is at least
`spike_robust_z`. Consecutive spike days form one finding. Spend is the logged expected cost (the
provider-reported cost where a row is unpriced); `history` supplies the baseline before the period."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from statistics import median
from typing import NamedTuple

from ledger.periods import day_start
from ledger.reconcile.context import DetectionContext
from ledger.reconcile.findings import fmt_usd, new_finding
from ledger.reconcile.model import Finding, LoggedDay, Scope

KIND = "spend_spike"
MAD_TO_SIGMA = Decimal("1.4826")
_ZERO = Decimal(0)
"""Spend on a day without usage."""


class _Spike(NamedTuple):
    day: date
    observed: Decimal
    baseline: Decimal
    mad: Decimal


def _spend(row: LoggedDay) -> Decimal | None:
    return row.expected_cost if row.expected_cost is not None else row.reported_cost


def detect(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    daily: dict[tuple[str, str, str], dict[date, Decimal | None]] = defaultdict(dict)
    for row in (*context.history, *context.logged):
        spend_by_day = daily[(row.provider, row.account, row.model)]
        spend, known = _spend(row), spend_by_day.get(row.day, Decimal(0))
        spend_by_day[row.day] = None if spend is None or known is None else known + spend
    lags = [timedelta(days=n) for n in range(1, settings.spike_baseline_days + 1)]
    days_before = {day: [day - lag for lag in lags] for day in context.period.days()}
    findings = []
    for (provider, account, model), spend_by_day in daily.items():
        scope = Scope(provider=provider, account=account, model=model)
        first = min(spend_by_day)
        spikes: list[_Spike] = []
        for day, before in days_before.items():
            observed = spend_by_day.get(day, _ZERO)
            if observed is None:
                continue
            window = [spend_by_day.get(d, _ZERO) for d in before if d >= first]
            baseline_values = [v for v in window if v is not None]
            if len(baseline_values) < settings.spike_min_baseline_days:
                continue
            baseline = median(baseline_values)
            excess = observed - baseline
            if excess < settings.spike_min_usd or observed < baseline * settings.spike_min_ratio:
                continue
            mad = median([abs(v - baseline) for v in baseline_values])
            if mad and excess / (MAD_TO_SIGMA * mad) < settings.spike_robust_z:
                continue
            spikes.append(_Spike(day, observed, baseline, mad))
        for run in _runs(spikes):
            findings.append(_finding(context, scope, run))
    return findings


def _runs(spikes: list[_Spike]) -> list[list[_Spike]]:
    """Consecutive spike days grouped."""
    runs: list[list[_Spike]] = []
    for spike in spikes:
        if runs and runs[-1][-1].day + timedelta(days=1) == spike.day:
            runs[-1].append(spike)
        else:
            runs.append([spike])
    return runs


def _finding(context: DetectionContext, scope: Scope, run: list[_Spike]) -> Finding:
    settings = context.settings
    first_day, last_day = run[0].day, run[-1].day
    observed = sum((s.observed for s in run), Decimal(0))
    baseline = sum((s.baseline for s in run), Decimal(0))
    peak = max(run, key=lambda s: s.observed)
    ratio = (peak.observed / peak.baseline).quantize(Decimal("0.1")) if peak.baseline else None
    when = first_day.isoformat() if first_day == last_day else f"{first_day.isoformat()}..{last_day.isoformat()}"
    return new_finding(
        kind=KIND,
        scope=scope,
        period=(day_start(first_day), day_start(last_day + timedelta(days=1))),
        impact_usd=observed - baseline,
        rate=None,
        evidence={
            "baseline": baseline,
            "observed": observed,
            "baseline_median_daily": run[0].baseline,
            "baseline_mad_daily": run[0].mad,
            "peak_ratio": ratio,
            "expected": baseline,
            "billed": None,
            "difference": observed - baseline,
            "tolerance": settings.as_evidence(
                "spike_robust_z",
                "spike_min_ratio",
                "spike_min_usd",
                "spike_baseline_days",
                "spike_min_baseline_days",
            ),
            "series": [{"day": s.day, "logged": s.observed, "billed": None, "baseline": s.baseline} for s in run],
        },
        summary=(
            f"spend of {fmt_usd(observed)} on {when} against a trailing median of {fmt_usd(baseline)}"
            + (f" ({ratio}× at the peak)" if ratio is not None else "")
        ),
        settings=settings,
    )
