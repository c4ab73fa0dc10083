"""Silent truncation: responses stopped for length clustered at one output length, a cap nobody set."""

from __future__ import annotations

from decimal import Decimal

from msgspec.structs import replace

from ledger.reconcile import LoggedDay, TruncationStats
from tests.reconcile.detectors.planted import LOGGED, logged_of, only
from tests.reconcile.month import run, statement


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
