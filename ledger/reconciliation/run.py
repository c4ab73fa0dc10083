"""Running the reconciler for a tenant and period: load logged usage (the daily rollup, and the hourly one per
price segment where a price changes within a day; priced with the catalog on every run, so history is re-priced)
and billed usage (statement lines), run the pure detection core, and store drift rows and findings. Each run is
recorded in `reconciliation_runs`, failed ones included."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import compress, product
from operator import add, itemgetter
from types import MappingProxyType
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, delete, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from ledger.alerts import enabled_channels, queue_finding_alert, queue_run_failure_alert
from ledger.periods import Period, day_start
from ledger.pricing.catalog import load_catalog
from ledger.pricing.model_aliases import ProbableAlias, apply_aliases, probable_aliases, with_probable_aliases
from ledger.pricing.model_names import normalize_model_name
from ledger.pricing.prices import PriceCatalog, pricing_provider_of
from ledger.reconcile.drift import per_account_and_model
from ledger.reconcile.matching import sum_present
from ledger.reconcile.model import (
    BilledDay,
    FinishCounts,
    LoggedDay,
    ReconcileResult,
    ReconcileSettings,
    TokenCounts,
    TruncationStats,
)
from ledger.reconcile.model import DriftRow as DriftResult
from ledger.reconcile.model import Finding as FindingResult
from ledger.reconcile.reconciler import reconcile
from ledger.settings import Settings
from ledger.sink.events import json_text
from ledger.storage.database import take_turns
from ledger.storage.tables import AlertChannel, DriftRow, Finding, ReconciliationRun

log = logging.getLogger("tokenledger.reconcile")
T = TypeVar("T")

CATEGORY_OF_USAGE_TYPE = {
    "uncached_input": "uncached_input",
    "cached_input": "cached_input",
    "cache_write_5m": "cache_write_5m",
    "cache_write_1h": "cache_write_1h",
    "output": "output",
}
PRICE_TYPES = {  # reconciler category -> catalog token type
    "uncached_input": "input",
    "cached_input": "cached_input",
    "cache_write_5m": "cache_write_5m",
    "cache_write_1h": "cache_write_1h",
    "output": "output",
}
STATEMENT_TIERS = {
    "default": "standard",
    "auto": "standard",
    "scale": "standard",
    "standard": "standard",
    "batch": "batch",
    "flex": "flex",
    "flex_discount": "flex",
    "priority": "priority",
    "priority_on_demand": "priority",
    "fast": "priority",
}
HISTORY_DAYS = 28
AGGREGATE_WORK_MEM = "128MB"
_AGGREGATE_IN_MEMORY = text(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'")
_NO_JIT = text("SET LOCAL jit = off")
_HASH_GROUPS, _SORT_GROUPS = text("SET LOCAL enable_sort = off"), text("SET LOCAL enable_sort = DEFAULT")


def read_rows(session: Session, query: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of a query (psycopg's `%(name)s` placeholders) as plain tuples, on the session's connection and
    in its transaction, in PostgreSQL's binary format: for the reconciler's big reads, some 10^5 values a run,
    without SQLAlchemy's result objects and without parsing every integer and numeric from text."""
    driver = session.connection().connection.driver_connection
    assert driver is not None  # a checked-out connection
    with driver.cursor(binary=True) as cursor:
        rows: list[tuple[Any, ...]] = cursor.execute(query, params).fetchall()
    return rows


def reconcile_settings(settings: Settings) -> ReconcileSettings:
    return ReconcileSettings(
        token_rel_tolerance=settings.tolerance_relative,
        token_abs_tolerance=settings.tolerance_tokens,
        money_rel_tolerance=settings.tolerance_relative,
        money_abs_tolerance=settings.tolerance_usd,
    )


# ---------------------------------------------------------------- logged side

