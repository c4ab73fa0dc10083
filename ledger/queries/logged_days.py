"""The logged side of a run: the daily rollup's rows (and, where a model's price changes within a day, the
hourly rollup's per price segment) read in SQL, folded by column name into LoggedDays and priced with the
catalog in effect when the usage happened (on every run, so history is re-priced)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import add, itemgetter
from types import MappingProxyType
from typing import Any, cast

import msgspec
from sqlalchemy.orm import Session

from ledger.events.schema import MEASURE_NAMES
from ledger.periods import Period, day_start
from ledger.pricing.model_names import normalize_model_name
from ledger.pricing.prices import PriceCatalog
from ledger.queries.logged_prices import (
    CATEGORIES,
    HourlyModels,
    PricedAs,
    PricePairs,
    UnitPrices,
    hourly_models,
    segment_days,
    segments,
)
from ledger.queries.reading import (
    AGGREGATE_IN_MEMORY,
    HASH_GROUPS,
    NO_JIT,
    SORT_GROUPS,
    column_positions,
    read_rows,
)
from ledger.reconcile.model import FinishCounts, LoggedDay, TokenCounts, TruncationStats
from ledger.vocabulary import TOKEN_CATEGORIES, TokenCategory

SCOPE_COLUMNS = ("provider", "account", "api_key_id", "response_model", "request_model", "service_tier", "input_band")
"""A rollup row's scope, as the loader keys on it."""

TOKENS_OF_CATEGORY: dict[str, str] = {
    TokenCategory.UNCACHED_INPUT: "GREATEST(input_tokens - cache_read_input_tokens - cache_creation_input_tokens"
    " - (failed_input_tokens - failed_cache_read_input_tokens - failed_cache_creation_input_tokens), 0)",
    TokenCategory.CACHED_INPUT: "cache_read_input_tokens - failed_cache_read_input_tokens",
    TokenCategory.CACHE_WRITE_5M: "GREATEST(cache_creation_input_tokens - cache_creation_1h_input_tokens"
    " - failed_cache_creation_input_tokens, 0)",
    TokenCategory.CACHE_WRITE_1H: "cache_creation_1h_input_tokens",
    TokenCategory.OUTPUT: "output_tokens - failed_output_tokens",
}
"""The reconciler's token categories from the rollups' columns: the tokens of the requests that may be billed,
those of failed ones (429, 5xx; their cache writes counted as 5-minute ones) left out. The failed requests'
prompt tokens are read apart (`failed_prompt_tokens`)."""
assert tuple(TOKENS_OF_CATEGORY) == TOKEN_CATEGORIES

_LOGGED_DAY_FIELDS = frozenset(spec.name for spec in msgspec.structs.fields(LoggedDay))
COUNTS: dict[str, str] = {
    "requests": "requests",
    "successful_requests": "status_2xx",
    "errors_429": "status_429",
    "errors_5xx": "status_5xx",
    "errors_4xx": "status_4xx",
    "requests_with_system_prompt": "system_prompt_requests",
    "streamed_requests": "streamed",
    "streamed_missing_finish": "streamed_missing_finish",
    "failed_prompt_tokens": "failed_input_tokens",
    # Every measure of the event field list that LoggedDay takes by its name (reasoning_tokens,
    # system_prompt_tokens): a measure added to both reaches the core with no change here.
    **{name: name for name in MEASURE_NAMES if name in _LOGGED_DAY_FIELDS},
}
"""LoggedDay's counts, each a keyword of LoggedDay, from the rollup's column."""
FINISHES: dict[str, str] = {
    "stop": "finish_stop",
    "length": "finish_length",
    "tool_calls": "finish_tool_calls",
    "content_filter": "finish_content_filter",
    "other": "finish_other",
    "missing": "finish_missing",
}
"""The finish reasons, each a keyword of FinishCounts, from the rollup's column."""
assert tuple(FINISHES) == tuple(spec.name for spec in msgspec.structs.fields(FinishCounts))
_TRUNCATION = {
    "truncated": "truncated_below_max",
    "truncated_min": "truncated_min_output",
    "truncated_max": "truncated_max_output",
}
_REPORTED = {"reported_cost": "reported_cost", "reported_cost_requests": "reported_cost_requests"}
SUMMED: tuple[str, ...] = (*COUNTS, *FINISHES, *CATEGORIES, "truncated", "reported_cost_requests")
"""What a LoggedDay sums of its rows, by name: counts, finish reasons, token categories, truncated requests and
requests with a reported cost."""

