"""Unlogged usage: billed usage of a scope with nothing logged."""

from __future__ import annotations

from decimal import Decimal

from msgspec.structs import replace

from tests.reconcile.detectors.planted import BILLED, LOGGED, only
from tests.reconcile.month import CENT, run


def test_unlogged_usage_of_a_leaked_key() -> None:
    leaked = [
        replace(
            r,
            api_key_id="key_leaked",
            quantities={c: q // 10 for c, q in r.quantities.items()},
            amounts={c: (a / 10).quantize(CENT) for c, a in r.amounts.items()},
            requests=(r.requests or 0) // 10,
        )
        for r in BILLED
        if r.api_key_id == "key_a" and r.day.day >= 20
    ]

    finding = only(run(LOGGED, BILLED + leaked), "unlogged_usage")

    assert finding.api_key_id == "key_leaked"
    assert finding.evidence["api_key_id"] == "key_leaked"
    assert finding.evidence["days"] == 12
    assert finding.evidence["tokens"] == {
        c: sum(r.quantities[c] for r in leaked) for c in ("uncached_input", "cached_input", "output")
    }
    assert finding.impact_usd == sum((sum(r.amounts.values()) for r in leaked), Decimal(0))
    assert finding.evidence["amount_source"] == "billed"
    assert finding.severity == "critical"  # a key with nothing logged at all
