"""The pure computations behind the pages: the overview, drift over time, provider quality and a finding's
evidence."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from ledger.periods import Period
from ledger.queries.footing import footed
from ledger.queries.money_over_time import BilledMoney, LoggedMoney, ScopeFilter, money_over_time
from ledger.queries.sources import USAGE_SUMS, DriftLine, FindingImpact, ImportLine, ModelUsage, RunLine
from ledger.sink import latency
from reports import evidence, monthly, overview, quality
from reports.drift_split import split_drift, written

OCTOBER = Period.month("2026-10")
NOW = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


def drift(
    provider: str, model: str, *, expected: str | None, billed: str | None, logged: int = 1_000, account: str = "a"
) -> DriftLine:
    expected_cost = None if expected is None else Decimal(expected)
    billed_cost = None if billed is None else Decimal(billed)
    difference = billed_cost - expected_cost if expected_cost is not None and billed_cost is not None else None
    return DriftLine(
        provider=provider,
        account=account,
        model=model,
        logged_tokens=logged,
        billed_tokens=None if billed is None else logged,
        logged_by_category={},
        billed_by_category={},
        expected_cost=expected_cost,
        billed_cost=billed_cost,
        difference=difference,
        percent=None,
        currency="USD",
        computed_at=NOW,
    )


# Overview


def test_the_overview_sums_money_per_provider_and_flags_what_is_missing() -> None:
    lines = [
        drift("openai", "gpt-5.4", expected="100", billed="110"),
        drift("openai", "tuned", expected=None, billed="5", logged=40),
        drift("anthropic", "claude-haiku-4-5", expected="50", billed=None),
    ]
    counts = [("openai", "a", "gpt-5.4", "critical", "open", 2), ("openai", "a", "gpt-5.4", "warning", "resolved", 4)]
    imports = [ImportLine("openai", OCTOBER.start, OCTOBER.end, NOW - timedelta(days=4), 1, 62, 0)]
    runs = [RunLine(7, "schedule", NOW, NOW, "succeeded", {}, None)]
    result = overview.overview(OCTOBER, lines, counts, imports, runs, now=NOW)

    assert [(p.provider, p.expected, p.billed, p.difference, p.percent) for p in result.providers] == [
        ("anthropic", Decimal(50), None, None, None),
        ("openai", Decimal(100), Decimal(115), Decimal(10), Decimal("10.00")),
    ]
    assert result.open_findings == {"critical": 2, "warning": 0, "info": 0}
    assert result.providers_without_statement == ("anthropic",)
    assert [(u.provider, u.model, u.logged_tokens) for u in result.unpriced] == [("openai", "tuned", 40)]
    assert result.sources[0].stale
    assert result.sources[0].age == timedelta(days=4)
    assert result.last_run is runs[0]
    assert result.chart()["datasets"][1]["data"] == [None, "115.00"]


def test_the_import_hint_names_the_fetching_importer_or_a_file_import() -> None:
    assert overview.import_hint("openai", OCTOBER) == "tokenledger import openai --period 2026-10"
    assert overview.import_hint("bedrock", OCTOBER) == "tokenledger import focus --file EXPORT.csv --period 2026-10"
    assert overview.reconcile_hint(OCTOBER) == "tokenledger reconcile --period 2026-10"


# Drift over time


def logged(day: int, provider: str, model: str, expected: str | None, **tokens: int) -> LoggedMoney:
    return LoggedMoney(
        day=date(2026, 10, day),
        provider=provider,
        account="proj",
        api_key_id="key",
        model=model,
        expected=None if expected is None else Decimal(expected),
        tokens=tokens or {"uncached_input": 10},
    )


def billed(
    day: int,
    provider: str,
    usage_type: str,
    quantity: int | None,
    amount: str | None,
    *,
    account: str | None = "proj",
    undated: bool = False,
    currency: str = "USD",
) -> BilledMoney:
    return BilledMoney(
        undated=undated,
        day=date(2026, 10, day),
        provider=provider,
        account=account,
        api_key_id=None,
        model="m",
        usage_type=usage_type,
        quantity=quantity,
        amount=None if amount is None else Decimal(amount),
        currency=currency,
    )


def test_each_provider_has_expected_and_billed_usd_for_every_day() -> None:
    result = money_over_time(
        [logged(1, "openai", "m", "1.50"), logged(1, "openai", "m", "0.50"), logged(2, "openai", "m", "3.00")],
        [billed(1, "openai", "uncached_input", 20, "2.40")],
        OCTOBER,
        ScopeFilter(),
    )
    (series,) = result.providers
    assert len(series.days) == 31
    assert (series.days[0].expected, series.days[0].billed, series.days[0].difference) == (
        Decimal("2.00"),
        Decimal("2.40"),
        Decimal("0.40"),
    )
    assert series.days[1].difference == Decimal("-3.00")
    assert (series.expected_total, series.billed_total, series.difference) == (
        Decimal("5.00"),
        Decimal("2.40"),
        Decimal("-2.60"),
    )
    assert series.percent == Decimal("-52.00")


def test_a_provider_without_statement_amounts_has_unknown_billed_days() -> None:
    (series,) = money_over_time([logged(3, "anthropic", "c", "2.00")], [], OCTOBER, ScopeFilter()).providers
    assert not series.billed_known
    assert series.billed_total is None
    assert series.difference is None
    assert all(point.billed is None for point in series.days)


def test_lines_longer_than_a_day_count_in_the_total_but_on_no_day() -> None:
    (series,) = money_over_time(
        [logged(3, "google", "g", "1.00")],
        [billed(1, "google", "output", 12, "3.00", undated=True)],
        OCTOBER,
        ScopeFilter(),
    ).providers
    assert series.undated_billed == Decimal("3.00")
    assert series.billed_total == Decimal("3.00")
    rows, total = series.table()
    assert rows[-1].label == "lines longer than a day"
    assert total.billed == Decimal("3.00")


def test_tokens_are_compared_over_the_categories_the_statement_states() -> None:
    """OpenRouter's activity states output tokens only: logged output against billed output."""
    (series,) = money_over_time(
        [logged(1, "openrouter", "m", "1.00", uncached_input=900, output=100)],
        [billed(1, "openrouter", "output", 100, "1.00")],
        OCTOBER,
        ScopeFilter(),
    ).providers
    assert series.token_categories == ("output",)
    assert series.token_label == "output only"
    assert (series.token_days[0].logged, series.token_days[0].billed) == (100, 100)
    assert series.unstated_tokens == {"uncached_input": 900}


