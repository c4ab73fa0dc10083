"""The reconciler's plain data: what goes in (logged and billed days, settings) and what comes out
(comparisons, findings, drift rows). Frozen dataclasses. Constructing one checks nothing: `reconcile()` checks
each input row once, with the row's `checked()`, which refuses bad input with a message naming the row and the
field."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from itertools import compress, product, repeat
from operator import add
from types import MappingProxyType
from typing import TypeAlias, TypeVar, cast

import msgspec

from ledger.vocabulary import TOKEN_CATEGORIES

CATEGORIES: tuple[str, ...] = TOKEN_CATEGORIES
"""The token categories (`ledger.vocabulary.TOKEN_CATEGORIES`), by this name for the modules outside the core
that read them from here."""
DIMENSIONS: tuple[str, ...] = ("account", "api_key_id", "model", "service_tier")
"""Scope dimensions below the provider. A billed row leaves one as None when its statement does not break
down by it."""

JSONValue: TypeAlias = str | int | bool | list["JSONValue"] | dict[str, "JSONValue"] | None
_EMPTY: Mapping[str, Decimal] = MappingProxyType({})
_NO_QUANTITIES: Mapping[str, int] = MappingProxyType({})
_ZERO = Decimal(0)
_CATEGORY_NAMES = tuple(str(category) for category in TOKEN_CATEGORIES)
_CATEGORY_SET = frozenset(_CATEGORY_NAMES)
_IN_CATEGORY_ORDER = frozenset(
    tuple(compress(_CATEGORY_NAMES, chosen)) for chosen in product((False, True), repeat=len(_CATEGORY_NAMES))
)
"""Every subset of the categories, in category order: the keys of a mapping as the core reads it."""


class ReconcileInputError(ValueError):
    """Input the reconciler cannot use; the message names the row and the field."""


Where = Callable[[], str]
"""Names the row (and field) being checked, for an error message; only called when there is one."""


def _within(where: Where, name: str) -> Where:
    """Names a field of what `where` names, as the owner of the fields checked next."""
    return lambda: f"{where()}.{name}"


def _is_count(value: object) -> bool:
    """An int ≥ 0; exactly an int (a bool is no count)."""
    return type(value) is int and value >= 0


def _is_money(value: object) -> bool:
    """A finite Decimal."""
    return type(value) is Decimal and value.is_finite()


def _check_counts(where: Where, owner: object, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(owner, name)
        if type(value) is not int or value < 0:  # `_is_count`, spelt out: some 10^5 fields a run
            raise ReconcileInputError(f"{where()}.{name}: must be a non-negative int, got {value!r}")


def _check_moneys(where: Where, owner: object, names: Iterable[str]) -> None:
    """Every named field None or a finite Decimal."""
    for name in names:
        value = getattr(owner, name)
        if value is not None and (type(value) is not Decimal or not value.is_finite()):  # `_is_money`, spelt out
            raise ReconcileInputError(f"{where()}.{name}: must be a finite Decimal, got {value!r}")


def _check_day(where: Where, value: object) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ReconcileInputError(f"{where()}.day: must be a datetime.date (a UTC day), got {value!r}")


_Value = TypeVar("_Value", int, Decimal)


def _checked_per_category(
    where: Where, name: str, mapping: Mapping[str, _Value | None], valid: Callable[[object], bool], requirement: str
) -> Mapping[str, _Value]:
    """A mapping of token categories to values, checked: every key a category, every value None or `valid`. It
    comes back as the core reads such mappings: read-only, in category order, None entries dropped (the mapping
    itself when it is so already)."""
    keys = tuple(mapping)
    in_order = keys in _IN_CATEGORY_ORDER
    if not in_order:
        for category in keys:
            if category not in _CATEGORY_SET:
                raise ReconcileInputError(
                    f"{where()}.{name}: unknown category {category!r}; expected one of {_CATEGORY_NAMES}"
                )
    as_read = in_order and isinstance(mapping, MappingProxyType)
    for category, value in mapping.items():
        if value is None:
            as_read = False
        elif not valid(value):
            raise ReconcileInputError(f"{where()}.{name}[{str(category)!r}]: must be {requirement}, got {value!r}")
    if as_read:
        return cast(Mapping[str, _Value], mapping)  # checked: no None in it
    return MappingProxyType({c: value for c in TOKEN_CATEGORIES if (value := mapping.get(c)) is not None})


class TokenCounts(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Tokens per category (`ledger.vocabulary.TokenCategory`, one field each); every field a non-negative int."""

    uncached_input: int = 0
    cached_input: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    output: int = 0

    def check(self, where: Where) -> None:
        _check_counts(where, self, _CATEGORY_NAMES)

    def get(self, category: str) -> int:
        value: int = getattr(self, category)
        return value

    def values(self) -> tuple[int, int, int, int, int]:
        """The counts in category order (`TOKEN_CATEGORIES`)."""
        return self.uncached_input, self.cached_input, self.cache_write_5m, self.cache_write_1h, self.output

    def total(self, categories: Iterable[str] | None = None) -> int:
        """The tokens of the given categories, of every one when None."""
        if categories is None:
            return sum(self.values())
        return sum([getattr(self, category) for category in categories])

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts.of_values(map(add, self.values(), other.values()))

    @staticmethod
    def of_values(values: Iterable[int]) -> TokenCounts:
        """The counts given in category order (as `values()` gives them)."""
        uncached_input, cached_input, cache_write_5m, cache_write_1h, output = values
        return TokenCounts(
            uncached_input=uncached_input,
            cached_input=cached_input,
            cache_write_5m=cache_write_5m,
            cache_write_1h=cache_write_1h,
            output=output,
        )


