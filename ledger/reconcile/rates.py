"""Billed rates against catalog rates: per bucket and category, the billed amount against the quantity
priced at the expected unit price in effect (from the logged rows, which were priced at the time of use)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ledger.reconcile.model import Comparison, ReconcileSettings


@dataclass(frozen=True, slots=True)
class RateCheck:
    bucket: Comparison
    category: str
    quantity: int
    quantity_source: str
    """"billed" when the statement states the quantity, "billed_rolled_up" when a finer statement of the same day
    states it (summed up to this grain), else "logged" (an implied rate)."""
    amount: Decimal
    expected_unit_price: Decimal

    @property
    def billed_unit_price(self) -> Decimal:
        return self.amount / self.quantity

    @property
    def expected_amount(self) -> Decimal:
        return self.quantity * self.expected_unit_price

    @property
    def overcharge(self) -> Decimal:
        return self.amount - self.expected_amount


def rate_checks(regular_buckets: Sequence[Comparison], category: str) -> list[RateCheck]:
    """Regular buckets of one scope (see `excess.regular`) where the category's billed amount, a quantity and
    an expected price are known."""
    checks = []
    for bucket in regular_buckets:
        amount = bucket.billed_amounts.get(category)
        if amount is None:
            continue
        price = bucket.logged.unit_price(category)
        if price is None:
            continue
        if category in bucket.billed_quantities:
            quantity, source = bucket.billed_quantities[category], "billed"
        elif category in bucket.rate_quantities:
            quantity, source = bucket.rate_quantities[category], "billed_rolled_up"
        else:
            quantity, source = bucket.logged.tokens.get(category), "logged"
        if quantity > 0:
            checks.append(RateCheck(bucket, category, quantity, source, amount, price))
    return checks


def deviates(check: RateCheck, settings: ReconcileSettings) -> bool:
    """The billed rate differs from the expected one beyond the price tolerance and statement rounding."""
    allowed = max(settings.price_rel_tolerance * check.expected_amount, settings.amount_rounding)
    return abs(check.overcharge) > allowed
