"""How the reports write money, counts, rates and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.display import (
    age,
    days,
    evidence_value,
    label,
    milliseconds,
    money,
    number,
    percent,
    plain_decimal,
    rate,
    signed_money,
    tokens,
    when,
)


def test_money_has_its_currency_thousands_separators_and_cents() -> None:
    assert money(Decimal("1234567.891")) == "1,234,567.89 USD"
    assert money(Decimal("0"), "EUR") == "0.00 EUR"
    assert money(Decimal("-12.5")) == "-12.50 USD"
    assert money("2520.5") == "2,520.50 USD"


def test_money_below_a_cent_keeps_its_digits_instead_of_showing_zero() -> None:
    assert money(Decimal("0.0034")) == "0.0034 USD"
    assert money(Decimal("0.000001")) == "0.000001 USD"


def test_signed_money_shows_which_way_the_bill_moved() -> None:
    assert signed_money(Decimal("120.5")) == "+120.50 USD"
    assert signed_money(Decimal("-4")) == "-4.00 USD"
    assert signed_money(Decimal("0")) == "0.00 USD"
    assert signed_money(Decimal("-1234.5")) == "-1,234.50 USD"


def test_a_difference_below_half_a_cent_is_rounding_and_reads_zero() -> None:
    assert signed_money(Decimal("0.000001")) == "0.00 USD"
    assert signed_money(Decimal("-0.004")) == "0.00 USD"
    assert signed_money(Decimal("0.005")) == "+0.01 USD"


def test_a_missing_value_is_an_em_dash() -> None:
    for render in (money, signed_money, tokens, number, percent, rate, milliseconds, when, age):
        assert render(None) == "—"


def test_counts_have_thousands_separators() -> None:
    assert tokens(1_234_567) == "1,234,567"
    assert tokens(0) == "0"
    assert tokens("40000") == "40,000"
    assert number("-1234.50") == "-1,234.5"
    assert number(Decimal("0.005")) == "0.005"


def test_percent_is_signed_and_rate_is_a_fraction_shown_in_percent() -> None:
    assert percent(Decimal("5.0208")) == "+5.02%"
    assert percent(Decimal("-0.5")) == "-0.50%"
    assert percent(Decimal("-0.000002")) == "0.00%"  # a drift that rounds away has no direction
    assert rate(Decimal("-0.0000001")) == "0.00%"
    assert rate(Decimal("0.0123")) == "1.23%"
    assert rate(Decimal(1) / 3) == "33.33%"


def test_latencies_switch_to_seconds_from_one_second() -> None:
    assert milliseconds(840) == "840 ms"
    assert milliseconds(1_250) == "1.25 s"
    assert milliseconds(60_000) == "60 s"


def test_instants_are_shown_in_utc_and_naive_ones_are_refused() -> None:
    assert when(datetime(2026, 10, 5, 16, 3, tzinfo=timezone(timedelta(hours=2)))) == "2026-10-05 14:03 UTC"
    assert when("2026-10-05T14:03:11+00:00") == "2026-10-05 14:03 UTC"
    with pytest.raises(ValueError, match="no timezone"):
        when(datetime(2026, 10, 5))  # noqa: DTZ001


def test_periods_of_whole_days_are_shown_by_their_first_and_last_day() -> None:
    october = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    assert days(*october) == "2026-10-01 – 2026-10-31"  # the end is exclusive
    assert days(datetime(2026, 10, 23, tzinfo=UTC), datetime(2026, 10, 24, tzinfo=UTC)) == "2026-10-23"
    assert days("2026-10-01T02:00:00+02:00", "2026-10-02T02:00:00+02:00") == "2026-10-01"  # midnight UTC
    assert days(datetime(2026, 10, 1, 6, tzinfo=UTC), datetime(2026, 10, 1, 18, tzinfo=UTC)) == (
        "2026-10-01 06:00 UTC – 2026-10-01 18:00 UTC"
    )
    assert days(None, october[1]) == "—"


def test_ages_are_coarse() -> None:
    assert age(timedelta(days=3, hours=4, minutes=5)) == "3 d 4 h"
    assert age(timedelta(hours=5, minutes=10)) == "5 h 10 min"
    assert age(timedelta(minutes=12, seconds=59)) == "12 min"


def test_evidence_keys_read_as_words() -> None:
    assert label("cached_tokens_logged") == "Cached tokens logged"
    assert label("expected_unit_price_per_1m") == "Expected unit price per 1M tokens"
    assert label("overcharge_usd") == "Overcharge USD"
    assert label("api_key_id") == "API key id"


def test_evidence_integers_are_counts_and_decimals_under_money_keys_are_money() -> None:
    assert evidence_value(1_260_000, "billed") == "1,260,000"
    assert evidence_value("95.00", "observed") == "95.00 USD"
    assert evidence_value("95.00", "logged", "spend_spike") == "95.00 USD"
    assert evidence_value("0.005", "token_rel_tolerance", "tolerance") == "0.005"
    assert evidence_value("0.01", "money_rel_tolerance", "tolerance") == "0.01"  # a share, not money
    assert evidence_value("0.5", "money_abs_tolerance", "tolerance") == "0.50 USD"
    assert evidence_value("9.5", "peak_ratio") == "9.5"
    assert evidence_value(True, "overcharge_complete") == "yes"
    assert evidence_value("gpt-5.4", "served") == "gpt-5.4"
    assert evidence_value("Infinity", "t_stat_requests", "fit") == "∞"  # an exact fit
    assert evidence_value(None, "billed") == "—"


def test_money_is_never_a_float() -> None:
    with pytest.raises(TypeError, match="never floats"):
        money(1.5)  # type: ignore[arg-type]


def test_plain_decimal_is_exact_without_trailing_zeros_or_exponents() -> None:
    assert plain_decimal(Decimal("12.3400000000")) == "12.34"
    assert plain_decimal(Decimal("0E-10")) == "0"
    assert plain_decimal(Decimal("1E+2")) == "100"
    assert plain_decimal(Decimal("-0.0001000000")) == "-0.0001"
    assert plain_decimal(None) is None


@given(st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=10, allow_nan=False))
def test_plain_decimal_keeps_the_value(value: Decimal) -> None:
    assert Decimal(plain_decimal(value) or "") == value


@given(st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False))
def test_money_reads_back_as_the_same_cents(value: Decimal) -> None:
    amount, currency = money(value).split(" ")
    assert currency == "USD"
    assert Decimal(amount.replace(",", "")) == value


@given(st.integers(min_value=0, max_value=10**15))
def test_tokens_read_back_as_the_same_count(value: int) -> None:
    assert int(tokens(value).replace(",", "")) == value


def test_instants_in_other_zones_render_as_the_same_utc_minute() -> None:
    moment = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)
    assert when(moment.astimezone(timezone(timedelta(hours=-7)))) == when(moment)


def test_money_too_small_for_six_places_is_zero() -> None:
    assert money(Decimal("0.0000001")) == "0.00 USD"
    assert money(Decimal("-0.0000001")) == "0.00 USD"
