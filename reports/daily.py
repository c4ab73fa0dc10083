"""Drift over time: logged against billed tokens per UTC day, per provider (all its models) or for one model,
with the billed amounts beside them. Pure: pandas frames in (from `reports.sources`), frozen dataclasses out.

Logged tokens are input + output from the hourly rollup; billed tokens are the statement lines' token usage
types. Statement lines that span more than a day (a monthly invoice) have no day: they are reported apart as
`undated_*`, never spread over days."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd

from ledger.periods import Period


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