LOGGED_COLUMNS: dict[str, str] = {
    "day": "day",
    **{name: name for name in SCOPE_COLUMNS},
    **COUNTS,
    **FINISHES,
    **TOKENS_OF_CATEGORY,
    **_TRUNCATION,
    **_REPORTED,
}
"""The SELECT list of the logged rows: each name (its alias) with its expression over the daily rollup."""
# Logged usage per scope and day: the daily rollup's rows (its key is tenant, day and scope).
_LOGGED_SQL = f"""
SELECT {", ".join(f"{expression} AS {name}" for name, expression in LOGGED_COLUMNS.items())}
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
"""The hourly rollup's columns TOKENS_OF_CATEGORY reads."""
SEGMENT_COLUMNS = ("first_hour", *SCOPE_COLUMNS, *CATEGORIES)
"""The SELECT list of the segment rows."""
# The token quantities of models whose price changes within a day, per scope, day and price segment
# (`first_hour`: the segment's first hour, at which its usage is priced), from the hourly rollup. One index
# lookup per provider and hour: OFFSET 0 keeps the lateral subquery a parameterized scan of the primary key
# (tenant, hour, provider, …), where the planner, misled by the model filter's estimate, would otherwise hash
# the tenant's whole hourly rollup (about twice as slow for a month of 200 busy scopes).
_SEGMENT_SQL = f"""
SELECT segment.first_hour, {", ".join(SCOPE_COLUMNS)},
       {", ".join(f"sum({TOKENS_OF_CATEGORY[category]})::bigint AS {category}" for category in CATEGORIES)}
FROM unnest(CAST(%(segment_providers)s AS text[]), CAST(%(segment_hours)s AS timestamptz[]),
            CAST(%(segment_first_hours)s AS timestamptz[])) AS segment(provider, hour, first_hour)
CROSS JOIN LATERAL (
    SELECT {", ".join(SCOPE_COLUMNS[1:])}, {", ".join(_TOKEN_COLUMNS)} FROM usage_hourly AS hourly
    WHERE hourly.tenant_id = %(tenant)s AND hourly.hour = segment.hour AND hourly.provider = segment.provider
      AND (segment.provider || '|' || hourly.response_model = ANY(%(hourly)s)
           OR segment.provider || '|' || hourly.request_model = ANY(%(hourly)s))
    OFFSET 0
) AS hourly
GROUP BY segment.first_hour, {", ".join(SCOPE_COLUMNS)}
"""

# Getters of a row's parts, by name.
_AT = column_positions(tuple(LOGGED_COLUMNS))
_DAY_AT = _AT["day"]
_SCOPE = itemgetter(*(_AT[name] for name in SCOPE_COLUMNS))
_SUMS = itemgetter(*(_AT[name] for name in SUMMED))
_QUANTITIES = itemgetter(*(_AT[name] for name in CATEGORIES))
_TRUNCATED, _TRUNCATED_MIN, _TRUNCATED_MAX = (_AT[name] for name in _TRUNCATION)
_REPORTED_COST, _REPORTED_REQUESTS = (_AT[name] for name in _REPORTED)
_SEGMENT_AT = column_positions(SEGMENT_COLUMNS)
_SEGMENT_FIRST_HOUR = _SEGMENT_AT["first_hour"]
_SEGMENT_SCOPE = itemgetter(*(_SEGMENT_AT[name] for name in SCOPE_COLUMNS))
_SEGMENT_QUANTITIES = itemgetter(*(_SEGMENT_AT[name] for name in CATEGORIES))
_SEGMENT_ORDER = itemgetter(_SEGMENT_FIRST_HOUR, *(_SEGMENT_AT[name] for name in SCOPE_COLUMNS))
_ZERO = Decimal(0)
_NO_SUMS = (0,) * len(SUMMED)
_NOT_TRUNCATED = TruncationStats()


