"""The overview of a period: billed against expected cost per provider, open findings by severity, the
statements imported and how fresh they are, and the models whose usage has no expected cost. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from importers.registry import IMPORTERS
from ledger.alerts import rules
from ledger.periods import Period
from ledger.queries.findings import SEVERITIES
from ledger.queries.footing import footed
from ledger.queries.sources import DriftLine, FindingImpact, ImportLine, RunLine
from reports.drift_split import DriftSplit, split_drift
from reports.monthly import CostTotals, cost_totals

STALE_AFTER = timedelta(days=rules.STALE_AFTER_DAYS)
FETCHING_SOURCES = frozenset(importer.source for importer in IMPORTERS if importer.default_base_url)
CENT = Decimal("0.01")
USD = "USD"


@dataclass(frozen=True, slots=True)
class ProviderCost:
    """One provider's money for the period, in one currency (summed as `monthly.cost_totals` does)."""

    provider: str
    currency: str
    expected: Decimal | None
    billed: Decimal | None
    difference: Decimal | None
    percent: Decimal | None
    unpriced_rows: int


@dataclass(frozen=True, slots=True)
class SourceFreshness:
    source: str
    period_start: datetime
    period_end: datetime
    imported_at: datetime
    lines: int
    unknown_lines: int
    age: timedelta
    stale: bool


@dataclass(frozen=True, slots=True)
class UnpricedModel:
    provider: str
    account: str
    model: str
    logged_tokens: int


@dataclass(frozen=True, slots=True)
class Headline:
    """The period's answer in USD: expected, billed, the drift (over the rows with both) and its percent; the
    same for the month before; the drift split into what billing findings explain and the rest."""

    current: CostTotals
    previous: CostTotals | None
    split: DriftSplit | None

    @property
    def billed_change(self) -> Decimal | None:
        if self.previous is None or self.previous.billed_cost is None or self.current.billed_cost is None:
            return None
        return self.current.billed_cost - self.previous.billed_cost

    @property
    def billed_change_percent(self) -> Decimal | None:
        change = self.billed_change
        if change is None or self.previous is None or not self.previous.billed_cost:
            return None
        return (change / self.previous.billed_cost * 100).quantize(CENT)

    @property
    def drift_change(self) -> Decimal | None:
        if self.previous is None or self.previous.difference is None or self.current.difference is None:
            return None
        return self.current.difference - self.previous.difference


@dataclass(frozen=True, slots=True)
class FootedProvider:
    """A provider row as written: rounded so that the column adds up to the currency's total row."""

    provider: str
    currency: str
    expected: Decimal | None
    billed: Decimal | None
    difference: Decimal | None
    percent: Decimal | None
    unpriced_rows: int


@dataclass(frozen=True, slots=True)
class Overview:
    period: Period
    providers: tuple[ProviderCost, ...]
    open_findings: dict[str, int]
    sources: tuple[SourceFreshness, ...]
    unpriced: tuple[UnpricedModel, ...]
    last_run: RunLine | None
    providers_without_statement: tuple[str, ...]
    headline: Headline | None = None
    currency_totals: dict[str, CostTotals] = field(default_factory=dict)

    @property
    def reconciled(self) -> bool:
        return bool(self.providers)

    @property
    def newest_import_age(self) -> timedelta | None:
        return min((source.age for source in self.sources), default=None)

    @property
    def stale_sources(self) -> int:
        return sum(1 for source in self.sources if source.stale)

    def provider_table(self) -> tuple[list[FootedProvider], list[FootedProvider]]:
        """The provider rows and one total row per currency, each money column rounded to the cent so that the
        rows add up to the total written under them (largest remainder)."""
        rows: list[FootedProvider] = []
        totals: list[FootedProvider] = []
        for currency in sorted({row.currency for row in self.providers}):
            group = [row for row in self.providers if row.currency == currency]
            expected, total_expected = footed([row.expected for row in group])
            billed, total_billed = footed([row.billed for row in group])
            difference, total_difference = footed([row.difference for row in group])
            rows += [
                FootedProvider(row.provider, currency, e, b, d, row.percent, row.unpriced_rows)
                for row, e, b, d in zip(group, expected, billed, difference, strict=True)
            ]
            totals.append(
                FootedProvider(
                    "total",
                    currency,
                    total_expected,
                    total_billed,
                    total_difference,
                    self.currency_totals[currency].percent if currency in self.currency_totals else None,
                    sum(row.unpriced_rows for row in group),
                )
            )
        return rows, totals

    def chart(self) -> dict[str, Any]:
        """Expected and billed cost per provider as chart data; money as decimal strings (cents)."""
        return {
            "labels": [f"{row.provider} ({row.currency})" for row in self.providers],
            "datasets": [
                {"label": "expected", "data": [_cents(row.expected) for row in self.providers]},
                {"label": "billed", "data": [_cents(row.billed) for row in self.providers]},
            ],
        }


