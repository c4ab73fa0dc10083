"""Quantity mismatches: a token category billed beyond tolerance of the logged, nothing else explaining it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.reconcile.detectors.planted import BILLED, LOGGED, logged_of, only
from tests.reconcile.month import PRICES, bill_quantity, run, where


def test_quantity_mismatch_on_output() -> None:
    billed = where(
        BILLED,
        lambda r: r.api_key_id == "key_b",
        lambda r: bill_quantity(r, "output", round(r.quantities["output"] * 1.04)),
    )

    finding = only(run(LOGGED, billed), "quantity_mismatch")

    logged = sum(r.tokens.output for r in logged_of("key_b"))
    billed_output = sum(r.quantities["output"] for r in billed if r.api_key_id == "key_b")
    assert finding.subject == "output"
    assert (finding.evidence["logged"], finding.evidence["billed"]) == (logged, billed_output)
    assert finding.evidence["difference"] == billed_output - logged
    assert finding.evidence["tolerance"]["tokens"] == -(-logged * 5 // 1000)  # type: ignore[index,call-overload]
    assert finding.impact_usd == ((billed_output - logged) * PRICES["gpt-5.4-mini"]["output"]).quantize(
        Decimal("0.000001")
    )


@pytest.mark.parametrize("key", ["key_a", "key_b", "key_c"])
def test_everything_planted_at_once_is_reported_once_per_kind(key: str) -> None:
    """Anomalies on one key do not leak into the others (each run plants on one key)."""
    billed = where(
        BILLED,
        lambda r: r.api_key_id == key,
        lambda r: bill_quantity(r, "output", round(r.quantities["output"] * 1.10)),
    )

    result = run(LOGGED, billed)

    assert [(f.kind, f.api_key_id, f.subject) for f in result.findings] == [("quantity_mismatch", key, "output")]
