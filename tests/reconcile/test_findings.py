"""Findings as records: stable fingerprints, the severity rule, JSON evidence, the detector registry."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from msgspec.structs import replace

from ledger.periods import Period
from ledger.reconcile import (
    DETECTORS,
    BilledDay,
    LoggedDay,
    ReconcileResult,
    ReconcileSettings,
    Scope,
    TruncationStats,
    fingerprint,
)
from ledger.reconcile.findings import severity
from tests.reconcile.month import CENT, PERIOD, bill_quantity, month, run, statement, where

KINDS = {
    "padding_tokens",
    "system_prompt_double_count",
    "cache_mischarge",
    "price_drift",
    "quantity_mismatch",
    "unlogged_usage",
    "unbilled_usage",
    "charged_errors",
    "model_substitution",
    "silent_truncation",
    "missing_finish_reason",
    "spend_spike",
}


def troubled_month(period: Period = PERIOD) -> tuple[list[LoggedDay], list[BilledDay]]:
    """A month with several anomalies at once: padding on key_a, a leaked key, output overbilled on key_c,
    a silent cap and interrupted streams on key_b."""
    logged = [
        replace(
            r,
            truncation=TruncationStats(count=150, min_output=2_040, max_output=2_048),
            streamed_missing_finish=r.streamed_requests // 20,
        )
        if r.api_key_id == "key_b"
        else r
        for r in month(days=list(period.days()))
    ]
    by_day = {(r.day, r.api_key_id): r for r in logged}
    billed = where(
        statement(logged),
        lambda r: r.api_key_id == "key_a",
        lambda r: bill_quantity(
            r, "uncached_input", r.quantities["uncached_input"] + 30 * by_day[(r.day, "key_a")].successful_requests
        ),
    )
    billed = where(
        billed, lambda r: r.api_key_id == "key_c", lambda r: bill_quantity(r, "output", r.quantities["output"] * 2)
    )
    leaked = [
        replace(r, api_key_id="key_leaked", amounts={c: (a / 5).quantize(CENT) for c, a in r.amounts.items()})
        for r in billed
        if r.api_key_id == "key_a" and r.day.day >= 25
    ]
    return logged, billed + leaked


def fingerprints(result: ReconcileResult) -> dict[tuple[str, str | None, str], str]:
    return {(f.kind, f.api_key_id, f.subject): f.fingerprint for f in result.findings}


def test_a_rerun_of_the_same_period_gives_the_same_findings_whatever_the_row_order() -> None:
    logged, billed = troubled_month()

    first, second = run(logged, billed), run(list(reversed(logged)), list(reversed(billed)))

    assert first == second
    assert len({f.fingerprint for f in first.findings}) == len(first.findings)
    assert {f.kind for f in first.findings} == {
        "padding_tokens",
        "unlogged_usage",
        "quantity_mismatch",
        "silent_truncation",
        "missing_finish_reason",
    }


def test_a_rerun_with_more_statement_days_updates_the_same_findings() -> None:
    logged, billed = troubled_month()
    early = [r for r in billed if r.day.day <= 28]

    assert fingerprints(run(logged, early)).items() <= fingerprints(run(logged, billed)).items()


def test_the_same_anomalies_in_another_month_have_other_fingerprints() -> None:
    november = Period.of_month(2026, 11)
    logged, billed = troubled_month(november)

    october = fingerprints(run(*troubled_month()))
    later = fingerprints(run(logged, billed, period=november))

    assert october.keys() == later.keys()
    assert not set(october.values()) & set(later.values())


def test_fingerprint_depends_on_kind_scope_subject_and_period_only() -> None:
    scope = Scope(provider="openai", account="proj_main", api_key_id="key_a", model="gpt-5.4")
    start, end = PERIOD.start, PERIOD.end
    reference = fingerprint("padding_tokens", scope, "", start, end)

    assert fingerprint("padding_tokens", scope, "", start.astimezone(timezone(timedelta(hours=2))), end) == reference
    assert (
        len(
            {
                reference,
                fingerprint("quantity_mismatch", scope, "", start, end),
                fingerprint("padding_tokens", dataclasses.replace(scope, api_key_id="key_b"), "", start, end),
                fingerprint("padding_tokens", dataclasses.replace(scope, api_key_id=None), "", start, end),
                fingerprint("padding_tokens", scope, "output", start, end),
                fingerprint("padding_tokens", scope, "", start, end + timedelta(days=1)),
                fingerprint("padding_tokens", scope, "", start - timedelta(days=1), end),
            }
        )
        == 7
    )


@pytest.mark.parametrize(
    ("kind", "impact", "rate", "expected"),
    [
        ("price_drift", Decimal("0.50"), Decimal("0.001"), "info"),
        ("price_drift", Decimal("10"), None, "warning"),
        # Money kinds: a rate alone never raises severity below the warning amount.
        ("price_drift", Decimal("0.50"), Decimal("0.02"), "info"),
        ("model_substitution", Decimal("-0.000001"), Decimal("1"), "info"),
        ("price_drift", Decimal("100"), Decimal("0"), "critical"),
        ("quantity_mismatch", Decimal("12"), Decimal("-0.10"), "critical"),
        ("unbilled_usage", Decimal("-500"), Decimal("0.001"), "critical"),  # money either way
        # Quality kinds: their rate is their size.
        ("silent_truncation", Decimal("0"), Decimal("0.03"), "warning"),
        ("missing_finish_reason", Decimal("0"), Decimal("0.12"), "critical"),
        ("missing_finish_reason", Decimal("0"), Decimal("0.011"), "info"),
    ],
)
def test_severity_rule(kind: str, impact: Decimal, rate: Decimal | None, expected: str) -> None:
    assert severity(kind, impact, rate, ReconcileSettings()) == expected


def test_every_finding_carries_json_evidence_with_its_tolerance_and_series() -> None:
    logged, billed = troubled_month()

    for finding in run(logged, billed).findings:
        evidence = json.loads(json.dumps(dict(finding.evidence)))
        assert {"tolerance", "expected", "billed", "difference", "series"} <= evidence.keys(), finding.kind
        assert evidence["series"]
        assert {"day", "logged", "billed"} <= evidence["series"][0].keys()
        assert finding.summary
        assert any(ch.isdigit() for ch in finding.summary)
        assert finding.period_start.tzinfo is not None
        assert finding.period_start.utcoffset() == timedelta(0)
        assert finding.period_start == datetime(2026, 10, 1, tzinfo=UTC)


def test_evidence_keeps_ints_as_ints_and_decimals_as_strings() -> None:
    logged, billed = troubled_month()

    [mismatch] = [f for f in run(logged, billed).findings if f.kind == "quantity_mismatch"]

    assert isinstance(mismatch.evidence["billed"], int)
    assert isinstance(mismatch.evidence["difference"], int)
    padding = next(f for f in run(logged, billed).findings if f.kind == "padding_tokens")
    assert padding.evidence["tokens_per_request"] == "30.00"
    assert isinstance(padding.evidence["fit"]["r_squared"], str)  # type: ignore[index,call-overload]


def test_the_registry_holds_one_detector_per_contracted_kind() -> None:
    assert [d.KIND for d in DETECTORS] == list(dict.fromkeys(d.KIND for d in DETECTORS))
    assert {d.KIND for d in DETECTORS} >= KINDS  # a new detector adds its kind; none of these goes
