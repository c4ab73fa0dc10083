"""The base price layer: genai-prices' data (Pydantic's price database, https://github.com/pydantic/genai-prices)
mapped to PriceRows.

The rows are read from the installed package's bundled snapshot, or from a snapshot `tokenledger prices update`
fetched with genai-prices' own update mechanism (`genai_prices.UpdatePrices`). They are the lowest layer of the
catalog: the sourced overlay (`ledger/pricing/prices.csv`) and a tenant's own prices win over them.

How genai-prices' data maps to ours (field names from `genai_prices/data_units.py` and `genai_prices/types.py`):

- price keys: `input_mtok` → input, `cache_read_mtok` → cached_input, `cache_write_mtok` and
  `cache_write_5m_mtok` → cache_write_5m, `cache_write_1h_mtok` → cache_write_1h, `output_mtok` → output (all
  per 1M tokens), `web_searches_kcount` → web_search, `requests_kcount` → request (per 1K requests). Audio,
  image and other modalities have no token type of ours and are left out.
- tiered prices (`TieredPrices`, a cliff on the request's input tokens, like our input bands): the base is the
  threshold-0 row, a tier starting at one of CONTEXT_BAND_THRESHOLDS is the row of that threshold; a tier at
  any other start cannot be told apart by the rollup and is left out (the base price applies there).
- dated prices (`ConditionalPrice` with a `StartDateConstraint`) become rows with `valid_from`/`valid_to`;
  the first price holds from 2000-01-01 (genai-prices gives no start for it).
- time-of-day prices (`TimeOfDateConstraint`) become windowed rows when they start and end on whole UTC
  hours; a model whose prices change at other times of day is left out of this layer (the overlay prices it).
- price variants by request context: `{"processing": "batch"}` → batch, `{"service_tier": "flex"}` → flex,
  `{"service_tier": "priority"}` → priority; other variants (speed, routes) have no tier of ours.
- providers: genai-prices' `aws` is our `bedrock`; a provider's `fallback_model_providers` (Vertex selling
  Claude, Azure selling OpenAI models) are priced under that provider too; Qwen (Alibaba Model Studio), which
  genai-prices lists only through OpenRouter's pass-through prices (`qwen/…`), is priced from those.

The prices are whatever genai-prices states; nothing here computes a price. Every row's `source` names the
provider's pricing pages and the genai-prices version; `origin` names the genai-prices model id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cache
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from genai_prices import data_snapshot
from genai_prices import types as genai

from ledger.pricing.context_bands import CONTEXT_BAND_THRESHOLDS
from ledger.pricing.model_names import normalize_model_name
from ledger.pricing.prices import PRICE_DECIMALS, PriceRow, PricingError, UsageWindow
from ledger.vocabulary import PriceType, ServiceTier

logger = logging.getLogger(__name__)

__all__ = ["BASE_LAYER", "BasePrices", "base_prices_from", "bundled_base_prices"]

BASE_LAYER = "genai-prices"
_DAWN = datetime(2000, 1, 1, tzinfo=UTC)
_PACKAGE_PAGE = "https://pypi.org/project/genai-prices/{version}/"

# genai-prices provider id → ours, where they differ.
_OUR_PROVIDER = {"aws": "bedrock"}
# Our providers genai-prices knows only through OpenRouter's pass-through prices: the slug prefix to take.
_THROUGH_OPENROUTER = {"qwen": "qwen/"}

_TOKEN_KEYS: Mapping[str, PriceType] = {
    "input_mtok": PriceType.INPUT,
    "cache_read_mtok": PriceType.CACHED_INPUT,
    "cache_write_mtok": PriceType.CACHE_WRITE_5M,
    "cache_write_5m_mtok": PriceType.CACHE_WRITE_5M,  # wins over the generic cache_write_mtok (read after it)
    "cache_write_1h_mtok": PriceType.CACHE_WRITE_1H,
    "output_mtok": PriceType.OUTPUT,
}
_REQUEST_KEYS: Mapping[str, PriceType] = {
    "web_searches_kcount": PriceType.WEB_SEARCH,
    "requests_kcount": PriceType.REQUEST,
}
# Our service tier → the request context genai-prices selects its variants by (`PriceVariant.when`).
_TIER_CONTEXTS: Mapping[ServiceTier, Mapping[str, str]] = {
    ServiceTier.BATCH: {"processing": "batch"},
    ServiceTier.FLEX: {"service_tier": "flex"},
    ServiceTier.PRIORITY: {"service_tier": "priority"},
}


@dataclass(frozen=True)
class BasePrices:
    """The rows of the base layer and the model matching that comes with them."""

    rows: tuple[PriceRow, ...]
    version: str
    """genai-prices' package version."""
    data_date: date
    """The day the data was read: the package's install day for the bundled snapshot (the package states no
    date of its own), the fetch day for an updated one."""
    updated: bool
    """Whether the data comes from `prices update` rather than the package's bundled snapshot."""
    skipped: tuple[str, ...]
    """`provider/model` ids left out because their prices cannot be represented (see module docstring)."""
    _providers: Mapping[str, genai.Provider] = field(repr=False)
    _all_providers: list[genai.Provider] = field(repr=False)
    _canonical: Mapping[tuple[str, int], str] = field(repr=False)
    """(our provider, id() of a genai-prices ModelInfo) → the canonical name its rows carry."""

    @property
    def model_count(self) -> int:
        """How many (provider, model) pairs the layer prices."""
        return len({(row.provider, row.model) for row in self.rows})

    def describe(self) -> str:
        if self.updated:
            return f"genai-prices data fetched {self.data_date.isoformat()} (package {self.version})"
        return f"genai-prices {self.version}, bundled snapshot (installed {self.data_date.isoformat()})"

    def match(self, provider: str, raw: str) -> str | None:
        """The canonical name of the model genai-prices' matching rules find for `raw` billed by `provider`
        (snapshots, gateway slugs, cloud ids it knows), or None."""
        source = self._providers.get(provider)
        if source is None:
            return None
        prefix = _THROUGH_OPENROUTER.get(provider, "")
        refs = [raw.strip().lower()]
        if prefix and not refs[0].startswith(prefix):
            refs.append(prefix + refs[0].rsplit("/", 1)[-1])
        for ref in refs:
            try:
                model = source.find_model(ref, all_providers=self._all_providers)
            except Exception:  # genai-prices' matchers are data: never let one break pricing
                model = None
            if model is not None and (name := self._canonical.get((provider, id(model)))) is not None:
                return name
        return None


