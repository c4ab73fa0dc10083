"""The detectors are the modules of `ledger.reconcile.detectors`, found there: adding one is adding its module
(and its test file here). Their order does not matter, and none of them speaks of a month billed exactly."""

from __future__ import annotations

import pkgutil
from decimal import Decimal

import pytest
from msgspec.structs import replace

import ledger.reconcile.detectors as detectors_package
from ledger.reconcile import reconciler
from ledger.reconcile.detectors import DETECTORS
from ledger.reconcile.drift_explanation import AT_RISK_KINDS
from ledger.reconcile.overlaps import KIND_ORDER
from tests.reconcile.detectors.planted import BILLED, BY_DAY, LOGGED
from tests.reconcile.month import bill_quantity, run, where


def test_every_module_of_the_package_is_a_detector_of_the_kind_it_is_named_after() -> None:
    modules = {info.name for info in pkgutil.iter_modules(detectors_package.__path__)}

    assert {detector.KIND for detector in DETECTORS} == modules
    assert modules == set(KIND_ORDER)  # every kind has its place in the order findings come out in


def test_the_kinds_come_in_their_detectors_order_and_the_contracted_ones_keep_theirs() -> None:
    """Findings come out (and kinds are listed) by the detectors' ORDER; a new detector takes its place by its own
    ORDER, so the contracted kinds keep their relative order whatever is added."""
    contracted = [
        "unlogged_usage",
        "unbilled_usage",
        "model_substitution",
        "padding_tokens",
        "system_prompt_double_count",
        "cache_mischarge",
        "price_drift",
        "charged_errors",
        "quantity_mismatch",
        "silent_truncation",
        "missing_finish_reason",
        "spend_spike",
    ]

    assert tuple(detector.KIND for detector in DETECTORS) == KIND_ORDER
    assert [kind for kind in KIND_ORDER if kind in contracted] == contracted


def test_the_detectors_say_which_impacts_are_on_the_bill() -> None:
    """Anomalies whose money is at risk rather than billed (more spend than usual, output cut short, streams
    without an end) do not explain drift; every other kind's impact is on the bill."""
    assert {d.KIND for d in DETECTORS if not d.ON_THE_BILL} == AT_RISK_KINDS
    assert {"spend_spike", "silent_truncation", "missing_finish_reason"} <= AT_RISK_KINDS
    assert not {"padding_tokens", "cache_mischarge", "price_drift", "unlogged_usage"} & AT_RISK_KINDS


def test_the_order_of_the_detectors_does_not_change_the_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anomalies of several kinds planted at once come out the same whichever detector runs first."""
    billed = where(
        BILLED,
        lambda r: r.api_key_id == "key_a",
        lambda r: bill_quantity(
            r, "uncached_input", r.quantities["uncached_input"] + 12 * BY_DAY[(r.day, "key_a")].successful_requests
        ),
    )
    billed = where(billed, lambda r: r.api_key_id == "key_b", lambda r: replace(r, requests=(r.requests or 0) + 500))
    billed = [r for r in billed if not (r.api_key_id == "key_c" and r.day.day in (5, 6))]
    forward = run(LOGGED, billed)
    assert len({finding.kind for finding in forward.findings}) >= 2

    monkeypatch.setattr(reconciler, "DETECTORS", tuple(reversed(DETECTORS)))
    backward = run(LOGGED, billed)

    assert backward.findings == forward.findings


def test_an_exact_statement_yields_no_findings_and_no_drift() -> None:
    result = run(LOGGED, BILLED)

    assert result.findings == ()
    assert len(result.comparisons) == 3 * 31
    for row in result.drift:
        assert row.billed_total_tokens == sum(row.billed_tokens.values()) == row.logged_total_tokens
        assert row.difference is not None
        assert abs(row.difference) < Decimal("0.10")
