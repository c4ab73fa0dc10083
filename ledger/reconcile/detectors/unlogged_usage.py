"""Billed usage where nothing at all was logged for that scope and day: a logging gap or a leaked key."""

from __future__ import annotations

from decimal import Decimal

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.findings import fmt_int, fmt_usd, new_finding, series_entry
from ledger.reconcile.model import Comparison, Finding
from ledger.vocabulary import TOKEN_CATEGORIES

KIND = "unlogged_usage"
ORDER = 10
ON_THE_BILL = True


def detect(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    findings = []
    for scope, series in context.series.items():
        buckets = [b for b in series if b.unlogged and not context.is_relabeled(b.scope, b.first_day)]
        if not buckets:
            continue
        categories = buckets[0].stated(TOKEN_CATEGORIES)
        tokens = {c: sum(b.billed_quantities[c] for b in buckets) for c in categories}
        total = sum(tokens.values())
        requests = sum(b.billed_requests or 0 for b in buckets)
        amount, amount_source = _amount(context, buckets, tokens)
        if (
            total <= settings.token_abs_tolerance
            and requests <= settings.request_abs_tolerance
            and (amount or 0) <= settings.money_abs_tolerance
        ):
            continue
        billed_all = sum(b.billed_quantity(categories) for b in series)
        days = sum(b.days for b in buckets)
        who = f"key {scope.api_key_id}" if scope.api_key_id else f"account {scope.account or scope.provider}"
        findings.append(
            new_finding(
                kind=KIND,
                scope=scope,
                period=context.window,
                impact_usd=amount or Decimal(0),
                rate=Decimal(total) / billed_all if billed_all else Decimal(1),
                evidence={
                    "account": scope.account,
                    "api_key_id": scope.api_key_id,
                    "tokens": tokens,
                    "total_tokens": total,
                    "requests": requests,
                    "amount": amount,
                    "amount_source": amount_source,
                    "days": days,
                    "expected": 0,
                    "billed": total,
                    "difference": total,
                    "tolerance": settings.as_evidence(
                        "token_abs_tolerance", "request_abs_tolerance", "money_abs_tolerance"
                    ),
                    "series": [series_entry(b, 0, b.billed_quantity(categories)) for b in buckets],
                },
                summary=(
                    f"billed {fmt_int(total)} tokens"
                    + (f" ({fmt_usd(amount)})" if amount is not None else "")
                    + f" for {who} on {days} day{'s' if days != 1 else ''} with nothing logged: "
                    "a logging gap or a leaked key"
                ),
                settings=settings,
            )
        )
    return findings


def _amount(
    context: DetectionContext, buckets: list[Comparison], tokens: dict[str, int]
) -> tuple[Decimal | None, str | None]:
    """The billed amount, else the tokens priced at the model's expected rates, else unknown."""
    totals = [b.billed_total for b in buckets if b.billed_total is not None]
    if totals:
        return sum(totals, Decimal(0)), "billed"
    scope = buckets[0].scope
    prices = {c: context.logged_unit_price(scope.provider, scope.model, c) for c, n in tokens.items() if n}
    if scope.model is None or any(p is None for p in prices.values()):
        return None, None
    return sum((tokens[c] * p for c, p in prices.items() if p is not None), Decimal(0)), "catalog"
