"""Price drift: a category billed at another unit price than the catalog's from some day on."""

from __future__ import annotations

from decimal import Decimal

from msgspec.structs import replace

from tests.reconcile.detectors.planted import BILLED, BY_DAY, LOGGED, only
from tests.reconcile.month import CENT, MILLION, PRICES, bill_quantity, run, statement, where


def test_price_drift() -> None:
    new_price = Decimal("16.50") / MILLION
    billed = where(
        BILLED,
        lambda r: r.api_key_id == "key_a" and r.day.day >= 15,
        lambda r: bill_quantity(r, "output", r.quantities["output"], unit_price=new_price),
    )

    finding = only(run(LOGGED, billed), "price_drift")

    drifted = [r for r in billed if r.api_key_id == "key_a" and r.day.day >= 15]
    quantity = sum(r.quantities["output"] for r in drifted)
    amount = sum(r.amounts["output"] for r in drifted)
    assert finding.subject == "output"
    assert finding.evidence["since"] == "2026-10-15"
    assert finding.evidence["expected_unit_price"] == "15.000000"
    assert abs(Decimal(str(finding.evidence["billed_unit_price"])) - Decimal("16.50")) < Decimal("0.001")
    assert finding.evidence["quantity"] == quantity
    assert finding.evidence["quantity_source"] == "billed"
    assert finding.impact_usd == (amount - quantity * PRICES["gpt-5.4"]["output"]).quantize(Decimal("0.000001"))


def test_price_drift_on_an_amount_only_statement_uses_the_logged_quantity() -> None:
    costs = [replace(r, quantities={}, requests=None) for r in BILLED]
    costs = where(
        costs,
        lambda r: r.api_key_id == "key_b" and r.day.day >= 20,
        lambda r: replace(r, amounts={**r.amounts, "output": (r.amounts["output"] * Decimal("1.2")).quantize(CENT)}),
    )

    finding = only(run(LOGGED, costs), "price_drift")

    assert finding.evidence["quantity_source"] == "logged"
    assert finding.evidence["since"] == "2026-10-20"
    assert abs(Decimal(str(finding.evidence["billed_unit_price"])) - Decimal("5.40")) < Decimal("0.001")


def test_an_implied_rate_moved_by_a_quantity_finding_is_not_price_drift() -> None:
    """Quantities per key from the usage report, amounts per account and model from the cost report: the
    padding shows in the first, and the amount it moved must not show as a price change in the second."""
    padded = where(
        statement(LOGGED, amounts=False, source="usage_api"),
        lambda r: r.api_key_id == "key_a",
        lambda r: replace(
            r,
            quantities={
                **r.quantities,
                "uncached_input": r.quantities["uncached_input"] + 60 * BY_DAY[(r.day, "key_a")].successful_requests,
            },
        ),
    )
    price = PRICES["gpt-5.4"]["uncached_input"]
    costs = where(
        [replace(r, quantities={}) for r in statement(LOGGED, grain=("account", "model"), source="cost_api")],
        lambda r: r.model == "gpt-5.4",
        lambda r: replace(
            r,
            amounts={
                **r.amounts,
                "uncached_input": r.amounts["uncached_input"]
                + (60 * BY_DAY[(r.day, "key_a")].successful_requests * price).quantize(CENT),
            },
        ),
    )

    finding = only(run(LOGGED, padded + costs), "padding_tokens")

    assert finding.evidence["tokens_per_request"] == "60.00"
