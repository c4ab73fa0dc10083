"""Daily spend far above its trailing baseline, by robust statistics: the day's expected spend exceeds the
trailing median by at least `spike_min_usd`, is at least `spike_min_ratio` × the median, and its robust
z-score (excess ÷ (1.4826 × MAD), the normal-consistent median absolute deviation) is at least
`spike_robust_z`. Consecutive spike days form one finding. Spend is the logged expected cost; for a model the
catalog does not price, the provider-reported cost where every row has one, else the billed amounts of the
statements stating them for that account and model, else its tokens (a spike in tokens; its impact is then
0 USD). The evidence says which (`spend_basis`). `history` supplies the baseline before the period (billed
amounts have none: the statements of earlier months are not read)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from statistics import median
from typing import NamedTuple

from ledger.periods import day_start
from ledger.reconcile.context import DetectionContext
from ledger.reconcile.findings import fmt_int, fmt_usd, new_finding
from ledger.reconcile.model import Finding, LoggedDay, Scope

KIND = "spend_spike"
ORDER = 120
ON_THE_BILL = False
MAD_TO_SIGMA = Decimal("1.4826")
_ZERO = Decimal(0)
"""Spend on a day without usage."""


class _Spike(NamedTuple):
    day: date
    observed: Decimal
    baseline: Decimal
    mad: Decimal


SpendByDay = dict[date, Decimal | None]
"""A series' daily spend; None where some of it is unknown."""


def _logged_spend(rows: list[LoggedDay], measure: str) -> SpendByDay:
    spend_by_day: SpendByDay = {}
    for row in rows:
        if measure == "expected_cost":
            spend = row.expected_cost
        elif measure == "reported_cost":
            spend = row.reported_cost
        else:
            spend = Decimal(row.tokens.total())
        known = spend_by_day.get(row.day, _ZERO)
        spend_by_day[row.day] = None if spend is None or known is None else known + spend
    return spend_by_day


def _billed_spend(context: DetectionContext) -> dict[tuple[str, str, str], SpendByDay]:
    """Billed amounts per provider × account × model × day, from the comparisons that break down by both."""
    spend: dict[tuple[str, str, str], SpendByDay] = defaultdict(dict)
    for comparison in context.comparisons:
        scope, total = comparison.scope, comparison.billed_total
        if scope.account is None or scope.model is None or total is None:
            continue
        by_day = spend[(scope.provider, scope.account, scope.model)]
        known = by_day.get(comparison.first_day, _ZERO)
        by_day[comparison.first_day] = None if known is None else known + total
    return spend


def _series(context: DetectionContext) -> dict[tuple[str, str, str], tuple[str, SpendByDay]]:
    """Per provider × account × model: the spend basis (see the module doc) and the daily spend on it."""
    rows: dict[tuple[str, str, str], list[LoggedDay]] = defaultdict(list)
    for row in (*context.history, *context.logged):
        rows[(row.provider, row.account, row.model)].append(row)
    billed: dict[tuple[str, str, str], SpendByDay] | None = None
    out: dict[tuple[str, str, str], tuple[str, SpendByDay]] = {}
    for key, items in rows.items():
        used = [row for row in items if row.tokens.total() or row.requests]
        if all(row.expected_cost is not None for row in used):
            out[key] = ("expected_cost", _logged_spend(items, "expected_cost"))
        elif all(row.reported_cost is not None for row in used):
            out[key] = ("reported_cost", _logged_spend(items, "reported_cost"))
        else:
            if billed is None:
                billed = _billed_spend(context)
            if billed.get(key):
                out[key] = ("billed_amount", billed[key])
            else:
                out[key] = ("tokens", _logged_spend(items, "tokens"))
    return out


def detect(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    lags = [timedelta(days=n) for n in range(1, settings.spike_baseline_days + 1)]
    days_before = {day: [day - lag for lag in lags] for day in context.period.days()}
    findings = []
    for (provider, account, model), (basis, spend_by_day) in _series(context).items():
        scope = Scope(provider=provider, account=account, model=model)
        first = min(spend_by_day)
        # In tokens the money floor has no meaning: the ratio and the robust z-score judge alone.
        floor = settings.spike_min_usd if basis != "tokens" else _ZERO
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
            if excess <= 0 or excess < floor or observed < baseline * settings.spike_min_ratio:
                continue
            mad = median([abs(v - baseline) for v in baseline_values])
            if mad and excess / (MAD_TO_SIGMA * mad) < settings.spike_robust_z:
                continue
            spikes.append(_Spike(day, observed, baseline, mad))
        for run in _runs(spikes):
            findings.append(_finding(context, scope, run, basis))
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


def _finding(context: DetectionContext, scope: Scope, run: list[_Spike], basis: str) -> Finding:
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
        impact_usd=observed - baseline if basis != "tokens" else _ZERO,
        rate=None,
        evidence={
            "spend_basis": basis,
            "unit": "tokens" if basis == "tokens" else "USD",
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
            (
                f"{fmt_int(int(observed))} tokens on {when} against a trailing median of {fmt_int(int(baseline))} "
                "(unpriced, no reported or billed cost)"
                if basis == "tokens"
                else f"spend of {fmt_usd(observed)} on {when} against a trailing median of {fmt_usd(baseline)}"
                + {"reported_cost": " (reported cost)", "billed_amount": " (billed amounts)"}.get(basis, "")
            )
            + (f" ({ratio}× at the peak)" if ratio is not None else "")
        ),
        settings=settings,
    )
