"""Matching logged usage to statements: comparison at the grain each statement offers, one authoritative
statement per figure, coverage, and midnight shifts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from ledger.reconcile import ReconcileInputError
from ledger.reconcile import ReconcileSettings as Settings
from ledger.reconcile.matching import compare, merge_midnight_shifts
from tests.reconcile.month import (
    DAYS,
    OPENAI,
    PROFILES,
    Profile,
    bill_quantity,
    month,
    run,
    shift_usage,
    statement,
    where,
)

ACCOUNT_MODEL = ("account", "model")
LOGGED = month()
BILLED = statement(LOGGED)
SECOND_GPT_KEY = Profile(provider="openai", account="proj_main", api_key_id="key_d", model="gpt-5.4")


def test_a_statement_grouped_by_account_and_model_is_compared_at_that_grain() -> None:
    logged = month((*PROFILES, SECOND_GPT_KEY))
    billed = statement(logged, grain=ACCOUNT_MODEL)

    comparisons = compare(logged, billed)

    gpt = [c for c in comparisons if c.scope.model == "gpt-5.4" and c.first_day == DAYS[0]]
    assert len(gpt) == 1
    assert gpt[0].scope.api_key_id is None
    assert gpt[0].scope.account == "proj_main"
    both_keys = [r for r in logged if r.model == "gpt-5.4" and r.day == DAYS[0]]
    assert gpt[0].logged.tokens.output == sum(r.tokens.output for r in both_keys) == gpt[0].billed_quantities["output"]
    assert run(logged, billed).findings == ()


def test_an_anomaly_on_a_coarse_statement_is_reported_on_its_scope() -> None:
    logged = month((*PROFILES, SECOND_GPT_KEY))
    billed = where(
        statement(logged, grain=ACCOUNT_MODEL),
        lambda r: r.model == "gpt-5.4",
        lambda r: bill_quantity(r, "output", round(r.quantities["output"] * 1.05)),
    )

    [finding] = run(logged, billed).findings

    assert (finding.kind, finding.account, finding.api_key_id, finding.model) == (
        "quantity_mismatch",
        "proj_main",
        None,
        "gpt-5.4",
    )


def test_each_figure_is_compared_once_at_the_finest_statement_stating_it() -> None:
    usage = statement(LOGGED, amounts=False, source="usage_api")
    costs = [replace(r, quantities={}) for r in statement(LOGGED, grain=ACCOUNT_MODEL, source="cost_api")]

    result = run(LOGGED, usage + costs)

    by_grain = {c.scope.grain: c for c in result.comparisons}
    assert by_grain[("account", "api_key_id", "model")].billed_amounts == {}
    assert by_grain[("account", "api_key_id", "model")].billed_quantities
    assert by_grain[("account", "model")].billed_quantities == {}
    assert by_grain[("account", "model")].billed_total is not None
    assert result.findings == ()
    drift = {(d.grain, d.model): d for d in result.drift}
    assert drift[(("account", "model"), "gpt-5.4")].billed_cost is not None
    assert drift[(("account", "api_key_id", "model"), "gpt-5.4")].billed_cost is None


def test_two_statements_stating_the_same_figure_at_the_same_grain_are_refused() -> None:
    second = [replace(r, source="cost_api") for r in BILLED if r.day == DAYS[0] and r.api_key_id == "key_a"]

    message = r"amount:.*key_a.* is stated by two statements \('usage' and 'cost_api'\)"
    with pytest.raises(ReconcileInputError, match=message):
        compare(LOGGED, BILLED + second)


def test_rows_of_one_statement_for_the_same_scope_and_day_add_up() -> None:
    """E.g. one line per context-window band when the statement is not grouped by it."""
    first = next(r for r in BILLED if r.day == DAYS[0] and r.api_key_id == "key_a")
    halves = [
        replace(first, quantities={c: q // 2 for c, q in first.quantities.items()}, amounts={}, requests=None),
        replace(first, quantities={c: q - q // 2 for c, q in first.quantities.items()}),
    ]
    billed = [r for r in BILLED if r is not first] + halves

    assert run(LOGGED, billed).findings == ()


@pytest.mark.parametrize("provisional_first", [True, False])
def test_a_scope_day_with_one_provisional_statement_row_is_provisional(provisional_first: bool) -> None:
    first = next(r for r in BILLED if r.day == DAYS[0] and r.api_key_id == "key_a")
    stated = replace(first, final=True)
    provisional = replace(first, quantities={}, amounts={}, requests=None, total_amount=None, final=False)
    rows = [provisional, stated] if provisional_first else [stated, provisional]
    billed = [r for r in BILLED if r is not first] + rows

    (day_one,) = [c for c in compare(LOGGED, billed) if c.scope.api_key_id == "key_a" and c.first_day == DAYS[0]]

    assert day_one.final is False
    assert dict(day_one.billed_quantities) == dict(first.quantities)


def test_amounts_in_another_currency_are_refused() -> None:
    euro = [replace(r, currency="eur") for r in BILLED[:1]]

    with pytest.raises(ReconcileInputError, match=r"currency: amounts must be converted to USD.*EUR"):
        run(LOGGED, euro)


def test_days_after_the_last_statement_day_are_not_judged() -> None:
    billed = [r for r in BILLED if r.day.day <= 20]

    result = run(LOGGED, billed)

    assert max(c.last_day for c in result.comparisons).day == 20
    assert result.findings == ()


def test_a_statement_for_one_account_does_not_cover_another_account() -> None:
    other = Profile(provider="openai", account="proj_other", api_key_id="key_x", model="gpt-5.4")
    logged = month((*PROFILES, other))
    billed = statement([r for r in logged if r.account != "proj_other"])

    result = run(logged, billed)

    assert result.findings == ()
    [uncovered] = [d for d in result.drift if d.account == "proj_other"]
    assert uncovered.grain == ()
    assert uncovered.billed_cost is None
    assert uncovered.logged_total_tokens > 0


def test_a_provider_wide_statement_covers_every_account() -> None:
    """The statement does not break down by account, so another account's unbilled usage shows as the
    statement's shortfall on that model."""
    other = Profile(provider="openai", account="proj_other", api_key_id="key_x", model="gpt-5.4")
    logged = month((*PROFILES, other))
    billed = statement([r for r in logged if r.account != "proj_other"], grain=("model",))

    findings = run(logged, billed).findings

    assert [(f.kind, f.account, f.model, f.subject) for f in findings] == [
        ("quantity_mismatch", None, "gpt-5.4", subject) for subject in ("input", "output", "requests")
    ]
    missing_output = sum(r.tokens.output for r in logged if r.account == "proj_other")
    assert findings[1].evidence["difference"] == -missing_output


