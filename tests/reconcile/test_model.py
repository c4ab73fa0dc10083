"""Bad input is refused with a message naming the row and the field."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from ledger.reconcile import BilledDay, LoggedDay, LoggedTotals, ReconcileInputError, ReconcileSettings, TokenCounts
from ledger.reconcile.model import trusted
from tests.reconcile.month import month, run, statement

ROW = month(days=[date(2026, 10, 1)])[0]
BILL = statement([ROW])[0]


def test_negative_token_counts_are_refused() -> None:
    with pytest.raises(ReconcileInputError, match=r"tokens\.output: must be a non-negative int, got -1"):
        TokenCounts(output=-1)


def test_a_logged_day_must_be_a_date_not_a_datetime() -> None:
    with pytest.raises(ReconcileInputError, match=r"LoggedDay\[openai/proj_main/key_a/gpt-5.4 .*\]\.day"):
        replace(ROW, day=datetime(2026, 10, 1, tzinfo=UTC))


def test_more_successful_and_failed_requests_than_requests_are_refused() -> None:
    with pytest.raises(ReconcileInputError, match=r"\.requests: 10 is below successful \+ error requests"):
        replace(ROW, requests=10)


def test_money_must_be_decimal() -> None:
    with pytest.raises(ReconcileInputError, match=r"expected_cost: must be a finite Decimal, got 1\.5"):
        replace(ROW, expected_cost=1.5)


def test_unknown_categories_are_refused() -> None:
    with pytest.raises(ReconcileInputError, match=r"BilledDay\[usage: .*\]\.quantities: unknown category 'input'"):
        BilledDay(provider="openai", day=date(2026, 10, 1), quantities={"input": 5}, source="usage")


def test_billed_money_must_be_decimal_and_currency_a_code() -> None:
    with pytest.raises(ReconcileInputError, match=r"amounts\['output'\]: must be a finite Decimal"):
        replace(BILL, amounts={"output": 0.06})
    with pytest.raises(ReconcileInputError, match=r"currency: must be an ISO-4217 code, got 'dollars'"):
        replace(BILL, currency="dollars")
    assert replace(BILL, currency="usd").currency == "USD"


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
def test_the_totals_of_one_row_are_those_of_adding_it_to_nothing(row: LoggedDay) -> None:
    summed = LoggedTotals() + LoggedTotals.of(row)

    totals = LoggedTotals.of_rows([row])

    assert totals == summed
    assert [str(cost) for cost in totals.expected_cost_by_category.values()] == [
        str(cost) for cost in summed.expected_cost_by_category.values()
    ]
    assert str(totals.expected_cost) == str(summed.expected_cost)
    assert LoggedTotals.of_rows([row, _nothing_used_like(row)]) == totals


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


def test_summing_in_one_pass_is_adding_one_by_one() -> None:
    rows = month(days=[date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)])
    rows[1] = replace(rows[1], expected_cost=None, expected_cost_by_category={"output": Decimal("0.25")})
    parts = [LoggedTotals.of(row) for row in rows]

    one_by_one = LoggedTotals()
    for part in parts:
        one_by_one = one_by_one + part

    assert LoggedTotals.sum(parts) == one_by_one
    assert LoggedTotals.of_rows(rows) == one_by_one
    assert one_by_one.expected_cost is None
    assert "uncached_input" not in one_by_one.expected_cost_by_category


def test_summing_priced_parts_column_by_column_is_adding_one_by_one() -> None:
    """Parts that price every category with the same unit prices are summed a column at a time: the same
    figures, down to each Decimal's exponent, as adding them one by one."""
    rows = [row for row in month(days=[date(2026, 10, d) for d in range(1, 8)]) if row.api_key_id == "key_a"]
    rows[2] = replace(
        rows[2], expected_cost_by_category={**rows[2].expected_cost_by_category, "output": Decimal("1E+2")}
    )
    parts = [LoggedTotals.of_rows([row]) for row in rows]  # as comparisons carry them: unused categories cost 0
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


def test_a_trusted_row_is_an_ordinary_frozen_row() -> None:
    """The loader's unchecked constructor builds the same value a checked one does: equal, hashed alike,
    of the class itself, and as immutable."""
    values = {spec: getattr(ROW, spec) for spec in ROW.__dataclass_fields__}
    row = trusted(LoggedDay)(**values)
    assert type(row) is LoggedDay
    assert row == ROW
    assert hash(row.tokens) == hash(ROW.tokens)
    with pytest.raises(FrozenInstanceError):
        row.requests = 0  # type: ignore[misc]
    assert replace(row, requests=row.requests + 1).requests == ROW.requests + 1