_SCOPE = "provider, account, api_key_id, response_model, request_model, service_tier, input_band"
# The reconciler's token categories from the rollups' columns, in the order of PRICE_TYPES: the tokens of the
# requests that may be billed, those of failed ones (429, 5xx; their cache writes counted as 5-minute ones) left
# out. The failed requests' prompt tokens are read apart (`failed_prompt`).
_CATEGORY_OF_COLUMNS = {
    "uncached_input": "GREATEST(input_tokens - cache_read_input_tokens - cache_creation_input_tokens"
    " - (failed_input_tokens - failed_cache_read_input_tokens - failed_cache_creation_input_tokens), 0)",
    "cached_input": "cache_read_input_tokens - failed_cache_read_input_tokens",
    "cache_write_5m": "GREATEST(cache_creation_input_tokens - cache_creation_1h_input_tokens"
    " - failed_cache_creation_input_tokens, 0)",
    "cache_write_1h": "cache_creation_1h_input_tokens",
    "output": "output_tokens - failed_output_tokens",
}
# Logged usage per scope and day: the daily rollup's rows (its key is tenant, day and scope).
_LOGGED_SQL = f"""
SELECT day, {_SCOPE},
       requests, status_2xx AS ok, status_429 AS e429, status_5xx AS e5xx, status_4xx AS e4xx,
       {", ".join(f"{expression} AS {category}" for category, expression in _CATEGORY_OF_COLUMNS.items())},
       reasoning_tokens AS reasoning,
       system_prompt_tokens, system_prompt_requests, streamed, streamed_missing_finish,
       finish_stop AS stop, finish_length AS length, finish_tool_calls AS tool_calls,
       finish_content_filter AS content_filter, finish_other AS other, finish_missing AS missing,
       truncated_below_max AS truncated, truncated_min_output AS truncated_min,
       truncated_max_output AS truncated_max, reported_cost, reported_cost_requests,
       failed_input_tokens AS failed_prompt
FROM usage_daily
WHERE tenant_id = %(tenant)s AND day >= %(first_day)s AND day < %(end_day)s
"""
_TOKEN_COLUMNS = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation_1h_input_tokens",
    "output_tokens",
    "failed_input_tokens",
    "failed_cache_read_input_tokens",
    "failed_cache_creation_input_tokens",
    "failed_output_tokens",
)
# The token quantities of models whose price changes within a day, per scope, day and price segment
# (`first_hour`: the segment's first hour, at which its usage is priced), from the hourly rollup. One index
# lookup per provider and hour: OFFSET 0 keeps the lateral subquery a parameterized scan of the primary key
# (tenant, hour, provider, …), where the planner, misled by the model filter's estimate, would otherwise hash
# the tenant's whole hourly rollup (about twice as slow for a month of 200 busy scopes).
_SEGMENT_SQL = f"""
SELECT segment.first_hour, {_SCOPE},
       {", ".join(f"sum({expression})::bigint AS {category}" for category, expression in _CATEGORY_OF_COLUMNS.items())}
FROM unnest(CAST(%(segment_providers)s AS text[]), CAST(%(segment_hours)s AS timestamptz[]),
            CAST(%(segment_first_hours)s AS timestamptz[])) AS segment(provider, hour, first_hour)
CROSS JOIN LATERAL (
    SELECT {_SCOPE.removeprefix("provider, ")}, {", ".join(_TOKEN_COLUMNS)} FROM usage_hourly AS hourly
    WHERE hourly.tenant_id = %(tenant)s AND hourly.hour = segment.hour AND hourly.provider = segment.provider
      AND (segment.provider || '|' || hourly.response_model = ANY(%(hourly)s)
           OR segment.provider || '|' || hourly.request_model = ANY(%(hourly)s))
    OFFSET 0
) AS hourly
GROUP BY segment.first_hour, {_SCOPE}
"""
_CATEGORIES = tuple(PRICE_TYPES)
_ZERO = Decimal(0)
_COUNTS = (
    "requests",
    "ok",
    "e429",
    "e5xx",
    "e4xx",
    "reasoning",
    "system_prompt_tokens",
    "system_prompt_requests",
    "streamed",
    "streamed_missing_finish",
    "truncated",
    "reported_cost_requests",
    "failed_prompt",
)
_FINISHES = ("stop", "length", "tool_calls", "content_filter", "other", "missing")


_PricedAs = tuple[str, str | None, str, str, str, int]
"""A rollup scope as `_Prices` prices it: provider, account (None unless prices depend on it), served and
requested model as spelled, tier, input band."""


class _Prices:
    """Per-token prices of the catalog, looked up once per (model, type, tier, band, moment)."""

    def __init__(self, catalog: PriceCatalog) -> None:
        self._catalog = catalog
        self._memo: dict[tuple[Any, ...], Decimal | None] = {}
        self._pairs: dict[tuple[Any, ...], tuple[tuple[Decimal | None, Decimal | None], ...]] = {}
        self._pairs_since: dict[tuple[Any, ...], tuple[tuple[Decimal | None, Decimal | None], ...]] = {}

    def per_token(
        self, provider: str, account: str | None, model: str, category: str, tier: str, band: int, at: datetime
    ) -> Decimal | None:
        key = (provider, account, model, category, tier, band, at)
        if key not in self._memo:
            row = self._catalog.unit_price(
                pricing_provider_of(provider, model),
                model,
                PRICE_TYPES[category],
                at=at,
                service_tier=tier or "standard",
                input_band=band,
                billed_by=provider,
                account=account,
            )
            self._memo[key] = None if row is None else row.price_per_token()
        return self._memo[key]

    def served_and_requested(self, scope: _PricedAs, at: datetime) -> tuple[tuple[Decimal | None, Decimal | None], ...]:
        """Per category (in `_CATEGORIES` order): the per-token price at the served and at the requested
        model of `scope` (provider, account or None, served, requested, tier, band), at `at`. Looked up once
        per span in which neither model's prices change (a month of days, mostly)."""
        key = (*scope, at)
        pairs = self._pairs.get(key)
        if pairs is None:
            provider, account, served_model, requested_model, tier, band = scope
            catalog = self._catalog
            served_since = catalog.unchanged_since(pricing_provider_of(provider, served_model), served_model, at)
            requested_since = catalog.unchanged_since(
                pricing_provider_of(provider, requested_model), requested_model, at
            )
            span = None if served_since is None or requested_since is None else (*scope, served_since, requested_since)
            pairs = self._pairs_since.get(span) if span is not None else None
            if pairs is not None:
                self._pairs[key] = pairs
                return pairs
            pairs = self._pairs[key] = tuple(
                (
                    served := self.per_token(provider, account, served_model, category, tier, band, at),
                    served
                    if requested_model == served_model
                    else self.per_token(provider, account, requested_model, category, tier, band, at),
                )
                for category in _CATEGORIES
            )
            if span is not None:
                self._pairs_since[span] = pairs
        return pairs


_MODELS_USED = text(
    "SELECT DISTINCT provider, response_model, request_model FROM usage_daily "
    "WHERE tenant_id = :tenant AND day >= :first_day AND day < :end_day"
)