class TestMidnightShift:
    def test_usage_moved_to_the_next_day_yields_no_finding(self) -> None:
        billed = shift_usage(shift_usage(BILLED, "key_a", DAYS[8], 0.3), "key_c", DAYS[19], 0.1)

        result = run(LOGGED, billed)

        assert result.findings == ()
        day_nine = [c for c in result.comparisons if c.scope.api_key_id == "key_a" and c.first_day == DAYS[8]]
        assert day_nine[0].billed_quantities["output"] < day_nine[0].logged.tokens.output  # visible per day

    @settings(max_examples=40, deadline=None)
    @given(
        shifts=st.lists(
            # Shifts out of even days only, so no day both gives and receives.
            st.tuples(st.sampled_from(["key_a", "key_b", "key_c"]), st.integers(0, 14), st.floats(0.001, 1.0)),
            min_size=1,
            max_size=4,
            unique_by=lambda s: (s[0], s[1]),
        )
    )
    def test_any_usage_moved_across_midnight_yields_no_finding(self, shifts: list[tuple[str, int, float]]) -> None:
        billed = BILLED
        for key, day, share in shifts:
            billed = shift_usage(billed, key, DAYS[2 * day], share)

        assert run(LOGGED, billed).findings == ()

    def test_the_two_days_are_compared_as_one_bucket(self) -> None:
        billed = shift_usage(BILLED, "key_a", DAYS[8], 0.3)
        buckets = merge_midnight_shifts(compare(LOGGED, billed), Settings())

        merged = [b for b in buckets if b.scope.api_key_id == "key_a" and b.days == 2]
        assert [(b.first_day, b.last_day) for b in merged] == [(DAYS[8], DAYS[9])]
        assert merged[0].billed_quantities["output"] == merged[0].logged.tokens.output
        assert len(buckets) == len(compare(LOGGED, billed)) - 1

    def test_a_whole_day_billed_the_next_day_is_not_unbilled(self) -> None:
        billed = shift_usage(BILLED, "key_b", DAYS[4], 1.0)

        assert run(LOGGED, billed).findings == ()

    def test_padding_is_still_recovered_across_a_shift(self) -> None:
        by_day = {r.day: r for r in LOGGED if r.api_key_id == "key_a"}
        padded = where(
            BILLED,
            lambda r: r.api_key_id == "key_a",
            lambda r: bill_quantity(
                r, "uncached_input", r.quantities["uncached_input"] + 25 * by_day[r.day].successful_requests
            ),
        )

        [finding] = run(LOGGED, shift_usage(padded, "key_a", DAYS[8], 0.4)).findings

        assert finding.kind == "padding_tokens"
        assert finding.evidence["tokens_per_request"] == "25.00"
        assert finding.evidence["days_observed"] == 31

    def test_a_mismatch_that_does_not_cancel_is_still_reported(self) -> None:
        billed = where(
            BILLED,
            lambda r: r.api_key_id == "key_a" and r.day == DAYS[8],
            lambda r: bill_quantity(r, "output", r.quantities["output"] // 2),
        )

        [finding] = run(LOGGED, billed).findings

        assert (finding.kind, finding.subject) == ("quantity_mismatch", "output")
        assert finding.evidence["difference"] < 0  # type: ignore[operator]


def test_drift_rows_report_expected_and_billed_cost_per_model() -> None:
    billed = where(
        BILLED,
        lambda r: r.api_key_id == "key_a",
        lambda r: replace(r, amounts={**r.amounts, "output": r.amounts["output"] * 2}),
    )

    [row] = [d for d in run(LOGGED, billed).drift if d.model == "gpt-5.4"]

    extra = sum((r.amounts["output"] for r in BILLED if r.api_key_id == "key_a"), Decimal(0))
    assert row.billed_cost is not None
    assert row.expected_cost is not None
    assert row.billed_cost == sum((sum(r.amounts.values()) for r in billed if r.api_key_id == "key_a"), Decimal(0))
    assert row.difference == row.billed_cost - row.expected_cost
    assert abs(row.difference - extra) < Decimal("0.10")
    assert row.percent == (row.difference / row.expected_cost * 100).quantize(Decimal("0.01"))
    assert (row.first_day, row.last_day, row.final) == (DAYS[0], DAYS[-1], True)
    assert OPENAI.model == row.model
