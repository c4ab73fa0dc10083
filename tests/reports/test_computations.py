"""The pure computations behind the pages: the overview, drift over time, provider quality and a finding's
evidence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from ledger import latency
from ledger.periods import Period
from reports import daily, evidence, overview, quality
from reports.sources import USAGE_SUMS, DriftLine, ImportLine, ModelUsage, RunLine

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


def frames(
    logged: list[tuple[date, str, str, int]],
    billed: list[tuple[date, str, str, int | None, str | None]],
    undated: Sequence[tuple[str, str, int | None, str | None]] = (),
) -> tuple[pd.DataFrame, ...]:
    return (
        pd.DataFrame(logged, columns=["day", "provider", "model", "tokens"]).astype({"tokens": "Int64"}),
        pd.DataFrame(
            [(d, p, m, t, None if a is None else Decimal(a), "USD") for d, p, m, t, a in billed],
            columns=["day", "provider", "model", "tokens", "amount", "currency"],
        ).astype({"tokens": "Int64"}),
        pd.DataFrame(
            [(p, m, t, None if a is None else Decimal(a), "USD") for p, m, t, a in undated],
            columns=["provider", "model", "tokens", "amount", "currency"],
        ).astype({"tokens": "Int64"}),
    )


def test_each_provider_has_a_point_for_every_day_of_the_period() -> None:
    logged, billed, undated = frames(
        [
            (date(2026, 10, 1), "openai", "gpt-5.4", 100),
            (date(2026, 10, 1), "openai", "mini", 50),
            (date(2026, 10, 2), "openai", "gpt-5.4", 70),
        ],
        [(date(2026, 10, 1), "openai", "gpt-5.4", 160, "1.60")],
    )
    result = daily.drift_over_time(logged, billed, undated, OCTOBER)
    (series,) = result.series
    assert len(series.points) == 31
    assert (series.points[0].logged, series.points[0].billed, series.points[0].amounts) == (
        150,
        160,
        {"USD": Decimal("1.60")},
    )
    assert (series.points[1].logged, series.points[1].billed, series.points[1].difference) == (70, 0, -70)
    assert series.chart()["labels"][:2] == ["2026-10-01", "2026-10-02"]
    assert [(m.model, m.logged, m.billed) for m in result.models] == [("gpt-5.4", 170, 160), ("mini", 50, None)]


def test_a_provider_without_token_statements_has_unknown_billed_days() -> None:
    logged, billed, undated = frames(
        [(date(2026, 10, 3), "anthropic", "claude", 10)], [(date(2026, 10, 3), "anthropic", "claude", None, "2.00")]
    )
    (series,) = daily.drift_over_time(logged, billed, undated, OCTOBER).series
    assert not series.billed_known
    assert series.billed_total is None
    assert all(point.billed is None for point in series.points)
    assert series.points[2].amounts == {"USD": Decimal("2.00")}


def test_statement_lines_longer_than_a_day_are_kept_apart_from_the_days() -> None:
    logged, billed, undated = frames(
        [(date(2026, 10, 3), "google", "gemini", 10)], [], [("google", "gemini", 12, "3.00")]
    )
    (series,) = daily.drift_over_time(logged, billed, undated, OCTOBER).series
    assert series.billed_known
    assert sum(point.billed or 0 for point in series.points) == 0
    assert series.undated_tokens == 12
    assert series.billed_total == 12
    assert series.undated_amounts == {"USD": Decimal("3.00")}


def test_a_model_filter_keeps_that_model_and_lists_every_provider() -> None:
    logged, billed, undated = frames(
        [
            (date(2026, 10, 1), "openai", "gpt-5.4", 100),
            (date(2026, 10, 1), "openai", "mini", 5),
            (date(2026, 10, 1), "anthropic", "claude", 9),
        ],
        [],
    )
    result = daily.drift_over_time(logged, billed, undated, OCTOBER, provider="openai", model="mini")
    assert [(s.provider, s.model, s.logged_total) for s in result.series] == [("openai", "mini", 5)]
    assert result.providers == ("anthropic", "openai")


def stated(
    day: int, grain: tuple[str, ...], usage_type: str, tokens: int | None, amount: str | None, *, undated: bool = False
) -> daily.StatedFigures:
    currency = None if amount is None else "USD"
    money = None if amount is None else Decimal(amount)
    return daily.StatedFigures(
        undated, date(2026, 10, day), "openai", "gpt-5.4", usage_type, grain, tokens, money, currency
    )


def test_tokens_stated_by_two_statements_at_two_grains_are_billed_once() -> None:
    """OpenAI's usage pages state tokens per project and key; its costs state them again per project, with the
    money: the tokens count once (the finer grain's), the money once (the only grain stating it)."""
    per_key, per_project = ("account", "api_key_id", "model"), ("account", "model")
    lines = [
        stated(1, per_key, "uncached_input", 600, None),
        stated(1, per_key, "uncached_input", 400, None),  # a second key
        stated(1, per_key, "output", 100, None),
        stated(1, per_project, "uncached_input", 1_000, "2.50"),
        stated(1, per_project, "output", 100, "1.00"),
    ]
    billed, undated = daily.billed_once(lines)
    usage_pages, costs = sorted(billed.itertuples(index=False), key=lambda row: pd.isna(row.tokens))
    assert (usage_pages.tokens, usage_pages.amount) == (1_100, None)  # the tokens per key
    assert pd.isna(costs.tokens)  # the costs' own token counts are not added a second time
    assert (costs.amount, costs.currency) == (Decimal("3.50"), "USD")
    assert undated.empty


def test_a_figure_stated_at_one_grain_only_is_kept_whatever_its_grain() -> None:
    per_project = ("account", "model")
    billed, undated = daily.billed_once(
        [stated(2, per_project, "output", 70, "0.70"), stated(1, (), "output", 5, None, undated=True)]
    )
    assert billed["tokens"].sum() == 70
    assert undated.empty  # coarser than the per-project lines that state the same tokens


@given(st.lists(st.tuples(st.integers(1, 31), st.sampled_from(["a", "b"]), st.integers(0, 10**9)), max_size=40))
def test_daily_series_never_lose_a_token(entries: list[tuple[int, str, int]]) -> None:
    logged, billed, undated = frames([(date(2026, 10, d), "openai", m, t) for d, m, t in entries], [])
    result = daily.drift_over_time(logged, billed, undated, OCTOBER)
    assert sum(series.logged_total for series in result.series) == sum(t for _d, _m, t in entries)
    assert sum(model.logged for model in result.models) == sum(t for _d, _m, t in entries)


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