HourlyModels = dict[tuple[str, str], frozenset[date]]
"""(provider, model) → the days of the window within which the model's price changes (time-of-day prices, or a
price change that does not start at midnight): its usage on those days is priced per price segment."""


def _hourly_models(session: Session, tenant_id: int, window: Period, catalog: PriceCatalog) -> HourlyModels:
    """The models used in the window whose price changes within some of its days, with those days."""
    names = session.execute(
        _MODELS_USED, {"tenant": tenant_id, "first_day": window.start.date(), "end_day": window.end.date()}
    ).all()
    models = {(provider, model) for provider, served, requested in names for model in (served, requested)}
    starts = {day: day_start(day) for day in window.days()}
    one_day = timedelta(days=1)

    def varying_days(provider: str, model: str) -> frozenset[date]:
        pricing = pricing_provider_of(provider, model)
        if catalog.constant_during(pricing, model, window.start, window.end):
            return frozenset()  # the same prices all along (most models): constant within every day, too
        return frozenset(
            day for day, start in starts.items() if not catalog.constant_during(pricing, model, start, start + one_day)
        )

    varying = {model: varying_days(*model) for model in sorted(models)}
    return {model: days for model, days in varying.items() if days}


def _segment_days(hourly: HourlyModels) -> dict[str, frozenset[date]]:
    """Per provider, the days its hourly-priced models' usage is summed per price segment: every day on which
    one of them changes price (the segment query sums all of them for a provider's hour)."""
    days: dict[str, frozenset[date]] = {}
    for (provider, _), varying in hourly.items():
        days[provider] = days.get(provider, frozenset()) | varying
    return days


def _segments(hourly: HourlyModels, window: Period, catalog: PriceCatalog) -> dict[str, list[Any]]:
    """Every hour of the segment days (`_segment_days`) mapped to its price segment, per provider of the
    hourly-priced models: the array parameters of _SEGMENT_SQL."""
    providers: list[str] = []
    hours: list[datetime] = []
    first_hours: list[datetime] = []
    for provider, days in sorted(_segment_days(hourly).items()):
        models = [(pricing_provider_of(provider, model), model) for named, model in hourly if named == provider]
        for hour, first_hour in catalog.price_segments(models, window.start, window.end).items():
            if hour.date() in days:
                providers.append(provider)
                hours.append(hour)
                first_hours.append(first_hour)
    return {"segment_providers": providers, "segment_hours": hours, "segment_first_hours": first_hours}


@dataclass(slots=True)
class _LoggedAccumulator:
    """Sums for one LoggedDay while its rows (hours, bands, raw model spellings) are folded in."""

    measures: Sequence[int] = ()
    """The `_MEASURES` of its rows, summed."""
    costs: dict[str, Decimal | None] = field(default_factory=lambda: dict.fromkeys(_CATEGORIES, _ZERO))
    """Per category, in category order: None once some of its usage is unpriced."""
    all_priced: bool = True
    """No None in `costs`."""
    prices: dict[str, Decimal | None] = field(default_factory=dict)
    requested_cost: Decimal | None = Decimal(0)
    reported_cost: Decimal = Decimal(0)
    truncated_min: int | None = None
    truncated_max: int | None = None


def load_logged_days(session: Session, tenant_id: int, window: Period, catalog: PriceCatalog) -> list[LoggedDay]:
    """Logged usage per scope × UTC day from the daily rollup, priced with the catalog in effect when it was
    used: per day, or per price segment on the days a model's price changes within the day."""
    hourly = _hourly_models(session, tenant_id, window, catalog)
    segment_rows = _segment_sums(session, tenant_id, window, catalog, hourly)
    return _logged_days(session, tenant_id, window, catalog, hourly, lambda: segment_rows)


def _segment_sums(
    session: Session, tenant_id: int, window: Period, catalog: PriceCatalog, hourly: HourlyModels
) -> list[Any]:
    """Rows of _SEGMENT_SQL for the hourly-priced models (none when there are none)."""
    if not hourly:
        return []
    session.execute(_AGGREGATE_IN_MEMORY)
    session.execute(_NO_JIT)  # its estimated cost calls for JIT, whose compiling costs more
    # Estimating one hourly row per lookup, the planner would sort the rows to group them: hashing them takes
    # half as long (text keys sort by collation).
    session.execute(_HASH_GROUPS)
    segments = {
        "tenant": tenant_id,
        "hourly": sorted(f"{provider}|{model}" for provider, model in hourly),  # the models, not the days
        **_segments(hourly, window, catalog),
    }
    rows = read_rows(session, _SEGMENT_SQL, segments)
    session.execute(_SORT_GROUPS)
    return rows


