"""The billed amount ÷ billed quantity differs from the catalog price in effect. Cache reads billed above
the cached rate are a `cache_mischarge` instead.

The quantity is the statement's own, else a finer statement's of the same day summed up to the amount's grain
(`quantity_source: "billed_rolled_up"`). A billed rate is exact but for the statement's rounding, so every
day beyond the price tolerance and rounding has drifted, and a drift is reported whatever its size (its
severity says how much it matters). Only where no statement states a quantity is the logged one used
(`quantity_source: "logged"`): a few events logged late, never, or across midnight then move the implied rate
of their day, so the day the price changed is found as the change point of the daily implied rates (least
absolute deviations from one median before and one after), the days from it on have drifted when their
median deviates beyond the price tolerance, and the drift must reach `money_abs_tolerance`."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from statistics import median

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.findings import fmt_int, fmt_usd, new_finding, per_million, series_entry
from ledger.reconcile.model import Finding, ReconcileSettings
from ledger.reconcile.rates import RateCheck, deviates, rate_checks
from ledger.vocabulary import TOKEN_CATEGORIES

KIND = "price_drift"
ORDER = 70
ON_THE_BILL = True


def detect(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    findings = []
    for scope, buckets in context.regular.items():
        for category in TOKEN_CATEGORIES:
            checks = rate_checks(buckets, category)
            if any(c.quantity_source == "logged" for c in checks):
                drifted = _drifted_since_change(checks, settings)
            else:
                drifted = [c for c in checks if deviates(c, settings)]
            drifted = [c for c in drifted if not (category == "cached_input" and c.overcharge > 0)]
            if not drifted:
                continue
            overcharge = sum((c.overcharge for c in drifted), Decimal(0))
            if drifted[0].quantity_source == "logged" and abs(overcharge) < settings.money_abs_tolerance:
                continue
            quantity = sum(c.quantity for c in drifted)
            amount = sum((c.amount for c in drifted), Decimal(0))
            expected = sum((c.expected_amount for c in drifted), Decimal(0))
            billed_price, expected_price = per_million(amount / quantity), per_million(expected / quantity)
            since = drifted[0].bucket.first_day
            sources = {c.quantity_source for c in drifted}
            drifted_days = {c.bucket.first_day for c in drifted}  # a check per bucket: one a first day
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
                                "drifted": c.bucket.first_day in drifted_days,
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


def _drifted_since_change(checks: Sequence[RateCheck], settings: ReconcileSettings) -> list[RateCheck]:
    """The checks (one scope's days in order, implied rates) from the change point of their relative deviation
    from the expected rate on, when its median there exceeds the price tolerance; else none. The change point
    splits the days where one median before and one after fit them best (least absolute deviations), so a few
    noisy days neither move it nor make a drift of their own."""
    if not checks:
        return []
    deviations = [c.overcharge / c.expected_amount if c.expected_amount else Decimal(0) for c in checks]

    def spread(values: Sequence[Decimal]) -> Decimal:
        if not values:
            return Decimal(0)
        centre = median(values)
        return sum((abs(value - centre) for value in values), Decimal(0))

    splits = range(max(len(checks) - 1, 1))  # at least two days after a change: one is noise
    best = min(splits, key=lambda split: (spread(deviations[:split]) + spread(deviations[split:]), split))
    after = deviations[best:]
    if abs(median(after)) <= settings.price_rel_tolerance:
        return []
    return list(checks[best:])
