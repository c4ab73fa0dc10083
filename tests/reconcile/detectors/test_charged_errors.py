"""Charged errors: requests billed beyond the successful ones by the logged 429/5xx failures."""

from __future__ import annotations

from msgspec.structs import replace

from ledger.reconcile import BilledDay
from tests.reconcile.detectors.planted import BILLED, BY_DAY, LOGGED, logged_of, only
from tests.reconcile.month import run, where


def test_charged_errors() -> None:
    def with_failures(row: BilledDay) -> BilledDay:
        logged = BY_DAY[(row.day, "key_b")]
        return replace(row, requests=(row.requests or 0) + logged.errors_429 + logged.errors_5xx)

    finding = only(run(LOGGED, where(BILLED, lambda r: r.api_key_id == "key_b", with_failures)), "charged_errors")

    failures = sum(r.errors_429 + r.errors_5xx for r in logged_of("key_b"))
    assert finding.evidence["error_requests"] == failures
    assert finding.evidence["billed_extra"] == failures
    assert finding.evidence["successful_requests"] == sum(r.successful_requests for r in logged_of("key_b"))
