"""Pricing logged usage with the catalog in effect when it was used: the per-token prices of a run, looked up
once per value, and the models whose price changes within a day, whose usage is priced per price segment."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.periods import Period, day_start
from ledger.pricing.prices import PriceCatalog, pricing_provider_of
from ledger.vocabulary import PRICE_TYPE_OF_CATEGORY, TOKEN_CATEGORIES, TokenCategory

CATEGORIES: tuple[str, ...] = tuple(category.value for category in TOKEN_CATEGORIES)
"""The token categories, in order, as the plain strings they stand for: the keywords of TokenCounts, and dict
keys that hash and compare at str's own speed (a StrEnum member's go through its subclass)."""
PricedAs = tuple[str, str | None, str, str, str, int]
"""A rollup scope as `UnitPrices` prices it: provider, account (None unless prices depend on it), served and
requested model as spelled, tier, input band."""
PricePairs = tuple[tuple[Decimal | None, Decimal | None], ...]
"""Per token category, in `CATEGORIES` order: the per-token price at the served and at the requested
model (None: unpriced)."""


class UnitPrices:
    """The catalog's per-token prices for one run, each looked up once per (model, category, tier, band,
    moment): every memo is keyed by those values and lives as long as the run's object."""

    def __init__(self, catalog: PriceCatalog) -> None:
        self._catalog = catalog
        self._per_token: dict[tuple[str, str | None, str, str, str, int, datetime], Decimal | None] = {}
        self._pairs: dict[tuple[Any, ...], PricePairs] = {}
        self._pairs_since: dict[tuple[Any, ...], PricePairs] = {}

    def per_token(
        self,
        provider: str,
        account: str | None,
        model: str,
        category: str,
        tier: str,
        band: int,
        at: datetime,
    ) -> Decimal | None:
        key = (provider, account, model, category, tier, band, at)
        if key not in self._per_token:
            row = self._catalog.unit_price(
                pricing_provider_of(provider, model),
                model,
                PRICE_TYPE_OF_CATEGORY[TokenCategory(category)],
                at=at,
                service_tier=tier or "standard",
                input_band=band,
                billed_by=provider,
                account=account,
            )
            self._per_token[key] = None if row is None else row.price_per_token()
        return self._per_token[key]

    def served_and_requested(self, scope: PricedAs, at: datetime) -> PricePairs:
        """Per category: the per-token price at the served and at the requested model of `scope`, at `at`.
        Looked up once per span in which neither model's prices change (a month of days, mostly)."""
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
                for category in CATEGORIES
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


def hourly_models(session: Session, tenant_id: int, window: Period, catalog: PriceCatalog) -> HourlyModels:
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


def segment_days(hourly: HourlyModels) -> dict[str, frozenset[date]]:
    """Per provider, the days its hourly-priced models' usage is summed per price segment: every day on which
    one of them changes price (the segment query sums all of them for a provider's hour)."""
    days: dict[str, frozenset[date]] = {}
    for (provider, _), varying in hourly.items():
        days[provider] = days.get(provider, frozenset()) | varying
    return days


def segments(hourly: HourlyModels, window: Period, catalog: PriceCatalog) -> dict[str, list[Any]]:
    """Every hour of the segment days (`segment_days`) mapped to its price segment, per provider of the
    hourly-priced models: the array parameters of the segment query."""
    providers: list[str] = []
    hours: list[datetime] = []
    first_hours: list[datetime] = []
    for provider, days in sorted(segment_days(hourly).items()):
        models = [(pricing_provider_of(provider, model), model) for named, model in hourly if named == provider]
        for hour, first_hour in catalog.price_segments(models, window.start, window.end).items():
            if hour.date() in days:
                providers.append(provider)
                hours.append(hour)
                first_hours.append(first_hour)
    return {"segment_providers": providers, "segment_hours": hours, "segment_first_hours": first_hours}
