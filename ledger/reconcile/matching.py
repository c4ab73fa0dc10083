"""Matching: bring logged usage to the grain each statement offers, pair it with the billed figures per
scope × day, and merge adjacent days whose mismatches cancel (events near midnight land in the next day's
bucket on one side).

A *view* is the set of billed rows of one provider with the same grain (the dimensions they break down by).
When several views state the same figure (say output tokens) the finest grain is authoritative for it and
the others do not compare it, so no usage is compared twice. A view *covers* a domain (the provider, or
provider × account when it breaks down by account) from its first to its last billed day: inside that
horizon a scope with no billed row was billed zero."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from itertools import pairwise
from operator import attrgetter
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from ledger.reconcile.model import (
    DIMENSIONS,
    BilledDay,
    Comparison,
    LoggedDay,
    LoggedTotals,
    ReconcileInputError,
    ReconcileSettings,
    Scope,
)
from ledger.vocabulary import TOKEN_CATEGORIES

N = TypeVar("N", int, Decimal)
_ZERO = Decimal(0)
_ONE_DAY = timedelta(days=1)
REQUESTS = "requests"
TOTAL = "total"
_NOTHING_STATED: Mapping[str, int] = MappingProxyType({})


def quantity_metric(category: str) -> str:
    return f"quantity:{category}"


def amount_metric(category: str) -> str:
    return f"amount:{category}"


@dataclass(slots=True)
class _Billed:
    """Billed rows of one scope × day, merged (a day's only row is compared as it is, without one). The first
    row's quantities are taken as they are, read-only; the next merges into a copy."""

    quantities: Mapping[str, int] = field(default_factory=lambda: _NOTHING_STATED)
    requests: int | None = None
    amounts: dict[str, Decimal] = field(default_factory=dict)
    total: Decimal | None = None
    final: bool = True
    stated_by: dict[str, str] = field(default_factory=dict)
    rows: int = 0

    def add(self, stated: _StatedRow) -> None:
        """Merge a billed row with the metrics it states."""
        row = stated.row
        self.rows += 1
        self.final = self.final and row.final
        if self.rows == 1:  # the first row: its figures, nothing to conflict with
            self.stated_by = dict.fromkeys(stated.metrics, row.source)
            self.quantities = row.quantities
            self.amounts = {category: _ZERO + amount for category, amount in row.amounts.items()}
            self.requests = row.requests
            billed_total = row.billed_total
            self.total = None if billed_total is None else _ZERO + billed_total
            return
        for metric in sorted(stated.metrics):
            other = self.stated_by.setdefault(metric, row.source)
            if other != row.source:
                raise ReconcileInputError(
                    f"{metric} of {_scope_of(row).label()} on {row.day} is stated by two statements "
                    f"({other!r} and {row.source!r}); pass one, or give them different grains"
                )
        quantities = dict(self.quantities)
        for category, quantity in row.quantities.items():
            quantities[category] = quantities.get(category, 0) + quantity
        self.quantities = MappingProxyType(quantities)
        for category, amount in row.amounts.items():
            self.amounts[category] = self.amounts.get(category, _ZERO) + amount
        if row.requests is not None:
            self.requests = (self.requests or 0) + row.requests
        billed_total = row.billed_total
        if billed_total is not None:
            self.total = (self.total or _ZERO) + billed_total


def _metrics_of(row: BilledDay) -> frozenset[str]:
    return _stated_metrics(
        tuple(row.quantities), tuple(row.amounts), row.requests is not None, row.billed_total is not None
    )


@cache
def _stated_metrics(
    quantities: tuple[str, ...], amounts: tuple[str, ...], requests: bool, total: bool
) -> frozenset[str]:
    """The metrics a billed row states, from the categories of its quantities and amounts and whether it states
    requests and a total (a few dozen combinations in all, each row one of them)."""
    return frozenset(
        [quantity_metric(c) for c in quantities]
        + [amount_metric(c) for c in amounts]
        + [REQUESTS] * requests
        + [TOTAL] * total
    )


def _scope_of(row: BilledDay) -> Scope:
    return Scope(
        provider=row.provider,
        account=row.account,
        api_key_id=row.api_key_id,
        model=row.model,
        service_tier=row.service_tier,
    )


def grain_of(row: object) -> tuple[str, ...]:
    """The dimensions (`DIMENSIONS`) a billed row or statement line breaks down by: those it gives a value."""
    return tuple([name for name in DIMENSIONS if getattr(row, name) is not None])


def _grain_reader(grain: tuple[str, ...]) -> Callable[[Any], tuple[str, ...]]:
    """A getter of a row's (or a scope's) values of the grain's dimensions: with the provider, its scope at that
    grain."""
    if len(grain) > 1:
        return cast(Callable[[Any], tuple[str, ...]], attrgetter(*grain))
    return lambda row: tuple([getattr(row, name) for name in grain])


def scope_sort_key(scope: Scope) -> tuple[str, ...]:
    return (scope.provider, *(getattr(scope, name) or "" for name in DIMENSIONS))


class _StatedRow(NamedTuple):
    """A billed row with the metrics it states (derived once)."""

    row: BilledDay
    metrics: frozenset[str]

    @property
    def final(self) -> bool:
        return self.row.final


@dataclass(slots=True)
class _View:
    provider: str
    grain: tuple[str, ...]
    rows: list[_StatedRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _StatedFigures:
    """The figures one domain of a view compares, by name (the `owned` metrics it states)."""

    quantities: tuple[str, ...]
    amounts: tuple[str, ...]
    requests: bool
    total: bool

    @classmethod
    def of(cls, metrics: set[str]) -> _StatedFigures:
        return cls(
            quantities=tuple(c for c in TOKEN_CATEGORIES if quantity_metric(c) in metrics),
            amounts=tuple(c for c in TOKEN_CATEGORIES if amount_metric(c) in metrics),
            requests=REQUESTS in metrics,
            total=TOTAL in metrics,
        )


def compare(logged: Sequence[LoggedDay], billed: Sequence[BilledDay]) -> list[Comparison]:
    """One Comparison per statement scope × day inside each statement's coverage (see module doc)."""
    for row in billed:
        if row.currency != "USD" and (row.amounts or row.total_amount is not None):
            raise ReconcileInputError(
                f"BilledDay[{row.source}: {_scope_of(row).label()} {row.day}].currency: amounts must be "
                f"converted to USD before reconciling, got {row.currency}"
            )
    views: dict[tuple[str, tuple[str, ...]], _View] = {}
    for row in billed:
        grain = grain_of(row)
        view = views.get((row.provider, grain))
        if view is None:
            view = views[(row.provider, grain)] = _View(row.provider, grain)
        view.rows.append(_StatedRow(row, _metrics_of(row)))
    authority = _authoritative_grains(views.values())
    logged_by_domain: dict[tuple[str, str | None], list[LoggedDay]] = defaultdict(list)
    for logged_row in logged:
        logged_by_domain[(logged_row.provider, None)].append(logged_row)
        logged_by_domain[(logged_row.provider, logged_row.account)].append(logged_row)
    comparisons: list[Comparison] = []
    for key in sorted(views):
        view = views[key]
        owned = {
            metric
            for (provider, metric), grain in authority.items()
            if provider == view.provider and grain == view.grain
        }
        if owned:
            comparisons.extend(_compare_view(view, owned, logged_by_domain))
    return _with_rolled_up_quantities(comparisons)


def _with_rolled_up_quantities(comparisons: list[Comparison]) -> list[Comparison]:
    """The comparisons, those stating an amount but no quantity for a category given the billed quantity a finer
    statement of the same provider and day states inside their scope (`Comparison.rate_quantities`), summed."""
    wanting: dict[tuple[str, tuple[str, ...]], list[int]] = defaultdict(list)
    for index, comparison in enumerate(comparisons):
        amounts = comparison.billed_amounts
        if amounts and not amounts.keys() <= comparison.billed_quantities.keys():
            wanting[(comparison.scope.provider, comparison.scope.grain)].append(index)
    if not wanting:
        return comparisons
    stating: dict[str, list[Comparison]] = defaultdict(list)
    for comparison in comparisons:
        if comparison.billed_quantities:
            stating[comparison.scope.provider].append(comparison)
    out = list(comparisons)
    for (provider, grain), indexes in wanting.items():
        finer = [c for c in stating.get(provider, ()) if set(grain) < set(c.scope.grain)]
        if not finer:
            continue
        values_of = _grain_reader(grain)
        rolled: dict[tuple[object, ...], dict[str, int]] = defaultdict(dict)
        for comparison in finer:
            summed = rolled[(comparison.first_day, *values_of(comparison.scope))]
            for category, quantity in comparison.billed_quantities.items():
                summed[category] = summed.get(category, 0) + quantity
        for index in indexes:
            comparison = comparisons[index]
            found = rolled.get((comparison.first_day, *values_of(comparison.scope)), {})
            wanted = {
                category: found[category]
                for category in comparison.billed_amounts
                if category not in comparison.billed_quantities and category in found
            }
            if wanted:
                out[index] = replace(comparison, rate_quantities=MappingProxyType(wanted))
    return out


def grain_rank(grain: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    """Orders grains (dimension names in `DIMENSIONS` order) from coarse to fine: where several grains of a
    provider state one figure, the greatest is authoritative (more dimensions; a tie broken by their names)."""
    return len(grain), grain


def finest_grains(stated: Iterable[tuple[str, str, tuple[str, ...]]]) -> dict[tuple[str, str], tuple[str, ...]]:
    """Provider × figure → the finest grain (`grain_rank`) stating it, from the (provider, figure, grain) of
    whatever states a figure. Statements may state one figure at several grains (OpenAI's usage pages give
    tokens per key, its costs per project give them again): only the finest grain's count, anywhere a figure
    is compared or summed, so none is counted twice."""
    best: dict[tuple[str, str], tuple[str, ...]] = {}
    for provider, figure, grain in stated:
        current = best.get((provider, figure))
        if current is None or grain_rank(grain) > grain_rank(current):
            best[(provider, figure)] = grain
    return best


class _Stated(Protocol):
    @property
    def provider(self) -> str: ...
    @property
    def usage_type(self) -> str: ...


Stated = TypeVar("Stated", bound=_Stated)


def counted_figures(
    lines: Sequence[Stated], grain: Callable[[Stated], tuple[str, ...]]
) -> list[tuple[Stated, Any, Any]]:
    """Each statement line (anything with provider, usage_type, quantity, amount) with the quantity and amount
    it adds to a total: None where a finer grain of the same provider states that figure (OpenAI's costs state
    per project the tokens its usage pages state per key), so a sum never counts a figure twice. `grain` gives
    a line's grain (`grain_of`, for lines with the dimensions themselves)."""

    def figure_of(line: Stated, figure: str) -> tuple[str, str]:
        return line.provider, f"{figure}:{line.usage_type}"

    finest = finest_grains(
        (*figure_of(line, figure), grain(line))
        for line in lines
        for figure in ("quantity", "amount")
        if getattr(line, figure) is not None
    )

    def kept(line: Stated, figure: str) -> Any:
        value = getattr(line, figure)
        return value if finest.get(figure_of(line, figure)) == grain(line) else None

    return [(line, kept(line, "quantity"), kept(line, "amount")) for line in lines]


def _authoritative_grains(views: Iterable[_View]) -> dict[tuple[str, str], tuple[str, ...]]:
    """Provider × metric → the finest grain stating it."""
    return finest_grains(
        (view.provider, metric, view.grain)
        for view in views
        for metric in set().union(*(stated.metrics for stated in view.rows))
    )


def _compare_view(
    view: _View, owned: set[str], logged: Mapping[tuple[str, str | None], list[LoggedDay]]
) -> list[Comparison]:
    domains: dict[str | None, list[_StatedRow]] = defaultdict(list)
    for stated_row in view.rows:
        domains[stated_row.row.account if "account" in view.grain else None].append(stated_row)
    values_of = _grain_reader(view.grain)
    out: list[Comparison] = []
    for account in sorted(domains, key=lambda a: a or ""):
        stated_rows = domains[account]
        stated = owned & set().union(*(r.metrics for r in stated_rows))
        if not stated:
            continue
        figures = _StatedFigures.of(stated)
        days = [r.row.day for r in stated_rows]
        first, last = min(days), max(days)
        # Per statement scope (the values of the view's grain; with the provider, the scope), per day.
        # A day's only row as it is (mostly), merged into a _Billed once a second one comes.
        billed: dict[tuple[str, ...], dict[date, _StatedRow | _Billed]] = defaultdict(dict)
        finality: dict[date, bool] = {}
        for stated_row in stated_rows:
            row = stated_row.row
            day = row.day
            per_day = billed[values_of(row)]
            merged = per_day.get(day)
            if merged is None:
                per_day[day] = stated_row
            else:
                if isinstance(merged, _StatedRow):
                    only, merged = merged, _Billed()
                    merged.add(only)
                    per_day[day] = merged
                merged.add(stated_row)
            finality[day] = finality.get(day, True) and row.final
        domain_final = all(finality.values())
        sources = tuple(sorted({r.row.source for r in stated_rows}))
        usage: dict[tuple[str, ...], dict[date, list[LoggedDay]]] = defaultdict(dict)
        for logged_row in logged.get((view.provider, account), ()):
            day = logged_row.day
            if first <= day <= last:
                per_day_usage = usage[values_of(logged_row)]
                rows = per_day_usage.get(day)
                if rows is None:
                    per_day_usage[day] = [logged_row]
                else:
                    rows.append(logged_row)
        # Sorted by scope (`scope_sort_key`: the grain's values, as the other dimensions are None) and day.
        for values in sorted(billed.keys() | usage.keys()):
            scope = Scope(provider=view.provider, **dict(zip(view.grain, values, strict=True)))
            billed_days = billed.get(values, {})
            usage_days = usage.get(values, {})
            for day in sorted(billed_days.keys() | usage_days.keys()):
                billed_on_day = billed_days.get(day)
                rows = usage_days.get(day)
                out.append(
                    _comparison(
                        scope,
                        day,
                        LoggedTotals.sum(rows or ()),
                        billed_on_day,
                        figures,
                        final=finality.get(day, domain_final) if billed_on_day is None else billed_on_day.final,
                        sources=sources,
                    )
                )
    return out


def _comparison(
    scope: Scope,
    day: date,
    logged: LoggedTotals,
    billed: _StatedRow | _Billed | None,
    figures: _StatedFigures,
    *,
    final: bool,
    sources: tuple[str, ...],
) -> Comparison:
    """The comparison of a scope's day: its logged totals against its billed figures (a day's only statement row,
    rows merged, or none)."""
    quantities: Mapping[str, int]
    amounts: Mapping[str, Decimal]
    if isinstance(billed, _Billed):
        quantities, requests, amounts, total = billed.quantities, billed.requests, billed.amounts, billed.total
    elif billed is not None:  # mostly: the day's only row, its figures read as they are
        row = billed.row
        quantities, requests, amounts, total = row.quantities, row.requests, row.amounts, row.billed_total
    else:
        quantities, requests, amounts, total = _NOTHING_STATED, None, _NO_AMOUNTS, None
    if tuple(quantities) != figures.quantities:
        quantities = MappingProxyType({c: quantities.get(c, 0) for c in figures.quantities})
    # Amounts added to zero, as merged rows' are (again, for those: the same value and exponent), so they have the
    # same exponents either way.
    return Comparison(
        scope=scope,
        first_day=day,
        last_day=day,
        logged=logged,
        billed_quantities=quantities,
        billed_requests=(requests or 0) if figures.requests else None,
        billed_amounts=MappingProxyType({c: _ZERO + amounts[c] if c in amounts else _ZERO for c in figures.amounts})
        if figures.amounts
        else _NO_AMOUNTS,
        billed_total=((None if total is None else _ZERO + total) or _ZERO) if figures.total else None,
        final=final,
        sources=sources,
        rate_quantities=_NOTHING_STATED,
    )


_NO_AMOUNTS: Mapping[str, Decimal] = MappingProxyType({})


def per_scope(comparisons: Iterable[Comparison]) -> dict[Scope, list[Comparison]]:
    """Comparisons grouped by scope, in the order given."""
    grouped: dict[Scope, list[Comparison]] = defaultdict(list)
    for comparison in comparisons:
        grouped[comparison.scope].append(comparison)
    return dict(grouped)


_first_day = attrgetter("first_day")


def merge_midnight_shifts(comparisons: Sequence[Comparison], settings: ReconcileSettings) -> list[Comparison]:
    """Merge pairs of adjacent days whose mismatches have opposite signs, both beyond tolerance: usage that
    moved across midnight cancels over the pair. Of overlapping candidate pairs, the ones cancelling the
    most mismatch are chosen (dynamic programming over the day series). Totals are preserved."""
    out: list[Comparison] = []
    grouped = per_scope(comparisons)
    for scope in sorted(grouped, key=scope_sort_key):
        series = sorted(grouped[scope], key=_first_day)
        mismatches = [_mismatch(comparison, settings) for comparison in series]
        gains = [
            _cancelled(first, second, mismatch_first, mismatch_second)
            for (first, second), (mismatch_first, mismatch_second) in zip(
                pairwise(series), pairwise(mismatches), strict=True
            )
        ] + [None]
        if gains.count(None) == len(gains):  # mostly: no adjacent days to merge
            out.extend(series)
            continue
        best = [Decimal(0)] * (len(series) + 2)  # best[i]: most mismatch cancellable from day i on
        for i in reversed(range(len(series))):
            gain = gains[i]
            best[i] = best[i + 1] if gain is None else max(best[i + 1], gain + best[i + 2])
        index = 0
        while index < len(series):
            gain = gains[index]
            if gain is not None and best[index] == gain + best[index + 2] and best[index] > best[index + 1]:
                out.append(_merge(series[index], series[index + 1]))
                index += 2
            else:
                out.append(series[index])
                index += 1
    return out


def _cancelled(
    first: Comparison,
    second: Comparison,
    a: tuple[Decimal, Decimal] | None,
    b: tuple[Decimal, Decimal] | None,
) -> Decimal | None:
    """How much mismatch merging two adjacent days (with mismatches `a` and `b`, see `_mismatch`) cancels;
    None when they are not a midnight shift."""
    if second.first_day != first.last_day + _ONE_DAY:
        return None
    if a is None or b is None:
        return None
    (diff_a, tol_a), (diff_b, tol_b) = a, b
    if diff_a * diff_b >= 0 or abs(diff_a) <= tol_a or abs(diff_b) <= tol_b:
        return None
    return abs(diff_a) + abs(diff_b) - abs(diff_a + diff_b)


def _mismatch(comparison: Comparison, settings: ReconcileSettings) -> tuple[Decimal, Decimal] | None:
    """Billed − logged and its tolerance, in tokens when quantities are stated, else USD, else requests."""
    categories = comparison.stated(TOKEN_CATEGORIES)
    if categories:
        logged = comparison.logged_quantity(categories)
        billed = comparison.billed_quantity(categories)
        return Decimal(billed - logged), Decimal(settings.token_tolerance(logged))
    expected = comparison.logged.expected_cost
    if comparison.billed_total is not None and expected is not None:
        return comparison.billed_total - expected, settings.money_tolerance(expected)
    if comparison.billed_requests is not None:
        successful = comparison.logged.successful_requests
        return (
            Decimal(comparison.billed_requests - successful),
            Decimal(settings.request_tolerance(successful)),
        )
    return None


def _merge(first: Comparison, second: Comparison) -> Comparison:
    """Two comparisons of one scope as one spanning both (figures summed)."""
    return replace(
        first,
        first_day=min(first.first_day, second.first_day),
        last_day=max(first.last_day, second.last_day),
        logged=first.logged + second.logged,
        billed_quantities=_add_maps(first.billed_quantities, second.billed_quantities),
        billed_requests=sum_present(first.billed_requests, second.billed_requests),
        billed_amounts=_add_maps(first.billed_amounts, second.billed_amounts),
        billed_total=sum_present(first.billed_total, second.billed_total),
        final=first.final and second.final,
        sources=tuple(sorted(set(first.sources) | set(second.sources))),
        rate_quantities=_add_maps(first.rate_quantities, second.rate_quantities),
    )


def _add_maps(left: Mapping[str, N], right: Mapping[str, N]) -> Mapping[str, N]:
    out: dict[str, N] = {}
    for key in TOKEN_CATEGORIES:
        value = sum_present(left.get(key), right.get(key))
        if value is not None:
            out[key] = value
    return MappingProxyType(out)


def sum_present(left: N | None, right: N | None) -> N | None:
    """The sum of the figures present (None only when both are absent)."""
    if left is None:
        return right
    if right is None:
        return left
    return left + right
