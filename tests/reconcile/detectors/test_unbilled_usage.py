"""Unbilled usage: logged usage a final statement shows as zero."""

from __future__ import annotations

from decimal import Decimal

from msgspec.structs import replace

from tests.reconcile.detectors.planted import BILLED, LOGGED, logged_of, only
from tests.reconcile.month import run


def test_unbilled_usage() -> None:
    billed = [r for r in BILLED if not (r.api_key_id == "key_b" and r.day.day in (5, 6, 7))]

    finding = only(run(LOGGED, billed), "unbilled_usage")

    missing = logged_of("key_b", 5, 7)
    expected = sum((r.expected_cost or Decimal(0) for r in missing), Decimal(0))
    assert finding.evidence["total_tokens"] == sum(r.tokens.total() for r in missing)
    assert finding.evidence["days"] == 3
    assert finding.evidence["expected_cost"] == str(expected)
    assert finding.impact_usd == -expected.quantize(Decimal("0.000001"))


def test_usage_under_an_open_statement_is_not_unbilled_yet() -> None:
    billed = [
        replace(r, final=False) if r.day.day >= 25 else r
        for r in BILLED
        if not (r.api_key_id == "key_b" and r.day.day in (26, 27))
    ]

    assert run(LOGGED, billed).findings == ()
