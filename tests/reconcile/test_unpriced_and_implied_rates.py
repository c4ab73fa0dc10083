"""Spend spikes on models the catalog does not price (reported cost, else billed amounts, else tokens), a
price change dated by the change point of implied rates where no statement states a quantity, and the drift
accounted for by the findings."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

import pytest
from msgspec.structs import replace

from ledger.reconcile import LoggedDay
from ledger.reconcile.drift_explanation import explain_drift
from tests.reconcile.month import ANTHROPIC, CENT, DAYS, PRICES, logged_day, month, run, statement

LOGGED = month()
SPIKE_DAY = DAYS[17]


def unpriced(row: LoggedDay, *, reported: bool) -> LoggedDay:
    return replace(
        row,
        expected_cost=None,
        expected_cost_by_category={},
        expected_unit_price={},
        expected_cost_at_requested_model=None,
        reported_cost=row.expected_cost if reported else None,
    )


SPIKED = [
    logged_day(ANTHROPIC, r.day, random.Random(5), scale=5.0) if (r.api_key_id == "key_c" and r.day == SPIKE_DAY)
    else r
    for r in LOGGED
]  # fmt: skip
"""Five times the usual traffic on key_c on one day (priced at list prices)."""


@pytest.mark.parametrize(
    ("reported", "amounts", "basis"),
    [(True, False, "reported_cost"), (False, True, "billed_amount"), (False, False, "tokens")],
)
def test_a_spend_spike_on_an_unpriced_model_says_what_it_measured(reported: bool, amounts: bool, basis: str) -> None:
    logged = [unpriced(r, reported=reported) if r.api_key_id == "key_c" else r for r in SPIKED]
    billed = statement(SPIKED, amounts=amounts)  # the provider prices what the catalog does not

    spikes = [f for f in run(logged, billed).findings if f.kind == "spend_spike"]

    assert [(f.api_key_id, f.account, f.period_start.date()) for f in spikes] == [(None, "wrk_prod", SPIKE_DAY)]
    (spike,) = spikes
    assert spike.evidence["spend_basis"] == basis
    assert spike.evidence["unit"] == ("tokens" if basis == "tokens" else "USD")
    if basis == "tokens":
        assert spike.impact_usd == 0
        assert "tokens on" in spike.summary
    else:
        assert spike.impact_usd > 0


def test_an_implied_price_change_is_dated_by_its_change_point_not_by_a_noisy_day() -> None:
    """Amounts without quantities: the logged quantity prices them. A few events logged late or never move
    one day's implied rate; the price change from the 16th is still dated the 16th."""
    key = "key_c"
    noisy = {DAYS[2], DAYS[8]}
    change = DAYS[15]
    price = PRICES["claude-sonnet-4-6"]["output"]
    billed = []
    for row in statement(LOGGED):
        if row.api_key_id == key:
            output = row.quantities["output"]
            if row.day in noisy:  # 1% of the day's events never logged: billed, implied rate 1% up
                output = round(output * 1.01)
            factor = Decimal("1.2") if row.day >= change else Decimal(1)
            row = replace(row, amounts={**row.amounts, "output": (output * price * factor).quantize(CENT)})
        billed.append(replace(row, quantities={c: q for c, q in row.quantities.items() if c != "output"}))

    drifts = [f for f in run(LOGGED, billed).findings if f.kind == "price_drift"]

    (drift,) = drifts
    assert (drift.api_key_id, drift.subject) == (key, "output")
    assert drift.evidence["quantity_source"] == "logged"
    assert drift.evidence["since"] == change.isoformat()
    logged_after = sum(r.tokens.output for r in LOGGED if r.api_key_id == key and r.day >= change)
    assert abs(drift.impact_usd - logged_after * price * Decimal("0.2")) < Decimal("0.01") * logged_after * price


def test_the_drift_is_the_billing_findings_impacts_plus_a_remainder_with_anomalies_apart() -> None:
    """Tokens per key (usage pages), money per account and model (costs): 40 tokens of padding per request on
    key_a billed in both, and a day of five times the usual traffic on key_c, billed as used."""
    logged = SPIKED
    padding = {r.day: 40 * r.successful_requests for r in logged if r.api_key_id == "key_a"}
    price = PRICES["gpt-5.4"]["uncached_input"]
    usage = [
        replace(r, quantities={**r.quantities, "uncached_input": r.quantities["uncached_input"] + padding[r.day]})
        if r.api_key_id == "key_a"
        else r
        for r in statement(logged, amounts=False)
    ]

    def billed_padding(amounts: Mapping[str, Decimal], day: date) -> dict[str, Decimal]:
        return {**amounts, "uncached_input": amounts["uncached_input"] + (padding[day] * price).quantize(CENT)}

    costs = [
        replace(r, amounts=billed_padding(r.amounts, r.day)) if r.model == "gpt-5.4" else r
        for r in statement(logged, grain=("account", "model"), requests=False, source="costs")
    ]
    result = run(logged, usage + costs)

    explanation = explain_drift(result.drift, result.findings)

    assert [t.kind for t in explanation.billing] == ["padding_tokens"]
    assert [t.kind for t in explanation.at_risk_by_kind] == ["spend_spike"]
    assert explanation.at_risk > 0
    assert explanation.drift == explanation.explained + explanation.unexplained
    assert explanation.explained == sum(padding.values()) * price
    assert abs(explanation.unexplained) < Decimal("0.30")  # the costs' rounding to cents, nothing more
