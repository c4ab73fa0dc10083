"""Effective-dated price catalog: what a unit of usage cost at the moment it was used.

Prices are data, never constants in code. A model with no price for a token type is reported as *unpriced*;
it is never priced at zero. Pure: no I/O except reading the bundled CSV that ships inside the package.

Price file format (`ledger/pricing/prices.csv` and tenant price files)
---------------------------------------------------------------
UTF-8 CSV, one header line, one price per line. Blank lines and lines starting with `#` are ignored; quoted
fields may not span lines. Columns (header names exact, any order; `valid_to`, `window`, `note` optional):

=================== ===================================================================================
provider            billing provider id, lower case: `openai`, `anthropic`, `google`, `deepseek`, `qwen`,
                    `mistral`, `bedrock`, or a tenant's own (`vllm`)
model               model name; normalised with `ledger.pricing.model_names.normalize_model_name`
token_type          one of TOKEN_TYPES (below)
service_tier        one of SERVICE_TIERS: `standard`, `batch`, `flex`, `priority`
context_threshold   0 for the base price, else a value of CONTEXT_BAND_THRESHOLDS: the row prices the WHOLE
                    request when its total input exceeds that many tokens
unit_price          decimal number >= 0, in `currency` per `unit`
unit                `1M tokens`, `1K tokens`, `token`, `1K requests`, `request` or `hour`
currency            ISO 4217 code, upper case (`USD`)
valid_from          UTC instant the price starts: `2026-03-05` (midnight UTC) or `2026-08-16T16:00:00Z`
valid_to            exclusive end, same format; empty = still in effect
window              empty, or the UTC hours of the week the row applies to (see `UsageWindow`)
source              where the price was read: one or more URLs separated by spaces
source_date         ISO date the source showed this price (its as-of date, else the day it was read)
note                free text: the rule or multiplier the row encodes
=================== ===================================================================================

Token types: `input` (uncached input), `cached_input` (cache reads), `cache_write_5m`, `cache_write_1h`,
`output` (including reasoning/thinking) are priced per token; `request` and `web_search` per request;
`gpu_hour` per hour of a self-hosted GPU (see `gpu_hour_cost`).

How a price is chosen for (provider, model, token type, service tier, time, input band)
---------------------------------------------------------------------------------------
1. Rows for that key whose [valid_from, valid_to) contains the time.
2. Context band (`context_band`, from `ledger.pricing.context_bands`): band b > 0 means the request's total input
   exceeded CONTEXT_BAND_THRESHOLDS[b-1]; the row with the largest `context_threshold` <= that threshold
   applies (band 0 takes threshold-0 rows only). A model without long-context rows is priced alike in
   every band.
3. Time windows: a row whose window does not contain the usage hour does not apply; a row whose window
   contains it beats a row without a window (a provider's base price is the windowless row, peak hours are
   windowed rows). Rows of one key that could apply at the same instant are refused (PriceConflictError).
4. Layers: a tenant's own price first (scoped to the account, then to the provider that billed the usage),
   then the bundled overlay (this file format, `ledger/pricing/prices.csv`), then the base layer
   (`ledger.pricing.base_prices`, genai-prices' data); a layer is consulted only when the ones above yield no price.
Nothing is inferred: a batch price exists only where a batch row exists.
"""

from __future__ import annotations

import csv
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow, localcontext
from importlib import resources
from types import MappingProxyType
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import PydanticCustomError

from ledger.periods import day_start, hour_start
from ledger.pricing.context_bands import CONTEXT_BAND_THRESHOLDS, context_band
from ledger.pricing.model_names import normalize_model_name, provider_of_model
from ledger.vocabulary import PRICE_TYPE_OF_CATEGORY, PRICE_TYPES, SERVICE_TIERS, PriceType, ServiceTier

# The band thresholds live in `ledger.pricing.context_bands` (the hourly rollup assigns `input_band` with them);
# re-exported here because a price row's `context_threshold` must be one of them. The bundled file uses
# 100_000 (Claude Haiku 5.5), 200_000 (Claude Sonnet 4.x long context, Gemini 2.5 Pro) and 272_000
# (OpenAI GPT-5.4/5.5); each row's `source` column cites where its threshold was read.
__all__ = [
    "CONTEXT_BAND_THRESHOLDS",
    "PRICE_FILE_COLUMNS",
    "SERVICE_TIERS",
    "TOKEN_TYPES",
    "Cost",
    "PriceCatalog",
    "PriceConflictError",
    "PriceFileError",
    "PriceRow",
    "PricingError",
    "TokenUsage",
    "UsageWindow",
    "context_band",
    "gpu_hour_cost",
    "load_bundled_prices",
    "parse_price_csv",
    "pricing_provider_of",
]

