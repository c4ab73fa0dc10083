"""Logged usage that no final statement bills: inside a final statement's coverage the scope was billed
nothing. Days covered only by statements still open (not final) are left for a later run."""

from __future__ import annotations

from decimal import Decimal

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.findings import fmt_int, fmt_usd, new_finding, series_entry
from ledger.reconcile.model import Finding, LoggedTotals
from ledger.vocabulary import TOKEN_CATEGORIES

KIND = "unbilled_usage"
ORDER = 20
ON_THE_BILL = True


def detect(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    findings = []
    for scope, series in context.series.items():
        buckets = [b for b in series if b.unbilled and b.final and not context.is_relabeled(b.scope, b.first_day)]
        if not buckets:
            continue
        totals = LoggedTotals.sum(b.logged for b in buckets)
        tokens = totals.tokens.total()
        cost = totals.expected_cost
        if tokens <= settings.token_abs_tolerance and (cost is None or cost <= settings.money_abs_tolerance):
            continue
        logged_all = sum(b.logged.tokens.total() for b in series)
        days = sum(b.days for b in buckets)
        findings.append(
            new_finding(
                kind=KIND,
                scope=scope,
                period=context.window,
                impact_usd=-(cost or Decimal(0)),
                rate=Decimal(tokens) / logged_all if logged_all else None,
                evidence={
                    "tokens": {c: totals.tokens.get(c) for c in TOKEN_CATEGORIES},
                    "total_tokens": tokens,
                    "requests": totals.requests,
                    "expected_cost": cost,
                    "days": days,
                    "expected": tokens,
                    "billed": 0,
                    "difference": -tokens,
                    "sources": sorted({s for b in buckets for s in b.sources}),
                    "tolerance": settings.as_evidence("token_abs_tolerance", "money_abs_tolerance"),
                    "series": [series_entry(b, b.logged.tokens.total(), 0) for b in buckets],
                },
                summary=(
                    f"logged {fmt_int(tokens)} tokens"
                    + (f" ({fmt_usd(cost)} expected)" if cost is not None else " (unpriced)")
                    + f" over {days} day{'s' if days != 1 else ''} that no final statement bills"
                ),
                settings=settings,
            )
        )
    return findings
