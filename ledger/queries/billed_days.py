"""The billed side of a run: statement lines summed per scope × UTC day in SQL, read as BilledDays."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from sqlalchemy.orm import Session

from ledger.periods import Period
from ledger.queries.reading import AGGREGATE_IN_MEMORY, column_positions, read_rows
from ledger.reconcile.matching import sum_present
from ledger.reconcile.model import BilledDay
from ledger.vocabulary import TIER_OF_STATEMENT_SPELLING, TOKEN_CATEGORIES, TOKEN_USAGE_TYPES, UsageType

CATEGORIES: tuple[str, ...] = tuple(category.value for category in TOKEN_CATEGORIES)
"""The token categories, in order, as the plain strings they stand for (dict keys at str's own speed)."""
_TIER_OF_SPELLING = {spelling: tier.value for spelling, tier in TIER_OF_STATEMENT_SPELLING.items()}
"""Statement tiers to ours, as plain strings."""
KEY_COLUMNS = ("provider", "account", "api_key_id", "model", "service_tier", "day")
_QUANTITIES = tuple(f"quantity_{category}" for category in CATEGORIES)
_AMOUNTS = tuple(f"amount_{category}" for category in CATEGORIES)
_TOTALS = ("requests", "total", "currency", "final", "sources")
BILLED_COLUMNS = (*KEY_COLUMNS, *_QUANTITIES, *_AMOUNTS, *_TOTALS)
"""The SELECT list of the billed rows, in order."""
_BILLED_TYPES = (*CATEGORIES, UsageType.REQUESTS, UsageType.WEB_SEARCH)
assert set(map(str, CATEGORIES)) == set(
    map(str, TOKEN_USAGE_TYPES)
)  # each category is billed as the usage type of its name


def _per_category(column: str) -> str:
    return ", ".join(
        f"sum({column}) FILTER (WHERE usage_type = '{category}') AS {column}_{category}" for category in CATEGORIES
    )


# Statement lines summed per scope × UTC day, one column per category (NULL: the statement states none).
_BILLED_SQL = f"""
SELECT provider, account, api_key_id, model, service_tier, (period_start AT TIME ZONE 'UTC')::date AS day,
       {_per_category("quantity")}, {_per_category("amount")},
       sum(quantity) FILTER (WHERE usage_type = 'requests') AS requests, sum(amount) AS total,
       min(currency) FILTER (WHERE amount IS NOT NULL) AS currency, bool_and(final) AS final,
       string_agg(source, '+') AS sources  -- repeats dropped in Python: DISTINCT would rule out hashing
FROM statement_lines
WHERE tenant_id = %(tenant)s AND period_start >= %(start)s AND period_start < %(end)s
  AND usage_type IN ({", ".join(f"'{usage_type}'" for usage_type in _BILLED_TYPES)})
GROUP BY 1, 2, 3, 4, 5, 6
"""

_AT = column_positions(BILLED_COLUMNS)
_KEY = itemgetter(*(_AT[name] for name in KEY_COLUMNS))
_TIER_AT = KEY_COLUMNS.index("service_tier")
_QUANTITIES_OF = itemgetter(*(_AT[name] for name in _QUANTITIES))
_AMOUNTS_OF = itemgetter(*(_AT[name] for name in _AMOUNTS))
_TOTALS_OF = itemgetter(*(_AT[name] for name in _TOTALS))
_ZERO = Decimal(0)
_NOT_GIVEN = (None,) * len(CATEGORIES)
"""A row's per-category columns where the statement states none of them (amounts, mostly)."""


def billed_rows(session: Session, tenant_id: int, period: Period) -> list[tuple[Any, ...]]:
    """Statement lines summed per scope × UTC day in SQL (for `billed_days`). Lines without a usage quantity
    or amount the reconciler compares (credits, `other`) stay in the drift report."""
    session.execute(AGGREGATE_IN_MEMORY)
    return read_rows(session, _BILLED_SQL, {"tenant": tenant_id, "start": period.start, "end": period.end})


def billed_days(rows: Iterable[tuple[Any, ...]]) -> list[BilledDay]:
    """Rows of `billed_rows` as BilledDays; statement tiers that mean the same (`default`, `auto`) merge."""
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        key = _KEY(row)
        raw_tier = key[_TIER_AT]
        if raw_tier is not None:
            tier = _TIER_OF_SPELLING.get(raw_tier, raw_tier) if raw_tier else None
            key = (*key[:_TIER_AT], tier, *key[_TIER_AT + 1 :])
        merged = groups.get(key)
        if merged is None:
            groups[key] = [row]
        else:
            merged.append(row)
    return [_billed_day(key, merged) for key, merged in groups.items()]


def _billed_day(key: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> BilledDay:
    """The BilledDay of one scope and day from its rows (one, unless tiers merged). BilledDay checks it, so
    that a negative quantity (a correction line larger than the usage, say), a NaN amount or a currency that is
    no ISO code stops the run with the statement scope and field named."""
    provider, account, api_key_id, model, service_tier, day = key  # KEY_COLUMNS
    quantities: dict[str, int]
    amounts: dict[str, Decimal]
    requests: int | None
    total: Decimal | None
    currency: str | None
    final: bool
    if len(rows) == 1:  # mostly: one statement tier per scope and day
        (row,) = rows
        quantities = {c: int(q) for c, q in zip(CATEGORIES, _QUANTITIES_OF(row), strict=True) if q is not None}
        values = _AMOUNTS_OF(row)  # amounts added to zero, as merged rows' are
        amounts = (
            {}
            if values == _NOT_GIVEN
            else {c: _ZERO + a for c, a in zip(CATEGORIES, values, strict=True) if a is not None}
        )
        row_requests, total, currency, final, row_sources = _TOTALS_OF(row)
        requests = None if row_requests is None else int(row_requests)
        source = _source_label(row_sources)
    else:
        quantities, amounts, sources = {}, {}, []
        requests, total, currency, final = None, None, None, True
        for row in rows:
            for category, quantity in zip(CATEGORIES, _QUANTITIES_OF(row), strict=True):
                if quantity is not None:
                    quantities[category] = quantities.get(category, 0) + int(quantity)
            for category, amount in zip(CATEGORIES, _AMOUNTS_OF(row), strict=True):
                if amount is not None:
                    amounts[category] = amounts.get(category, _ZERO) + amount
            row_requests, row_total, row_currency, row_final, row_sources = _TOTALS_OF(row)
            requests = sum_present(requests, None if row_requests is None else int(row_requests))
            total = sum_present(total, row_total)
            currency = currency or row_currency
            final = final and row_final
            sources.append(row_sources)
        # In category order again: the rows may state different categories.
        quantities = {category: quantities[category] for category in CATEGORIES if category in quantities}
        amounts = {category: amounts[category] for category in CATEGORIES if category in amounts}
        source = _source_label("+".join(sources))
    return BilledDay(
        provider=provider,
        account=account,
        api_key_id=api_key_id,
        model=model,
        service_tier=service_tier,
        day=day,
        # Read-only and in category order, as the core reads them.
        quantities=MappingProxyType(quantities),
        requests=requests,
        amounts=MappingProxyType(amounts),
        total_amount=total,
        currency=(currency or "USD").upper(),
        final=final,
        source=source,
    )


@lru_cache(maxsize=1024)
def _source_label(sources: str) -> str:
    """The statement sources of a day's lines ("+"-joined, repeats and all) as one label: each once, sorted.
    Cached: statements have a handful of sources, and days a handful of lines."""
    return "+".join(sorted(set(sources.split("+"))))