def _logged_days(
    session: Session,
    tenant_id: int,
    window: Period,
    catalog: PriceCatalog,
    hourly: HourlyModels,
    segment_rows: Callable[[], list[Any]],
) -> list[LoggedDay]:
    """The daily rollup's rows folded into LoggedDays, then the cost of the hourly-priced models' price
    segments (`segment_rows`, asked for only once the daily rows are folded: they may still be loading)."""
    segment_days = _segment_days(hourly)
    no_days: frozenset[date] = frozenset()
    session.execute(_AGGREGATE_IN_MEMORY)  # aggregate in memory, not on disk
    days = {"tenant": tenant_id, "first_day": window.start.date(), "end_day": window.end.date()}
    prices = _Prices(catalog)
    day_starts: dict[date, datetime] = {}
    groups: dict[tuple[Any, ...], _LoggedAccumulator] = {}
    # A rollup scope (provider, account, key, served and requested model as spelled, tier, input band) → its
    # LoggedDay scope (names normalized), the days its usage is priced per price segment, its scope in _Prices.
    scopes: dict[tuple[Any, ...], tuple[tuple[str, ...], frozenset[date], _PricedAs]] = {}
    by_account = catalog.has_account_prices()  # else prices do not depend on the account: fewer lookups

    def scope_of(raw: tuple[Any, ...]) -> tuple[tuple[str, ...], frozenset[date], _PricedAs]:
        known = scopes.get(raw)
        if known is None:
            provider, account, key_id, served, requested, tier, band = raw
            known = scopes[raw] = (
                (
                    provider,
                    account,
                    key_id,
                    normalize_model_name(provider, served),
                    normalize_model_name(provider, requested),
                    tier or "standard",
                ),
                segment_days.get(provider, no_days)
                if (provider, served) in hourly or (provider, requested) in hourly
                else no_days,
                (provider, account if by_account else None, served, requested, tier, band),
            )
        return known

    def group_of(day: date, scope: tuple[str, ...]) -> _LoggedAccumulator:
        key = (day, *scope)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _LoggedAccumulator()
        return group

    for row in read_rows(session, _LOGGED_SQL, days):
        day = row[0]
        scope, by_segment, priced_as = scope_of(row[1:8])
        group = group_of(day, scope)
        _fold_measures(group, row)
        if day not in by_segment:
            moment = day_starts.get(day) or day_starts.setdefault(day, day_start(day))
            _fold_costs(group, _QUANTITIES(row), prices.served_and_requested(priced_as, moment))
    # In time order (the query hashes its groups): a day's unit prices are those of its first price segment.
    for row in sorted(segment_rows(), key=_SEGMENT_KEY):
        first_hour = row[0]
        scope, _, priced_as = scope_of(row[1:8])
        group = group_of(first_hour.astimezone(UTC).date(), scope)
        _fold_costs(group, row[8:], prices.served_and_requested(priced_as, first_hour))
    return [_logged_day(key, group) for key, group in groups.items()]


# Positions in a row of _LOGGED_SQL, and what each LoggedDay sums (`_MEASURES`: counts, finish reasons,
# token categories).
_COUNT_AT = {name: 8 + offset for offset, name in enumerate(("requests", "ok", "e429", "e5xx", "e4xx"))}
_CATEGORY_AT = {name: 13 + offset for offset, name in enumerate(_CATEGORIES)}
_COUNT_AT |= {
    name: 18 + offset
    for offset, name in enumerate(
        ("reasoning", "system_prompt_tokens", "system_prompt_requests", "streamed", "streamed_missing_finish")
    )
}
_FINISH_AT = {name: 23 + offset for offset, name in enumerate(_FINISHES)}
_TRUNCATED, _TRUNCATED_MIN, _TRUNCATED_MAX, _REPORTED_COST, _REPORTED_REQUESTS = 29, 30, 31, 32, 33
_COUNT_AT |= {"truncated": _TRUNCATED, "reported_cost_requests": _REPORTED_REQUESTS, "failed_prompt": 34}
_MEASURE_AT = {**{name: _COUNT_AT[name] for name in _COUNTS}, **_FINISH_AT, **_CATEGORY_AT}
# `_logged_day` unpacks the measures by position, in this order.
assert tuple(_MEASURE_AT) == (*_COUNTS, *_FINISHES, *_CATEGORIES)
_MEASURES = itemgetter(*_MEASURE_AT.values())
_QUANTITIES = itemgetter(*_CATEGORY_AT.values())
_SEGMENT_KEY = itemgetter(*range(8))  # a row of _SEGMENT_SQL: its segment's first hour, then its scope
_NO_MEASURES = (0,) * len(_MEASURE_AT)
_IN_CATEGORY_ORDER = frozenset(
    tuple(compress(_CATEGORIES, chosen)) for chosen in product((False, True), repeat=len(_CATEGORIES))
)
"""Every subset of the categories, in category order."""
_NOT_TRUNCATED = TruncationStats()


def _fold_measures(group: _LoggedAccumulator, row: Any) -> None:
    """Add a row's counts, finish reasons and tokens (NOT NULL bigint columns: ints) to the group's."""
    values = _MEASURES(row)
    group.measures = list(map(add, group.measures, values)) if group.measures else values
    if row[_REPORTED_REQUESTS]:
        group.reported_cost += row[_REPORTED_COST]
    if row[_TRUNCATED]:
        low, high = row[_TRUNCATED_MIN], row[_TRUNCATED_MAX]
        group.truncated_min = low if group.truncated_min is None else min(group.truncated_min, low)
        group.truncated_max = high if group.truncated_max is None else max(group.truncated_max, high)


def _fold_costs(
    group: _LoggedAccumulator,
    quantities: Sequence[int],
    pairs: tuple[tuple[Decimal | None, Decimal | None], ...],
) -> None:
    """Add the cost of `quantities` (per category, in `_CATEGORIES` order) at the served and at the requested
    model's per-token prices (`pairs`, per category: `_Prices.served_and_requested`)."""
    known = group.prices
    if len(known) < len(_CATEGORIES):  # mostly the first fold: the categories priced so far
        for category, (served, _) in zip(_CATEGORIES, pairs, strict=True):
            if served is not None and category not in known:
                known[category] = served
    costs = group.costs
    requested_cost = group.requested_cost
    for category, quantity, (served, requested) in zip(_CATEGORIES, quantities, pairs, strict=True):
        if not quantity:
            continue
        if served is None:
            costs[category] = None
            group.all_priced = False
            at_served = None
        else:
            at_served = quantity * served
            cost = costs[category]
            if cost is not None:
                costs[category] = cost + at_served
        if requested_cost is not None:
            if requested is None:
                requested_cost = None
            elif requested is served and at_served is not None:  # mostly: the served model was requested
                requested_cost += at_served
            else:
                requested_cost += quantity * requested
    group.requested_cost = requested_cost