@cache
def bundled_base_prices() -> BasePrices:
    """The base layer from genai-prices' snapshot: an updated one stored by `prices update` when the data
    directory holds one, else the one bundled with the installed package."""
    from ledger.settings import get_settings

    stored = stored_snapshot_path(get_settings().data_dir)
    if stored.is_file():
        try:
            return base_prices_from(
                genai._providers_from_raw(json.loads(stored.read_bytes())),
                data_date=datetime.fromtimestamp(stored.stat().st_mtime, UTC).date(),
                updated=True,
            )
        except (ValueError, TypeError) as error:
            logger.warning("%s cannot be read (%s): using genai-prices' bundled snapshot", stored, error)
    from genai_prices import data as bundled

    installed = Path(bundled.__file__)
    return base_prices_from(
        bundled.providers, data_date=datetime.fromtimestamp(installed.stat().st_mtime, UTC).date(), updated=False
    )


def stored_snapshot_path(data_dir: Path) -> Path:
    return data_dir / "genai-prices.json"


def base_prices_from(providers: list[genai.Provider], *, data_date: date, updated: bool) -> BasePrices:
    """The base layer of a genai-prices provider list."""
    version = package_version("genai-prices")
    by_id = {provider.id: provider for provider in providers}
    rows: list[PriceRow] = []
    skipped: list[str] = []
    canonical: dict[tuple[str, int], str] = {}
    ours: dict[str, genai.Provider] = {}
    for provider in providers:
        our_provider = _OUR_PROVIDER.get(provider.id, provider.id)
        ours[our_provider] = provider
        models = list(provider.models)
        for fallback in provider.fallback_model_providers or ():
            models.extend(by_id[fallback].models if fallback in by_id else ())
        _add_models(our_provider, provider, models, data_date, version, rows, skipped, canonical)
    openrouter = by_id.get("openrouter")
    if openrouter is not None:
        for our_provider, prefix in _THROUGH_OPENROUTER.items():
            models = [model for model in openrouter.models if model.id.startswith(prefix)]
            _add_models(our_provider, openrouter, models, data_date, version, rows, skipped, canonical)
            ours[our_provider] = openrouter
    return BasePrices(
        rows=tuple(rows),
        version=version,
        data_date=data_date,
        updated=updated,
        skipped=tuple(skipped),
        _providers=ours,
        _all_providers=providers,
        _canonical=canonical,
    )


