"""A finding's evidence made readable: its keys in order without the daily series, and the series
(`evidence["series"]`: a list of {day, logged, billed, [through], [baseline]}) as table columns and chart
data. A series value is a number (int or decimal string), None, or a mapping of token category to number;
charts show the sum of a mapping. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.vocabulary import TOKEN_CATEGORIES

SERIES_KEY = "series"
_SIDES = ("logged", "billed", "baseline")


@dataclass(frozen=True, slots=True)
class SeriesView:
    """Columns are (label, side, category): side is logged / billed / baseline, category None for a plain
    number. Each row is (day label, [raw values in column order])."""

    columns: tuple[tuple[str, str, str | None], ...]
    rows: tuple[tuple[str, tuple[Any, ...]], ...]
    chart: Mapping[str, Any]


_LEADING = (
    # what and where
    "account",
    "api_key_id",
    "model",
    "requested",
    "served",
    "category",
    "categories",
    "issue",
    "issues",
    "how",
    # the figures a finding is about
    "expected",
    "logged",
    "billed",
    "difference",
    "overcharge",
    "excess_tokens",
    "tokens_per_request",
    "ratio",
    "rate",
    "share",
    "count",
    "requests",
    "successful_requests",
    "error_requests",
    "days",
    "days_observed",
    "since",
)
_TRAILING = ("fit", "tolerance", "sources")
_CATEGORY_ORDER: dict[str, int] = {category: position for position, category in enumerate(TOKEN_CATEGORIES)}


def in_reading_order(evidence: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A mapping's entries in the order a person reads a finding: scope, then its figures, then the rest
    alphabetically, then the fit, tolerances and sources; token categories in the reconciler's order
    (uncached input, cached input, cache writes, output). The order a detector wrote them in is not kept:
    PostgreSQL's jsonb orders an object's keys by their length."""

    def rank(key: str) -> tuple[int, int, str]:
        if key in _CATEGORY_ORDER:
            return (0, _CATEGORY_ORDER[key], key)
        if key in _LEADING:
            return (1, _LEADING.index(key), key)
        if key in _TRAILING:
            return (3, _TRAILING.index(key), key)
        return (2, 0, key)

    return sorted(evidence.items(), key=lambda item: rank(item[0]))


def evidence_items(evidence: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The evidence's entries in reading order (`in_reading_order`), series excluded (it is shown as a chart
    and a table)."""
    return [(key, value) for key, value in in_reading_order(evidence) if key != SERIES_KEY]


def columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys of a list of evidence records, in first-seen order (a table's columns)."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def series_view(evidence: Mapping[str, Any]) -> SeriesView | None:
    """The daily series as a table and a chart; None when the finding has no series."""
    series = evidence.get(SERIES_KEY)
    if not isinstance(series, Sequence) or isinstance(series, str) or not series:
        return None
    entries = [entry for entry in series if isinstance(entry, Mapping)]
    sides = [side for side in _SIDES if any(side in entry for entry in entries)]
    columns: list[tuple[str, str, str | None]] = []
    for side in sides:
        categories = sorted(
            {category for entry in entries if isinstance(entry.get(side), Mapping) for category in entry[side]},
            key=lambda category: (_CATEGORY_ORDER.get(category, len(TOKEN_CATEGORIES)), category),
        )
        if categories:
            columns.extend((f"{side}: {category.replace('_', ' ')}", side, category) for category in categories)
        else:
            columns.append((side, side, None))
    rows = tuple(
        (_day_label(entry), tuple(_cell(entry.get(side), category) for _label, side, category in columns))
        for entry in entries
    )
    chart = {
        "labels": [day for day, _values in rows],
        "datasets": [{"label": side, "data": [_total(entry.get(side)) for entry in entries]} for side in sides],
    }
    return SeriesView(columns=tuple(columns), rows=rows, chart=chart)


def _day_label(entry: Mapping[str, Any]) -> str:
    day = str(entry.get("day", ""))
    through = entry.get("through")
    return f"{day} – {through}" if through else day


def _cell(value: Any, category: str | None) -> Any:
    if category is None:
        return value
    return value.get(category) if isinstance(value, Mapping) else None


def _total(value: Any) -> str | None:
    """A series value as a chart number (decimal string); a mapping is summed."""
    if value is None or isinstance(value, bool):
        return None
    items = value.values() if isinstance(value, Mapping) else (value,)
    try:
        total = sum(
            (Decimal(str(item)) for item in items if item is not None and not isinstance(item, bool)), Decimal(0)
        )
    except InvalidOperation:
        return None
    return str(total)