TOKEN_TYPES: tuple[str, ...] = PRICE_TYPES
"""What a price row may be per (`ledger.vocabulary.PriceType`); named so in price files."""

_TOKEN_UNITS: Mapping[str, int] = MappingProxyType({"1M tokens": 1_000_000, "1K tokens": 1_000, "token": 1})
_REQUEST_UNITS: Mapping[str, int] = MappingProxyType({"1K requests": 1_000, "request": 1})
_HOUR_UNITS: Mapping[str, int] = MappingProxyType({"hour": 1})
_UNITS_BY_TYPE: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {
        **{price_type: _TOKEN_UNITS for price_type in PRICE_TYPE_OF_CATEGORY.values()},
        PriceType.REQUEST: _REQUEST_UNITS,
        PriceType.WEB_SEARCH: _REQUEST_UNITS,
        PriceType.GPU_HOUR: _HOUR_UNITS,
    }
)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_REQUIRED_COLUMNS = (
    "provider",
    "model",
    "token_type",
    "service_tier",
    "context_threshold",
    "unit_price",
    "unit",
    "currency",
    "valid_from",
    "source",
    "source_date",
)
_OPTIONAL_COLUMNS = ("valid_to", "window", "note")
PRICE_FILE_COLUMNS: tuple[str, ...] = _REQUIRED_COLUMNS + _OPTIONAL_COLUMNS
"""Every column a price file may have (the header may list them in any order; the optional ones may be left out)."""
_BUNDLED = "prices.csv"
PRICE_LIMIT = Decimal(10) ** 10
PRICE_DECIMALS = 10
"""Unit prices are stored as numeric(20, 10): below 10^10 with at most 10 decimal places (never rounded)."""
# Money arithmetic raises instead of rounding: every amount computed here is exact.
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])


class PricingError(ValueError):
    """Base of every pricing error."""


class PriceFileError(PricingError):
    """A price file line that cannot be read or contradicts the vocabulary; the message names origin and line,
    and the column and value when one column cannot be read."""


class PriceConflictError(PricingError):
    """Two rows claim the same price slot at the same time, or one cost mixes currencies."""


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^(\d{1,2})-(\d{1,2})$")


@dataclass(frozen=True, slots=True)
class UsageWindow:
    """UTC hours of the week a price applies to, minus excluded dates.

    Spec: clauses separated by `;`. A clause is `[DAYS@]HOURS` or `except=DATES`.
    DAYS: comma-separated `mon`..`sun` or ascending ranges (`mon-fri`); omitted = every day.
    HOURS: comma-separated half-open ranges `HH-HH` of the UTC hour (`01-04` = 01:00 to 04:00).
    DATES: comma-separated UTC dates `2026-10-01` or inclusive ranges `2026-10-01..2026-10-07`.
    Example (DeepSeek peak): `mon-fri@01-04,06-10; except=2026-09-25,2026-10-01..2026-10-07`.
    """

    spec: str
    slots: frozenset[tuple[int, int]]  # (weekday 0=Monday, hour 0-23)
    excluded: frozenset[date]

    @classmethod
    def parse(cls, spec: str) -> UsageWindow:
        slots: set[tuple[int, int]] = set()
        excluded: set[date] = set()
        for clause in (part.strip() for part in spec.split(";")):
            if not clause:
                raise ValueError(f"empty clause in window {spec!r}")
            if clause.startswith("except="):
                excluded |= _parse_dates(clause.removeprefix("except="))
                continue
            days_text, _, hours_text = clause.rpartition("@")
            days = _parse_days(days_text) if days_text else range(7)
            slots |= {(day, hour) for day in days for hour in _parse_hours(hours_text)}
        if not slots:
            raise ValueError(f"window {spec!r} names no hours")
        return cls(spec.strip(), frozenset(slots), frozenset(excluded))

    def contains(self, moment: datetime) -> bool:
        """Whether the UTC hour that contains `moment` is inside the window."""
        hour = hour_start(moment)
        return self.covers(hour.date(), (hour.weekday(), hour.hour))

    def covers(self, day: date, slot: tuple[int, int]) -> bool:
        """Whether the UTC hour `slot` (weekday, hour) of `day` is inside the window."""
        return day not in self.excluded and slot in self.slots