def test_a_filter_on_account_leaves_out_lines_that_do_not_state_the_account() -> None:
    result = money_over_time(
        [logged(1, "openai", "m", "1.00")],
        [billed(1, "openai", "output", None, "1.00"), billed(1, "openai", "output", None, "5.00", account=None)],
        OCTOBER,
        ScopeFilter(account="proj"),
    )
    (series,) = result.providers
    assert series.billed_total == Decimal("1.00")
    assert series.unattributed_billed == Decimal("5.00")
    assert (
        money_over_time([logged(1, "openai", "m", "1.00")], [], OCTOBER, ScopeFilter(account="other")).providers == ()
    )


def test_unpriced_usage_is_counted_apart_and_amounts_in_other_currencies_are_not_compared() -> None:
    (series,) = money_over_time(
        [logged(1, "qwen", "q", None, output=70), logged(1, "qwen", "p", "1.00")],
        [billed(1, "qwen", "output", 70, "9.00", currency="CNY")],
        OCTOBER,
        ScopeFilter(),
    ).providers
    assert series.unpriced_tokens == 70
    assert series.other_currencies == {"CNY": Decimal("9.00")}
    assert series.expected_total == Decimal("1.00")
    assert series.billed_total is None


@given(
    st.lists(
        st.tuples(st.integers(1, 31), st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False)),
        max_size=40,
    )
)
def test_the_daily_table_foots_and_never_loses_money(entries: list[tuple[int, Decimal]]) -> None:
    rows = [logged(day, "openai", "m", str(amount)) for day, amount in entries]
    result = money_over_time(rows, [billed(1, "openai", "output", 1, "0.005")], OCTOBER, ScopeFilter())
    if not entries:
        return
    (series,) = result.providers
    assert series.expected_total == sum((amount for _day, amount in entries), Decimal(0))
    table, total = series.table()
    for column in ("expected", "billed", "difference"):
        shown = [getattr(row, column) for row in table if getattr(row, column) is not None]
        assert sum(shown, Decimal(0)) == getattr(total, column)