def _add_models(
    our_provider: str,
    provider: genai.Provider,
    models: Iterable[genai.ModelInfo],
    data_date: date,
    version: str,
    rows: list[PriceRow],
    skipped: list[str],
    canonical: dict[tuple[str, int], str],
) -> None:
    taken: set[str] = set()
    # Bedrock sells most models in-region and as global cross-region profiles (a few % cheaper); the names
    # traffic and statements carry (`us.…`, `eu.…`, in-region ids) are regional, so those prices come first.
    for model in sorted(models, key=lambda model: model.id.startswith("global.")):
        name = normalize_model_name(our_provider, model.id)
        if name in taken:
            canonical[(our_provider, id(model))] = name
            continue
        try:
            model_rows = list(_model_rows(our_provider, provider, model, name, data_date, version))
        except _NotRepresentable:
            skipped.append(f"{provider.id}/{model.id}")
            continue
        if not model_rows:
            continue
        taken.add(name)
        canonical[(our_provider, id(model))] = name
        rows.extend(model_rows)


class _NotRepresentable(PricingError):
    """Prices that change at a time of day that is not a whole UTC hour."""


def _model_rows(
    our_provider: str, provider: genai.Provider, model: genai.ModelInfo, name: str, data_date: date, version: str
) -> Iterator[PriceRow]:
    """Every row of one model: its prices sampled with genai-prices' own selection (`ModelInfo.get_prices`) at
    each span between price changes, each UTC hour of the day when its prices depend on the hour, and each
    service tier it has a variant for."""
    starts = sorted(_start_dates(model))
    spans = list(zip([_DAWN, *starts], [*starts, None], strict=True))
    hourly = _has_time_of_day(model)
    if hourly:
        _check_whole_hours(model)
    tiers = [
        ServiceTier.STANDARD,
        *(tier for tier, context in _TIER_CONTEXTS.items() if _has_variant(model, context)),
    ]
    urls = " ".join(provider.pricing_urls or ())
    source = f"{urls} {_PACKAGE_PAGE.format(version=version)}".strip()
    note = f"genai-prices {provider.id}/{model.id}"
    for tier in tiers:
        context = _TIER_CONTEXTS.get(tier)
        # (token type, threshold, unit) → the price at each span, each hour of the day.
        grid: dict[tuple[str, int, str], list[list[Decimal | None]]] = {}
        for span_index, (start, _) in enumerate(spans):
            for hour in range(24) if hourly else (12,):
                at = datetime.combine(start.date(), time(hour), UTC)
                prices = model.get_prices(at, context)
                for key, value in _price_values(prices):
                    cell = grid.setdefault(key, [[None] * (24 if hourly else 1) for _ in spans])
                    cell[span_index][hour if hourly else 0] = value
        for (token_type, threshold, unit), by_span in grid.items():
            yield from _rows_over_time(
                our_provider, name, token_type, tier, threshold, unit, spans, by_span, source, data_date, note
            )


def _rows_over_time(
    provider: str,
    name: str,
    token_type: str,
    tier: str,
    threshold: int,
    unit: str,
    spans: list[tuple[datetime, datetime | None]],
    by_span: list[list[Decimal | None]],
    source: str,
    data_date: date,
    note: str,
) -> Iterator[PriceRow]:
    """Rows for one price slot: consecutive spans with the same prices merge; within a span, the price most
    hours have is the windowless row, the others windowed rows (a windowed row wins in its hours)."""
    index = 0
    while index < len(spans):
        end_index = index
        while end_index + 1 < len(spans) and by_span[end_index + 1] == by_span[index]:
            end_index += 1
        valid_from, valid_to = spans[index][0], spans[end_index][1]
        hours = by_span[index]
        counts: dict[Decimal, int] = {}
        for value in hours:
            if value is not None:
                counts[value] = counts.get(value, 0) + 1
        if counts:
            common = max(counts, key=lambda value: counts[value])
            windows: dict[Decimal | None, list[int]] = {}
            for hour, value in enumerate(hours):
                if value != common:
                    windows.setdefault(value, []).append(hour)
            # An hour with no price at all cannot be carved out of the windowless row: leave the slot out.
            if None not in windows and _fits(common):
                yield _row(
                    provider,
                    name,
                    token_type,
                    tier,
                    threshold,
                    common,
                    unit,
                    valid_from,
                    valid_to,
                    None,
                    source,
                    data_date,
                    note,
                )
                for value, in_hours in windows.items():
                    if value is not None and _fits(value):
                        window = UsageWindow.parse(",".join(f"{h:02d}-{h + 1:02d}" for h in in_hours))
                        yield _row(
                            provider,
                            name,
                            token_type,
                            tier,
                            threshold,
                            value,
                            unit,
                            valid_from,
                            valid_to,
                            window,
                            source,
                            data_date,
                            note,
                        )
        index = end_index + 1


