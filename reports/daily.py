"""Drift over time: logged against billed tokens per UTC day, per provider (all its models) or for one model,
with the billed amounts beside them. Pure: pandas frames in (from `reports.sources`), frozen dataclasses out.

Logged tokens are input + output from the hourly rollup; billed tokens are the statement lines' token usage
types, each counted once where statements state them at several grains (`billed_once`). Statement lines that
span more than a day (a monthly invoice) have no day: they are reported apart as `undated_*`, never spread
over days."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

import pandas as pd

from ledger.periods import Period
from ledger.reconcile.matching import counted_figures, sum_present


@dataclass(frozen=True, slots=True)
class DayPoint:
    day: date
    logged: int
    billed: int | None
    amounts: dict[str, Decimal] = field(default_factory=dict)

    @property
    def difference(self) -> int | None:
        return None if self.billed is None else self.billed - self.logged


@dataclass(frozen=True, slots=True)
class DailySeries:
    """One provider's days (or one model's, when `model` is set). `billed` is None on every day when no
    statement line of the provider was imported for the period."""

    provider: str
    model: str | None
    points: tuple[DayPoint, ...]
    undated_tokens: int
    undated_amounts: dict[str, Decimal]

    @property
    def billed_known(self) -> bool:
        return any(point.billed is not None for point in self.points)

    @property
    def logged_total(self) -> int:
        return sum(point.logged for point in self.points)

    @property
    def billed_total(self) -> int | None:
        if not self.billed_known:
            return None
        return sum(point.billed or 0 for point in self.points) + self.undated_tokens

    def chart(self) -> dict[str, Any]:
        """The series as chart data: day labels and two datasets (JSON-ready)."""
        return {
            "labels": [point.day.isoformat() for point in self.points],
            "datasets": [
                {"label": "logged tokens", "data": [point.logged for point in self.points]},
                {"label": "billed tokens", "data": [point.billed for point in self.points]},
            ],
        }


@dataclass(frozen=True, slots=True)
class ModelTotal:
    provider: str
    model: str
    logged: int
    billed: int | None
    amounts: dict[str, Decimal]


@dataclass(frozen=True, slots=True)
class DriftOverTime:
    series: tuple[DailySeries, ...]
    models: tuple[ModelTotal, ...]
    providers: tuple[str, ...]


class StatedFigures(NamedTuple):
    """Statement lines of one day (or one longer span: `undated`), provider, model, usage type, currency and
    grain (the dimensions they break down by, in `DIMENSIONS` order), summed: their token quantity (None: the
    lines state none) and amount."""

    undated: bool
    day: date
    provider: str
    model: str
    usage_type: str
    grain: tuple[str, ...]
    quantity: int | None
    amount: Decimal | None
    currency: str | None


BILLED_COLUMNS = ("day", "provider", "model", "tokens", "amount", "currency")
UNDATED_COLUMNS = ("provider", "model", "tokens", "amount", "currency")


def billed_once(lines: Iterable[StatedFigures]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The billed frames of `drift_over_time`: tokens and amounts per day × provider × model × currency, and
    apart those of lines spanning more than a day. A provider's statements may state one figure twice, at two
    grains: OpenAI's usage pages give the tokens per key, its costs per project give them again. Of each
    provider's tokens (and amounts) of a usage type, only the finest grain's count, as in the reconciler
    (`counted_figures`); summing every line would bill them twice."""
    dated: dict[tuple[Any, ...], list[Any]] = {}
    undated: dict[tuple[Any, ...], list[Any]] = {}
    for line, tokens, amount in counted_figures(list(lines), lambda line: line.grain):
        if tokens is None and amount is None:
            continue
        scope = (line.provider, line.model, line.currency)
        sums = (
            undated.setdefault(scope, [None, None])
            if line.undated
            else dated.setdefault((line.day, *scope), [None, None])
        )
        sums[0], sums[1] = sum_present(sums[0], tokens), sum_present(sums[1], amount)
    return (
        _frame(
            [
                (day, provider, model, tokens, amount, currency)
                for (day, provider, model, currency), (tokens, amount) in dated.items()
            ],
            BILLED_COLUMNS,
        ),
        _frame(
            [
                (provider, model, tokens, amount, currency)
                for (provider, model, currency), (tokens, amount) in undated.items()
            ],
            UNDATED_COLUMNS,
        ),
    )