def _parse_days(text: str) -> list[int]:
    days: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        first, _, last = item.partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise ValueError(f"unknown day {item!r}; use mon..sun or a range such as mon-fri")
        start, end = _DAYS.index(first), _DAYS.index(last or first)
        if end < start:
            raise ValueError(f"day range {item!r} runs backwards")
        days.extend(range(start, end + 1))
    return days


def _parse_hours(text: str) -> list[int]:
    hours: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        match = _HOURS.match(item)
        if not match or not 0 <= int(match[1]) < int(match[2]) <= 24:
            raise ValueError(f"hour range {item!r} must look like 01-04 with 0 <= start < end <= 24")
        hours.extend(range(int(match[1]), int(match[2])))
    return hours


def _parse_dates(text: str) -> set[date]:
    dates: set[date] = set()
    for item in (part.strip() for part in text.split(",")):
        first, _, last = item.partition("..")
        try:
            start, end = date.fromisoformat(first), date.fromisoformat(last or first)
        except ValueError as exc:
            raise ValueError(f"excluded date {item!r} must be YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD") from exc
        if end < start:
            raise ValueError(f"date range {item!r} runs backwards")
        dates.update(start + timedelta(days=offset) for offset in range((end - start).days + 1))
    return dates


def _unreadable(problem: str) -> PydanticCustomError:
    """A price file's text that is not a value of its column (reported with the column and the text)."""
    return PydanticCustomError("unreadable", "{problem}", {"problem": problem})


def _contradiction(problem: str) -> PydanticCustomError:
    """A value, or values, that contradict the vocabulary of prices (reported as they are)."""
    return PydanticCustomError("contradiction", "{problem}", {"problem": problem})


def _nonblank(value: str) -> str:
    if not value.strip():
        raise _unreadable("must not be empty")
    return value


def _text(value: object) -> object:
    return _nonblank(value) if isinstance(value, str) else value


def _provider_text(value: object) -> object:
    return _nonblank(value).lower() if isinstance(value, str) else value


def _one_of(allowed: Sequence[str]) -> Callable[[str, ValidationInfo], str]:
    def check(value: str, info: ValidationInfo) -> str:
        if value not in allowed:
            raise _contradiction(f"{info.field_name} {value!r} is not one of {', '.join(allowed)}")
        return value

    return check


def _threshold_text(value: object) -> object:
    if not isinstance(value, str):
        return value
    if not _nonblank(value).isdigit():
        raise _unreadable("not a whole number of tokens")
    return int(value)


def _known_threshold(value: int) -> int:
    if value != 0 and value not in CONTEXT_BAND_THRESHOLDS:
        allowed = ", ".join(str(t) for t in (0, *CONTEXT_BAND_THRESHOLDS))
        raise _contradiction(f"context_threshold {value} is not one of {allowed}")
    return value


