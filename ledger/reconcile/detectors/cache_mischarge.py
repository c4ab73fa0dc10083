"""Cache mischarges: cached input billed as uncached (billed cache reads below logged while uncached input
is above by as much), cache reads charged above the cached rate, and cache writes billed that were never
logged (including 5-minute writes billed at the 1-hour rate)."""

from __future__ import annotations

from decimal import Decimal

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.findings import EvidenceValue, fmt_int, fmt_usd, new_finding, per_million, series_entry
from ledger.reconcile.model import Comparison, Finding
from ledger.reconcile.rates import deviates, rate_checks
from ledger.vocabulary import CACHE_WRITE_CATEGORIES

KIND = "cache_mischarge"
ORDER = 60
ON_THE_BILL = True
_CACHE_CATEGORIES = ("cached_input", *CACHE_WRITE_CATEGORIES)


def detect(context: DetectionContext) -> list[Finding]:
    findings = []
    for scope, buckets in context.regular.items():
        if not buckets:
            continue
        issues = _issues(context, buckets)
        if not issues:
            continue
        overcharge = sum((i["overcharge"] for i in issues if isinstance(i["overcharge"], Decimal)), Decimal(0))
        priced = all(isinstance(i["overcharge"], Decimal) for i in issues)
        totals = context.logged_totals(buckets)
        stated = buckets[0].stated(_CACHE_CATEGORIES)
        logged = {c: totals.tokens.get(c) for c in _CACHE_CATEGORIES}
        billed_quantities = context.billed_quantities(buckets)
        billed = {c: billed_quantities[c] for c in stated}
        cached_logged, cached_billed = logged["cached_input"], billed.get("cached_input")
        expected_cost = totals.expected_cost
        findings.append(
            new_finding(
                kind=KIND,
                scope=scope,
                period=context.window,
                impact_usd=overcharge,
                rate=overcharge / expected_cost if expected_cost else None,
                evidence={
                    "cached_tokens_logged": cached_logged,
                    "cached_tokens_billed": cached_billed,
                    "overcharge": overcharge,
                    "overcharge_complete": priced,
                    "issues": issues,
                    "expected": logged,
                    "billed": billed,
                    "difference": {c: billed[c] - logged[c] for c in stated},
                    "tolerance": {
                        "cached_tokens": context.settings.token_tolerance(cached_logged),
                        **context.settings.as_evidence(
                            "token_rel_tolerance",
                            "token_abs_tolerance",
                            "price_rel_tolerance",
                            "amount_rounding",
                            "money_abs_tolerance",
                        ),
                    },
                    "series": [
                        series_entry(
                            b,
                            {c: b.logged.tokens.get(c) for c in stated},
                            {c: b.billed_quantities[c] for c in stated},
                        )
                        for b in buckets
                    ],
                },
                summary="; ".join(str(i["text"]) for i in issues) + f": overcharge {fmt_usd(overcharge)}",
                settings=context.settings,
            )
        )
    return findings


def _issues(context: DetectionContext, buckets: tuple[Comparison, ...]) -> list[dict[str, EvidenceValue]]:
    settings = context.settings
    totals = context.logged_totals(buckets)
    stated = set(buckets[0].billed_quantities)

    billed_quantities = context.billed_quantities(buckets)

    def logged(category: str) -> int:
        return totals.tokens.get(category)

    def excess(category: str) -> int:
        return billed_quantities[category] - logged(category)

    def price(category: str) -> Decimal | None:
        """The expected USD per token of a category."""
        return totals.unit_price(category)

    def charged(category: str) -> Decimal | None:
        """What the statement charged per token of a category, else the expected price."""
        quantity = billed_quantities.get(category, 0)
        amounts = [b.billed_amounts[category] for b in buckets if category in b.billed_amounts]
        return sum(amounts, Decimal(0)) / quantity if amounts and quantity else price(category)

    def priced(tokens: int, rate: Decimal | None, minus: Decimal | None = Decimal(0)) -> Decimal | None:
        """Tokens at `rate` − `minus` (both USD per token); None when either is unknown."""
        return None if rate is None or minus is None else tokens * (rate - minus)

    issues: list[dict[str, EvidenceValue]] = []
    if {"cached_input", "uncached_input"} <= stated:
        moved = min(-excess("cached_input"), excess("uncached_input"))
        if moved > settings.token_tolerance(logged("cached_input")):
            issues.append(
                {
                    "issue": "cached_billed_as_uncached",
                    "tokens": moved,
                    "overcharge": priced(moved, price("uncached_input"), price("cached_input")),
                    "text": f"{fmt_int(moved)} of {fmt_int(logged('cached_input'))} logged cached input tokens "
                    "billed as uncached",
                }
            )
    reads = [c for c in rate_checks(buckets, "cached_input") if c.overcharge > 0 and deviates(c, settings)]
    if reads:
        quantity = sum(c.quantity for c in reads)
        amount = sum((c.amount for c in reads), Decimal(0))
        expected_amount = sum((c.expected_amount for c in reads), Decimal(0))
        issues.append(
            {
                "issue": "cache_reads_above_cached_rate",
                "tokens": quantity,
                "overcharge": amount - expected_amount,
                "billed_unit_price_per_1m": per_million(amount / quantity),
                "expected_unit_price_per_1m": per_million(expected_amount / quantity),
                "since": reads[0].bucket.first_day,
                "text": f"cache reads billed at ${per_million(amount / quantity)} per 1M tokens, cached rate "
                f"${per_million(expected_amount / quantity)}",
            }
        )
    writes = [c for c in CACHE_WRITE_CATEGORIES if c in stated]
    if not writes:
        return issues
    extra: dict[str, int] = {c: excess(c) for c in writes}
    tolerance = settings.token_tolerance(sum(logged(c) for c in writes))
    if len(writes) == 2:
        as_1h = min(max(extra["cache_write_1h"], 0), max(-extra["cache_write_5m"], 0))
        if as_1h > tolerance:
            extra["cache_write_1h"] -= as_1h
            extra["cache_write_5m"] += as_1h
            issues.append(
                {
                    "issue": "5m_writes_billed_as_1h",
                    "tokens": as_1h,
                    "overcharge": priced(as_1h, price("cache_write_1h"), price("cache_write_5m")),
                    "text": f"{fmt_int(as_1h)} 5-minute cache-write tokens billed at the 1-hour rate",
                }
            )
    unlogged = {c: tokens for c, tokens in extra.items() if tokens > 0}
    if sum(unlogged.values()) > tolerance:
        costs = [priced(tokens, charged(c)) for c, tokens in unlogged.items()]
        issues.append(
            {
                "issue": "unlogged_cache_writes",
                "tokens": sum(unlogged.values()),
                "by_category": dict(unlogged),
                "overcharge": None if None in costs else sum((c for c in costs if c is not None), Decimal(0)),
                "text": f"{fmt_int(sum(unlogged.values()))} cache-write tokens billed that were never logged",
            }
        )
    return issues
