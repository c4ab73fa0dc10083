"""The price catalog of a tenant: its own prices and model aliases from the database over the bundled overlay
(`ledger/pricing/prices.csv`) over the base layer (genai-prices' data, `ledger.pricing.base_prices`). Prices are read at
reconciliation time, so changing a price or an alias re-prices history on the next run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import InvalidRequest
from ledger.pricing.base_prices import BasePrices, bundled_base_prices
from ledger.pricing.model_names import normalize_model_name
from ledger.pricing.prices import PriceCatalog, PriceLayer, PriceRow, PricingError, UsageWindow, load_bundled_prices
from ledger.storage.database import take_turns
from ledger.storage.tables import ModelAlias, PriceOverride


@cache
def bundled_prices() -> tuple[PriceRow, ...]:
    """The sourced overlay, `ledger/pricing/prices.csv`."""
    return tuple(load_bundled_prices())


@cache
def base_layer() -> tuple[BasePrices, PriceLayer]:
    """genai-prices' data as rows, indexed once per process."""
    base = bundled_base_prices()
    return base, PriceLayer(base.rows)


def forget_loaded_prices() -> None:
    """Read the price data again on next use (after `prices update` stored a new snapshot)."""
    for loader in (bundled_base_prices, base_layer, shared_catalog):
        loader.cache_clear()


@cache
def shared_catalog() -> PriceCatalog:
    """The catalog without any tenant's prices or aliases: what the importers resolve model names with."""
    base, layer = base_layer()
    return PriceCatalog(bundled_prices(), base=layer, base_matcher=base.match)


def tenant_aliases(session: Session, tenant_id: int) -> dict[tuple[str, str], str]:
    """(provider or '', label as normalized) → the model the tenant says it names."""
    aliases = session.scalars(select(ModelAlias).where(ModelAlias.tenant_id == tenant_id))
    return {(alias.provider, alias.label): alias.model for alias in aliases}


def set_alias(session: Session, tenant_id: int, *, label: str, model: str, provider: str | None) -> str:
    """Store (or replace) a tenant's alias; the model must be one the catalog prices. Returns the model as
    stored: spelled as logged usage of it is compared (`normalize_model_name`)."""
    catalog = load_catalog(session, tenant_id)
    scope = (provider or "").strip().lower()
    canonical = catalog.resolve(scope, model) if scope else None
    if canonical is None and not scope:
        canonical = next((name for known in catalog.providers() if (name := catalog.resolve(known, model))), None)
    if canonical is None:
        where = f" for provider {scope}" if scope else ""
        raise InvalidRequest(f"model {model!r} has no known price{where}: alias a label to a priced model")
    key, named = normalize_model_name(scope, label), normalize_model_name(scope, model)
    existing = session.get(ModelAlias, (tenant_id, scope, key))
    if existing is None:
        session.add(ModelAlias(tenant_id=tenant_id, provider=scope, label=key, model=named))
    else:
        existing.model = named
    session.flush()
    return named


def tenant_overrides(session: Session, tenant_id: int) -> list[PriceRow]:
    overrides = session.scalars(
        select(PriceOverride).where(PriceOverride.tenant_id == tenant_id).order_by(PriceOverride.id)
    )
    return [_row_of(override) for override in overrides]


def load_catalog(session: Session, tenant_id: int) -> PriceCatalog:
    base, layer = base_layer()
    return PriceCatalog(
        bundled_prices(),
        tenant_overrides(session, tenant_id),
        base=layer,
        base_matcher=base.match,
        aliases=tenant_aliases(session, tenant_id),
    )


def add_overrides(session: Session, tenant_id: int, rows: Sequence[PriceRow], *, now: datetime) -> int:
    """Store a tenant's prices; refused whole when any would clash with the tenant's existing prices. Changes
    of one tenant's prices take turns, so two at once cannot each pass the check against the prices without
    the other's and together store a clash (which every later reconciliation would refuse)."""
    take_turns(session, "prices", tenant_id)
    try:
        PriceCatalog(bundled_prices(), [*tenant_overrides(session, tenant_id), *rows])
    except PricingError as error:
        raise InvalidRequest(str(error)) from error
    for row in rows:
        session.add(
            PriceOverride(
                tenant_id=tenant_id,
                provider=row.provider,
                model=row.model,
                token_type=row.token_type,
                service_tier=row.service_tier,
                context_threshold=row.context_threshold,
                unit_price=row.unit_price,
                unit=row.unit,
                currency=row.currency,
                valid_from=row.valid_from,
                valid_to=row.valid_to,
                time_window=row.window.spec if row.window else None,
                source=row.source,
                created_at=now,
                account=row.account,
            )
        )
    session.flush()
    return len(rows)


def _row_of(override: PriceOverride) -> PriceRow:
    return PriceRow(
        provider=override.provider,
        model=override.model,
        token_type=override.token_type,
        service_tier=override.service_tier,
        context_threshold=override.context_threshold,
        unit_price=override.unit_price,
        unit=override.unit,
        currency=override.currency,
        valid_from=override.valid_from,
        valid_to=override.valid_to,
        source=override.source,
        source_date=override.created_at.date(),
        window=UsageWindow.parse(override.time_window) if override.time_window else None,
        override=True,
        origin=f"price_overrides#{override.id}",
        layer="tenant",
        account=override.account,
    )