# Provider quality


def usage(
    request_model: str,
    response_model: str,
    *,
    requests: int,
    latencies: list[int] = (),  # type: ignore[assignment]
    **sums: int,
) -> ModelUsage:
    values = dict.fromkeys(USAGE_SUMS, 0) | {"requests": requests} | sums
    return ModelUsage(
        "openai",
        request_model,
        response_model,
        values,
        tuple(latency.histogram_of(latencies)),
        tuple(latency.empty_histogram()),
    )


def test_quality_merges_snapshots_of_a_model_and_reads_percentiles_from_the_merged_histogram() -> None:
    rows = quality.model_quality(
        [
            usage(
                "gpt-5.4-mini",
                "gpt-5.4-mini-2026-03-17",
                requests=90,
                latencies=[300] * 90,
                input_tokens=900,
                cache_read_input_tokens=100,
                error_rate_limit=3,
                finish_length=9,
                streamed=10,
                streamed_missing_finish=1,
            ),
            usage("gpt-5.4-mini", "gpt-5.4-mini", requests=10, latencies=[2_400] * 10, truncated_below_max=2),
        ],
        [drift("openai", "gpt-5.4-mini", expected="50", billed="55")],
    )
    (row,) = rows
    assert (row.model, row.requests, row.uncached_input_tokens, row.cache_read_tokens) == (
        "gpt-5.4-mini",
        100,
        800,
        100,
    )
    assert row.latency_ms == (300, 2_500, 2_500)
    assert row.ttft_ms == (None, None, None)
    assert row.error_rates == {"rate_limit": Decimal("0.03")}
    assert row.length_stop_rate == Decimal("0.09")
    assert row.silent_truncation_rate == Decimal("0.02")
    assert row.stream_missing_finish_rate == Decimal("0.1")
    assert row.substitution_rate == 0
    assert row.cost_per_1k_requests == Decimal("500.0000")


def test_a_different_served_model_counts_as_a_substitution() -> None:
    (row,) = quality.model_quality(
        [usage("gpt-5.4", "gpt-5.4-mini", requests=4), usage("gpt-5.4-mini", "gpt-5.4-mini", requests=12)], []
    )
    assert row.substitution_rate == Decimal("0.25")
    assert row.substituted_from == ("gpt-5.4",)
    assert row.cost_per_1k_requests is None


def test_a_model_with_an_unpriced_drift_row_has_no_cost_per_request() -> None:
    (row,) = quality.model_quality(
        [usage("m", "m", requests=10)],
        [drift("openai", "m", expected="5", billed=None), drift("openai", "m", expected=None, billed="1", account="b")],
    )
    assert row.cost_per_1k_requests is None


# Evidence


def test_evidence_items_leave_the_series_to_the_chart() -> None:
    items = evidence.evidence_items({"expected": 10, "series": [], "billed": 12})
    assert items == [("expected", 10), ("billed", 12)]


def test_a_series_of_category_counts_becomes_one_column_per_side_and_category_and_a_summed_chart() -> None:
    view = evidence.series_view(
        {
            "series": [
                {
                    "day": "2026-10-01",
                    "logged": {"cached_input": 5, "output": 1},
                    "billed": {"cached_input": 0, "output": 1},
                },
                {"day": "2026-10-02", "through": "2026-10-03", "logged": {"cached_input": 7}, "billed": None},
            ]
        }
    )
    assert view is not None
    assert [title for title, _side, _category in view.columns] == [
        "logged: cached input",
        "logged: output",
        "billed: cached input",
        "billed: output",
    ]
    assert view.rows[1] == ("2026-10-02 – 2026-10-03", (7, None, None, None))
    assert view.chart["datasets"] == [{"label": "logged", "data": ["6", "7"]}, {"label": "billed", "data": ["1", None]}]