class FinishCounts(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Requests by finish reason (normalized across providers; `missing` = no finish reason)."""

    stop: int = 0
    length: int = 0
    tool_calls: int = 0
    content_filter: int = 0
    other: int = 0
    missing: int = 0

    def check(self, where: Where) -> None:
        _check_counts(where, self, ("stop", "length", "tool_calls", "content_filter", "other", "missing"))


class TruncationStats(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Requests that stopped for length (or without a finish reason) below their own `max_tokens`."""

    count: int = 0
    min_output: int = 0
    max_output: int = 0

    def check(self, where: Where) -> None:
        _check_counts(where, self, ("count", "min_output", "max_output"))
        if self.count and self.min_output > self.max_output:
            raise ReconcileInputError(f"{where()}.min_output: {self.min_output} is above max_output {self.max_output}")


_LOGGED_STRINGS = ("provider", "account", "api_key_id", "model", "request_model", "service_tier")
_LOGGED_COUNTS = (
    "requests",
    "successful_requests",
    "errors_429",
    "errors_5xx",
    "errors_4xx",
    "reasoning_tokens",
    "system_prompt_tokens",
    "requests_with_system_prompt",
    "streamed_requests",
    "streamed_missing_finish",
    "failed_prompt_tokens",
)
_LOGGED_MONEYS = ("expected_cost", "expected_cost_at_requested_model", "reported_cost")


class LoggedDay(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One tenant scope × UTC day of logged usage (from the hourly rollup).

    `model` is the served (response) model and `request_model` the requested one, both normalized.
    Unit prices are USD per token; costs are USD. A category missing from `expected_cost_by_category` or
    `expected_unit_price` is unpriced; `expected_cost` is None when any used category is unpriced.
    `tokens` are those of the requests that may be billed: the prompt tokens of failed ones (429, 5xx) are
    `failed_prompt_tokens`, apart.
    """

    provider: str
    account: str
    api_key_id: str
    model: str
    request_model: str
    service_tier: str
    day: date
    requests: int
    successful_requests: int
    tokens: TokenCounts
    errors_429: int = 0
    errors_5xx: int = 0
    errors_4xx: int = 0
    reasoning_tokens: int = 0
    system_prompt_tokens: int = 0
    requests_with_system_prompt: int = 0
    streamed_requests: int = 0
    streamed_missing_finish: int = 0
    failed_prompt_tokens: int = 0
    finish: FinishCounts = msgspec.field(default_factory=FinishCounts)
    truncation: TruncationStats = msgspec.field(default_factory=TruncationStats)
    expected_cost: Decimal | None = None
    expected_cost_by_category: Mapping[str, Decimal | None] = msgspec.field(default_factory=lambda: _EMPTY)
    expected_unit_price: Mapping[str, Decimal | None] = msgspec.field(default_factory=lambda: _EMPTY)
    expected_cost_at_requested_model: Decimal | None = None
    reported_cost: Decimal | None = None

    def _where(self) -> str:
        return f"LoggedDay[{self.provider}/{self.account}/{self.api_key_id}/{self.model} {self.day}]"

    def checked(self) -> LoggedDay:
        """The row, every field checked (the first bad one is raised, named, as a `ReconcileInputError`), with its
        cost and price mappings as the core reads them (`_checked_per_category`): itself when they are so."""
        where = self._where
        for name in _LOGGED_STRINGS:
            if not isinstance(getattr(self, name), str):
                raise ReconcileInputError(f"{where()}.{name}: must be a string, got {getattr(self, name)!r}")
        _check_day(where, self.day)
        _check_counts(where, self, _LOGGED_COUNTS)
        _check_moneys(where, self, _LOGGED_MONEYS)
        if not self.provider or not self.model:
            raise ReconcileInputError(f"{where()}: provider and model must not be empty")
        if self.successful_requests + self.errors_429 + self.errors_5xx + self.errors_4xx > self.requests:
            raise ReconcileInputError(
                f"{where()}.requests: {self.requests} is below successful + error requests "
                f"({self.successful_requests} + {self.errors_429} + {self.errors_5xx} + {self.errors_4xx})"
            )
        if self.streamed_missing_finish > self.streamed_requests:
            raise ReconcileInputError(f"{where()}.streamed_missing_finish: above streamed_requests")
        for name, kind in (("tokens", TokenCounts), ("finish", FinishCounts), ("truncation", TruncationStats)):
            part = getattr(self, name)
            if not isinstance(part, kind):
                raise ReconcileInputError(f"{where()}.{name}: must be {kind.__name__}, got {type(part).__name__}")
            part.check(_within(where, name))
        costs = _checked_per_category(
            where, "expected_cost_by_category", self.expected_cost_by_category, _is_money, "a finite Decimal"
        )
        prices = _checked_per_category(
            where, "expected_unit_price", self.expected_unit_price, _is_money, "a finite Decimal"
        )
        if costs is self.expected_cost_by_category and prices is self.expected_unit_price:
            return self
        return msgspec.structs.replace(self, expected_cost_by_category=costs, expected_unit_price=prices)


class BilledDay(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One statement scope × UTC day. A dimension left None means the statement does not break down by it
    (a loader must map a real "no key" bucket, e.g. console usage, to a sentinel string, not None).
    Categories missing from `quantities` / `amounts` are not stated by the statement."""

    provider: str
    day: date
    account: str | None = None
    api_key_id: str | None = None
    model: str | None = None
    service_tier: str | None = None
    quantities: Mapping[str, int] = msgspec.field(default_factory=lambda: _NO_QUANTITIES)
    requests: int | None = None
    amounts: Mapping[str, Decimal] = msgspec.field(default_factory=lambda: _EMPTY)
    total_amount: Decimal | None = None
    currency: str = "USD"
    final: bool = True
    source: str = ""

    def _where(self) -> str:
        scope = f"{self.provider}/{self.account}/{self.api_key_id}/{self.model}"
        return f"BilledDay[{self.source or '?'}: {scope} {self.day}]"

    def checked(self) -> BilledDay:
        """The row, every field checked (the first bad one is raised, named, as a `ReconcileInputError`), with its
        quantities and amounts as the core reads them (`_checked_per_category`) and its currency code in upper
        case: itself when they are so."""
        where = self._where
        if not isinstance(self.provider, str) or not self.provider:
            raise ReconcileInputError(f"{where()}.provider: must be a non-empty string, got {self.provider!r}")
        for name in DIMENSIONS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ReconcileInputError(f"{where()}.{name}: must be a string or None, got {value!r}")
        _check_day(where, self.day)
        if self.requests is not None:
            _check_counts(where, self, ("requests",))
        _check_moneys(where, self, ("total_amount",))
        currency = self.currency
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            raise ReconcileInputError(f"{where()}.currency: must be an ISO-4217 code, got {currency!r}")
        quantities = _checked_per_category(where, "quantities", self.quantities, _is_count, "a non-negative int")
        amounts = _checked_per_category(where, "amounts", self.amounts, _is_money, "a finite Decimal")
        if quantities is self.quantities and amounts is self.amounts and currency.isupper():
            return self
        return msgspec.structs.replace(self, quantities=quantities, amounts=amounts, currency=currency.upper())

    @property
    def billed_total(self) -> Decimal | None:
        """`total_amount` when stated, else the sum of the category amounts, else None."""
        if self.total_amount is not None:
            return self.total_amount
        return sum(self.amounts.values(), Decimal(0)) if self.amounts else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileSettings:
    """Tolerances and thresholds. Token/request/money tolerances are `max(absolute, relative × logged)`;
    every finding reports the ones it used."""

    token_rel_tolerance: Decimal = Decimal("0.005")
    token_abs_tolerance: int = 1_000
    request_rel_tolerance: Decimal = Decimal("0.005")
    request_abs_tolerance: int = 5
    money_rel_tolerance: Decimal = Decimal("0.005")
    money_abs_tolerance: Decimal = Decimal("1.00")
    price_rel_tolerance: Decimal = Decimal("0.002")
    amount_rounding: Decimal = Decimal("0.01")
    """Largest rounding a statement applies to one amount (cents)."""
    min_days: int = 7
    """Statistical detectors (padding / system-prompt fit) need at least this many day buckets."""
    min_requests: int = 100
    fit_min_t: Decimal = Decimal("5")
    fit_min_r_squared: Decimal = Decimal("0.5")
    system_prompt_ratio_tolerance: Decimal = Decimal("0.15")
    charged_errors_rel_tolerance: Decimal = Decimal("0.10")
    missing_finish_rate_tolerance: Decimal = Decimal("0.01")
    truncation_min_share: Decimal = Decimal("0.01")
    truncation_min_count: int = 20
    truncation_cluster_tokens: int = 16
    truncation_cluster_rel: Decimal = Decimal("0.02")
    substitution_min_requests: int = 1
    spike_baseline_days: int = 14
    spike_min_baseline_days: int = 7
    spike_robust_z: Decimal = Decimal("6")
    spike_min_ratio: Decimal = Decimal("2")
    spike_min_usd: Decimal = Decimal("5")
    severity_warning_usd: Decimal = Decimal("10")
    severity_critical_usd: Decimal = Decimal("100")
    severity_warning_rate: Decimal = Decimal("0.02")
    severity_critical_rate: Decimal = Decimal("0.10")

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, int | Decimal) or value < 0:
                raise ReconcileInputError(
                    f"ReconcileSettings.{spec.name}: must be a non-negative int or Decimal, got {value!r}"
                )
        if self.min_days < 3:
            raise ReconcileInputError("ReconcileSettings.min_days: a two-coefficient fit needs at least 3")

    def token_tolerance(self, logged: int) -> int:
        return max(self.token_abs_tolerance, math.ceil(self.token_rel_tolerance * logged))

    def request_tolerance(self, logged: int) -> int:
        return max(self.request_abs_tolerance, math.ceil(self.request_rel_tolerance * logged))

    def money_tolerance(self, expected: Decimal) -> Decimal:
        return max(self.money_abs_tolerance, self.money_rel_tolerance * abs(expected))

    def as_evidence(self, *names: str) -> dict[str, JSONValue]:
        """The named settings as JSON evidence (Decimals as strings)."""
        return {name: _setting_json(getattr(self, name)) for name in names}


def _setting_json(value: int | Decimal) -> JSONValue:
    return str(value) if isinstance(value, Decimal) else value


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Where a comparison or finding applies; a None dimension is not broken down (covers all values)."""

    provider: str
    account: str | None = None
    api_key_id: str | None = None
    model: str | None = None
    service_tier: str | None = None

    @property
    def grain(self) -> tuple[str, ...]:
        """The dimensions this scope breaks down by."""
        return tuple(name for name in DIMENSIONS if getattr(self, name) is not None)

    def contains(self, other: Scope) -> bool:
        """True when every dimension this scope fixes has the same value in `other`."""
        return self.provider == other.provider and all(
            getattr(self, name) is None or getattr(self, name) == getattr(other, name) for name in DIMENSIONS
        )

    def label(self) -> str:
        parts = [self.provider, *(f"{name}={getattr(self, name)}" for name in self.grain)]
        return " ".join(parts)


class LoggedTotals(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Logged usage summed over the rows of one comparison (`LoggedTotals.sum`). Costs are None when some used
    usage is unpriced; `expected_cost_by_category` only holds fully priced categories. The defaults are nothing
    logged."""

    requests: int = 0
    successful_requests: int = 0
    errors_429: int = 0
    errors_5xx: int = 0
    errors_4xx: int = 0
    tokens: TokenCounts = msgspec.field(default_factory=TokenCounts)
    system_prompt_tokens: int = 0
    failed_prompt_tokens: int = 0
    expected_cost: Decimal | None = Decimal(0)
    expected_cost_by_category: Mapping[str, Decimal] = msgspec.field(default_factory=lambda: _EMPTY)
    unit_prices: Mapping[str, Decimal] = msgspec.field(default_factory=lambda: _EMPTY)
    """Catalog unit prices shared by every summed row (used when a category has no tokens)."""

    @classmethod
    def sum(cls, parts: Iterable[LoggedDay | LoggedTotals]) -> LoggedTotals:
        """The usage of checked rows, or of totals, summed from nothing, part after part: counts and tokens add
        up; a category's cost is the sum of the parts' costs, a part that used none of it adding zero, and None
        (unpriced) once a part used it unpriced; the expected cost likewise; unit prices are those no two parts
        disagree on. Decimals are added to zero first, so one part's sum has the exponents of any other sum."""
        summed = 0
        requests = successful = errors_429 = errors_5xx = errors_4xx = system_prompt = failed_prompt = 0
        tokens = [0] * len(TOKEN_CATEGORIES)
        costs: list[Decimal | None] = [_ZERO] * len(TOKEN_CATEGORIES)
        all_priced = True
        expected: Decimal | None = _ZERO
        prices: dict[str, Decimal] = {}
        for part in parts:
            summed += 1
            requests += part.requests
            successful += part.successful_requests
            errors_429 += part.errors_429
            errors_5xx += part.errors_5xx
            errors_4xx += part.errors_4xx
            system_prompt += part.system_prompt_tokens
            failed_prompt += part.failed_prompt_tokens
            used = part.tokens.values()
            tokens = list(map(add, tokens, used))
            part_costs = part.expected_cost_by_category
            if all_priced and len(part_costs) == len(TOKEN_CATEGORIES):
                # Every category priced on both sides (checked rows and totals hold no None, in category order).
                costs = list(map(add, costs, cast(Iterable[Decimal], part_costs.values())))
            else:
                for position, category in enumerate(_CATEGORY_NAMES):
                    cost = costs[position]
                    if cost is not None:
                        part_cost = part_costs.get(category)
                        if part_cost is not None:
                            costs[position] = cost + part_cost
                        else:  # unpriced: None if used, else a zero cost
                            costs[position] = None if used[position] else cost + _ZERO
                all_priced = all(cost is not None for cost in costs)
            part_expected = part.expected_cost
            if part_expected is None and not any(used):
                part_expected = _ZERO  # nothing used, nothing unpriced
            expected = None if expected is None or part_expected is None else expected + part_expected
            part_prices = part.unit_prices if isinstance(part, LoggedTotals) else part.expected_unit_price
            if summed == 1:
                prices = {category: price for category, price in part_prices.items() if price is not None}
            elif prices != part_prices:
                _merge_unit_prices(prices, part_prices)
        if not summed:
            return cls()
        by_category: dict[str, Decimal]
        if all_priced:
            by_category = dict(zip(TOKEN_CATEGORIES, cast(list[Decimal], costs), strict=True))
        else:
            by_category = {c: cost for c, cost in zip(TOKEN_CATEGORIES, costs, strict=True) if cost is not None}
        return cls(
            requests=requests,
            successful_requests=successful,
            errors_429=errors_429,
            errors_5xx=errors_5xx,
            errors_4xx=errors_4xx,
            tokens=part.tokens if summed == 1 else TokenCounts.of_values(tokens),  # one part's are its own sum
            system_prompt_tokens=system_prompt,
            failed_prompt_tokens=failed_prompt,
            expected_cost=expected,
            expected_cost_by_category=MappingProxyType(by_category),
            unit_prices=MappingProxyType(prices),
        )

    def __add__(self, other: LoggedTotals) -> LoggedTotals:
        return LoggedTotals.sum((self, other))

    @property
    def has_usage(self) -> bool:
        return self.requests > 0 or any(self.tokens.values())

    def unit_price(self, category: str) -> Decimal | None:
        """Effective expected USD per token: cost ÷ tokens when there are tokens, else the catalog price."""
        tokens = self.tokens.get(category)
        cost = self.expected_cost_by_category.get(category)
        if tokens and cost is not None:
            return cost / tokens
        return self.unit_prices.get(category)


def _merge_unit_prices(prices: dict[str, Decimal], other: Mapping[str, Decimal | None]) -> None:
    """Unit prices shared by two sums, in place: a price the sides disagree on is dropped, a price only
    `other` has is added after the kept ones."""
    added = [(key, value) for key, value in other.items() if key not in prices and value is not None]
    for key in [key for key, value in prices.items() if other.get(key, value) != value]:
        del prices[key]
    prices.update(added)


def sum_quantities(quantities: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """Quantities per category summed over the mappings, in the order the categories first appear."""
    summed: dict[str, int] = {}
    for mapping in quantities:
        for category, quantity in mapping.items():
            summed[category] = summed.get(category, 0) + quantity
    return summed


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """Logged vs billed for one scope over one day (or two adjacent days merged for a midnight shift).

    Only the billed figures this comparison's statement grain is authoritative for are present: a missing
    category in `billed_quantities` / `billed_amounts` (or None) means "not compared here". Inside the
    statement's coverage, a stated figure with no billed row is 0."""

    scope: Scope
    first_day: date
    last_day: date
    logged: LoggedTotals
    billed_quantities: Mapping[str, int]
    billed_requests: int | None
    billed_amounts: Mapping[str, Decimal]
    billed_total: Decimal | None
    final: bool
    sources: tuple[str, ...]
    rate_quantities: Mapping[str, int] = field(default_factory=lambda: _NO_QUANTITIES)
    """Billed quantities of the categories this comparison states an amount for but no quantity, rolled up from
    a finer statement of the same provider and day (Anthropic's usage report per workspace × key under its cost
    report per workspace): what billed unit prices divide by. Not compared here (the finer grain compares them)."""

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def stated(self, categories: tuple[str, ...]) -> tuple[str, ...]:
        """The given categories whose billed quantity is compared here."""
        quantities = self.billed_quantities
        return tuple([c for c in categories if c in quantities])

    def logged_quantity(self, categories: tuple[str, ...]) -> int:
        return self.logged.tokens.total(categories)

    def billed_quantity(self, categories: tuple[str, ...]) -> int:
        return sum(map(self.billed_quantities.get, categories, repeat(0)))

    @property
    def billed_anything(self) -> bool:
        return (
            any(self.billed_quantities.values())
            or bool(self.billed_requests)
            or any(self.billed_amounts.values())
            or bool(self.billed_total)
        )

    @property
    def one_sided(self) -> bool:
        """`unlogged` or `unbilled`, in one look at each side."""
        used = self.logged.has_usage
        if used == self.billed_anything:
            return False
        compared = bool(self.billed_quantities) or self.billed_requests is not None or self.billed_total is not None
        return not used or compared

    @property
    def unlogged(self) -> bool:
        """Billed usage where nothing was logged at all."""
        return not self.logged.has_usage and self.billed_anything

    @property
    def unbilled(self) -> bool:
        """Logged usage that the statement, where it states anything, shows as zero."""
        compared = bool(self.billed_quantities) or self.billed_requests is not None or self.billed_total is not None
        return compared and self.logged.has_usage and not self.billed_anything


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One anomaly. `impact_usd` is positive when billed more than used. `evidence` is JSON-ready
    (Decimals as strings). `subject` separates findings of one kind on one scope (e.g. the category)."""

    kind: str
    severity: str
    provider: str
    account: str | None
    api_key_id: str | None
    model: str | None
    service_tier: str | None
    subject: str
    period_start: datetime
    period_end: datetime
    impact_usd: Decimal
    evidence: Mapping[str, JSONValue]
    summary: str
    fingerprint: str

    @property
    def scope(self) -> Scope:
        return Scope(
            provider=self.provider,
            account=self.account,
            api_key_id=self.api_key_id,
            model=self.model,
            service_tier=self.service_tier,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftRow:
    """Logged vs billed for one provider × account × model over the period, at one statement grain
    (`account` / `model` are None when the statement does not break down by them). Billed figures are
    None when not stated; `difference` = billed − expected cost, `percent` = difference ÷ expected × 100."""

    provider: str
    account: str | None
    model: str | None
    grain: tuple[str, ...]
    period_start: datetime
    period_end: datetime
    first_day: date | None
    last_day: date | None
    logged_tokens: Mapping[str, int]
    logged_total_tokens: int
    billed_tokens: Mapping[str, int]
    billed_total_tokens: int | None
    expected_cost: Decimal | None
    billed_cost: Decimal | None
    difference: Decimal | None
    percent: Decimal | None
    final: bool
    note: str = ""
    """What the loader adds, e.g. that a statement label is probably the row's model (ledger.pricing.model_aliases)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileResult:
    findings: tuple[Finding, ...]
    drift: tuple[DriftRow, ...]
    comparisons: tuple[Comparison, ...]
