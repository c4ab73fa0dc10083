"""System prompts counted twice: billed input above the logged by the logged system-prompt tokens."""

from __future__ import annotations

from decimal import Decimal

from tests.reconcile.detectors.planted import BILLED, BY_DAY, LOGGED, logged_of, only
from tests.reconcile.month import PRICES, bill_quantity, run, where


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
