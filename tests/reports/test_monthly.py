"""The monthly reconciliation report: rows and totals from drift rows and findings, and its HTML, CSV and JSON
renderings (snapshot-tested with the tenant and the generation time normalised)."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from ledger.queries.sources import DriftLine
from ledger.storage.database import session_factory
from reports import monthly
from tests.months import Month
from tests.reports.snapshots import assert_snapshot
from tests.rows import NOW, OCTOBER

GENERATED = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


def line(
    provider: str,
    model: str,
    *,
    logged: int = 1_000,
    billed: int | None = 1_000,
    expected: str | None = "10",
    billed_cost: str | None = "10",
    currency: str = "USD",
    account: str = "a",
) -> DriftLine:
    expected_cost = None if expected is None else Decimal(expected)
    billed_amount = None if billed_cost is None else Decimal(billed_cost)
    difference = billed_amount - expected_cost if expected_cost is not None and billed_amount is not None else None
    return DriftLine(
        provider=provider,
        account=account,
        model=model,
        logged_tokens=logged,
        billed_tokens=billed,
        logged_by_category={},
        billed_by_category={},
        expected_cost=expected_cost,
        billed_cost=billed_amount,
        difference=difference,
        percent=None,
        currency=currency,
        computed_at=GENERATED,
    )


def test_each_drift_row_is_a_report_row_with_its_findings_counted() -> None:
    findings = [("openai", "a", "gpt-5.4", "critical", "open", 2), ("openai", "a", "gpt-5.4", "info", "resolved", 1)]
    report = monthly.monthly_report("acme", OCTOBER, [line("openai", "gpt-5.4")], findings, generated_at=GENERATED)
    assert [(row.provider, row.model, row.findings) for row in report.rows] == [("openai", "gpt-5.4", 3)]
    assert report.unattributed_findings == 0
    assert report.findings == 3


def test_logged_tokens_are_compared_over_the_categories_the_statement_states() -> None:
    """OpenRouter's activity states output tokens alone (its input mixes cached and uncached): the row compares
    output with output, and says what the statement leaves out."""
    activity = replace(
        line("openrouter", "claude-sonnet-4-6", logged=10_618_310, billed=1_517_634, account=""),
        logged_by_category={"uncached_input": 9_100_676, "cached_input": 0, "output": 1_517_634},
        billed_by_category={"output": 1_517_634},
    )
    money_only = line("openai", "gpt-5.4", logged=5_000, billed=None)

    report = monthly.monthly_report("acme", OCTOBER, [activity, money_only], [], generated_at=GENERATED)

    whole, compared = report.rows  # by provider
    assert (whole.logged_tokens, whole.billed_tokens, whole.token_categories) == (5_000, None, ())
    assert (compared.logged_tokens, compared.billed_tokens) == (1_517_634, 1_517_634)
    assert (compared.token_categories, compared.unstated_usage) == (("output",), ("uncached_input",))
    assert '<small class="note" title="the statement does not state uncached input">output only</small>' in (
        monthly.to_html(report)
    )
    assert "openrouter,,claude-sonnet-4-6,1517634,1517634,output," in monthly.to_csv(report)


def test_findings_that_match_no_row_are_counted_apart() -> None:
    findings = [("openai", "", "", "warning", "open", 1)]
    report = monthly.monthly_report("acme", OCTOBER, [line("openai", "gpt-5.4")], findings, generated_at=GENERATED)
    assert report.rows[0].findings == 0
    assert report.unattributed_findings == 1
    assert report.findings == 1


def test_drift_counts_only_rows_with_both_an_expected_and_a_billed_cost() -> None:
    rows = [
        line("openai", "gpt-5.4", expected="100", billed_cost="110"),
        line("openai", "unpriced", expected=None, billed_cost="7"),
        line("anthropic", "no-statement", expected="50", billed_cost=None, billed=None),
    ]
    (total,) = monthly.monthly_report("acme", OCTOBER, rows, [], generated_at=GENERATED).totals
    assert total.expected_cost == Decimal("150")
    assert total.billed_cost == Decimal("117")
    assert total.difference == Decimal("10")
    assert total.percent == Decimal("10.00")
    assert total.billed_tokens == 2_000


def test_each_currency_has_its_own_total() -> None:
    rows = [line("openai", "gpt-5.4", billed_cost="12"), line("mistral", "large", currency="EUR", billed_cost="9")]
    report = monthly.monthly_report("acme", OCTOBER, rows, [], generated_at=GENERATED)
    assert [(total.currency, total.billed_cost) for total in report.totals] == [
        ("EUR", Decimal(9)),
        ("USD", Decimal(12)),
    ]


def test_an_empty_period_has_no_rows_and_no_totals() -> None:
    report = monthly.monthly_report("acme", OCTOBER, [], [], generated_at=GENERATED)
    assert report.rows == ()
    assert report.totals == ()
    assert "No reconciliation for 2026-10 yet" in monthly.to_html(report)
    assert monthly.to_csv(report).splitlines() == [",".join(monthly.CSV_COLUMNS)]


money_text = st.decimals(min_value=Decimal("-10000"), max_value=Decimal("10000"), places=4, allow_nan=False).map(str)


@given(
    st.lists(
        st.tuples(st.integers(0, 10**9), st.one_of(st.none(), money_text), st.one_of(st.none(), money_text)),
        max_size=12,
    )
)
def test_totals_are_the_sums_of_the_rows(values: list[tuple[int, str | None, str | None]]) -> None:
    rows = [
        line("p", f"m{i}", logged=logged, expected=expected, billed_cost=billed)
        for i, (logged, expected, billed) in enumerate(values)
    ]
    report = monthly.monthly_report("acme", OCTOBER, rows, [], generated_at=GENERATED)
    if not rows:
        assert report.totals == ()
        return
    (total,) = report.totals
    assert total.logged_tokens == sum(row.logged_tokens for row in report.rows)
    known = [row.difference for row in report.rows if row.difference is not None]
    assert total.difference == (sum(known, Decimal(0)) if known else None)
    exported = list(csv.DictReader(io.StringIO(monthly.to_csv(report))))
    assert sum(int(row["logged_tokens"]) for row in exported[:-1]) == int(exported[-1]["logged_tokens"])


def test_json_money_is_exact_decimal_strings() -> None:
    report = monthly.monthly_report(
        "acme",
        OCTOBER,
        [line("openai", "gpt-5.4", expected="0.0000001234", billed_cost="12.3400000000")],
        [],
        generated_at=GENERATED,
    )
    data = json.loads(monthly.to_json(report))
    assert data["rows"][0]["expected_cost"] == "0.0000001234"
    assert data["rows"][0]["billed_cost"] == "12.34"
    assert Decimal(data["totals"][0]["difference"]) == Decimal("12.34") - Decimal("0.0000001234")


def test_a_label_that_a_spreadsheet_would_run_as_a_formula_is_written_as_text() -> None:
    """Account and model names come from whoever sends usage or writes a statement; money stays a number."""
    rows = [line("openai", '=HYPERLINK("http://x")', account="@SUM(A1)", expected="20", billed_cost="10")]
    report = monthly.monthly_report("acme", OCTOBER, rows, [], generated_at=GENERATED)

    exported, total = list(csv.DictReader(io.StringIO(monthly.to_csv(report))))

    assert exported["model"] == '\'=HYPERLINK("http://x")'
    assert exported["account"] == "'@SUM(A1)"
    assert exported["difference"] == total["difference"] == "-10"


def test_an_unknown_format_is_refused() -> None:
    report = monthly.monthly_report("acme", OCTOBER, [], [], generated_at=GENERATED)
    with pytest.raises(ValueError, match="format must be one of html, csv, json, got 'pdf'"):
        monthly.render(report, "pdf")


def normalised(text: str, month: Month) -> str:
    """The rendering with the per-run tenant name and the generation time replaced."""
    text = text.replace(month.keys.name, "<tenant>")
    text = text.replace(NOW.isoformat(), "<generated_at>").replace("2026-11-03 09:30 UTC", "<generated_at>")
    return re.sub(r"tenant-[0-9a-f]{8}", "<tenant>", text)


@pytest.mark.parametrize("output_format", monthly.FORMATS)
def test_the_report_of_a_reconciled_month_matches_its_snapshot(
    engine: Engine, october: Month, output_format: str
) -> None:
    with session_factory(engine)() as session:
        report = monthly.load_monthly_report(session, october.tenant_id, OCTOBER, NOW)
    assert_snapshot(f"monthly.{output_format}", normalised(monthly.render(report, output_format), october))