def overview(
    period: Period,
    drift: Sequence[DriftLine],
    finding_counts: Iterable[tuple[str, str, str, str, str, int]],
    imports: Sequence[ImportLine],
    runs: Sequence[RunLine],
    *,
    now: datetime,
    stale_after: timedelta = STALE_AFTER,
    previous_drift: Sequence[DriftLine] | None = None,
    impacts: Iterable[FindingImpact] = (),
) -> Overview:
    """The overview from the period's drift rows, finding counts (as `sources.finding_counts` returns them),
    latest imports per source and runs (newest first); with the previous month's drift rows and the period's
    finding impacts per kind (`sources.finding_impacts`), its headline in USD."""
    open_findings: Counter[str] = Counter(dict.fromkeys(SEVERITIES, 0))
    for _provider, _account, _model, severity, status, count in finding_counts:
        if status == "open":
            open_findings[severity] += count
    billed_providers = {
        line.provider for line in drift if line.billed_cost is not None or line.billed_tokens is not None
    }
    return Overview(
        period=period,
        providers=provider_costs(drift),
        open_findings={level: open_findings[level] for level in reversed(SEVERITIES)},
        sources=tuple(
            SourceFreshness(
                source=line.source,
                period_start=line.period_start,
                period_end=line.period_end,
                imported_at=line.imported_at,
                lines=line.lines,
                unknown_lines=line.unknown_lines,
                age=now - line.imported_at,
                stale=now - line.imported_at > stale_after,
            )
            for line in imports
        ),
        unpriced=tuple(
            UnpricedModel(line.provider, line.account, line.model, line.logged_tokens)
            for line in drift
            if line.expected_cost is None and line.logged_tokens > 0
        ),
        last_run=runs[0] if runs else None,
        providers_without_statement=tuple(sorted({line.provider for line in drift} - billed_providers)),
        headline=headline(drift, previous_drift, impacts) if drift else None,
        currency_totals={
            currency: cost_totals([line for line in drift if line.currency == currency])
            for currency in sorted({line.currency for line in drift})
        },
    )


def headline(
    drift: Sequence[DriftLine],
    previous_drift: Sequence[DriftLine] | None,
    impacts: Iterable[FindingImpact],
) -> Headline:
    """The USD totals of the period and of the one before (None when it has no drift rows), and the drift split
    by finding kind."""
    current = cost_totals([line for line in drift if line.currency == USD])
    previous_usd = [line for line in previous_drift or () if line.currency == USD]
    return Headline(
        current=current,
        previous=cost_totals(previous_usd) if previous_usd else None,
        split=split_drift(current.difference, impacts) if current.difference is not None else None,
    )


def provider_costs(drift: Iterable[DriftLine]) -> tuple[ProviderCost, ...]:
    """Drift rows summed per provider and currency."""
    groups: dict[tuple[str, str], list[DriftLine]] = {}
    for line in drift:
        groups.setdefault((line.provider, line.currency), []).append(line)
    result = []
    for (provider, currency), lines in sorted(groups.items()):
        costs = cost_totals(lines)
        result.append(
            ProviderCost(
                provider=provider,
                currency=currency,
                expected=costs.expected_cost,
                billed=costs.billed_cost,
                difference=costs.difference,
                percent=costs.percent,
                unpriced_rows=sum(1 for line in lines if line.expected_cost is None),
            )
        )
    return tuple(result)


def import_hint(provider: str, period: Period) -> str:
    """The command that imports a provider's statement for the period."""
    if provider in FETCHING_SOURCES:
        return f"tokenledger import {provider} --period {period.label}"
    return f"tokenledger import focus --file EXPORT.csv --period {period.label}"


def reconcile_hint(period: Period) -> str:
    return f"tokenledger reconcile --period {period.label}"


def _cents(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(CENT))