def test_evidence_reads_scope_then_figures_then_the_rest_whatever_order_jsonb_kept() -> None:
    stored = {  # as PostgreSQL returns a jsonb object: keys by length, then bytes
        "days": 12,
        "amount": "27.15",
        "billed": 6_560_660,
        "tokens": {"output": 859_819, "cached_input": 0, "uncached_input": 5_700_841},
        "account": "proj_web",
        "expected": 0,
        "tolerance": {"token_abs_tolerance": 1_000},
        "api_key_id": "key_leaked",
        "difference": 6_560_660,
    }

    items = evidence.evidence_items(stored)

    assert [key for key, _value in items] == [
        "account",
        "api_key_id",
        "expected",
        "billed",
        "difference",
        "days",
        "amount",
        "tokens",
        "tolerance",
    ]
    assert [key for key, _value in evidence.in_reading_order(dict(items)["tokens"])] == [
        "uncached_input",
        "cached_input",
        "output",
    ]


def test_a_finding_without_series_has_no_series_view() -> None:
    assert evidence.series_view({"expected": 1}) is None
    assert evidence.series_view({"series": []}) is None


def test_evidence_record_lists_become_tables_with_every_key() -> None:
    assert evidence.columns([{"a": 1}, {"b": 2, "a": 3}]) == ["a", "b"]


# Footing


def test_rows_rounded_alone_would_not_foot_so_the_remainder_is_distributed() -> None:
    """Three rows of 0.334 USD: each written alone is 0.33 and the column adds to 0.99 beside a total of 1.00."""
    lines = [drift("openai", name, expected="0.334", billed="0.3345") for name in ("a", "b", "c")]
    report = monthly.monthly_report("t", OCTOBER, lines, [], generated_at=NOW)
    rows, ((_total, shown_total),) = report.written()
    assert [shown.expected_cost for _row, shown in rows] == [Decimal("0.34"), Decimal("0.33"), Decimal("0.33")]
    assert shown_total.expected_cost == Decimal("1.00")
    assert sum(shown.billed_cost for _row, shown in rows) == shown_total.billed_cost == Decimal("1.00")


@given(st.lists(st.decimals(min_value=-(10**6), max_value=10**6, places=4, allow_nan=False), min_size=1, max_size=30))
def test_a_footed_column_adds_up_to_its_total_rounded_once(values: list[Decimal]) -> None:
    rows, total = footed(values)
    assert sum(rows, Decimal(0)) == total == sum(values, Decimal(0)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert all(abs(row - value) < Decimal("0.01") for row, value in zip(rows, values, strict=True))


def test_the_drift_split_adds_up_to_the_drift_as_written() -> None:
    split = split_drift(
        Decimal("10.005"),
        [
            FindingImpact("cache_mischarge", "cached_input", Decimal("3.3333")),
            FindingImpact("price_drift", "output", Decimal("1.6667")),
            FindingImpact("price_drift", "input", Decimal("1.6666")),
            FindingImpact("spend_spike", "cost", Decimal(9)),
            FindingImpact("model_substitution", "requested:gpt-5.4", Decimal("0.50")),
        ],
    )
    assert split.unexplained == Decimal("3.3384")
    assert sorted((part.kind, part.findings) for part in split.billing) == [("cache_mischarge", 1), ("price_drift", 2)]
    # the reconciler's classification: a substitution at no extra bill is at risk, not on the bill
    assert [part.kind for part in split.at_risk] == ["spend_spike", "model_substitution"]
    shown = written(split)
    assert sum(amount for _part, amount in shown.billing) + shown.unexplained == shown.drift == Decimal("10.01")
