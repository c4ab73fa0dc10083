"""Bad input is refused by `reconcile()` with a message naming the row and the field; the rows it takes are put
in one form; logged usage is summed one way."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType

import pytest
from msgspec.structs import replace

from ledger.reconcile import BilledDay, LoggedDay, LoggedTotals, ReconcileInputError, ReconcileSettings, TokenCounts
from tests.reconcile.month import month, run, statement

ROW = month(days=[date(2026, 10, 1)])[0]
BILL = statement([ROW])[0]


def test_negative_token_counts_are_refused() -> None:
    with pytest.raises(
        ReconcileInputError, match=r"LoggedDay\[.*\]\.tokens\.output: must be a non-negative int, got -1"
    ):
        run([replace(ROW, tokens=TokenCounts(output=-1))], [BILL])


def test_a_logged_day_must_be_a_date_not_a_datetime() -> None:
    with pytest.raises(ReconcileInputError, match=r"LoggedDay\[openai/proj_main/key_a/gpt-5.4 .*\]\.day"):
        run([replace(ROW, day=datetime(2026, 10, 1, tzinfo=UTC))], [BILL])


def test_more_successful_and_failed_requests_than_requests_are_refused() -> None:
    with pytest.raises(ReconcileInputError, match=r"\.requests: 10 is below successful \+ error requests"):
        run([replace(ROW, requests=10)], [BILL])


def test_money_must_be_decimal() -> None:
    with pytest.raises(ReconcileInputError, match=r"expected_cost: must be a finite Decimal, got 1\.5"):
        run([replace(ROW, expected_cost=1.5)], [BILL])


def test_a_history_row_is_checked_as_a_period_row() -> None:
    september = replace(ROW, day=date(2026, 9, 30), requests=10)

    with pytest.raises(ReconcileInputError, match=r"LoggedDay\[.* 2026-09-30\]\.requests: 10 is below"):
        run([ROW], [BILL], history=[september])


def test_unknown_categories_are_refused() -> None:
    unknown = BilledDay(provider="openai", day=date(2026, 10, 1), quantities={"input": 5}, source="usage")

    with pytest.raises(ReconcileInputError, match=r"BilledDay\[usage: .*\]\.quantities: unknown category 'input'"):
        run([ROW], [unknown])


def test_billed_money_must_be_decimal_and_currency_a_code() -> None:
    with pytest.raises(ReconcileInputError, match=r"amounts\['output'\]: must be a finite Decimal"):
        run([ROW], [replace(BILL, amounts={"output": 0.06})])
    with pytest.raises(ReconcileInputError, match=r"currency: must be an ISO-4217 code, got 'dollars'"):
        run([ROW], [replace(BILL, currency="dollars")])


def test_a_currency_code_is_read_in_any_case() -> None:
    assert replace(BILL, currency="usd").checked().currency == "USD"
    assert run([ROW], [replace(BILL, currency="usd")]).findings == run([ROW], [BILL]).findings


def test_checked_rows_hold_their_figures_read_only_in_category_order_without_none() -> None:
    shuffled = replace(
        BILL,
        quantities={"output": 5, "uncached_input": 7},
        amounts={"output": Decimal("0.01"), "cached_input": None},  # type: ignore[dict-item]
    )

    checked = shuffled.checked()

    assert isinstance(checked.quantities, MappingProxyType)
    assert list(checked.quantities.items()) == [("uncached_input", 7), ("output", 5)]
    assert list(checked.amounts.items()) == [("output", Decimal("0.01"))]
    assert checked.checked() is checked  # already so: the row itself


def test_rows_outside_the_period_are_refused() -> None:
    november = replace(ROW, day=date(2026, 11, 1))

    with pytest.raises(ReconcileInputError, match=r"logged\[1\]\.day: 2026-11-01 is outside the period 2026-10"):
        run([ROW, november], [BILL])


def test_history_must_precede_the_period() -> None:
    with pytest.raises(ReconcileInputError, match=r"history\[0\]\.day: 2026-10-01 is not before the period 2026-10"):
        run([ROW], [BILL], history=[ROW])


def test_settings_must_be_non_negative() -> None:
    with pytest.raises(ReconcileInputError, match=r"ReconcileSettings\.token_rel_tolerance: must be a non-negative"):
        ReconcileSettings(token_rel_tolerance=Decimal("-0.1"))


def test_rows_are_immutable() -> None:
    with pytest.raises(AttributeError, match="immutable"):
        ROW.requests = 0  # type: ignore[misc]
    assert replace(ROW, requests=ROW.requests + 1).requests == ROW.requests + 1


@pytest.mark.parametrize(
    "row",
    [
        ROW,
        replace(ROW, expected_cost=None, expected_cost_by_category={"uncached_input": Decimal("0.0125")}),
        replace(ROW, tokens=TokenCounts(), expected_cost=None, expected_cost_by_category={}, expected_unit_price={}),
        replace(ROW, expected_cost_by_category={"output": Decimal("1E+2")}, expected_cost=Decimal("1E+2")),
    ],
    ids=["priced", "partly-priced", "unused-and-unpriced", "exponent"],
)
def test_the_totals_of_one_row_are_its_figures_added_to_nothing(row: LoggedDay) -> None:
    """A category used without a price is unpriced (absent); one unused costs zero; costs are added to zero, so
    their exponents are those of any longer sum."""
    totals = LoggedTotals.sum([row])

    assert totals.requests == row.requests
    assert totals.tokens == row.tokens
    priced = row.expected_cost_by_category
    assert [(c, str(cost)) for c, cost in totals.expected_cost_by_category.items()] == [
        (c, str(Decimal(0) + priced[c]) if c in priced else "0")
        for c in ("uncached_input", "cached_input", "cache_write_5m", "cache_write_1h", "output")
        if c in priced or not row.tokens.get(c)
    ]
    expected = row.expected_cost if row.expected_cost is not None or row.tokens.total() else Decimal(0)
    assert str(totals.expected_cost) == str(None if expected is None else Decimal(0) + expected)
    assert LoggedTotals.sum([row, _nothing_used_like(row)]) == totals


def _nothing_used_like(row: LoggedDay) -> LoggedDay:
    return replace(
        row,
        requests=0,
        successful_requests=0,
        errors_429=0,
        errors_5xx=0,
        errors_4xx=0,
        tokens=TokenCounts(),
        system_prompt_tokens=0,
        expected_cost=Decimal(0),
        expected_cost_by_category={},
    )


def test_nothing_summed_is_nothing_logged() -> None:
    assert LoggedTotals.sum([]) == LoggedTotals()
    assert not LoggedTotals().has_usage


def test_summing_rows_is_summing_their_totals_one_by_one() -> None:
    rows = month(days=[date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)])
    rows[1] = replace(rows[1], expected_cost=None, expected_cost_by_category={"output": Decimal("0.25")})
    parts = [LoggedTotals.sum([row]) for row in rows]

    one_by_one = LoggedTotals()
    for part in parts:
        one_by_one = one_by_one + part

    assert LoggedTotals.sum(parts) == one_by_one
    assert LoggedTotals.sum(rows) == one_by_one
    assert one_by_one.expected_cost is None
    assert "uncached_input" not in one_by_one.expected_cost_by_category


def test_summing_priced_parts_keeps_each_decimal_exponent_of_adding_one_by_one() -> None:
    rows = [row for row in month(days=[date(2026, 10, d) for d in range(1, 8)]) if row.api_key_id == "key_a"]
    rows[2] = replace(
        rows[2], expected_cost_by_category={**rows[2].expected_cost_by_category, "output": Decimal("1E+2")}
    )
    parts = [LoggedTotals.sum([row]) for row in rows]  # as comparisons carry them: unused categories cost 0
    assert all(len(part.expected_cost_by_category) == 5 for part in parts)

    one_by_one = LoggedTotals()
    for part in parts:
        one_by_one = one_by_one + part
    summed = LoggedTotals.sum(parts)

    assert summed == one_by_one
    assert [str(cost) for cost in summed.expected_cost_by_category.values()] == [
        str(cost) for cost in one_by_one.expected_cost_by_category.values()
    ]
    assert str(summed.expected_cost) == str(one_by_one.expected_cost)
    assert dict(summed.unit_prices) == dict(one_by_one.unit_prices)


def test_unit_prices_the_parts_disagree_on_are_dropped() -> None:
    first, second = month(days=[date(2026, 10, 1), date(2026, 10, 2)])[::3]
    cheaper = replace(second, expected_unit_price={**second.expected_unit_price, "output": Decimal("0.00001")})

    totals = LoggedTotals.sum([first, cheaper])

    assert "output" not in totals.unit_prices
    assert totals.unit_prices["uncached_input"] == first.expected_unit_price["uncached_input"]
