"""Streamed responses that ended without a finish reason (an interrupted stream, whose provider usage
may be missing too), at a rate above tolerance."""

from __future__ import annotations

import math
from decimal import Decimal

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.findings import fmt_int, fmt_pct, new_finding
from ledger.reconcile.model import Finding

KIND = "missing_finish_reason"
ORDER = 110
ON_THE_BILL = False


def detect(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    findings = []
    for scope, rows in context.logged_per_key_and_model.items():
        streamed = sum(r.streamed_requests for r in rows)
        missing = sum(r.streamed_missing_finish for r in rows)
        if streamed < settings.min_requests or not missing:
            continue
        rate = Decimal(missing) / streamed
        allowed = math.floor(settings.missing_finish_rate_tolerance * streamed)
        if rate <= settings.missing_finish_rate_tolerance or missing <= settings.request_abs_tolerance:
            continue
        per_day: dict[str, list[int]] = {}
        for row in rows:
            entry = per_day.setdefault(row.day.isoformat(), [0, 0])
            entry[0] += row.streamed_missing_finish
            entry[1] += row.streamed_requests
        findings.append(
            new_finding(
                kind=KIND,
                scope=scope,
                period=context.window,
                impact_usd=Decimal(0),
                rate=rate,
                evidence={
                    "rate": rate.quantize(Decimal("0.0001")),
                    "count": missing,
                    "streamed_requests": streamed,
                    "expected": allowed,
                    "billed": None,
                    "difference": missing - allowed,
                    "tolerance": settings.as_evidence(
                        "missing_finish_rate_tolerance", "request_abs_tolerance", "min_requests"
                    ),
                    "series": [
                        {"day": day, "logged": count, "billed": None, "streamed_requests": n}
                        for day, (count, n) in sorted(per_day.items())
                    ],
                },
                summary=(
                    f"{fmt_int(missing)} of {fmt_int(streamed)} streamed responses ({fmt_pct(rate)}) ended "
                    f"without a finish reason (tolerance {fmt_pct(settings.missing_finish_rate_tolerance)})"
                ),
                settings=settings,
            )
        )
    return findings
