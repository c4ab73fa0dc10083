"""Spend spikes: a day's spend far above the trailing baseline of the days before it."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from statistics import median

from tests.reconcile.detectors.planted import LOGGED, only
from tests.reconcile.month import ANTHROPIC, DAYS, logged_day, month, run, statement


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