def _frame(rows: list[tuple[Any, ...]], columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns)).astype({"tokens": "Int64"})


def drift_over_time(
    logged: pd.DataFrame,
    billed: pd.DataFrame,
    undated: pd.DataFrame,
    period: Period,
    *,
    provider: str | None = None,
    model: str | None = None,
) -> DriftOverTime:
    """Daily series for each provider (restricted to `provider` / `model` when given) and the period's
    totals per provider × model. Frames: `logged` (day, provider, model, tokens); `billed` (day, provider,
    model, tokens, amount, currency); `undated` (provider, model, tokens, amount, currency)."""
    providers = tuple(sorted(set(logged["provider"]) | set(billed["provider"]) | set(undated["provider"])))
    logged, billed, undated = (_only(frame, provider, model) for frame in (logged, billed, undated))
    days = list(period.days())
    shown = sorted(set(logged["provider"]) | set(billed["provider"]) | set(undated["provider"]))
    series = tuple(
        _series(name, model, days, *(_only(frame, name, None) for frame in (logged, billed, undated))) for name in shown
    )
    return DriftOverTime(series=series, models=_model_totals(logged, billed, undated), providers=providers)


def _only(frame: pd.DataFrame, provider: str | None, model: str | None) -> pd.DataFrame:
    if provider:
        frame = frame[frame["provider"] == provider]
    if model is not None:
        frame = frame[frame["model"] == model]
    return frame


def _series(
    provider: str,
    model: str | None,
    days: list[date],
    logged: pd.DataFrame,
    billed: pd.DataFrame,
    undated: pd.DataFrame,
) -> DailySeries:
    logged_by_day = logged.groupby("day")["tokens"].sum().to_dict() if len(logged) else {}
    has_statement = bool(billed["tokens"].notna().any() or undated["tokens"].notna().any())
    billed_by_day = billed.dropna(subset=["tokens"]).groupby("day")["tokens"].sum().to_dict() if len(billed) else {}
    amounts: dict[date, dict[str, Decimal]] = defaultdict(dict)
    for row in billed.itertuples(index=False):
        _add_amount(amounts[row.day], row.amount, row.currency)
    points = tuple(
        DayPoint(
            day=day,
            logged=int(logged_by_day.get(day, 0)),
            billed=int(billed_by_day.get(day, 0)) if has_statement else None,
            amounts=dict(amounts.get(day, {})),
        )
        for day in days
    )
    undated_amounts: dict[str, Decimal] = {}
    for row in undated.itertuples(index=False):
        _add_amount(undated_amounts, row.amount, row.currency)
    undated_tokens = int(undated["tokens"].dropna().sum()) if len(undated) else 0
    return DailySeries(provider, model, points, undated_tokens, undated_amounts)


def _model_totals(logged: pd.DataFrame, billed: pd.DataFrame, undated: pd.DataFrame) -> tuple[ModelTotal, ...]:
    logged_totals = logged.groupby(["provider", "model"])["tokens"].sum().to_dict() if len(logged) else {}
    present = [frame for frame in (billed, undated) if len(frame)]
    statements = pd.concat(present) if present else None
    billed_totals: dict[tuple[str, str], int] = {}
    amounts: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)
    if statements is not None:
        sums = statements.groupby(["provider", "model"])["tokens"].sum(min_count=1).to_dict()
        billed_totals = {key: int(value) for key, value in sums.items() if not pd.isna(value)}
        for row in statements.itertuples(index=False):
            _add_amount(amounts[(row.provider, row.model)], row.amount, row.currency)
    keys = sorted(set(logged_totals) | set(billed_totals) | set(amounts))
    return tuple(
        ModelTotal(
            provider=key[0],
            model=key[1],
            logged=int(logged_totals.get(key, 0)),
            billed=billed_totals.get(key),
            amounts=dict(amounts.get(key, {})),
        )
        for key in keys
    )


def _add_amount(into: dict[str, Decimal], amount: Decimal | None, currency: str | None) -> None:
    if amount is None or pd.isna(amount):
        return
    code = currency or "USD"
    into[code] = into.get(code, Decimal(0)) + amount
