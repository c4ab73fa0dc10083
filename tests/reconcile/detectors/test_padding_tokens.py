"""Padding: a constant number of tokens per request billed on top of the logged input."""

from __future__ import annotations

from decimal import Decimal

from msgspec.structs import replace

from tests.reconcile.detectors.planted import BILLED, BY_DAY, LOGGED, logged_of, only
from tests.reconcile.month import PRICES, bill_quantity, run, statement, where


def test_padding_tokens() -> None:
    billed = where(
        BILLED,
        lambda r: r.api_key_id == "key_a",
        lambda r: bill_quantity(
            r, "uncached_input", r.quantities["uncached_input"] + 12 * BY_DAY[(r.day, "key_a")].successful_requests
        ),
    )

    finding = only(run(LOGGED, billed), "padding_tokens")

    requests = sum(r.successful_requests for r in logged_of("key_a"))
    assert finding.api_key_id == "key_a"
    assert finding.model == "gpt-5.4"
    assert finding.evidence["tokens_per_request"] == "12.00"
    assert finding.evidence["excess_tokens"] == 12 * requests
    assert finding.evidence["requests"] == requests
    assert finding.evidence["days_observed"] == 31
    assert Decimal(str(finding.evidence["fit"]["r_squared"])) >= Decimal("0.99")  # type: ignore[index,call-overload]
    assert finding.impact_usd == (12 * requests * PRICES["gpt-5.4"]["uncached_input"]).quantize(Decimal("0.000001"))
    assert f"12.0 tokens per request over {requests:,} requests" in finding.summary
    assert len(finding.evidence["series"]) == 31  # type: ignore[arg-type]


def test_padding_above_the_token_tolerance_is_not_also_a_quantity_mismatch() -> None:
    billed = where(
        BILLED,
        lambda r: r.api_key_id == "key_a",
        lambda r: bill_quantity(
            r, "uncached_input", r.quantities["uncached_input"] + 60 * BY_DAY[(r.day, "key_a")].successful_requests
        ),
    )

    finding = only(run(LOGGED, billed), "padding_tokens")

    assert finding.evidence["tokens_per_request"] == "60.00"


def test_unpriced_usage_is_reported_without_inventing_a_price() -> None:
    unpriced = [
        replace(
            r,
            expected_cost=None,
            expected_cost_by_category={},
            expected_unit_price={},
            expected_cost_at_requested_model=None,
        )
        if r.api_key_id == "key_a"
        else r
        for r in LOGGED
    ]
    billed = where(
        statement(LOGGED, amounts=False),
        lambda r: r.api_key_id == "key_a",
        lambda r: replace(
            r,
            quantities={
                **r.quantities,
                "uncached_input": r.quantities["uncached_input"] + 60 * BY_DAY[(r.day, "key_a")].successful_requests,
            },
        ),
    )

    result = run(unpriced, billed)

    finding = only(result, "padding_tokens")
    assert finding.impact_usd == 0
    assert finding.evidence["impact_priced"] is False
    assert finding.evidence["expected_unit_price_per_1m"] is None
    [drift] = [d for d in result.drift if d.model == "gpt-5.4"]
    assert drift.expected_cost is None
