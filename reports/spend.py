"""Spend analytics: what logged usage costs at catalog prices (the reconciler's pricing of the daily rollup), over
time and by provider, model, account, key and app, for a range of UTC days, against the same number of days just
before. Pure: `sources.logged_money` reads the rollups; this module sums.

Usage whose price is unknown is no spend of zero: its tokens are counted apart (`unpriced_tokens`)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ledger.display import plain_decimal
from ledger.queries.footing import footed
from ledger.queries.money_over_time import LoggedMoney

DIMENSIONS = {"provider": "Provider", "model": "Model", "account": "Account", "api_key_id": "Key", "app": "App"}
"""The top-N tables, by the dimension of logged usage they group by (the rollups keep no user or tag)."""
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class TopRow:
    """One value of a dimension: its cost in the range and in the range before, written to the cent so that the
    column adds up to the table's total (`cost` is exact, `shown` is what is written)."""

    label: str
    cost: Decimal
    shown: Decimal
    previous: Decimal
    previous_shown: Decimal
    unpriced_tokens: int

    @property
    def change(self) -> Decimal:
        return self.cost - self.previous

    @property
    def change_percent(self) -> Decimal | None:
        return (self.change / self.previous * HUNDRED).quantize(Decimal("0.1")) if self.previous else None


@dataclass(frozen=True, slots=True)
class TopTable:
    dimension: str
    title: str
    rows: tuple[TopRow, ...]
    """The top `limit` values by cost, then one row of all the others ("other N")."""
    total: Decimal
    previous_total: Decimal


@dataclass(frozen=True, slots=True)
class Spend:
    first_day: date
    last_day: date
    previous_first_day: date
    days: tuple[date, ...]
    by_day: dict[str, dict[date, Decimal]]
    """Provider → day → cost."""
    tables: tuple[TopTable, ...]
    total: Decimal
    previous_total: Decimal
    unpriced_tokens: int

    @property
    def change_percent(self) -> Decimal | None:
        if not self.previous_total:
            return None
        return ((self.total - self.previous_total) / self.previous_total * HUNDRED).quantize(Decimal("0.1"))

    def chart(self) -> dict[str, Any]:
        """Cost per day and provider (stacked bars), decimal strings to the cent."""
        return {
            "labels": [day.isoformat() for day in self.days],
            "datasets": [
                {
                    "label": provider,
                    "data": [str(costs.get(day, Decimal(0)).quantize(Decimal("0.01"))) for day in self.days],
                }
                for provider, costs in sorted(self.by_day.items())
            ],
        }

    def table(self, dimension: str) -> TopTable:
        for table in self.tables:
            if table.dimension == dimension:
                return table
        raise KeyError(dimension)


def spend(
    current: Iterable[LoggedMoney],
    previous: Iterable[LoggedMoney],
    *,
    first_day: date,
    last_day: date,
    limit: int = 10,
) -> Spend:
    """Spend of the days `first_day`..`last_day` (inclusive), from the logged usage of those days (`current`)
    and of as many days just before (`previous`)."""
    rows = list(current)
    before = list(previous)
    span = (last_day - first_day).days + 1
    by_day: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        if row.expected is not None:
            by_day[row.provider][row.day] += row.expected
    return Spend(
        first_day=first_day,
        last_day=last_day,
        previous_first_day=first_day - timedelta(days=span),
        days=tuple(first_day + timedelta(days=offset) for offset in range(span)),
        by_day={provider: dict(days) for provider, days in by_day.items()},
        tables=tuple(_top(dimension, title, rows, before, limit) for dimension, title in DIMENSIONS.items()),
        total=_cost(rows),
        previous_total=_cost(before),
        unpriced_tokens=sum(sum(row.tokens.values()) for row in rows if row.expected is None),
    )


def _top(
    dimension: str, title: str, rows: Sequence[LoggedMoney], before: Sequence[LoggedMoney], limit: int
) -> TopTable:
    costs: dict[str, Decimal] = defaultdict(Decimal)
    unpriced: dict[str, int] = defaultdict(int)
    previous: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        label = getattr(row, dimension)
        costs[label] += row.expected or Decimal(0)
        if row.expected is None:
            unpriced[label] += sum(row.tokens.values())
    for row in before:
        previous[getattr(row, dimension)] += row.expected or Decimal(0)
    ranked = sorted(costs, key=lambda label: (-costs[label], label))
    top, rest = ranked[:limit], ranked[limit:]
    entries = [
        (label or "(none)", costs[label], previous.get(label, Decimal(0)), unpriced.get(label, 0)) for label in top
    ]
    if rest:
        entries.append(
            (
                f"other {len(rest)}",
                sum((costs[label] for label in rest), Decimal(0)),
                sum((previous.get(label, Decimal(0)) for label in rest), Decimal(0)),
                sum(unpriced.get(label, 0) for label in rest),
            )
        )
    shown, total = footed([cost for _label, cost, _previous, _unpriced in entries])
    shown_before, previous_total = footed([before_cost for _label, _cost, before_cost, _unpriced in entries])
    return TopTable(
        dimension=dimension,
        title=title,
        rows=tuple(
            TopRow(label, cost, written or Decimal(0), before_cost, written_before or Decimal(0), unpriced_count)
            for (label, cost, before_cost, unpriced_count), written, written_before in zip(
                entries, shown, shown_before, strict=True
            )
        ),
        total=total or Decimal(0),
        previous_total=previous_total or Decimal(0),
    )


def _cost(rows: Iterable[LoggedMoney]) -> Decimal:
    return sum((row.expected for row in rows if row.expected is not None), Decimal(0))


def table_csv(table: TopTable) -> str:
    """One top-N table: exact costs (decimal strings), the range before, and a TOTAL line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([table.dimension, "cost_usd", "previous_cost_usd", "change_usd", "unpriced_tokens"])
    for row in table.rows:
        label = "'" + row.label if row.label.startswith(("=", "+", "-", "@", "\t", "\r")) else row.label
        writer.writerow([label, _plain(row.cost), _plain(row.previous), _plain(row.change), row.unpriced_tokens])
    cost = sum((row.cost for row in table.rows), Decimal(0))
    before = sum((row.previous for row in table.rows), Decimal(0))
    writer.writerow(["TOTAL", _plain(cost), _plain(before), _plain(cost - before), ""])
    return out.getvalue()


def _plain(value: Decimal) -> str:
    return plain_decimal(value) or "0"
