"""What every detector reads: the inputs, the comparisons, and the shared analyses (computed once)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from operator import attrgetter
from types import MappingProxyType

from ledger.periods import Period
from ledger.reconcile.excess import InputExcessFit, RequestExcess, fit_input_excess, request_excess
from ledger.reconcile.matching import per_scope
from ledger.reconcile.model import Comparison, LoggedDay, LoggedTotals, ReconcileSettings, Scope, sum_quantities
from ledger.reconcile.relabeling import Relabel, relabeled_usage

BucketsKey = tuple[Scope, tuple[date, ...]]
"""Some buckets of one scope's series, by value: the scope and the buckets' first days."""


@dataclass(frozen=True)
class DetectionContext:
    period: Period
    settings: ReconcileSettings
    logged: tuple[LoggedDay, ...]
    history: tuple[LoggedDay, ...]
    comparisons: tuple[Comparison, ...]
    """One per statement scope × day."""
    buckets: tuple[Comparison, ...]
    """The comparisons with midnight shifts merged: what detectors compare."""
    _logged_totals: dict[BucketsKey, LoggedTotals] = field(default_factory=dict, init=False, repr=False)
    _billed_quantities: dict[BucketsKey, Mapping[str, int]] = field(default_factory=dict, init=False, repr=False)
    """Sums over some buckets of a scope, kept for this run: several analyses of a scope sum the same buckets."""

    @property
    def window(self) -> tuple[datetime, datetime]:
        """The reconciled period as (start, end): the period of every period-level finding."""
        return self.period.start, self.period.end

    @cached_property
    def logged_per_key_and_model(self) -> Mapping[Scope, list[LoggedDay]]:
        """The period's logged rows per provider × account × API key × served model (any service tier)."""
        grouped: dict[tuple[str, str, str, str], list[LoggedDay]] = defaultdict(list)
        for row in self.logged:
            grouped[(row.provider, row.account, row.api_key_id, row.model)].append(row)
        return {
            Scope(provider=provider, account=account, api_key_id=api_key_id, model=model): rows
            for (provider, account, api_key_id, model), rows in grouped.items()
        }

    @cached_property
    def series(self) -> Mapping[Scope, tuple[Comparison, ...]]:
        """Buckets per scope, in day order."""
        first_day = attrgetter("first_day")
        return {scope: tuple(sorted(items, key=first_day)) for scope, items in per_scope(self.buckets).items()}

    @cached_property
    def regular(self) -> Mapping[Scope, tuple[Comparison, ...]]:
        """Per scope, the buckets of its series with usage on both sides (one-sided ones are unlogged or unbilled
        usage, not a mismatch to explain)."""
        return {scope: tuple([b for b in series if not b.one_sided]) for scope, series in self.series.items()}

    @cached_property
    def one_sided(self) -> tuple[Comparison, ...]:
        """The buckets with usage on one side only (`unlogged` or `unbilled`), in bucket order: the few that
        unlogged and unbilled usage, and model relabeling, look at."""
        return tuple([bucket for bucket in self.buckets if bucket.one_sided])

    def logged_totals(self, buckets: Sequence[Comparison]) -> LoggedTotals:
        """The logged usage of some buckets of one scope's series, summed (once a run for the same buckets)."""
        key = _key_of(buckets)
        totals = self._logged_totals.get(key)
        if totals is None:
            totals = self._logged_totals[key] = LoggedTotals.sum(b.logged for b in buckets)
        return totals

    def billed_quantities(self, buckets: Sequence[Comparison]) -> Mapping[str, int]:
        """The billed quantity of each category some buckets of one scope's series state, summed over them (once a
        run for the same buckets)."""
        key = _key_of(buckets)
        quantities = self._billed_quantities.get(key)
        if quantities is None:
            quantities = self._billed_quantities[key] = MappingProxyType(
                sum_quantities([b.billed_quantities for b in buckets])
            )
        return quantities

    @cached_property
    def input_excess(self) -> Mapping[Scope, InputExcessFit]:
        fits = {
            scope: fit_input_excess(buckets, self.settings, self.logged_totals)
            for scope, buckets in self.regular.items()
        }
        return {scope: fit for scope, fit in fits.items() if fit is not None}

    @cached_property
    def request_excess(self) -> Mapping[Scope, RequestExcess]:
        found = {
            scope: request_excess(buckets, self.settings, self.logged_totals) for scope, buckets in self.regular.items()
        }
        return {scope: excess for scope, excess in found.items() if excess is not None}

    @cached_property
    def relabels(self) -> tuple[Relabel, ...]:
        return relabeled_usage(self.one_sided, self.settings)  # pairs of an unlogged and an unbilled bucket

    @cached_property
    def relabeled(self) -> frozenset[tuple[Scope, date]]:
        """(scope, first day) of every bucket that is part of a relabel pair."""
        return frozenset(
            (bucket.scope, bucket.first_day) for pair in self.relabels for bucket in (pair.logged, pair.billed)
        )

    def is_relabeled(self, scope: Scope, day: date) -> bool:
        """Whether the bucket of `scope` starting on `day` is, or contains, a bucket of a relabel pair: the pair
        explains it at a coarser grain too (money per account beside tokens per key)."""
        return any(first_day == day and scope.contains(part) for part, first_day in self.relabeled)

    @cached_property
    def _model_totals(self) -> Mapping[tuple[str, str], LoggedTotals]:
        rows: dict[tuple[str, str], list[LoggedDay]] = defaultdict(list)
        for row in self.logged:
            rows[(row.provider, row.model)].append(row)
        return {key: LoggedTotals.sum(items) for key, items in rows.items()}

    def logged_unit_price(self, provider: str, model: str | None, category: str) -> Decimal | None:
        """The expected unit price of a model's category from this period's logged usage (any scope)."""
        totals = self._model_totals.get((provider, model or ""))
        return None if totals is None else totals.unit_price(category)


def _key_of(buckets: Sequence[Comparison]) -> BucketsKey:
    """Some buckets of one scope's series by value (a scope has one bucket a first day); callers pass buckets of
    one scope only (`series`, `regular` and subsets of them)."""
    if not buckets:
        return Scope(provider=""), ()
    return buckets[0].scope, tuple([bucket.first_day for bucket in buckets])
