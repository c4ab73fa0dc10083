"""Missing finish reasons: streamed responses that ended without one, above the tolerated rate."""

from __future__ import annotations

from decimal import Decimal

from msgspec.structs import replace

from tests.reconcile.detectors.planted import LOGGED, only
from tests.reconcile.month import run, statement


def test_missing_finish_reason() -> None:
    logged = [
        replace(r, streamed_missing_finish=r.streamed_requests * 4 // 100) if r.api_key_id == "key_a" else r
        for r in LOGGED
    ]

    finding = only(run(logged, statement(logged)), "missing_finish_reason")

    rows = [r for r in logged if r.api_key_id == "key_a"]
    missing, streamed = sum(r.streamed_missing_finish for r in rows), sum(r.streamed_requests for r in rows)
    assert finding.evidence["count"] == missing
    assert finding.evidence["rate"] == str((Decimal(missing) / streamed).quantize(Decimal("0.0001")))
    assert finding.severity == "warning"  # 4% is above the 2% warning rate, below the 10% critical one
