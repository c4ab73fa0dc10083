"""The reconciler's plain data: what goes in (logged and billed days, settings) and what comes out
(comparisons, findings, drift rows). Frozen dataclasses; constructors reject bad input with a message that
names the row and the field."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from itertools import repeat
from operator import add as _plus
from operator import attrgetter, eq, itemgetter
from types import MappingProxyType
from typing import Any, TypeAlias, TypeVar, cast

CATEGORIES: tuple[str, ...] = ("uncached_input", "cached_input", "cache_write_5m", "cache_write_1h", "output")
"""Token categories on both sides; `output` includes reasoning."""
PROMPT_CATEGORIES: tuple[str, ...] = ("uncached_input", "cached_input")
"""Input the model read (cache writes excluded): what padding and system-prompt double counting inflate."""
CACHE_WRITE_CATEGORIES: tuple[str, ...] = ("cache_write_5m", "cache_write_1h")
DIMENSIONS: tuple[str, ...] = ("account", "api_key_id", "model", "service_tier")
"""Scope dimensions below the provider. A billed row leaves one as None when its statement does not break
down by it."""

JSONValue: TypeAlias = str | int | bool | list["JSONValue"] | dict[str, "JSONValue"] | None
_EMPTY: Mapping[str, Decimal] = MappingProxyType({})
_NO_QUANTITIES: Mapping[str, int] = MappingProxyType({})
_ZERO = Decimal(0)


class ReconcileInputError(ValueError):
    """Input the reconciler cannot use; the message names the row and the field."""


def _check_count(where: str, name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ReconcileInputError(f"{where}.{name}: must be a non-negative int, got {value!r}")


def _check_money(where: str, name: str, value: object, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ReconcileInputError(f"{where}.{name}: must be a finite Decimal, got {value!r}")


def _check_day(where: str, value: object) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ReconcileInputError(f"{where}.day: must be a datetime.date (a UTC day), got {value!r}")


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0  # exact type: a bool is not a count


def _is_money(value: object) -> bool:
    return value is None or (type(value) is Decimal and value.is_finite())


_ONLY_INT = frozenset({int})
_GETTERS: dict[tuple[str, ...], Callable[[object], tuple[object, ...]]] = {}


def _values(row: object, names: tuple[str, ...]) -> tuple[object, ...]:
    """The named fields (two or more) of `row`, read by one cached C-level getter."""
    getter = _GETTERS.get(names)
    if getter is None:
        getter = _GETTERS[names] = attrgetter(*names)
    return getter(row)


def _plain_counts(values: tuple[Any, ...]) -> bool:
    """Every value an exact int ≥ 0, in one C-level sweep (False means: look closer, not necessarily bad)."""
    return not values or (set(map(type, values)) <= _ONLY_INT and min(values) >= 0)


def _check_counts(where: str, row: object, names: tuple[str, ...]) -> None:
    """Every named field a count; the common case passes in one quick sweep, a bad field is named."""
    values = _values(row, names)
    if not _plain_counts(values):
        for name, value in zip(names, values, strict=True):
            if not _is_count(value):
                _check_count(where, name, value)


def _check_moneys(where: str, row: object, names: tuple[str, ...]) -> None:
    """Every named field None or a finite Decimal, a bad field named."""
    for name in names:
        value = getattr(row, name)
        if not _is_money(value):
            _check_money(where, name, value)


_CATEGORY_SET = frozenset(CATEGORIES)
_PLAIN_TYPES = {"count": frozenset({int}), "money": frozenset({Decimal})}
_finite = Decimal.is_finite


def _frozen_mapping(
    where: Callable[[], str], name: str, value: Mapping[str, object], check: str
) -> Mapping[str, object]:
    """`value` as a read-only mapping in category order, None entries dropped. `where` names the owner in an
    error, and is only called for one."""
    plain = _is_count if check == "count" else _is_money
    items: Collection[Any] = value.values()
    if (
        value.keys() <= _CATEGORY_SET
        and set(map(type, items)) <= _PLAIN_TYPES[check]
        and (all(map(_finite, items)) if check == "money" else min(items, default=0) >= 0)
    ):
        return MappingProxyType({key: value[key] for key in CATEGORIES if key in value})
    if not value.keys() <= _CATEGORY_SET or not all(item is None or plain(item) for item in items):
        for key, item in value.items():
            if key not in CATEGORIES:
                raise ReconcileInputError(f"{where()}.{name}: unknown category {key!r}; expected one of {CATEGORIES}")
            if item is not None and not plain(item):
                if check == "count":
                    _check_count(where(), f"{name}[{key!r}]", item)
                else:
                    _check_money(where(), f"{name}[{key!r}]", item)
    return MappingProxyType({key: value[key] for key in CATEGORIES if key in value and value[key] is not None})


_Frozen = TypeVar("_Frozen")
_TRUSTED: dict[type, Callable[..., Any]] = {}


def trusted(cls: type[_Frozen]) -> Callable[..., _Frozen]:
    """A constructor of one of these frozen dataclasses that takes every field by keyword and skips the checks
    and copies of its `__post_init__`: for values that satisfy them by construction, such as the loader's rows
    (read from the rollup's NOT NULL, non-negative columns) and the sums the core makes of validated rows. Give
    what `__post_init__` would leave: read-only mappings in category order without None, an upper-case
    currency. Generated once per class, as dataclasses generates `__init__`.

    The instance is filled in as one of a mutable twin class with the very same slots, by plain attribute
    stores (which the interpreter specializes; a frozen class's own stores go through `object.__setattr__`),
    then given the frozen class: Python allows assigning `__class__` between classes of one layout. A third of
    the checked constructor's time, which matters at some 10^4 objects a run."""
    constructor = _TRUSTED.get(cls)
    if constructor is None:
        names = [spec.name for spec in fields(cast(Any, cls))]
        slots = cast(Any, cls).__slots__
        if sorted(slots) != sorted(names):
            raise TypeError(f"{cls.__name__}: trusted() needs a slots dataclass whose slots are its fields")
        twin = type(f"_Filling{cls.__name__}", (), {"__slots__": slots, "__module__": __name__})
        scope: dict[str, Any] = {"new": object.__new__, "twin": twin, "cls": cls}
        scope["become"] = cast(Any, object.__dict__["__class__"]).__set__
        body = "".join(f"    instance.{name} = {name}\n" for name in names)
        source = (
            f"def trusted_{cls.__name__}(*, {', '.join(names)}):\n    instance = new(twin)\n{body}"
            "    become(instance, cls)\n    return instance\n"
        )
        exec(source, scope)  # generated from the class's own field names
        constructor = _TRUSTED[cls] = scope[f"trusted_{cls.__name__}"]
    return constructor


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenCounts:
    """Tokens per category; every field is a non-negative int."""

    uncached_input: int = 0
    cached_input: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    output: int = 0

    def __post_init__(self) -> None:
        _check_counts("tokens", self, CATEGORIES)

    def get(self, category: str) -> int:
        value: int = getattr(self, category)
        return value

    def total(self, categories: tuple[str, ...] = CATEGORIES) -> int:
        return TokenCounts.totaller(categories)(self)

    @staticmethod
    def totaller(categories: tuple[str, ...]) -> Callable[[TokenCounts], int]:
        """`total(categories)` as a function of the counts: for loops over many."""
        read = _TOTAL_OF.get(categories)
        if read is None:
            read = _TOTAL_OF[categories] = _total_reader(categories)
        return read

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(**{name: self.get(name) + other.get(name) for name in CATEGORIES})


def _total_reader(categories: tuple[str, ...]) -> Callable[[TokenCounts], int]:
    """Sums the given categories of a TokenCounts with one C-level getter (`TokenCounts.total` is called some
    10^5 times a run)."""
    if not categories:
        return lambda counts: 0
    if len(categories) == 1:
        return cast(Callable[[TokenCounts], int], attrgetter(categories[0]))
    read = attrgetter(*categories)
    return lambda counts: sum(read(counts))


_TOTAL_OF: dict[tuple[str, ...], Callable[[TokenCounts], int]] = {}
"""A reader per tuple of categories asked for (a handful)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishCounts:
    """Requests by finish reason (normalized across providers; `missing` = no finish reason)."""

    stop: int = 0
    length: int = 0
    tool_calls: int = 0
    content_filter: int = 0
    other: int = 0
    missing: int = 0

    def __post_init__(self) -> None:
        _check_counts("finish", self, _FINISH_FIELDS)


_FINISH_FIELDS = ("stop", "length", "tool_calls", "content_filter", "other", "missing")


@dataclass(frozen=True, slots=True, kw_only=True)
class TruncationStats:
    """Requests that stopped for length (or without a finish reason) below their own `max_tokens`."""

    count: int = 0
    min_output: int = 0
    max_output: int = 0

    def __post_init__(self) -> None:
        _check_counts("truncation", self, ("count", "min_output", "max_output"))
        if self.count and self.min_output > self.max_output:
            raise ReconcileInputError(f"truncation.min_output: {self.min_output} is above max_output {self.max_output}")


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


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedDay:
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
    finish: FinishCounts = field(default_factory=FinishCounts)
    truncation: TruncationStats = field(default_factory=TruncationStats)
    expected_cost: Decimal | None = None
    expected_cost_by_category: Mapping[str, Decimal | None] = field(default_factory=dict)
    expected_unit_price: Mapping[str, Decimal | None] = field(default_factory=dict)
    expected_cost_at_requested_model: Decimal | None = None
    reported_cost: Decimal | None = None

    def __post_init__(self) -> None:
        if not self._plainly_valid():
            self._check()
        for name in ("expected_cost_by_category", "expected_unit_price"):
            object.__setattr__(self, name, _frozen_mapping(self._where, name, getattr(self, name), "money"))

    def _where(self) -> str:
        return f"LoggedDay[{self.provider}/{self.account}/{self.api_key_id}/{self.model} {self.day}]"

    def _plainly_valid(self) -> bool:
        """The common case, in a few C-level sweeps: exact types and every relation kept. False means `_check`
        must look field by field (a subclass of str or date, say, is still fine)."""
        return (
            set(map(type, _values(self, _LOGGED_STRINGS))) <= _ONLY_STR
            and type(self.day) is date
            and _plain_counts(_values(self, _LOGGED_COUNTS))
            and all(map(_is_money, _values(self, _LOGGED_MONEYS)))
            and bool(self.provider)
            and bool(self.model)
            and self.successful_requests + self.errors_429 + self.errors_5xx + self.errors_4xx <= self.requests
            and self.streamed_missing_finish <= self.streamed_requests
            and type(self.tokens) is TokenCounts
        )

    def _check(self) -> None:
        """Every rule, field by field; the first broken one is raised with the field named."""
        where = self._where()
        for name in _LOGGED_STRINGS:
            if not isinstance(getattr(self, name), str):
                raise ReconcileInputError(f"{where}.{name}: must be a string, got {getattr(self, name)!r}")
        _check_day(where, self.day)
        _check_counts(where, self, _LOGGED_COUNTS)
        _check_moneys(where, self, _LOGGED_MONEYS)
        if not self.provider or not self.model:
            raise ReconcileInputError(f"{where}: provider and model must not be empty")
        if self.successful_requests + self.errors_429 + self.errors_5xx + self.errors_4xx > self.requests:
            raise ReconcileInputError(
                f"{where}.requests: {self.requests} is below successful + error requests "
                f"({self.successful_requests} + {self.errors_429} + {self.errors_5xx} + {self.errors_4xx})"
            )
        if self.streamed_missing_finish > self.streamed_requests:
            raise ReconcileInputError(f"{where}.streamed_missing_finish: above streamed_requests")
        if not isinstance(self.tokens, TokenCounts):
            raise ReconcileInputError(f"{where}.tokens: must be TokenCounts, got {type(self.tokens).__name__}")


_LOGGED_STRINGS = ("provider", "account", "api_key_id", "model", "request_model", "service_tier")
_LOGGED_MONEYS = ("expected_cost", "expected_cost_at_requested_model", "reported_cost")
_ONLY_STR = frozenset({str})
_STR_OR_NONE = frozenset({str, type(None)})


@dataclass(frozen=True, slots=True, kw_only=True)
class BilledDay:
    """One statement scope × UTC day. A dimension left None means the statement does not break down by it
    (a loader must map a real "no key" bucket, e.g. console usage, to a sentinel string, not None).
    Categories missing from `quantities` / `amounts` are not stated by the statement."""

    provider: str
    day: date
    account: str | None = None
    api_key_id: str | None = None
    model: str | None = None
    service_tier: str | None = None
    quantities: Mapping[str, int] = field(default_factory=dict)
    requests: int | None = None
    amounts: Mapping[str, Decimal] = field(default_factory=dict)
    total_amount: Decimal | None = None
    currency: str = "USD"
    final: bool = True
    source: str = ""

    def __post_init__(self) -> None:
        if not self._plainly_valid():
            self._check()
        object.__setattr__(self, "currency", self.currency.upper())
        object.__setattr__(self, "quantities", _frozen_mapping(self._where, "quantities", self.quantities, "count"))
        object.__setattr__(self, "amounts", _frozen_mapping(self._where, "amounts", self.amounts, "money"))

    def _where(self) -> str:
        scope = f"{self.provider}/{self.account}/{self.api_key_id}/{self.model}"
        return f"BilledDay[{self.source or '?'}: {scope} {self.day}]"

    def _plainly_valid(self) -> bool:
        """The common case in a few quick sweeps (False means: `_check` looks field by field)."""
        currency = self.currency
        return (
            type(self.provider) is str
            and bool(self.provider)
            and set(map(type, _values(self, DIMENSIONS))) <= _STR_OR_NONE
            and type(self.day) is date
            and (self.requests is None or _is_count(self.requests))
            and _is_money(self.total_amount)
            and type(currency) is str
            and len(currency) == 3
            and currency.isalpha()
        )

    def _check(self) -> None:
        """Every rule, field by field; the first broken one is raised with the field named."""
        where = self._where()
        if not isinstance(self.provider, str) or not self.provider:
            raise ReconcileInputError(f"{where}.provider: must be a non-empty string, got {self.provider!r}")
        for name in DIMENSIONS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ReconcileInputError(f"{where}.{name}: must be a string or None, got {value!r}")
        _check_day(where, self.day)
        if self.requests is not None:
            _check_count(where, "requests", self.requests)
        _check_money(where, "total_amount", self.total_amount)
        if not isinstance(self.currency, str) or len(self.currency) != 3 or not self.currency.isalpha():
            raise ReconcileInputError(f"{where}.currency: must be an ISO-4217 code, got {self.currency!r}")

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


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedTotals:
    """Logged usage summed over the rows of one comparison. Costs are None when some used usage is
    unpriced; `expected_cost_by_category` only holds fully priced categories."""

    requests: int = 0
    successful_requests: int = 0
    errors_429: int = 0
    errors_5xx: int = 0
    errors_4xx: int = 0
    tokens: TokenCounts = field(default_factory=TokenCounts)
    system_prompt_tokens: int = 0
    failed_prompt_tokens: int = 0
    expected_cost: Decimal | None = Decimal(0)
    expected_cost_by_category: Mapping[str, Decimal] = field(default_factory=lambda: _EMPTY)
    unit_prices: Mapping[str, Decimal] = field(default_factory=lambda: _EMPTY)
    """Catalog unit prices shared by every summed row (used when a category has no tokens)."""

    @classmethod
    def of(cls, row: LoggedDay) -> LoggedTotals:
        costs = {key: value for key, value in row.expected_cost_by_category.items() if value is not None}
        prices = {key: value for key, value in row.expected_unit_price.items() if value is not None}
        return cls(
            **_counts_to_sum(row),
            tokens=row.tokens,
            expected_cost=row.expected_cost if row.expected_cost is not None or row.tokens.total() else Decimal(0),
            expected_cost_by_category=MappingProxyType(costs),
            unit_prices=MappingProxyType(prices),
        )

    @classmethod
    def sum(cls, parts: Iterable[LoggedTotals]) -> LoggedTotals:
        """`LoggedTotals() + parts[0] + parts[1] + …`, in one pass: column by column when every part prices every
        category and all share their unit prices (the common case), else part by part."""
        parts = tuple(parts)
        if len(parts) < 2 or not _summable_by_column(parts):
            running = _RunningTotals()
            for part in parts:
                running.add(part, part.expected_cost, part.unit_prices)
            return running.totals()
        columns = zip(*[_category_costs(p.expected_cost_by_category) for p in parts], strict=True)
        costs = [sum(column, _ZERO) for column in columns]
        expected = [part.expected_cost for part in parts]
        expected_cost = None if any(cost is None for cost in expected) else sum(cast(list[Decimal], expected), _ZERO)
        return trusted(cls)(
            **dict(zip(_SUMMED_COUNTS, map(sum, zip(*map(_summed_counts, parts), strict=True)), strict=True)),
            tokens=trusted(TokenCounts)(
                **dict(
                    zip(CATEGORIES, map(sum, zip(*[_token_counts(p.tokens) for p in parts], strict=True)), strict=True)
                )
            ),
            expected_cost=expected_cost,
            expected_cost_by_category=MappingProxyType(dict(zip(CATEGORIES, costs, strict=True))),
            unit_prices=MappingProxyType(dict(parts[0].unit_prices)),
        )

    @classmethod
    def of_rows(cls, rows: Sequence[LoggedDay]) -> LoggedTotals:
        """`LoggedTotals() + LoggedTotals.of(rows[0]) + …`, in one pass."""
        if len(rows) == 1:
            return cls._of_one_row(rows[0])
        running = _RunningTotals()
        for row in rows:
            cost = row.expected_cost
            if cost is None and not row.tokens.total():
                cost = Decimal(0)  # as `of`: nothing used, nothing unpriced
            # A validated row's price mapping holds no None (`_frozen_mapping` drops them).
            running.add(row, cost, cast(Mapping[str, Decimal], row.expected_unit_price))
        return running.totals()

    @classmethod
    def _of_one_row(cls, row: LoggedDay) -> LoggedTotals:
        """`of_rows([row])` without the running sums: the same Decimal additions to zero, so the same
        values and exponents."""
        tokens, row_costs = row.tokens, row.expected_cost_by_category
        costs: dict[str, Decimal]
        if len(row_costs) == len(CATEGORIES):  # every category priced (a validated row's mapping holds no None)
            costs = dict(zip(CATEGORIES, map(_ZERO.__add__, _category_costs(row_costs)), strict=True))
        else:
            costs = {}
            for category in CATEGORIES:
                cost = row_costs.get(category)
                if cost is not None:
                    costs[category] = _ZERO + cost
                elif not getattr(tokens, category):
                    costs[category] = _ZERO  # nothing used, nothing unpriced
        expected = row.expected_cost
        if expected is None and not tokens.total():
            expected = _ZERO
        return _trusted_totals(
            requests=row.requests,
            successful_requests=row.successful_requests,
            errors_429=row.errors_429,
            errors_5xx=row.errors_5xx,
            errors_4xx=row.errors_4xx,
            system_prompt_tokens=row.system_prompt_tokens,
            failed_prompt_tokens=row.failed_prompt_tokens,
            tokens=tokens,
            expected_cost=None if expected is None else _ZERO + expected,
            expected_cost_by_category=MappingProxyType(costs),
            # A row's price mapping is read-only and holds no None (`_frozen_mapping` drops them): shared as is.
            unit_prices=cast(Mapping[str, Decimal], row.expected_unit_price),
        )

    def __add__(self, other: LoggedTotals) -> LoggedTotals:
        tokens = self.tokens + other.tokens
        costs: dict[str, Decimal] = {}
        for category in CATEGORIES:
            mine = _category_cost(self, category)
            theirs = _category_cost(other, category)
            if mine is not None and theirs is not None:
                costs[category] = mine + theirs
        prices = dict(self.unit_prices)
        _merge_unit_prices(prices, other.unit_prices)
        return LoggedTotals(
            requests=self.requests + other.requests,
            successful_requests=self.successful_requests + other.successful_requests,
            errors_429=self.errors_429 + other.errors_429,
            errors_5xx=self.errors_5xx + other.errors_5xx,
            errors_4xx=self.errors_4xx + other.errors_4xx,
            tokens=tokens,
            system_prompt_tokens=self.system_prompt_tokens + other.system_prompt_tokens,
            failed_prompt_tokens=self.failed_prompt_tokens + other.failed_prompt_tokens,
            expected_cost=_add_optional(self.expected_cost, other.expected_cost),
            expected_cost_by_category=MappingProxyType(costs),
            unit_prices=MappingProxyType(prices),
        )

    @property
    def has_usage(self) -> bool:
        return self.requests > 0 or self.tokens.total() > 0

    def unit_price(self, category: str) -> Decimal | None:
        """Effective expected USD per token: cost ÷ tokens when there are tokens, else the catalog price."""
        tokens = self.tokens.get(category)
        cost = self.expected_cost_by_category.get(category)
        if tokens and cost is not None:
            return cost / tokens
        return self.unit_prices.get(category)


def sum_quantities(quantities: list[Mapping[str, int]]) -> dict[str, int]:
    """Quantities per category summed over the mappings: column by column when all state the same categories in
    the same order (a statement's days do), else one by one."""
    stated = {tuple(mapping) for mapping in quantities}
    if len(stated) == 1:
        (categories,) = stated
        columns = zip(*[mapping.values() for mapping in quantities], strict=True)
        return dict(zip(categories, map(sum, columns), strict=True))
    summed: dict[str, int] = {}
    for mapping in quantities:
        for category, quantity in mapping.items():
            summed[category] = summed.get(category, 0) + quantity
    return summed


_trusted_totals = trusted(LoggedTotals)

_SUMMED_COUNTS = (
    "requests",
    "successful_requests",
    "errors_429",
    "errors_5xx",
    "errors_4xx",
    "system_prompt_tokens",
    "failed_prompt_tokens",
)
_summed_counts = attrgetter(*_SUMMED_COUNTS)


def _counts_to_sum(part: LoggedTotals | LoggedDay) -> dict[str, int]:
    """The counts a LoggedTotals sums, from one part, by field name."""
    return dict(zip(_SUMMED_COUNTS, _summed_counts(part), strict=True))


_token_counts = attrgetter(*CATEGORIES)
_category_costs = itemgetter(*CATEGORIES)


def _summable_by_column(parts: Sequence[LoggedTotals]) -> bool:
    """Every part states a cost for every category and the same unit prices as the first: then summing column by
    column makes the same Decimal additions, in the same order, as adding the parts one by one."""
    return all(map(eq, map(len, map(_costs_by_category, parts)), repeat(len(CATEGORIES)))) and all(
        map(eq, map(_unit_prices, parts), repeat(parts[0].unit_prices))
    )


_costs_by_category = attrgetter("expected_cost_by_category")
_unit_prices = attrgetter("unit_prices")


@dataclass(slots=True)
class _RunningTotals:
    """`LoggedTotals() + a + b + …` accumulated in place: the same result, by the same Decimal additions in
    the same order, without building (and validating) the intermediate totals."""

    parts: int = 0
    first_tokens: TokenCounts | None = None
    counts: list[int] = field(default_factory=lambda: [0] * len(_SUMMED_COUNTS))
    """The `_SUMMED_COUNTS` so far."""
    tokens: list[int] = field(default_factory=lambda: [0] * len(CATEGORIES))
    costs: list[Decimal | None] = field(default_factory=lambda: [_ZERO] * len(CATEGORIES))
    """Per category (in `CATEGORIES` order) as `_category_cost` sees the sum so far: its cost, None once some
    usage is unpriced."""
    all_priced: bool = True
    """No None in `costs` (kept as a flag: `None in costs` would compare None with each Decimal, and Decimal's
    comparison with a non-number goes through an abstract-base-class check)."""
    expected_cost: Decimal | None = _ZERO
    prices: dict[str, Decimal] = field(default_factory=dict)

    def add(self, part: LoggedTotals | LoggedDay, expected_cost: Decimal | None, prices: Mapping[str, Decimal]) -> None:
        """Add a part's counts and per-category costs, with its expected cost and catalog unit prices."""
        self.parts += 1
        part_tokens = part.tokens
        if self.first_tokens is None:
            self.first_tokens = part_tokens
        self.counts = list(map(_plus, self.counts, _summed_counts(part)))
        counts = _token_counts(part_tokens)
        self.tokens = list(map(_plus, self.tokens, counts))
        costs, part_costs = self.costs, part.expected_cost_by_category
        # The cost mappings of validated rows and of totals hold no None: all five present means all priced.
        if self.all_priced and len(part_costs) == len(CATEGORIES):
            self.costs = list(map(_plus, costs, _category_costs(part_costs)))  # every category priced on both sides
        else:
            for index, category in enumerate(CATEGORIES):
                cost = costs[index]
                if cost is not None:
                    part_cost = part_costs.get(category)
                    if part_cost is None and counts[index] == 0:
                        part_cost = _ZERO
                    costs[index] = None if part_cost is None else cost + part_cost
            self.all_priced = all(cost is not None for cost in costs)
        self.expected_cost = _add_optional(self.expected_cost, expected_cost)
        if not self.prices:
            self.prices = dict(prices)
        elif self.prices != prices:
            _merge_unit_prices(self.prices, prices)

    def totals(self) -> LoggedTotals:
        if self.first_tokens is None:
            return LoggedTotals()
        # One part's tokens are their own sum (TokenCounts is immutable): no new, re-validated counts.
        tokens = self.first_tokens
        if self.parts > 1:
            tokens = TokenCounts(**dict(zip(CATEGORIES, self.tokens, strict=True)))
        return LoggedTotals(
            **dict(zip(_SUMMED_COUNTS, self.counts, strict=True)),
            tokens=tokens,
            expected_cost=self.expected_cost,
            expected_cost_by_category=MappingProxyType(
                {category: cost for category, cost in zip(CATEGORIES, self.costs, strict=True) if cost is not None}
            ),
            unit_prices=MappingProxyType(self.prices),
        )


def _category_cost(totals: LoggedTotals, category: str) -> Decimal | None:
    """A side's cost for one category: its cost, zero when it used none, None when unpriced."""
    if category in totals.expected_cost_by_category:
        return totals.expected_cost_by_category[category]
    return Decimal(0) if totals.tokens.get(category) == 0 else None


def _merge_unit_prices(prices: dict[str, Decimal], other: Mapping[str, Decimal]) -> None:
    """Unit prices shared by two sums, in place: a price the sides disagree on is dropped, a price only
    `other` has is added after the kept ones."""
    added = [(key, value) for key, value in other.items() if key not in prices]
    for key in [key for key, value in prices.items() if other.get(key, value) != value]:
        del prices[key]
    prices.update(added)


def _add_optional(left: Decimal | None, right: Decimal | None) -> Decimal | None:
    return None if left is None or right is None else left + right


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