@dataclass(slots=True)
class _LoggedAccumulator:
    """Sums for one LoggedDay while its rows (hours, bands, raw model spellings) are folded in."""

    sums: Sequence[int] = ()
    """The SUMMED of its rows, in that order."""
    costs: dict[str, Decimal | None] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, _ZERO))
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
    hourly = hourly_models(session, tenant_id, window, catalog)
    segment_rows = segment_sums(session, tenant_id, window, catalog, hourly)
    return logged_days(session, tenant_id, window, catalog, hourly, lambda: segment_rows)


def segment_sums(
    session: Session, tenant_id: int, window: Period, catalog: PriceCatalog, hourly: HourlyModels
) -> list[tuple[Any, ...]]:
    """Rows of the segment query for the hourly-priced models (none when there are none)."""
    if not hourly:
        return []
    session.execute(AGGREGATE_IN_MEMORY)
    session.execute(NO_JIT)
    # Estimating one hourly row per lookup, the planner would sort the rows to group them: hashing them takes
    # half as long (text keys sort by collation).
    session.execute(HASH_GROUPS)
    parameters = {
        "tenant": tenant_id,
        "hourly": sorted(f"{provider}|{model}" for provider, model in hourly),  # the models, not the days
        **segments(hourly, window, catalog),
    }
    rows = read_rows(session, _SEGMENT_SQL, parameters)
    session.execute(SORT_GROUPS)
    return rows


def logged_days(
    session: Session,
    tenant_id: int,
    window: Period,
    catalog: PriceCatalog,
    hourly: HourlyModels,
    segment_rows: Callable[[], list[tuple[Any, ...]]],
) -> list[LoggedDay]:
    """The daily rollup's rows folded into LoggedDays, then the cost of the hourly-priced models' price
    segments (`segment_rows`, asked for only once the daily rows are folded: they may still be loading)."""
    by_segment_days = segment_days(hourly)
    no_days: frozenset[date] = frozenset()
    session.execute(AGGREGATE_IN_MEMORY)
    days = {"tenant": tenant_id, "first_day": window.start.date(), "end_day": window.end.date()}
    prices = UnitPrices(catalog)
    day_starts: dict[date, datetime] = {}
    groups: dict[tuple[Any, ...], _LoggedAccumulator] = {}
    # A rollup scope (provider, account, key, served and requested model as spelled, tier, input band) → its
    # LoggedDay scope (names normalized), the days its usage is priced per price segment, its scope in prices.
    scopes: dict[tuple[Any, ...], tuple[tuple[str, ...], frozenset[date], PricedAs]] = {}
    by_account = catalog.has_account_prices()  # else prices do not depend on the account: fewer lookups

    def scope_of(raw: tuple[Any, ...]) -> tuple[tuple[str, ...], frozenset[date], PricedAs]:
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
                by_segment_days.get(provider, no_days)
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
        day = row[_DAY_AT]
        scope, by_segment, priced_as = scope_of(_SCOPE(row))
        group = group_of(day, scope)
        _fold_sums(group, row)
        if day not in by_segment:
            moment = day_starts.get(day) or day_starts.setdefault(day, day_start(day))
            _fold_costs(group, _QUANTITIES(row), prices.served_and_requested(priced_as, moment))
    # In time order (the query hashes its groups): a day's unit prices are those of its first price segment.
    for row in sorted(segment_rows(), key=_SEGMENT_ORDER):
        first_hour = row[_SEGMENT_FIRST_HOUR]
        scope, _, priced_as = scope_of(_SEGMENT_SCOPE(row))
        group = group_of(first_hour.astimezone(UTC).date(), scope)
        _fold_costs(group, _SEGMENT_QUANTITIES(row), prices.served_and_requested(priced_as, first_hour))
    return [_logged_day(key, group) for key, group in groups.items()]