def _price_text(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return Decimal(_nonblank(value))
    except InvalidOperation:
        raise _unreadable("not a decimal number") from None


def _storable_price(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0:
        raise _contradiction(f"unit_price must be a finite number >= 0, got {value}")
    if value >= PRICE_LIMIT:
        raise _contradiction(f"unit_price {value} is too large for a stored price (below {PRICE_LIMIT:,})")
    if -value.as_tuple().exponent > PRICE_DECIMALS:  # type: ignore[operator]
        raise _contradiction(
            f"unit_price {value} has more than {PRICE_DECIMALS} decimal places, which a stored price "
            "would round away: give it per a larger unit (per 1M tokens, say)"
        )
    return value


def _currency_code(value: str) -> str:
    if not _CURRENCY.match(value):
        raise _contradiction(f"currency {value!r} must be an upper-case ISO 4217 code such as USD")
    return value


def _instant_text(value: object) -> object:
    """`2026-03-05` (midnight UTC) or a date-time with a UTC offset (`2026-08-16T16:00:00Z`); empty is none."""
    if not isinstance(value, str):
        return value
    if not value:
        return None
    try:
        if len(value) == 10:
            return day_start(date.fromisoformat(value))
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _unreadable("not an ISO date or date-time such as 2026-08-16T16:00:00Z") from None
    if moment.utcoffset() is None:
        raise _unreadable("a date-time needs a UTC offset such as Z")
    return moment.astimezone(UTC)


def _required_instant_text(value: object) -> object:
    return _instant_text(_text(value))


def _aware(value: datetime | None, info: ValidationInfo) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise _contradiction(f"{info.field_name} must be timezone-aware")
    return value


def _date_text(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return date.fromisoformat(_nonblank(value))
    except ValueError:
        raise _unreadable("not an ISO date such as 2026-11-25") from None


def _window_text(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return UsageWindow.parse(value) if value else None
    except ValueError as exc:
        raise _unreadable(str(exc)) from None


@pydantic_dataclass(frozen=True, slots=True, config=ConfigDict(arbitrary_types_allowed=True))
class PriceRow:
    """One price: provider × model × token type × service tier × context threshold, valid over a UTC span.

    Validated as it is made (pydantic), from typed values or from the text of a price file's columns; a
    problem is a ValidationError whose type is `unreadable` (text that is no value of its column) or
    `contradiction` (values against the vocabulary above, or against each other)."""

    provider: Annotated[str, BeforeValidator(_provider_text)]
    model: Annotated[str, BeforeValidator(_text)]
    token_type: Annotated[str, BeforeValidator(_text), AfterValidator(_one_of(TOKEN_TYPES))]
    service_tier: Annotated[str, BeforeValidator(_text), AfterValidator(_one_of(SERVICE_TIERS))]
    context_threshold: Annotated[int, BeforeValidator(_threshold_text), AfterValidator(_known_threshold)]
    unit_price: Annotated[
        Decimal, Field(allow_inf_nan=True), BeforeValidator(_price_text), AfterValidator(_storable_price)
    ]
    unit: Annotated[str, BeforeValidator(_text)]
    currency: Annotated[str, BeforeValidator(_text), AfterValidator(_currency_code)]
    valid_from: Annotated[datetime, BeforeValidator(_required_instant_text), AfterValidator(_aware)]
    valid_to: Annotated[datetime | None, BeforeValidator(_instant_text), AfterValidator(_aware)]
    source: Annotated[str, BeforeValidator(_text)]
    source_date: Annotated[date, BeforeValidator(_date_text)]
    window: Annotated[UsageWindow | None, BeforeValidator(_window_text)] = None
    note: str = ""
    override: bool = False  # a tenant's row; it wins over the bundled list
    origin: str = field(default="", compare=False)  # `file:line` the row was read from
    layer: str = field(default="", compare=False)  # `tenant`, `overlay` or `genai-prices` (set by its loader)
    account: str | None = field(default=None, compare=False)  # a tenant price for one account only

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        units = _UNITS_BY_TYPE[self.token_type]
        if self.unit not in units:
            raise _contradiction(
                f"unit {self.unit!r} does not fit token_type {self.token_type!r}; use one of {', '.join(units)}"
            )
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise _contradiction(f"valid_to {self.valid_to.isoformat()} is not after valid_from")
        return self

    def price_per_token(self) -> Decimal:
        """`unit_price` scaled to one unit of usage: one token, one request, or one GPU hour."""
        with localcontext(_EXACT):
            return self.unit_price / _UNITS_BY_TYPE[self.token_type][self.unit]

    def in_effect(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.valid_to is None or moment < self.valid_to)

    def overlaps_span(self, start: datetime, end: datetime) -> bool:
        """Whether the row is in effect at some instant of [start, end)."""
        return self.valid_from < end and (self.valid_to is None or start < self.valid_to)

    def overlaps(self, other: PriceRow) -> bool:
        """Whether the two validity spans share an instant."""
        return (self.valid_to is None or other.valid_from < self.valid_to) and (
            other.valid_to is None or self.valid_from < other.valid_to
        )


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Usage of one model in one hour, tier and band, split the way prices are."""

    uncached_input: int = 0
    cached_input: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    output: int = 0
    requests: int = 0
    web_search_requests: int = 0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"TokenUsage.{item.name} must be an int >= 0, got {value!r}")

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def quantities(self) -> Iterator[tuple[str, int]]:
        """(token_type, quantity) for every priced usage kind, in TOKEN_TYPES order."""
        for category, price_type in PRICE_TYPE_OF_CATEGORY.items():
            yield price_type, getattr(self, category)
        yield PriceType.REQUEST, self.requests
        yield PriceType.WEB_SEARCH, self.web_search_requests


@dataclass(frozen=True)
class Cost:
    """Expected cost of some usage. `total` covers priced types only; `unpriced` lists the others."""

    total: Decimal
    by_type: Mapping[str, Decimal]
    currency: str | None  # None when nothing was priced
    unpriced: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.unpriced


_DAWN = datetime.min.replace(tzinfo=UTC)


class PriceLayer:
    """Price rows indexed for lookups: by (provider, canonical model, token type, tier), and by model."""

    def __init__(self, rows: Iterable[PriceRow]) -> None:
        self.index = _index(rows)
        self.models = frozenset(key[:2] for key in self.index)
        self.by_model: dict[tuple[str, str], list[PriceRow]] = {}
        for key, keyed in self.index.items():
            self.by_model.setdefault(key[:2], []).extend(keyed)


ModelMatcher = Callable[[str, str], "str | None"]
"""(provider, model as spelled) → the canonical name of a priced model, or None."""


class PriceCatalog:
    """Tenant prices over the sourced overlay (`ledger/pricing/prices.csv`) over the base layer (genai-prices):
    answers "what did this cost at that time".

    Precedence, per provider × model × token type × tier: a tenant's price in effect wins (one scoped to the
    account billed wins over one for the whole provider), then the overlay's, then the base layer's. A tenant
    price applies to the provider it names only: one for `anthropic` never prices the same model billed by
    `openrouter` or `bedrock`."""

    def __init__(
        self,
        rows: Iterable[PriceRow],
        overrides: Iterable[PriceRow] = (),
        *,
        base: PriceLayer | None = None,
        base_matcher: ModelMatcher | None = None,
        aliases: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self._bundled = _index(replace(row, override=False, layer=row.layer or "overlay") for row in rows)
        override_rows = [replace(row, override=True, layer="tenant") for row in overrides]
        self._overrides = _index(row for row in override_rows if row.account is None)
        self._account_overrides = {
            account: _index(row for row in override_rows if row.account == account)
            for account in {row.account for row in override_rows if row.account is not None}
        }
        self._base = base or PriceLayer(())
        self._base_matcher = base_matcher
        self._aliases = dict(aliases or {})
        self._models = frozenset(
            key[:2] for index in (self._bundled, self._overrides, *self._account_overrides.values()) for key in index
        )
        self._resolved: dict[tuple[str, str], str | None] = {}
        self._boundaries: dict[tuple[str, str], list[datetime] | None] = {}  # `unchanged_since`, per model
        self._by_model: dict[tuple[str, str], list[PriceRow]] = {}  # every row of a model, overrides first
        for index in (*self._account_overrides.values(), self._overrides, self._bundled):
            for key, keyed in index.items():
                self._by_model.setdefault(key[:2], []).extend(keyed)

    def resolve(self, provider: str, model: str) -> str | None:
        """The catalog's canonical name for `model` billed by `provider`, or None when no price of it is known:
        the tenant's alias of the label, else the name as `normalize_model_name` spells it, else the model
        genai-prices' matching rules find (snapshots, gateway slugs, cloud ids, `-latest` names)."""
        key = (provider, model)
        if key in self._resolved:
            return self._resolved[key]
        provider = provider.strip().lower()
        canonical = normalize_model_name(provider, model)
        aliased = self._aliases.get((provider, canonical)) or self._aliases.get(("", canonical))
        if aliased is not None:
            canonical = normalize_model_name(provider, aliased)
        found: str | None = None
        if (provider, canonical) in self._models or (provider, canonical) in self._base.models:
            found = canonical
        elif self._base_matcher is not None:
            found = self._base_matcher(provider, aliased or model)
            if found is None and canonical != model:
                found = self._base_matcher(provider, canonical)
        self._resolved[key] = found
        return found

    def unit_price(
        self,
        provider: str,
        model: str,
        token_type: str,
        *,
        at: datetime,
        service_tier: str = ServiceTier.STANDARD,
        input_band: int = 0,
        billed_by: str | None = None,
        account: str | None = None,
    ) -> PriceRow | None:
        """The row in effect for one unit of `token_type` at `at`, or None (unpriced). `provider` is whose list
        price applies (`pricing_provider_of`); tenant prices apply only when they name the provider that billed
        the usage, `billed_by` (default: `provider`), and, when scoped to an account, `account`."""
        _check_query(token_type, at, service_tier, input_band)
        provider = provider.strip().lower()
        billed_by = provider if billed_by is None else billed_by.strip().lower()
        has_tenant_prices = bool(self._overrides or self._account_overrides)
        if billed_by != provider and has_tenant_prices and (own := self.resolve(billed_by, model)) is not None:
            # The tenant's own price of the model as billed by a gateway (a negotiated OpenRouter rate).
            own_key = (billed_by, own, token_type, service_tier)
            for index in self._tenant_indexes(account):
                row = _select(index.get(own_key, ()), at, input_band)
                if row is not None:
                    return row
        canonical = self.resolve(provider, model)
        if canonical is None:
            return None
        key = (provider, canonical, token_type, service_tier)
        tenant = self._tenant_indexes(account) if billed_by == provider else ()
        for index in (*tenant, self._bundled, self._base.index):
            row = _select(index.get(key, ()), at, input_band)
            if row is not None:
                return row
        return None

    @property
    def aliases(self) -> Mapping[tuple[str, str], str]:
        """The tenant's aliases: (provider or '', label as normalized) → the model it names."""
        return MappingProxyType(self._aliases)

    def has_account_prices(self) -> bool:
        """Whether some tenant price holds for one account only."""
        return bool(self._account_overrides)

    def model_count(self) -> int:
        """How many (provider, model) pairs some layer prices."""
        return len(self._models | self._base.models)

    def providers(self) -> list[str]:
        """Every provider some layer prices a model of."""
        return sorted({provider for provider, _ in self._models} | {provider for provider, _ in self._base.models})

    def _tenant_indexes(self, account: str | None) -> tuple[dict[_Key, tuple[PriceRow, ...]], ...]:
        scoped = self._account_overrides.get(account) if account is not None else None
        return (scoped, self._overrides) if scoped is not None else (self._overrides,)

    def unchanged_since(self, provider: str, model: str, at: datetime) -> datetime | None:
        """The latest moment at or before `at` at which some price of the model (any type, tier or band) starts
        or ends: every price is the same from then until `at`, so prices looked up there are prices at `at`.
        None for a model with time-windowed prices (they change by the hour). The dawn of time for a model
        whose prices never change before `at`, or that has none."""
        boundaries = self._boundaries.get((provider, model))
        if boundaries is None:
            rows = list(self._rows_of([(provider, model)]))
            windowed = any(row.window is not None for row in rows)
            moments = {row.valid_from for row in rows} | {row.valid_to for row in rows if row.valid_to is not None}
            boundaries = self._boundaries[(provider, model)] = None if windowed else sorted(moments)
        if boundaries is None:
            return None
        index = bisect_right(boundaries, at)
        return boundaries[index - 1] if index else _DAWN

    def constant_during(self, provider: str, model: str, start: datetime, end: datetime) -> bool:
        """Whether every price of the model (any type, tier or band) stays the same over [start, end): no
        row of it has a time window, and none starts or ends strictly inside the span. Lets callers price a
        whole day of usage at once instead of hour by hour."""
        for row in self._rows_of([(provider, model)]):
            if row.window is not None and row.overlaps_span(start, end):
                return False
            if start < row.valid_from < end or (row.valid_to is not None and start < row.valid_to < end):
                return False
        return True

    def price_segments(
        self, models: Iterable[tuple[str, str]], start: datetime, end: datetime
    ) -> dict[datetime, datetime]:
        """Every UTC hour of [start, end) mapped to the first hour of its day in which exactly the same price
        rows of `models` ((provider, model) pairs) are in effect, validity and time windows included. Usage
        of hours mapped alike can be summed and priced at once, at the hour they map to: a day splits into
        a few segments (peak and off-peak, say) instead of 24 hours."""

        # Only rows whose effect changes inside the span tell hours apart. A row whose validity starts or ends
        # inside the span is followed row by row; a time-windowed row valid all along is in effect exactly when
        # its window contains the hour, so its window stands for it (many rows share a few windows). Rows valid
        # all along without a window, or never valid in the span, are in effect, or not, throughout.
        def changes_inside(row: PriceRow) -> bool:
            return start < row.valid_from < end or (row.valid_to is not None and start < row.valid_to < end)

        rows = list(self._rows_of(models))
        # Rows alike in validity and window (a model's token types, mostly) are in effect at the same hours.
        followed = list(
            {(row.valid_from, row.valid_to, row.window): row for row in rows if changes_inside(row)}.values()
        )
        windows = sorted(
            {row.window for row in rows if row.window is not None and row.in_effect(start) and not changes_inside(row)},
            key=lambda window: window.spec,
        )
        segments: dict[datetime, datetime] = {}
        first_of_day: dict[tuple[bool, ...], datetime] = {}
        hour = hour_start(start)
        while hour < end:
            if hour.hour == 0:
                first_of_day = {}
            day, slot = hour.date(), (hour.weekday(), hour.hour)
            in_effect = (
                *(window.covers(day, slot) for window in windows),
                *(row.in_effect(hour) and (row.window is None or row.window.covers(day, slot)) for row in followed),
            )
            segments[hour] = first_of_day.setdefault(in_effect, hour)
            hour += timedelta(hours=1)
        return segments

    def _rows_of(self, models: Iterable[tuple[str, str]]) -> Iterator[PriceRow]:
        """Every row (overrides and bundled, any type, tier and band) of the (provider, model) pairs."""
        names = {
            (provider.strip().lower(), name)
            for provider, model in models
            if (name := self.resolve(provider, model)) is not None
        }
        for provider_and_name in sorted(names):
            yield from self._by_model.get(provider_and_name, ())
            yield from self._base.by_model.get(provider_and_name, ())

    def cost(
        self,
        provider: str,
        model: str,
        usage: TokenUsage,
        *,
        at: datetime,
        service_tier: str = ServiceTier.STANDARD,
        input_band: int = 0,
        billed_by: str | None = None,
        account: str | None = None,
    ) -> Cost:
        """Expected cost of `usage` at the prices in effect at `at`; types without a price are listed
        (`billed_by` and `account` select tenant prices, as for `unit_price`)."""
        by_type: dict[str, Decimal] = {}
        unpriced: list[str] = []
        currencies: set[str] = set()
        for token_type, quantity in usage.quantities():
            if quantity == 0:
                continue
            row = self.unit_price(
                provider,
                model,
                token_type,
                at=at,
                service_tier=service_tier,
                input_band=input_band,
                billed_by=billed_by,
                account=account,
            )
            if row is None:
                unpriced.append(token_type)
                continue
            currencies.add(row.currency)
            with localcontext(_EXACT):
                by_type[token_type] = quantity * row.unit_price / _UNITS_BY_TYPE[token_type][row.unit]
        if len(currencies) > 1:
            raise PriceConflictError(
                f"{provider}/{model} at {at.isoformat()} mixes currencies {', '.join(sorted(currencies))}"
            )
        with localcontext(_EXACT):
            total = sum(by_type.values(), Decimal(0))
        return Cost(total, MappingProxyType(by_type), currencies.pop() if currencies else None, tuple(unpriced))


# OpenRouter: "we pass through the pricing of the underlying providers" (openrouter.ai/docs/faq).
PASS_THROUGH_GATEWAYS = frozenset({"openrouter", "litellm"})


def pricing_provider_of(provider: str, model: str) -> str:
    """Whose list price applies: a gateway that passes the upstream price through (OpenRouter, LiteLLM)
    is priced as the provider its model name names (`anthropic/claude-sonnet-4.6` → anthropic)."""
    if provider in PASS_THROUGH_GATEWAYS:
        return provider_of_model(model) or provider
    return provider


def gpu_hour_cost(row: PriceRow, hours: Decimal) -> Decimal:
    """Cost of `hours` GPU-hours at a `gpu_hour` row; allocating it to tenants or models is the caller's job."""
    if row.token_type != PriceType.GPU_HOUR:
        raise PricingError(f"gpu_hour_cost needs a gpu_hour row, got token_type {row.token_type!r}")
    if not hours.is_finite() or hours < 0:
        raise ValueError(f"hours must be a finite Decimal >= 0, got {hours}")
    with localcontext(_EXACT):
        return row.price_per_token() * hours


def load_bundled_prices() -> list[PriceRow]:
    """The list prices shipped with TokenLedger (`ledger/pricing/prices.csv`)."""
    text = resources.files("ledger.pricing").joinpath(_BUNDLED).read_text(encoding="utf-8")
    return parse_price_csv(text, origin=f"ledger/pricing/{_BUNDLED}")


def parse_price_csv(text: str, *, origin: str) -> list[PriceRow]:
    """Rows of a price file; errors name `origin`, the line, the column and the offending value."""
    rows: list[PriceRow] = []
    header: list[str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        values = next(csv.reader([line]))
        if header is None:
            header = _check_header(values, origin, number)
            continue
        if len(values) != len(header):
            raise PriceFileError(f"{origin}:{number}: expected {len(header)} columns, found {len(values)}")
        rows.append(_parse_row(dict(zip(header, (v.strip() for v in values), strict=True)), origin, number))
    if header is None:
        raise PriceFileError(f"{origin}: no header line")
    return rows


def _check_header(values: Sequence[str], origin: str, number: int) -> list[str]:
    header = [value.strip() for value in values]
    missing = [name for name in _REQUIRED_COLUMNS if name not in header]
    unknown = [name for name in header if name not in (*_REQUIRED_COLUMNS, *_OPTIONAL_COLUMNS)]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if missing or unknown or duplicated:
        problems = [
            f"{label} {', '.join(names)}"
            for label, names in (("missing", missing), ("unknown", unknown), ("duplicated", duplicated))
            if names
        ]
        raise PriceFileError(f"{origin}:{number}: bad header: {'; '.join(problems)}")
    return header


def _parse_row(record: Mapping[str, str], origin: str, number: int) -> PriceRow:
    try:
        # The columns' text is validated into the row's typed values (PriceRow's validators read it).
        return PriceRow(**{"valid_to": "", **record}, origin=f"{origin}:{number}")  # type: ignore[arg-type]
    except ValidationError as invalid:
        problem = invalid.errors()[0]
        if problem["type"] == "unreadable":
            column = str(problem["loc"][0])
            message = f"column {column!r}: {problem['msg']} (value {record.get(column)!r})"
        elif problem["type"] == "contradiction":
            message = problem["msg"]
        else:
            message = f"column {'.'.join(map(str, problem['loc']))!r}: {problem['msg']}"
        raise PriceFileError(f"{origin}:{number}: {message}") from None


_Key = tuple[str, str, str, str]  # provider, canonical model, token_type, service_tier


def _index(rows: Iterable[PriceRow]) -> dict[_Key, tuple[PriceRow, ...]]:
    grouped: dict[_Key, list[PriceRow]] = {}
    for row in rows:
        provider = row.provider.strip().lower()
        key = (provider, normalize_model_name(provider, row.model), row.token_type, row.service_tier)
        for other in grouped.setdefault(key, []):
            if _clash(row, other):
                raise PriceConflictError(
                    f"{row.origin or row.model} and {other.origin or other.model} both price "
                    f"{'/'.join(key)} (context_threshold {row.context_threshold}) over the same time"
                )
        grouped[key].append(row)
    return {key: tuple(rows) for key, rows in grouped.items()}


def _clash(a: PriceRow, b: PriceRow) -> bool:
    """Whether two rows of one key could both apply at some instant (excluded dates are not considered)."""
    if a.context_threshold != b.context_threshold or not a.overlaps(b):
        return False
    if a.window is None or b.window is None:
        return a.window is None and b.window is None
    return bool(a.window.slots & b.window.slots)


def _select(rows: Sequence[PriceRow], at: datetime, input_band: int) -> PriceRow | None:
    limit = CONTEXT_BAND_THRESHOLDS[input_band - 1] if input_band else 0
    applicable = [
        row
        for row in rows
        if row.in_effect(at) and row.context_threshold <= limit and (row.window is None or row.window.contains(at))
    ]
    if not applicable:
        return None
    threshold = max(row.context_threshold for row in applicable)
    # At most one windowed and one windowless row remain (`_clash`); the windowed one is the exception.
    return min((row for row in applicable if row.context_threshold == threshold), key=lambda row: row.window is None)


def _check_query(token_type: str, at: datetime, service_tier: str, input_band: int) -> None:
    if token_type not in TOKEN_TYPES:
        raise ValueError(f"token_type {token_type!r} is not one of {', '.join(TOKEN_TYPES)}")
    if service_tier not in SERVICE_TIERS:
        raise ValueError(f"service_tier {service_tier!r} is not one of {', '.join(SERVICE_TIERS)}")
    if not 0 <= input_band <= len(CONTEXT_BAND_THRESHOLDS):
        raise ValueError(f"input_band must be 0..{len(CONTEXT_BAND_THRESHOLDS)}, got {input_band}")
    if at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
