"""Cache mischarges: cache reads billed as uncached input, cache writes never logged, 5-minute writes at the
1-hour rate."""

from __future__ import annotations

from decimal import Decimal

from ledger.reconcile import BilledDay
from tests.reconcile.detectors.planted import BILLED, LOGGED, logged_of, only
from tests.reconcile.month import PRICES, bill_quantity, run, where


def test_cache_mischarge_cached_input_billed_as_uncached() -> None:
    def a_quarter_of_cache_reads_as_uncached(row: BilledDay) -> BilledDay:
        moved = row.quantities["cached_input"] // 4
        row = bill_quantity(row, "cached_input", row.quantities["cached_input"] - moved)
        return bill_quantity(row, "uncached_input", row.quantities["uncached_input"] + moved)

    billed = where(BILLED, lambda r: r.api_key_id == "key_c" and r.day.day >= 10, a_quarter_of_cache_reads_as_uncached)

    finding = only(run(LOGGED, billed), "cache_mischarge")

    cached = sum(r.tokens.cached_input for r in logged_of("key_c"))
    moved = sum(r.tokens.cached_input // 4 for r in logged_of("key_c", 10))
    prices = PRICES["claude-sonnet-4-6"]
    assert finding.evidence["cached_tokens_logged"] == cached
    assert finding.evidence["cached_tokens_billed"] == cached - moved
    overcharge = moved * (prices["uncached_input"] - prices["cached_input"])
    assert Decimal(str(finding.evidence["overcharge"])) == overcharge
    assert finding.impact_usd == overcharge.quantize(Decimal("0.000001"))
    assert [i["issue"] for i in finding.evidence["issues"]] == ["cached_billed_as_uncached"]  # type: ignore[index,union-attr]


def test_cache_mischarge_cache_writes_never_logged() -> None:
    extra = 400_000
    billed = where(
        BILLED,
        lambda r: r.api_key_id == "key_c" and r.day.day in (3, 4, 5),
        lambda r: bill_quantity(r, "cache_write_1h", r.quantities["cache_write_1h"] + extra),
    )

    finding = only(run(LOGGED, billed), "cache_mischarge")

    issue = finding.evidence["issues"][0]  # type: ignore[index]
    assert issue["issue"] == "unlogged_cache_writes"  # type: ignore[index,call-overload]
    assert issue["tokens"] == 3 * extra  # type: ignore[index,call-overload]
    # Charged at the 1h write rate ($6 / 1M) the statement applied; amounts are rounded to cents per day.
    assert abs(finding.impact_usd - 3 * extra * PRICES["claude-sonnet-4-6"]["cache_write_1h"]) <= Decimal("0.02")


def test_cache_mischarge_five_minute_writes_billed_at_the_one_hour_rate() -> None:
    def as_one_hour(row: BilledDay) -> BilledDay:
        moved = row.quantities["cache_write_5m"]
        row = bill_quantity(row, "cache_write_5m", 0)
        return bill_quantity(row, "cache_write_1h", row.quantities["cache_write_1h"] + moved)

    finding = only(run(LOGGED, where(BILLED, lambda r: r.api_key_id == "key_c", as_one_hour)), "cache_mischarge")

    moved = sum(r.tokens.cache_write_5m for r in logged_of("key_c"))
    prices = PRICES["claude-sonnet-4-6"]
    [issue] = finding.evidence["issues"]  # type: ignore[misc]
    assert issue["issue"] == "5m_writes_billed_as_1h"  # type: ignore[index,call-overload]
    assert issue["tokens"] == moved  # type: ignore[index,call-overload]
    assert finding.impact_usd == (moved * (prices["cache_write_1h"] - prices["cache_write_5m"])).quantize(
        Decimal("0.000001")
    )
