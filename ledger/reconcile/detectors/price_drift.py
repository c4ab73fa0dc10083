"""The billed amount ÷ billed quantity differs from the catalog price in effect. Cache reads billed above
the cached rate are a `cache_mischarge` instead. Without a billed quantity the logged one is used and the
evidence says so (`quantity_source: "logged"`)."""

from __future__ import annotations

from decimal import Decimal

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.findings import fmt_int, fmt_usd, new_finding, per_million, series_entry
from ledger.reconcile.model import CATEGORIES, Finding
from ledger.reconcile.rates import deviates, rate_checks

KIND = "price_drift"


def detect(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    findings = []
    for scope, buckets in context.regular.items():
        for category in CATEGORIES:
            checks = rate_checks(buckets, category)
            drifted = [
                c for c in checks if deviates(c, settings) and not (category == "cached_input" and c.overcharge > 0)
            ]
            if not drifted:
                continue
            overcharge = sum((c.overcharge for c in drifted), Decimal(0))
            if abs(overcharge) < settings.money_abs_tolerance:
                continue
            quantity = sum(c.quantity for c in drifted)
            amount = sum((c.amount for c in drifted), Decimal(0))
            expected = sum((c.expected_amount for c in drifted), Decimal(0))
            billed_price, expected_price = per_million(amount / quantity), per_million(expected / quantity)
            since = drifted[0].bucket.first_day
            sources = {c.quantity_source for c in drifted}
            drifted_ids = {id(c) for c in drifted}
            findings.append(
                new_finding(
                    kind=KIND,
                    scope=scope,
                    subject=category,
                    period=context.window,
                    impact_usd=overcharge,
                    rate=(amount - expected) / expected if expected else None,
                    evidence={
                        "category": category,
                        "price_unit": "USD per 1M tokens",
                        "billed_unit_price": billed_price,
                        "expected_unit_price": expected_price,
                        "since": since,
                        "days_drifted": sum(c.bucket.days for c in drifted),
                        "quantity": quantity,
                        "quantity_source": sources.pop() if len(sources) == 1 else "mixed",
                        "expected": expected.quantize(Decimal("0.000001")),
                        "billed": amount,
                        "difference": overcharge.quantize(Decimal("0.000001")),
                        "tolerance": settings.as_evidence(
                            "price_rel_tolerance", "amount_rounding", "money_abs_tolerance"
                        ),
                        "series": [
                            {
                                **series_entry(
                                    c.bucket,
                                    per_million(c.expected_unit_price),
                                    per_million(c.billed_unit_price),
                                ),
                                "quantity": c.quantity,
                                "drifted": id(c) in drifted_ids,
                            }
                            for c in checks
                        ],
                    },
                    summary=(
                        f"{category} billed at ${billed_price} per 1M tokens since {since.isoformat()}, catalog "
                        f"${expected_price}: {fmt_usd(overcharge)} over {fmt_int(quantity)} tokens"
                    ),
                    settings=settings,
                )
            )
    return findings
