"""Model substitution: served by another model than requested, or billed under another model than logged."""

from __future__ import annotations

import random
from decimal import Decimal

from msgspec.structs import replace

from ledger.reconcile import BilledDay
from tests.reconcile.detectors.planted import BILLED, LOGGED, logged_of, only
from tests.reconcile.month import CENT, DAYS, OPENAI, PRICES, logged_day, priced, run, statement, where


def test_model_substitution_by_gateway_failover() -> None:
    rng = random.Random(3)
    swapped = [
        priced(replace(logged_day(OPENAI, day, rng, scale=0.3), model="gpt-5.4-mini", request_model="gpt-5.4"))
        for day in DAYS[9:12]
    ]
    logged = LOGGED + swapped

    finding = only(run(logged, statement(logged)), "model_substitution")

    assert (finding.evidence["requested"], finding.evidence["served"]) == ("gpt-5.4", "gpt-5.4-mini")
    assert finding.evidence["count"] == sum(r.requests for r in swapped)
    delta = sum(
        ((r.expected_cost or Decimal(0)) - (r.expected_cost_at_requested_model or Decimal(0)) for r in swapped),
        Decimal(0),
    )
    assert Decimal(str(finding.evidence["cost_delta"])) == delta < 0  # the cheaper model answered
    assert finding.subject == "requested:gpt-5.4"


def test_model_substitution_billed_under_another_model() -> None:
    opus = PRICES["claude-opus-4-6"]

    def as_opus(row: BilledDay) -> BilledDay:
        return replace(
            row, model="claude-opus-4-6", amounts={c: (q * opus[c]).quantize(CENT) for c, q in row.quantities.items()}
        )

    billed = where(BILLED, lambda r: r.api_key_id == "key_c" and r.day.day in (3, 4), as_opus)

    finding = only(run(LOGGED, billed), "model_substitution")

    relabeled = logged_of("key_c", 3, 4)
    opus_amount = sum((sum(r.amounts.values()) for r in billed if r.model == "claude-opus-4-6"), Decimal(0))
    sonnet_cost = sum((r.expected_cost or Decimal(0) for r in relabeled), Decimal(0))
    assert finding.model == "claude-sonnet-4-6"
    assert finding.subject == "billed_as:claude-opus-4-6"
    assert (finding.evidence["requested"], finding.evidence["served"]) == ("claude-sonnet-4-6", "claude-opus-4-6")
    assert finding.evidence["count"] == sum(r.successful_requests for r in relabeled)
    assert finding.impact_usd == (opus_amount - sonnet_cost).quantize(Decimal("0.000001"))
