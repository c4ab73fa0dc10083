"""One realistic month per finding kind: three keys (gpt-5.4, gpt-5.4-mini, claude-sonnet-4-6) billed
exactly, one anomaly planted on one key; the finding carries the right numbers and the other keys stay
clean."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from statistics import median

import pytest

from ledger.reconcile import BilledDay, Finding, LoggedDay, ReconcileResult, TruncationStats
from tests.reconcile.month import (
    ANTHROPIC,
    CENT,
    DAYS,
    MILLION,
    OPENAI,
    PRICES,
    bill_quantity,
    logged_day,
    month,
    priced,
    run,
    statement,
    where,
)

LOGGED = month()
BILLED = statement(LOGGED)
BY_DAY = {(r.day, r.api_key_id): r for r in LOGGED}


def only(result: ReconcileResult, kind: str) -> Finding:
    """The single finding of the run, which must be of `kind`: every other key stays clean."""
    assert [(f.kind, f.api_key_id) for f in result.findings] == [(kind, result.findings[0].api_key_id)]
    finding = result.findings[0]
    json.dumps(dict(finding.evidence))  # evidence is JSON as it stands
    return finding


def logged_of(key: str, day_from: int = 1, day_to: int = 31) -> list[LoggedDay]:
    return [r for r in LOGGED if r.api_key_id == key and day_from <= r.day.day <= day_to]


def test_an_exact_statement_yields_no_findings_and_no_drift() -> None:
    result = run(LOGGED, BILLED)

    assert result.findings == ()
    assert len(result.comparisons) == 3 * 31
    for row in result.drift:
        assert row.billed_total_tokens == sum(row.billed_tokens.values()) == row.logged_total_tokens
        assert row.difference is not None
        assert abs(row.difference) < Decimal("0.10")


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


def test_system_prompt_double_count() -> None:
    billed = where(
        BILLED,
        lambda r: r.api_key_id == "key_a",
        lambda r: bill_quantity(
            r, "uncached_input", r.quantities["uncached_input"] + BY_DAY[(r.day, "key_a")].system_prompt_tokens
        ),
    )

    finding = only(run(LOGGED, billed), "system_prompt_double_count")

    prompts = sum(r.system_prompt_tokens for r in logged_of("key_a"))
    assert finding.evidence["ratio"] == "1.000"
    assert finding.evidence["system_prompt_tokens_logged"] == prompts
    assert finding.evidence["excess_tokens"] == prompts
    assert finding.impact_usd == (prompts * PRICES["gpt-5.4"]["uncached_input"]).quantize(Decimal("0.000001"))


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


def test_charged_errors() -> None:
    def with_failures(row: BilledDay) -> BilledDay:
        logged = BY_DAY[(row.day, "key_b")]
        return replace(row, requests=(row.requests or 0) + logged.errors_429 + logged.errors_5xx)

    finding = only(run(LOGGED, where(BILLED, lambda r: r.api_key_id == "key_b", with_failures)), "charged_errors")

    failures = sum(r.errors_429 + r.errors_5xx for r in logged_of("key_b"))
    assert finding.evidence["error_requests"] == failures
    assert finding.evidence["billed_extra"] == failures
    assert finding.evidence["successful_requests"] == sum(r.successful_requests for r in logged_of("key_b"))


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


def truncated_on_key_b(min_output: int, max_output: int) -> list[LoggedDay]:
    """The month, with 150 responses a day of key_b stopped for length between the two output lengths."""
    stats = TruncationStats(count=150, min_output=min_output, max_output=max_output)
    return [replace(r, truncation=stats) if r.api_key_id == "key_b" else r for r in LOGGED]


def test_silent_truncation() -> None:
    logged = truncated_on_key_b(1_017, 1_024)

    finding = only(run(logged, statement(logged)), "silent_truncation")

    requests = sum(r.successful_requests for r in logged_of("key_b"))
    assert finding.evidence["cap_tokens"] == 1_024
    assert finding.evidence["count"] == 150 * 31
    assert finding.evidence["share"] == str((Decimal(150 * 31) / requests).quantize(Decimal("0.0001")))
    assert "stopped for length at 1,017–1,024 output tokens" in finding.summary


def test_silent_truncation_at_one_length_names_that_length_alone() -> None:
    logged = truncated_on_key_b(4_096, 4_096)

    finding = only(run(logged, statement(logged)), "silent_truncation")

    assert "stopped for length at 4,096 output tokens" in finding.summary
    assert finding.summary.endswith("a silent cap at 4,096 tokens")


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


def test_spend_spike_against_the_trailing_baseline() -> None:
    history = month(seed=11, days=[DAYS[0] - timedelta(days=n) for n in range(28, 0, -1)])
    spike_day = DAYS[17]
    logged = [
        logged_day(ANTHROPIC, r.day, random.Random(5), scale=5.0)
        if (r.api_key_id == "key_c" and r.day == spike_day)
        else r
        for r in LOGGED
    ]

    finding = only(run(logged, statement(logged), history=history), "spend_spike")

    def spend(day: object) -> Decimal:
        rows = [r for r in (*history, *logged) if r.api_key_id == "key_c" and r.day == day]
        return sum((r.expected_cost or Decimal(0) for r in rows), Decimal(0))

    baseline = median(spend(spike_day - timedelta(days=n)) for n in range(1, 15))
    assert finding.period_start.date() == spike_day
    assert finding.period_end.date() == spike_day + timedelta(days=1)
    assert (finding.provider, finding.account, finding.model) == ("anthropic", "wrk_prod", "claude-sonnet-4-6")
    assert finding.evidence["observed"] == str(spend(spike_day))
    assert finding.evidence["baseline"] == str(baseline)
    assert finding.impact_usd == (spend(spike_day) - baseline).quantize(Decimal("0.000001"))


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
