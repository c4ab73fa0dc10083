"""Drift rows: logged vs billed per provider × account × model over the period, at each statement grain
(a statement that does not break down by account or model gives rows with that dimension None). Usage no
statement covers gets rows with `grain == ()` and no billed figures. Totals: `logged_total_tokens` counts
every category, `billed_total_tokens` the categories the statement states."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from operator import attrgetter
from types import MappingProxyType

from ledger.periods import Period
from ledger.reconcile.model import Comparison, DriftRow, LoggedDay, LoggedTotals, Scope, sum_quantities
from ledger.vocabulary import TOKEN_CATEGORIES

_PERCENT = Decimal("0.01")


def drift_rows(comparisons: Sequence[Comparison], logged: Sequence[LoggedDay], period: Period) -> list[DriftRow]:
    groups: dict[tuple[str, tuple[str, ...], str | None, str | None], list[Comparison]] = defaultdict(list)
    domains: set[tuple[str, str | None]] = set()
    keys: dict[Scope, tuple[str, tuple[str, ...], str | None, str | None]] = {}  # a scope's, once for all its days
    for comparison in comparisons:
        scope = comparison.scope
        key = keys.get(scope)
        if key is None:
            key = keys[scope] = (scope.provider, scope.grain, scope.account, scope.model)
            domains.add((scope.provider, scope.account))
        groups[key].append(comparison)
    rows = [_compared(key, items, period) for key, items in groups.items()]
    uncovered: dict[tuple[str, str, str], list[LoggedDay]] = defaultdict(list)
    for row in logged:
        if (row.provider, None) not in domains and (row.provider, row.account) not in domains:
            uncovered[(row.provider, row.account, row.model)].append(row)
    rows.extend(
        _row(provider, (), account, model, period, LoggedTotals.sum(items), billed=None, days=None, final=False)
        for (provider, account, model), items in uncovered.items()
    )
    return sorted(rows, key=lambda r: (r.provider, r.grain, r.account or "", r.model or ""))


def _compared(
    key: tuple[str, tuple[str, ...], str | None, str | None], items: list[Comparison], period: Period
) -> DriftRow:
    provider, grain, account, model = key
    totals = LoggedTotals.sum(c.logged for c in items)
    summed = sum_quantities([c.billed_quantities for c in items])
    quantities: dict[str, int] = {category: summed[category] for category in TOKEN_CATEGORIES if category in summed}
    amounts = [c.billed_total for c in items if c.billed_total is not None]
    cost = sum(amounts, Decimal(0)) if amounts else None
    days = (min(map(_first_day, items)), max(map(_last_day, items)))
    return _row(
        provider,
        grain,
        account,
        model,
        period,
        totals,
        billed=(quantities, cost),
        days=days,
        final=all(map(_final, items)),
    )


_first_day, _last_day, _final = attrgetter("first_day"), attrgetter("last_day"), attrgetter("final")


def _row(
    provider: str,
    grain: tuple[str, ...],
    account: str | None,
    model: str | None,
    period: Period,
    totals: LoggedTotals,
    *,
    billed: tuple[dict[str, int], Decimal | None] | None,
    days: tuple[date, date] | None,
    final: bool,
) -> DriftRow:
    quantities, cost = billed if billed is not None else ({}, None)
    expected = totals.expected_cost
    difference = cost - expected if cost is not None and expected is not None else None
    percent = (difference / expected * 100).quantize(_PERCENT) if difference is not None and expected else None
    return DriftRow(
        provider=provider,
        account=account,
        model=model,
        grain=grain,
        period_start=period.start,
        period_end=period.end,
        first_day=days[0] if days else None,
        last_day=days[1] if days else None,
        logged_tokens=MappingProxyType(dict(zip(TOKEN_CATEGORIES, totals.tokens.values(), strict=True))),
        logged_total_tokens=totals.tokens.total(),
        billed_tokens=MappingProxyType(quantities),
        billed_total_tokens=sum(quantities.values()) if quantities else None,
        expected_cost=expected,
        billed_cost=cost,
        difference=difference,
        percent=percent,
        final=final,
    )


def per_account_and_model(rows: Sequence[DriftRow]) -> list[DriftRow]:
    """One row per provider × account × model: where two statements cover the same usage at different grains
    (OpenAI's usage pages per key state tokens, its costs per project state money), their figures are put
    together — tokens from the statement that states tokens, money from the one that states money — and the
    difference is taken again."""
    merged: dict[tuple[str, str | None, str | None], DriftRow] = {}
    for row in sorted(rows, key=lambda r: -len(r.grain)):  # finest grain first
        key = (row.provider, row.account, row.model)
        kept = merged.get(key)
        if kept is None:
            merged[key] = row
            continue
        tokens_from = kept if kept.billed_total_tokens is not None else row
        cost = kept.billed_cost if kept.billed_cost is not None else row.billed_cost
        expected = kept.expected_cost if kept.expected_cost is not None else row.expected_cost
        difference = cost - expected if cost is not None and expected is not None else None
        merged[key] = replace(
            kept,
            billed_tokens=tokens_from.billed_tokens,
            billed_total_tokens=tokens_from.billed_total_tokens,
            billed_cost=cost,
            expected_cost=expected,
            difference=difference,
            percent=(difference / expected * 100).quantize(_PERCENT) if difference is not None and expected else None,
            final=kept.final and row.final,
        )
    return sorted(merged.values(), key=lambda r: (r.provider, r.account or "", r.model or ""))
