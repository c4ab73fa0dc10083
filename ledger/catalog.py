"""The price catalog of a tenant: the bundled list prices plus the tenant's overrides from the database.
Prices are read at reconciliation time, so changing a price re-prices history on the next run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.database import take_turns
from ledger.errors import InvalidRequest
from ledger.pricing import PriceCatalog, PriceRow, PricingError, UsageWindow, load_bundled_prices
from ledger.tables import PriceOverride


@cache
def bundled_prices() -> tuple[PriceRow, ...]:
    return tuple(load_bundled_prices())


def tenant_overrides(session: Session, tenant_id: int) -> list[PriceRow]:
    overrides = session.scalars(
        select(PriceOverride).where(PriceOverride.tenant_id == tenant_id).order_by(PriceOverride.id)
    )
    return [_row_of(override) for override in overrides]


def load_catalog(session: Session, tenant_id: int) -> PriceCatalog:
    return PriceCatalog(bundled_prices(), tenant_overrides(session, tenant_id))


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
    )
