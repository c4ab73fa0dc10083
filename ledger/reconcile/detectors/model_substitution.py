"""Requests answered by another model than requested (gateway failover, alias re-pointing), and usage the
statement billed under another model than the one logged (see `ledger.reconcile.relabeling`)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.findings import EvidenceValue, fmt_int, fmt_pct, fmt_usd, new_finding, series_entry
from ledger.reconcile.model import Finding, LoggedDay, LoggedTotals, Scope
from ledger.reconcile.relabeling import Relabel
from ledger.vocabulary import TOKEN_CATEGORIES

KIND = "model_substitution"
ORDER = 30
ON_THE_BILL = True


def detect(context: DetectionContext) -> list[Finding]:
    return _served_by_another(context) + _billed_as_another(context)


def _served_by_another(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    asked: dict[tuple[str, str, str, str], int] = defaultdict(int)
    swapped: dict[tuple[Scope, str], list[LoggedDay]] = defaultdict(list)
    for row in context.logged:
        asked[(row.provider, row.account, row.api_key_id, row.request_model)] += row.requests
        if row.request_model != row.model:
            scope = Scope(provider=row.provider, account=row.account, api_key_id=row.api_key_id, model=row.model)
            swapped[(scope, row.request_model)].append(row)
    findings = []
    for (scope, requested), rows in swapped.items():
        count = sum(r.requests for r in rows)
        if count < settings.substitution_min_requests:
            continue
        deltas = [
            r.expected_cost - r.expected_cost_at_requested_model
            for r in rows
            if r.expected_cost is not None and r.expected_cost_at_requested_model is not None
        ]
        complete = len(deltas) == len(rows)
        delta = sum(deltas, Decimal(0))
        share = Decimal(count) / asked[(scope.provider, scope.account or "", scope.api_key_id or "", requested)]
        served_cost = sum((r.expected_cost or Decimal(0) for r in rows), Decimal(0))
        per_day: dict[date, int] = defaultdict(int)
        for r in rows:
            per_day[r.day] += r.requests
        findings.append(
            new_finding(
                kind=KIND,
                scope=scope,
                subject=f"requested:{requested}",
                period=context.window,
                impact_usd=delta,
                rate=share,
                evidence={
                    "how": "served_by_another_model",
                    "requested": requested,
                    "served": scope.model,
                    "count": count,
                    "share": share.quantize(Decimal("0.0001")),
                    "cost_delta": delta,
                    "cost_delta_complete": complete,
                    "expected": served_cost - delta,
                    "billed": served_cost,
                    "difference": delta,
                    "tolerance": settings.as_evidence("substitution_min_requests"),
                    "series": [{"day": day, "logged": n, "billed": None} for day, n in sorted(per_day.items())],
                },
                summary=(
                    f"{fmt_int(count)} requests for {requested} were answered by {scope.model} "
                    f"({fmt_pct(share)} of them): cost delta {fmt_usd(delta)}"
                ),
                settings=settings,
            )
        )
    return findings


def _billed_as_another(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    grouped: dict[tuple[Scope, str], list[Relabel]] = defaultdict(list)
    for pair in context.relabels:
        grouped[(pair.logged.scope, pair.billed.scope.model or "")].append(pair)
    findings = []
    for (scope, billed_model), pairs in grouped.items():
        logged = LoggedTotals.sum(p.logged.logged for p in pairs)
        categories = pairs[0].logged.stated(TOKEN_CATEGORIES)
        tokens = logged.tokens.total(categories)
        billed_tokens = sum(p.billed.billed_quantity(categories) for p in pairs)
        billed_amount = _billed_amount(context, pairs, billed_model)
        delta = (
            billed_amount - logged.expected_cost
            if billed_amount is not None and logged.expected_cost is not None
            else None
        )
        series: list[dict[str, EvidenceValue]] = [
            series_entry(p.logged, p.logged.logged_quantity(categories), p.billed.billed_quantity(categories))
            for p in pairs
        ]
        findings.append(
            new_finding(
                kind=KIND,
                scope=scope,
                subject=f"billed_as:{billed_model}",
                period=context.window,
                impact_usd=delta or Decimal(0),
                rate=Decimal(1),
                evidence={
                    "how": "billed_under_another_model",
                    "requested": scope.model,
                    "served": billed_model,
                    "count": logged.successful_requests,
                    "tokens_logged": tokens,
                    "tokens_billed": billed_tokens,
                    "cost_delta": delta,
                    "expected": logged.expected_cost,
                    "billed": billed_amount,
                    "difference": delta,
                    "tolerance": settings.as_evidence("token_rel_tolerance", "token_abs_tolerance"),
                    "series": series,
                },
                summary=(
                    f"usage logged as {scope.model} ({fmt_int(logged.successful_requests)} requests, "
                    f"{fmt_int(tokens)} tokens) was billed as {billed_model} on {len(pairs)} "
                    f"day{'s' if len(pairs) != 1 else ''}"
                    + (f": cost delta {fmt_usd(delta)}" if delta is not None else "")
                ),
                settings=settings,
            )
        )
    return findings


def _billed_amount(context: DetectionContext, pairs: list[Relabel], billed_model: str) -> Decimal | None:
    """The statement's amount for the relabeled usage, else its tokens at the billed model's rates."""
    amounts = [p.billed.billed_total for p in pairs]
    if all(a is not None for a in amounts):
        return sum((a for a in amounts if a is not None), Decimal(0))
    total = Decimal(0)
    for pair in pairs:
        for category, quantity in pair.billed.billed_quantities.items():
            price = context.logged_unit_price(pair.billed.scope.provider, billed_model, category)
            if quantity and price is None:
                return None
            total += quantity * (price or Decimal(0))
    return total