def _logged_day(key: tuple[Any, ...], group: _LoggedAccumulator) -> LoggedDay:
    """The LoggedDay of a folded group (checked by `reconcile()`, as every input row)."""
    day, provider, account, api_key_id, model, request_model, service_tier = key
    costs = group.costs
    (
        requests, ok, e429, e5xx, e4xx, reasoning, system_prompt_tokens, system_prompt_requests, streamed,
        streamed_missing_finish, truncated, reported_cost_requests, failed_prompt,
        stop, length, tool_calls, content_filter, other, missing,
        uncached_input, cached_input, cache_write_5m, cache_write_1h, output,
    ) = group.measures or _NO_MEASURES  # none: only price-segment rows, read later  # fmt: skip
    # In category order, as `costs` is; a later fold may price a category an earlier one could not.
    priced = costs if group.all_priced else {category: cost for category, cost in costs.items() if cost is not None}
    prices = group.prices
    if tuple(prices) not in _IN_CATEGORY_ORDER:
        prices = {c: prices[c] for c in _CATEGORIES if c in prices}
    return LoggedDay(
        provider=provider,
        account=account,
        api_key_id=api_key_id,
        model=model,
        request_model=request_model,
        service_tier=service_tier,
        day=day,
        requests=requests,
        successful_requests=ok,
        errors_429=e429,
        errors_5xx=e5xx,
        errors_4xx=e4xx,
        tokens=TokenCounts(
            uncached_input=uncached_input,
            cached_input=cached_input,
            cache_write_5m=cache_write_5m,
            cache_write_1h=cache_write_1h,
            output=output,
        ),
        reasoning_tokens=reasoning,
        system_prompt_tokens=system_prompt_tokens,
        requests_with_system_prompt=system_prompt_requests,
        failed_prompt_tokens=failed_prompt,
        streamed_requests=streamed,
        streamed_missing_finish=streamed_missing_finish,
        finish=FinishCounts(
            stop=stop,
            length=length,
            tool_calls=tool_calls,
            content_filter=content_filter,
            other=other,
            missing=missing,
        ),
        truncation=TruncationStats(
            count=truncated, min_output=group.truncated_min or 0, max_output=group.truncated_max or 0
        )
        if truncated
        else _NOT_TRUNCATED,
        expected_cost=sum(cast(dict[str, Decimal], priced).values(), _ZERO) if group.all_priced else None,
        expected_cost_by_category=MappingProxyType(priced),
        expected_unit_price=MappingProxyType(prices),
        expected_cost_at_requested_model=group.requested_cost,
        reported_cost=group.reported_cost if reported_cost_requests else None,
    )


# ---------------------------------------------------------------- billed side


_BILLED_TYPES = (*CATEGORY_OF_USAGE_TYPE, "requests", "web_search")


def _per_type(column: str) -> str:
    return ", ".join(f"sum({column}) FILTER (WHERE usage_type = '{kind}')" for kind in CATEGORY_OF_USAGE_TYPE)


# Statement lines summed per scope × UTC day, one column per category (NULL: the statement states none).
_BILLED_SQL = f"""
SELECT provider, account, api_key_id, model, service_tier, (period_start AT TIME ZONE 'UTC')::date AS day,
       {_per_type("quantity")}, {_per_type("amount")},
       sum(quantity) FILTER (WHERE usage_type = 'requests') AS requests, sum(amount) AS total,
       min(currency) FILTER (WHERE amount IS NOT NULL) AS currency, bool_and(final) AS final,
       string_agg(source, '+') AS sources  -- repeats dropped in Python: DISTINCT would rule out hashing
FROM statement_lines
WHERE tenant_id = %(tenant)s AND period_start >= %(start)s AND period_start < %(end)s
  AND usage_type IN ({", ".join(f"'{usage_type}'" for usage_type in _BILLED_TYPES)})
GROUP BY 1, 2, 3, 4, 5, 6
"""


def _billed_rows(session: Session, tenant_id: int, period: Period) -> list[Any]:
    """Statement lines summed per scope × UTC day in SQL (rows of _BILLED_SQL, for `billed_days`). Lines
    without a usage quantity or amount the reconciler compares (credits, `other`) stay in the drift report."""
    session.execute(_AGGREGATE_IN_MEMORY)  # aggregate in memory, not on disk
    return read_rows(session, _BILLED_SQL, {"tenant": tenant_id, "start": period.start, "end": period.end})


def billed_days(rows: Iterable[tuple[Any, ...]]) -> list[BilledDay]:
    """Rows of _BILLED_SQL as BilledDays; statement tiers that mean the same (`default`, `auto`) merge."""
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        key = row[:6]  # provider, account, key, model, tier, day
        raw_tier = key[4]
        if raw_tier is not None:
            provider, account, key_id, model, _, day = key
            key = (provider, account, key_id, model, STATEMENT_TIERS.get(raw_tier, raw_tier) if raw_tier else None, day)
        merged = groups.get(key)
        if merged is None:
            groups[key] = [row]
        else:
            merged.append(row)
    return [_billed_day(key, merged) for key, merged in groups.items()]