def _fold_sums(group: _LoggedAccumulator, row: tuple[Any, ...]) -> None:
    """Add a row's counts, finish reasons and tokens (NOT NULL bigint columns: ints) to the group's."""
    values = _SUMS(row)
    group.sums = list(map(add, group.sums, values)) if group.sums else values
    if row[_REPORTED_REQUESTS]:
        group.reported_cost += row[_REPORTED_COST]
    if row[_TRUNCATED]:
        low, high = row[_TRUNCATED_MIN], row[_TRUNCATED_MAX]
        group.truncated_min = low if group.truncated_min is None else min(group.truncated_min, low)
        group.truncated_max = high if group.truncated_max is None else max(group.truncated_max, high)


def _fold_costs(group: _LoggedAccumulator, quantities: Sequence[int], pairs: PricePairs) -> None:
    """Add the cost of `quantities` (per category, in `CATEGORIES` order) at the served and at the
    requested model's per-token prices (`pairs`: `UnitPrices.served_and_requested`)."""
    known = group.prices
    if len(known) < len(CATEGORIES):  # mostly the first fold: the categories priced so far
        for category, (served, _) in zip(CATEGORIES, pairs, strict=True):
            if served is not None and category not in known:
                known[category] = served
    costs = group.costs
    requested_cost = group.requested_cost
    for category, quantity, (served, requested) in zip(CATEGORIES, quantities, pairs, strict=True):
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


# Getters of a group's sums (in SUMMED order), by name.
_SUMMED_AT = column_positions(SUMMED)
_COUNT_SUMS = itemgetter(*(_SUMMED_AT[name] for name in COUNTS))
_FINISH_SUMS = itemgetter(*(_SUMMED_AT[name] for name in FINISHES))
_TOKEN_SUMS = itemgetter(*(_SUMMED_AT[name] for name in CATEGORIES))
_TRUNCATED_SUM = _SUMMED_AT["truncated"]
_REPORTED_REQUESTS_SUM = _SUMMED_AT["reported_cost_requests"]


def _logged_day(key: tuple[Any, ...], group: _LoggedAccumulator) -> LoggedDay:
    """The LoggedDay of a folded group, its sums passed by name."""
    day, provider, account, api_key_id, model, request_model, service_tier = key
    sums = group.sums or _NO_SUMS  # none: only price-segment rows, read later
    costs = group.costs
    # In category order, as `costs` is; a later fold may price a category an earlier one could not.
    priced = costs if group.all_priced else {category: cost for category, cost in costs.items() if cost is not None}
    prices = group.prices
    truncated = sums[_TRUNCATED_SUM]
    return LoggedDay(
        provider=provider,
        account=account,
        api_key_id=api_key_id,
        model=model,
        request_model=request_model,
        service_tier=service_tier,
        day=day,
        **dict(zip(COUNTS, _COUNT_SUMS(sums), strict=True)),
        tokens=TokenCounts(**dict(zip(CATEGORIES, _TOKEN_SUMS(sums), strict=True))),
        finish=FinishCounts(**dict(zip(FINISHES, _FINISH_SUMS(sums), strict=True))),
        truncation=TruncationStats(
            count=truncated, min_output=group.truncated_min or 0, max_output=group.truncated_max or 0
        )
        if truncated
        else _NOT_TRUNCATED,
        expected_cost=sum(cast(dict[str, Decimal], priced).values(), _ZERO) if group.all_priced else None,
        # Read-only and in category order, as the core reads them.
        expected_cost_by_category=MappingProxyType(priced),
        expected_unit_price=MappingProxyType(
            {category: prices[category] for category in CATEGORIES if category in prices}
        ),
        expected_cost_at_requested_model=group.requested_cost,
        reported_cost=group.reported_cost if sums[_REPORTED_REQUESTS_SUM] else None,
    )