def _row(
    provider: str,
    name: str,
    token_type: str,
    tier: str,
    threshold: int,
    price: Decimal,
    unit: str,
    valid_from: datetime,
    valid_to: datetime | None,
    window: UsageWindow | None,
    source: str,
    data_date: date,
    note: str,
) -> PriceRow:
    return PriceRow(
        provider=provider,
        model=name,
        token_type=token_type,
        service_tier=tier,
        context_threshold=threshold,
        unit_price=price,
        unit=unit,
        currency="USD",
        valid_from=valid_from,
        valid_to=valid_to,
        source=source,
        source_date=data_date,
        window=window,
        note=note,
        origin=note,
        layer=BASE_LAYER,
    )


def _fits(price: Decimal) -> bool:
    exponent = price.as_tuple().exponent
    return price.is_finite() and price >= 0 and isinstance(exponent, int) and -exponent <= PRICE_DECIMALS


def _price_values(prices: genai.ModelPrice) -> Iterator[tuple[tuple[str, int, str], Decimal]]:
    """(token type, context threshold, unit) → price, for the keys of `prices` we have a token type for."""
    values: dict[tuple[str, int, str], Decimal] = {}
    for key, token_type in _TOKEN_KEYS.items():
        for threshold, value in _by_threshold(getattr(prices, key, None)):
            values[(token_type, threshold, "1M tokens")] = value
    for key, token_type in _REQUEST_KEYS.items():
        for threshold, value in _by_threshold(getattr(prices, key, None)):
            if threshold == 0:
                values[(token_type, 0, "1K requests")] = value
    yield from values.items()


def _by_threshold(value: Decimal | genai.TieredPrices | None) -> Iterator[tuple[int, Decimal]]:
    if value is None:
        return
    if isinstance(value, genai.TieredPrices):
        yield 0, value.base
        for tier in value.tiers:
            if tier.start in CONTEXT_BAND_THRESHOLDS:  # crossing `start` prices the whole request: our bands
                yield tier.start, tier.price
        return
    yield 0, value


def _constraints(model: genai.ModelInfo) -> Iterator[object]:
    if isinstance(model.prices, list):
        yield from (conditional.constraint for conditional in model.prices)
    yield from (variant.constraint for variant in model.price_variants or ())


def _start_dates(model: genai.ModelInfo) -> set[datetime]:
    return {
        datetime.combine(constraint.start_date, time(), UTC)
        for constraint in _constraints(model)
        if isinstance(constraint, genai.StartDateConstraint) and constraint.start_date > _DAWN.date()
    }


def _has_time_of_day(model: genai.ModelInfo) -> bool:
    return any(isinstance(constraint, genai.TimeOfDateConstraint) for constraint in _constraints(model))


def _check_whole_hours(model: genai.ModelInfo) -> None:
    for constraint in _constraints(model):
        if isinstance(constraint, genai.TimeOfDateConstraint):
            for moment in (constraint.start_time, constraint.end_time):
                if moment.minute or moment.second or moment.microsecond:
                    raise _NotRepresentable(f"{model.id}: price changes at {moment.isoformat()}")


def _has_variant(model: genai.ModelInfo, context: Mapping[str, str]) -> bool:
    return any(
        all(context.get(key) == value for key, value in variant.when.items()) for variant in model.price_variants or ()
    )


def fetch_latest(url: str | None, timeout: float) -> bytes:
    """genai-prices' latest data document, fetched with its own update mechanism (`UpdatePrices`, which also
    checks that it parses into providers). Raises what the fetch raised (no network, an HTTP error, a malformed
    document) or TimeoutError."""
    import httpx2
    from genai_prices import UpdatePrices

    fetched: list[bytes] = []

    @dataclass
    class KeepingTheDocument(UpdatePrices):
        """UpdatePrices whose fetch also keeps the document, so that later processes can load it."""

        def fetch(self) -> data_snapshot.DataSnapshot | None:
            response = httpx2.get(self.url, timeout=self.request_timeout)
            response.raise_for_status()
            payload = json.loads(response.content)
            if not isinstance(payload, list):
                raise ValueError("expected the fetched prices to be a list of providers")
            snapshot = data_snapshot.DataSnapshot(genai._providers_from_raw(payload), from_auto_update=True)
            fetched.append(response.content)
            return snapshot

    options: dict[str, Any] = {"request_timeout": httpx2.Timeout(timeout=timeout, connect=timeout)}
    if url:
        options["url"] = url
    updater = KeepingTheDocument(**options)
    updater.start()
    try:
        if not updater.wait(timeout=timeout * 3):
            raise TimeoutError(f"no answer from {updater.url} within {timeout * 3:.0f} s")
    finally:
        updater.stop()  # type: ignore[no-untyped-call]
    return fetched[-1]