_CATEGORY_COUNT = len(CATEGORY_OF_USAGE_TYPE)
_QUANTITY_AT = slice(6, 6 + _CATEGORY_COUNT)
_AMOUNT_AT = slice(6 + _CATEGORY_COUNT, 6 + 2 * _CATEGORY_COUNT)
_REST_AT = slice(6 + 2 * _CATEGORY_COUNT, None)  # requests, total, currency, final, sources
_is_finite = Decimal.is_finite


def _billed_day(key: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> BilledDay:
    """The BilledDay of one scope and day from its rows (one, unless tiers merged). Checked here when its sums
    are not plainly what BilledDay accepts (`reconcile()` checks every one again), so that a negative
    quantity (a correction line larger than the usage, say), a NaN amount or a currency that is no ISO code stops
    the run with the statement scope and field named."""
    provider, account, key_id, model, tier, day = key
    quantities: dict[str, int]
    amounts: dict[str, Decimal]
    requests: int | None
    total: Decimal | None
    currency: str | None
    final: bool
    if len(rows) == 1:  # mostly: one statement tier per scope and day
        (row,) = rows
        quantities = {c: int(q) for c, q in zip(_CATEGORIES, row[_QUANTITY_AT], strict=True) if q is not None}
        values = row[_AMOUNT_AT]  # amounts added to zero, as merged rows' are
        amounts = (
            {}
            if values == _NOT_GIVEN
            else {c: _ZERO + a for c, a in zip(_CATEGORIES, values, strict=True) if a is not None}
        )
        row_requests, total, currency, final, row_sources = row[_REST_AT]
        requests = None if row_requests is None else int(row_requests)
        source = _source_label(row_sources)
    else:
        quantities, amounts, sources = {}, {}, []
        requests, total, currency, final = None, None, None, True
        for row in rows:
            for category, quantity in zip(_CATEGORIES, row[_QUANTITY_AT], strict=True):
                if quantity is not None:
                    quantities[category] = quantities.get(category, 0) + int(quantity)
            for category, amount in zip(_CATEGORIES, row[_AMOUNT_AT], strict=True):
                if amount is not None:
                    amounts[category] = amounts.get(category, _ZERO) + amount
            row_requests, row_total, row_currency, row_final, row_sources = row[_REST_AT]
            requests = sum_present(requests, None if row_requests is None else int(row_requests))
            total = sum_present(total, row_total)
            currency = currency or row_currency
            final = final and row_final
            sources.append(row_sources)
        # In category order again: the rows may state different categories.
        quantities = {category: quantities[category] for category in _CATEGORIES if category in quantities}
        amounts = {category: amounts[category] for category in _CATEGORIES if category in amounts}
        source = _source_label("+".join(sources))
    currency = (currency or "USD").upper()
    plain = (
        min(quantities.values(), default=0) >= 0
        and (requests is None or requests >= 0)
        and all(map(_is_finite, amounts.values()))
        and (total is None or total.is_finite())
        and len(currency) == 3
        and currency.isalpha()
    )
    billed = BilledDay(
        provider=provider,
        account=account,
        api_key_id=key_id,
        model=model,
        service_tier=tier,
        day=day,
        quantities=MappingProxyType(quantities),
        requests=requests,
        amounts=MappingProxyType(amounts),
        total_amount=total,
        currency=currency,
        final=final,
        source=source,
    )
    return billed if plain else billed.checked()


_NOT_GIVEN = (None,) * len(_CATEGORIES)
"""A row's per-category columns where the statement states none of them (amounts, mostly)."""


@lru_cache(maxsize=1024)
def _source_label(sources: str) -> str:
    """The statement sources of a day's lines ("+"-joined, repeats and all) as one label: each once, sorted.
    Cached: statements have a handful of sources, and days a handful of lines."""
    return "+".join(sorted(set(sources.split("+"))))


# ---------------------------------------------------------------- running and storing


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    status: str
    counts: dict[str, int]
    error: str | None
    result: ReconcileResult | None


def run_reconciliation(
    sessions: sessionmaker[Session],
    *,
    tenant_id: int,
    period: Period,
    settings: Settings,
    now: datetime,
    trigger: str = "manual",
) -> RunOutcome:
    """Reconcile and store the results in one transaction; the run row is committed either way. It finishes at
    `now` plus the time the run took (measured on the monotonic clock: `now` is when it started)."""
    began = time.monotonic()

    def finished_at() -> datetime:
        return now + timedelta(seconds=time.monotonic() - began)

    with sessions.begin() as session:
        run = ReconciliationRun(
            tenant_id=tenant_id,
            period_start=period.start,
            period_end=period.end,
            trigger=trigger,
            started_at=now,
            status="running",
            counts={},
        )
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        with sessions.begin() as session, _collector_paused():
            _wait_for_other_runs(session, tenant_id, period)
            result = reconcile_period(session, tenant_id=tenant_id, period=period, settings=settings)
            counts = store_results(session, tenant_id=tenant_id, period=period, result=result, run_id=run_id, now=now)
            finished = session.get(ReconciliationRun, (tenant_id, run_id))
            assert finished is not None
            finished.status, finished.finished_at, finished.counts = "succeeded", finished_at(), counts
        return RunOutcome(run_id, "succeeded", counts, None, result)
    except Exception as error:
        log.exception("reconciliation of %s for tenant %s failed", period.label, tenant_id)
        message = failure_message(error)
        with sessions.begin() as session:
            failed = session.get(ReconciliationRun, (tenant_id, run_id))
            assert failed is not None
            failed.status, failed.finished_at, failed.error = "failed", finished_at(), message[:2000]
            _queue_run_failure_alert(session, tenant_id, failed, now)
        return RunOutcome(run_id, "failed", {}, message, None)


def _wait_for_other_runs(session: Session, tenant_id: int, period: Period) -> None:
    """Runs of one tenant's period take turns (a transaction-scoped advisory lock): two at once, from the API,
    the CLI and the scheduler, would each replace the period's drift rows and collide. The second one waits,
    then reconciles what is there by then."""
    take_turns(session, "reconcile", tenant_id, period.start.isoformat(), period.end.isoformat())


def failure_message(error: Exception) -> str:
    """What a failed run records and shows: the error's own words; for a database error, the server's message
    without the statement and its parameters (a page of SQL, and the tenant's figures, belong in the log)."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        return f"{type(error.orig).__name__}: {str(error.orig).strip()}"
    return f"{type(error).__name__}: {error}"


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a run. A run builds some 10^5 small objects that all live
    until it ends, and the collector would scan them over and over: about a quarter of a run's time for a
    month of 1M events. Nothing of it is garbage before the end; normal collection resumes after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def reconcile_period(session: Session, *, tenant_id: int, period: Period, settings: Settings) -> ReconcileResult:
    """Load both sides and run the detection core (no writes). The price segments' sums and the statement
    lines are read on a second connection while this one reads and folds the daily rollup: each read sees
    the data committed when it starts, as separate statements of one READ COMMITTED transaction would."""
    catalog = load_catalog(session, tenant_id)
    history_window = Period(period.start - timedelta(days=HISTORY_DAYS), period.end)
    hourly = _hourly_models(session, tenant_id, history_window, catalog)
    with _side_reader(session) as side:
        segment_rows = side.submit(_segment_sums, tenant_id, history_window, catalog, hourly)
        billed_rows = side.submit(_billed_rows, tenant_id, period)
        logged_all = _logged_days(session, tenant_id, history_window, catalog, hourly, segment_rows.result)
        billed = billed_days(billed_rows.result())
    first_day = period.start.date()
    logged = [row for row in logged_all if row.day >= first_day]
    history = [row for row in logged_all if row.day < first_day]
    tolerances = reconcile_settings(settings)
    billed, probable = _resolve_labels(billed, logged, catalog, tolerances)
    result = reconcile(logged, billed, period=period, settings=tolerances, history=history)
    if not probable:
        return result
    notes: dict[tuple[str, str | None, str | None], str] = {
        (alias.provider, alias.account, alias.model): alias.note for alias in probable
    }
    drift = tuple(
        replace(row, note=note) if (note := notes.get((row.provider, row.account, row.model))) else row
        for row in result.drift
    )
    return replace(result, drift=drift)


def _resolve_labels(
    billed: list[BilledDay], logged: list[LoggedDay], catalog: PriceCatalog, tolerances: ReconcileSettings
) -> tuple[list[BilledDay], list[ProbableAlias]]:
    """Billed days with the tenant's aliases applied, and unmatched labels that are probably a logged model
    compared as that model (`ledger.pricing.model_aliases`)."""
    billed = apply_aliases(billed, catalog.aliases)
    logged_models = {(row.provider, model) for row in logged for model in (row.model, row.request_model)}
    unmatched = {
        (day.provider, day.model)
        for day in billed
        if day.model is not None
        and (day.provider, day.model) not in logged_models
        and catalog.resolve(pricing_provider_of(day.provider, day.model), day.model) is None
    }
    if not unmatched:
        return billed, []
    probable = probable_aliases(logged, billed, unmatched, tolerances)
    return with_probable_aliases(billed, probable), probable


class _SideReader:
    """Runs reads, in order, in a session of their own on a background thread, so the server answers them
    while this thread works; `submit` returns a future of `read(side_session, *args)`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenledger-reconcile-reader")
        self._session: Session | None = None

    def submit(self, read: Callable[..., T], *args: Any) -> Future[T]:
        return self._executor.submit(self._read, read, *args)

    def _read(self, read: Callable[..., T], *args: Any) -> T:
        if self._session is None:
            self._session = Session(self._engine)
        return read(self._session, *args)

    def close(self) -> None:
        def end() -> None:
            if self._session is not None:
                self._session.close()  # read only: nothing to commit

        self._executor.submit(end).result()
        self._executor.shutdown()


class _InlineReader:
    """The same interface on the caller's own session, for a session bound to a single connection."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def submit(self, read: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(read(self._session, *args))
        except Exception as error:
            future.set_exception(error)
        return future


@contextmanager
def _side_reader(session: Session) -> Iterator[_SideReader | _InlineReader]:
    bind = session.get_bind()
    if not isinstance(bind, Engine):
        yield _InlineReader(session)
        return
    reader = _SideReader(bind)
    try:
        yield reader
    finally:
        reader.close()


def store_results(
    session: Session, *, tenant_id: int, period: Period, result: ReconcileResult, run_id: int, now: datetime
) -> dict[str, int]:
    _store_drift(session, tenant_id, period, result.drift, now)
    created = _upsert_findings(session, tenant_id, result.findings, run_id, now)
    counts = {
        "findings": len(result.findings),
        "new_findings": created,
        "updated_findings": len(result.findings) - created,
        "drift_rows": len(result.drift),
        "comparisons": len(result.comparisons),
    }
    for finding in result.findings:
        counts[f"kind:{finding.kind}"] = counts.get(f"kind:{finding.kind}", 0) + 1
    return counts


def _store_drift(session: Session, tenant_id: int, period: Period, drift: Sequence[DriftResult], now: datetime) -> None:
    session.execute(delete(DriftRow).where(DriftRow.tenant_id == tenant_id, DriftRow.period_start == period.start))
    rows = [
        {
            "tenant_id": tenant_id,
            "period_start": period.start,
            "provider": row.provider,
            "account": row.account or "",
            "model": row.model or "",
            "period_end": period.end,
            "logged_tokens": row.logged_total_tokens,
            "billed_tokens": row.billed_total_tokens,
            "logged_by_category": dict(row.logged_tokens),
            "billed_by_category": dict(row.billed_tokens),
            "expected_cost": row.expected_cost,
            "billed_cost": row.billed_cost,
            "difference": row.difference,
            "percent": row.percent,
            "note": row.note or None,
            "currency": "USD",
            "computed_at": now,
        }
        for row in per_account_and_model(drift)
    ]
    if rows:  # one statement, its parameter sets sent in one pipeline by the driver
        session.execute(insert(DriftRow), rows)


def _json_rows(rows: list[dict[str, Any]]) -> str:
    """Rows for `_from_json_rows` as one JSON array: Decimals and datetimes as strings, which PostgreSQL reads
    into the columns' numeric and timestamptz types digit for digit."""
    return json_text([{name: _json_scalar(value) for name, value in row.items()} for row in rows])


def _json_scalar(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _from_json_rows(table: Any, columns: Sequence[str]) -> str:
    """INSERT … SELECT of `columns` of `table` from the JSON array parameter `:rows` (see `_json_rows`): one
    statement text whatever the number of rows, so it is parsed once per process, not once per run."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    typed = ", ".join(f"{name} {table.c[name].type.compile(dialect=dialect)}" for name in columns)
    names = ", ".join(columns)
    return (
        f"INSERT INTO {table.name} ({names}) SELECT {names} "
        f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS row({typed})"
    )


_FINDING_COLUMNS = [column.name for column in Finding.__table__.c if column.name not in ("id", "note")]
_KEPT_ON_UPDATE = ("tenant_id", "fingerprint", "status", "first_seen")
"""Insert a finding, or update the one with its fingerprint, keeping what a person set (status, and the note,
which is not written at all) and when it was first seen."""
_UPSERT_FINDINGS = text(
    _from_json_rows(Finding.__table__, _FINDING_COLUMNS)
    + " ON CONFLICT (tenant_id, fingerprint) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _FINDING_COLUMNS if name not in _KEPT_ON_UPDATE)
)
_UPSERT_FINDINGS_RETURNING = select(Finding).from_statement(text(_UPSERT_FINDINGS.text + " RETURNING findings.*"))
"""The same, returning the stored findings (for their alerts)."""

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def _upsert_findings(
    session: Session, tenant_id: int, findings: Sequence[FindingResult], run_id: int, now: datetime
) -> int:
    """Insert new findings and update those with the same fingerprint (keeping the status a person gave
    them), in one statement. Queues an alert for each that is new or worse than before. Returns how many
    were new."""
    if not findings:
        return 0
    fingerprints = [finding.fingerprint for finding in findings]
    previous = {
        row.fingerprint: row
        for row in session.execute(
            select(Finding.fingerprint, Finding.severity, Finding.impact_usd).where(
                Finding.tenant_id == tenant_id, Finding.fingerprint.in_(fingerprints)
            )
        )
    }
    values = [
        {
            "tenant_id": tenant_id,
            "fingerprint": finding.fingerprint,
            "status": "open",
            "first_seen": now,
            "kind": finding.kind,
            "severity": finding.severity,
            "provider": finding.provider,
            "account": finding.account,
            "api_key_id": finding.api_key_id,
            "model": finding.model,
            "period_start": finding.period_start,
            "period_end": finding.period_end,
            "impact_usd": finding.impact_usd,
            "evidence": dict(finding.evidence),
            "summary": finding.summary,
            "last_seen": now,
            "last_run_id": run_id,
        }
        for finding in findings
    ]
    rows = {"rows": _json_rows(values)}
    channels = enabled_channels(session, tenant_id)
    if not channels:
        session.execute(_UPSERT_FINDINGS, rows)
    else:
        stored = {finding.fingerprint: finding for finding in session.scalars(_UPSERT_FINDINGS_RETURNING, rows)}
        for fingerprint in fingerprints:
            _queue_finding_alert(session, tenant_id, stored[fingerprint], previous.get(fingerprint), now, channels)
    return sum(fingerprint not in previous for fingerprint in fingerprints)


def _queue_finding_alert(
    session: Session, tenant_id: int, finding: Finding, previous: Any, now: datetime, channels: list[AlertChannel]
) -> None:
    queue_finding_alert(
        session,
        tenant_id=tenant_id,
        finding=finding,
        previous_severity=None if previous is None else previous.severity,
        previous_impact=None if previous is None else previous.impact_usd,
        now=now,
        channels=channels,
    )


def _queue_run_failure_alert(session: Session, tenant_id: int, run: ReconciliationRun, now: datetime) -> None:
    queue_run_failure_alert(session, tenant_id=tenant_id, run=run, now=now)
