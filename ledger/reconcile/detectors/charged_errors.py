"""Billed requests exceed the logged successful ones by about the number of logged failures (429 / 5xx),
which should not be charged (Microsoft's answer for Azure OpenAI: 429 errors "do not incur any charges",
https://learn.microsoft.com/en-us/answers/questions/1632971)."""

from __future__ import annotations

from decimal import Decimal

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.findings import fmt_int, new_finding, series_entry
from ledger.reconcile.model import Finding

KIND = "charged_errors"


def detect(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    findings = []
    for scope, excess in context.request_excess.items():
        if not excess.charged_errors:
            continue
        per_request = (
            excess.expected_cost / excess.successful if excess.expected_cost is not None and excess.successful else None
        )
        impact = excess.extra * per_request if per_request is not None else None
        findings.append(
            new_finding(
                kind=KIND,
                scope=scope,
                period=context.window,
                impact_usd=impact or Decimal(0),
                rate=Decimal(excess.extra) / excess.successful if excess.successful else None,
                evidence={
                    "error_requests": excess.failed,
                    "billed_extra": excess.extra,
                    "billed_requests": excess.billed,
                    "successful_requests": excess.successful,
                    "expected": excess.successful,
                    "billed": excess.billed,
                    "difference": excess.extra,
                    "impact_basis": "extra requests × mean expected cost of a successful request"
                    if impact is not None
                    else "unpriced",
                    "tolerance": {
                        "requests": excess.tolerance,
                        "match": excess.match_tolerance,
                        **settings.as_evidence(
                            "request_rel_tolerance", "request_abs_tolerance", "charged_errors_rel_tolerance"
                        ),
                    },
                    "series": [
                        {
                            **series_entry(b, b.logged.successful_requests, b.billed_requests),
                            "error_requests": b.logged.errors_429 + b.logged.errors_5xx,
                        }
                        for b in excess.buckets
                    ],
                },
                summary=(
                    f"billed {fmt_int(excess.billed)} requests, {fmt_int(excess.successful)} succeeded: the "
                    f"{fmt_int(excess.extra)} extra match the {fmt_int(excess.failed)} logged 429/5xx failures"
                ),
                settings=settings,
            )
        )
    return findings
