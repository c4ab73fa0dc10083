"""The price catalog: the price in effect when usage happened, for its tier, context band and hour."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.pricing.model_names import normalize_model_name
from ledger.pricing.prices import (
    CONTEXT_BAND_THRESHOLDS,
    SERVICE_TIERS,
    TOKEN_TYPES,
    Cost,
    PriceCatalog,
    PriceConflictError,
    PriceFileError,
    PriceRow,
    PricingError,
    TokenUsage,
    UsageWindow,
    context_band,
    gpu_hour_cost,
    load_bundled_prices,
    parse_price_csv,
)

HEADER = (
    "provider,model,token_type,service_tier,context_threshold,unit_price,unit,currency,"
    "valid_from,valid_to,window,source,source_date,note"
)
BUNDLED = load_bundled_prices()
CATALOG = PriceCatalog(BUNDLED)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def price(
    provider: str, model: str, token_type: str, at: datetime, service_tier: str = "standard", input_band: int = 0
) -> Decimal | None:
    row = CATALOG.unit_price(provider, model, token_type, at=at, service_tier=service_tier, input_band=input_band)
    return None if row is None else row.unit_price


def tenant_rows(*lines: str, origin: str = "tenant.csv") -> list[PriceRow]:
    return parse_price_csv("\n".join((HEADER, *lines)), origin=origin)


# --- the price in effect at a time -------------------------------------------------------------------


def test_a_price_change_applies_from_its_instant_and_the_old_price_before_it() -> None:
    # Anthropic cut Sonnet 5.5 cache reads from $0.20 to $0.10 per MTok on 2026-10-07.
    assert price("anthropic", "claude-sonnet-5-5", "cached_input", utc(2026, 10, 6, 23, 59)) == Decimal("0.20")
    assert price("anthropic", "claude-sonnet-5-5", "cached_input", utc(2026, 10, 7)) == Decimal("0.10")
    assert price("anthropic", "claude-sonnet-5-5", "input", utc(2026, 10, 6)) == Decimal("2")
    assert price("anthropic", "claude-sonnet-5-5", "input", utc(2026, 10, 8)) == Decimal("2")


def test_a_premium_that_ended_stops_applying_and_the_base_price_covers_every_band() -> None:
    # Sonnet 4.6 billed prompts above 200K at 2x until its 1M window went GA at standard prices.
    long_band = context_band(500_000)
    assert price("anthropic", "claude-sonnet-4-6", "input", utc(2026, 3, 1), input_band=long_band) == Decimal("6")
    assert price("anthropic", "claude-sonnet-4-6", "input", utc(2026, 4, 1), input_band=long_band) == Decimal("3")


def test_usage_before_a_model_has_any_price_is_unpriced() -> None:
    assert price("anthropic", "claude-haiku-5-5", "input", utc(2026, 10, 6)) is None
    assert price("anthropic", "claude-haiku-5-5", "input", utc(2026, 10, 7)) == Decimal("0.10")


# --- service tiers -----------------------------------------------------------------------------------


def test_each_service_tier_has_its_own_price() -> None:
    at = utc(2026, 11, 2, 12)
    assert price("openai", "gpt-5.4", "input", at) == Decimal("2.50")
    assert price("openai", "gpt-5.4", "input", at, service_tier="batch") == Decimal("1.25")
    assert price("openai", "gpt-5.4", "input", at, service_tier="flex") == Decimal("1.25")
    assert price("openai", "gpt-5.4", "input", at, service_tier="priority") == Decimal("5.00")


def test_a_tier_without_a_row_is_unpriced_rather_than_priced_like_another_tier() -> None:
    usage = TokenUsage(uncached_input=1_000, output=500)
    cost = CATALOG.cost("qwen", "qwen3.8-max", usage, at=utc(2026, 11, 2), service_tier="batch")
    assert cost.unpriced == ("input", "output")
    assert cost.total == 0
    assert cost.currency is None
    assert not cost.complete


def test_only_the_unpriced_part_of_usage_is_left_out_of_the_total() -> None:
    usage = TokenUsage(uncached_input=1_000_000, cached_input=1_000_000, output=1_000_000)
    cost = CATALOG.cost("qwen", "qwen3.8-max", usage, at=utc(2026, 11, 2))
    assert cost.by_type == {"input": Decimal(2), "output": Decimal(6)}
    assert cost.total == Decimal(8)
    assert cost.unpriced == ("cached_input",)


def test_cache_writes_on_openai_models_before_gpt_5_6_cost_the_input_price() -> None:
    at = utc(2026, 11, 2)
    assert price("openai", "gpt-5.4", "cache_write_5m", at) == price("openai", "gpt-5.4", "input", at)


def test_web_searches_are_priced_per_request() -> None:
    cost = CATALOG.cost("anthropic", "claude-sonnet-4-6", TokenUsage(web_search_requests=3), at=utc(2026, 11, 2))
    assert cost.by_type == {"web_search": Decimal("0.03")}


# --- context bands -----------------------------------------------------------------------------------


def test_context_band_counts_the_thresholds_strictly_below_the_total_input() -> None:
    assert context_band(0) == 0
    assert context_band(100_000) == 0
    assert context_band(100_001) == 1
    assert context_band(272_000) == len(CONTEXT_BAND_THRESHOLDS) - 1
    assert context_band(272_001) == len(CONTEXT_BAND_THRESHOLDS)


def test_above_the_threshold_the_whole_request_is_repriced() -> None:
    usage = TokenUsage(uncached_input=200_000, cached_input=73_000, output=10_000)
    at = utc(2026, 11, 2, 12)
    at_threshold = CATALOG.cost("openai", "gpt-5.4", usage, at=at, input_band=context_band(272_000))
    above = CATALOG.cost("openai", "gpt-5.4", usage, at=at, input_band=context_band(273_000))
    assert at_threshold.total == Decimal("0.5") + Decimal("0.01825") + Decimal("0.15")
    assert above.by_type == {"input": Decimal("1.0"), "cached_input": Decimal("0.0365"), "output": Decimal("0.225")}


def test_a_row_for_a_lower_threshold_covers_every_higher_band() -> None:
    at = utc(2026, 11, 2)
    assert price("anthropic", "claude-haiku-5-5", "output", at, input_band=0) == Decimal("0.50")
    for band in range(1, len(CONTEXT_BAND_THRESHOLDS) + 1):
        assert price("anthropic", "claude-haiku-5-5", "output", at, input_band=band) == Decimal("2.50")


def test_a_band_below_the_models_threshold_keeps_the_base_price() -> None:
    at = utc(2026, 11, 2)
    assert price("google", "gemini-2.5-pro", "input", at, input_band=context_band(150_000)) == Decimal("1.25")
    assert price("google", "gemini-2.5-pro", "input", at, input_band=context_band(200_001)) == Decimal("2.50")


# --- DeepSeek peak and off-peak hours ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [
        (0, 59, "0.66"),
        (1, 0, "1.32"),
        (3, 59, "1.32"),
        (4, 0, "0.66"),
        (5, 59, "0.66"),
        (6, 0, "1.32"),
        (9, 59, "1.32"),
        (10, 0, "0.66"),
        (23, 0, "0.66"),
    ],
)
def test_deepseek_peak_hours_cost_double_on_weekdays(hour: int, minute: int, expected: str) -> None:
    tuesday = utc(2026, 11, 24, hour, minute)
    assert price("deepseek", "deepseek-v4-pro", "input", tuesday) == Decimal(expected)


def test_deepseek_weekends_and_chinese_public_holidays_are_off_peak_all_day() -> None:
    assert price("deepseek", "deepseek-v4-pro", "input", utc(2026, 11, 28, 2)) == Decimal("0.66")  # Saturday
    assert price("deepseek", "deepseek-v4-pro", "input", utc(2026, 10, 5, 2)) == Decimal("0.66")  # National Day
    assert price("deepseek", "deepseek-v4-pro", "input", utc(2026, 10, 8, 2)) == Decimal("1.32")  # Thursday after


def test_deepseek_peak_pricing_started_at_16_00_utc_and_weekends_joined_off_peak_a_week_later() -> None:
    assert price("deepseek", "deepseek-v4-pro", "input", utc(2026, 8, 16, 15, 59)) == Decimal("0.435")
    assert price("deepseek", "deepseek-v4-pro", "input", utc(2026, 8, 16, 16)) == Decimal("0.66")
    assert price("deepseek", "deepseek-v4-pro", "input", utc(2026, 8, 22, 2)) == Decimal("1.32")  # a Saturday
    assert price("deepseek", "deepseek-v4-pro", "input", utc(2026, 8, 29, 2)) == Decimal("0.66")  # the next one


def test_deepseek_is_unpriced_where_the_sources_disagree_or_the_holiday_calendar_is_unknown() -> None:
    assert price("deepseek", "deepseek-v4-flash", "input", utc(2026, 9, 9, 20)) is None
    assert price("deepseek", "deepseek-v4-flash", "input", utc(2026, 9, 10, 12)) == Decimal("0.15")
    assert price("deepseek", "deepseek-v4-pro", "input", utc(2027, 1, 4, 2)) is None


def test_a_window_covers_whole_utc_hours_of_the_week_minus_excluded_dates() -> None:
    window = UsageWindow.parse("mon-fri@01-04,06-10; sat@12-13; except=2026-10-01..2026-10-02")
    assert window.contains(utc(2026, 11, 23, 1))
    assert window.contains(datetime.fromisoformat("2026-11-23T05:30:00+04:00"))  # 01:30 UTC
    assert not window.contains(utc(2026, 11, 23, 4))
    assert window.contains(utc(2026, 11, 28, 12, 30))
    assert not window.contains(utc(2026, 11, 29, 12))
    assert not window.contains(utc(2026, 10, 1, 2))
    assert not window.contains(utc(2026, 10, 2, 2))


# --- overrides, unknown models, aliases ----------------------------------------------------------------


def test_a_tenant_override_beats_the_bundled_price_and_leaves_the_rest_bundled() -> None:
    overrides = tenant_rows(
        "openai,gpt-5.4,input,standard,0,2.00,1M tokens,USD,2026-11-01,,,contract 2026-11,2026-11-01,"
    )
    catalog = PriceCatalog(BUNDLED, overrides)
    row = catalog.unit_price("openai", "gpt-5.4", "input", at=utc(2026, 11, 2))
    assert row is not None
    assert row.unit_price == Decimal("2.00")
    assert row.override
    assert catalog.unit_price("openai", "gpt-5.4", "input", at=utc(2026, 10, 31)) == CATALOG.unit_price(
        "openai", "gpt-5.4", "input", at=utc(2026, 10, 31)
    )
    output = catalog.unit_price("openai", "gpt-5.4", "output", at=utc(2026, 11, 2))
    assert output is not None
    assert output.unit_price == Decimal("15")
    assert not output.override


def test_a_self_hosted_model_can_be_priced_by_the_tenant_per_token_or_per_gpu_hour() -> None:
    overrides = tenant_rows(
        "vllm,meta-llama/Llama-3.1-8B-Instruct,input,standard,0,0.02,1M tokens,USD,2026-01-01,,,ops sheet,2026-01-01,",
        "vllm,meta-llama/Llama-3.1-8B-Instruct,gpu_hour,standard,0,2.50,hour,USD,2026-01-01,,,ops sheet,2026-01-01,",
    )
    catalog = PriceCatalog(BUNDLED, overrides)
    at = utc(2026, 11, 2)
    assert catalog.resolve("vllm", "Llama-3.1-8B-Instruct") == "llama-3.1-8b-instruct"
    tokens = catalog.cost("vllm", "llama-3.1-8b-instruct", TokenUsage(uncached_input=500_000), at=at)
    assert tokens.total == Decimal("0.01")
    gpu = catalog.unit_price("vllm", "llama-3.1-8b-instruct", "gpu_hour", at=at)
    assert gpu is not None
    assert gpu_hour_cost(gpu, Decimal("1.5")) == Decimal("3.75")


def test_gpu_hour_cost_refuses_a_token_price() -> None:
    row = CATALOG.unit_price("openai", "gpt-5.4", "input", at=utc(2026, 11, 2))
    assert row is not None
    with pytest.raises(PricingError, match="gpu_hour"):
        gpu_hour_cost(row, Decimal(1))


def test_an_unknown_model_is_reported_unpriced_never_priced_at_zero() -> None:
    usage = TokenUsage(uncached_input=10, cached_input=5, output=7, requests=1)
    cost = CATALOG.cost("openai", "gpt-9-ultra", usage, at=utc(2026, 11, 2))
    assert cost.unpriced == ("input", "cached_input", "output", "request")
    assert cost.by_type == {}
    assert cost.currency is None
    assert not cost.complete
    assert CATALOG.resolve("openai", "gpt-9-ultra") is None
    assert CATALOG.unit_price("openai", "gpt-9-ultra", "input", at=utc(2026, 11, 2)) is None


def test_a_known_model_under_the_wrong_provider_is_unpriced() -> None:
    assert CATALOG.resolve("anthropic", "gpt-5.4") is None


@pytest.mark.parametrize(
    ("provider", "raw", "canonical"),
    [
        ("openai", "gpt-5.4-mini-2026-03-17", "gpt-5.4-mini"),
        ("openai", "openrouter/openai/gpt-5.4", "gpt-5.4"),
        ("anthropic", "anthropic/claude-sonnet-4.6", "claude-sonnet-4-6"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        (
            "bedrock",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-haiku-4-5-20251001-v1:0",
            "claude-haiku-4-5",
        ),
        ("google", "publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("OpenAI", "GPT-5.4", "gpt-5.4"),
    ],
)
def test_aliases_resolve_to_the_canonical_model_and_its_prices(provider: str, raw: str, canonical: str) -> None:
    at = utc(2026, 11, 2)
    assert CATALOG.resolve(provider, raw) == canonical
    assert CATALOG.unit_price(provider, raw, "input", at=at) == CATALOG.unit_price(provider, canonical, "input", at=at)


def test_prices_quoted_per_thousand_tokens_scale_to_the_same_per_token_price() -> None:
    bedrock = CATALOG.unit_price("bedrock", "claude-sonnet-4-5", "input", at=utc(2026, 11, 2))
    anthropic = CATALOG.unit_price("anthropic", "claude-sonnet-4-5", "input", at=utc(2026, 11, 2))
    assert bedrock is not None
    assert anthropic is not None
    assert bedrock.unit == "1K tokens"
    assert anthropic.unit == "1M tokens"
    assert bedrock.price_per_token() == anthropic.price_per_token() == Decimal("0.000003")


def test_one_cost_never_adds_two_currencies() -> None:
    overrides = tenant_rows("openai,gpt-5.4,input,standard,0,2.30,1M tokens,EUR,2026-01-01,,,eu contract,2026-01-01,")
    catalog = PriceCatalog(BUNDLED, overrides)
    with pytest.raises(PriceConflictError, match="EUR, USD"):
        catalog.cost("openai", "gpt-5.4", TokenUsage(uncached_input=1, output=1), at=utc(2026, 11, 2))


def test_queries_with_impossible_arguments_are_refused() -> None:
    at = utc(2026, 11, 2)
    with pytest.raises(ValueError, match="service_tier"):
        CATALOG.unit_price("openai", "gpt-5.4", "input", at=at, service_tier="scale")
    with pytest.raises(ValueError, match="token_type"):
        CATALOG.unit_price("openai", "gpt-5.4", "reasoning", at=at)
    with pytest.raises(ValueError, match="input_band"):
        CATALOG.unit_price("openai", "gpt-5.4", "input", at=at, input_band=len(CONTEXT_BAND_THRESHOLDS) + 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        CATALOG.unit_price("openai", "gpt-5.4", "input", at=datetime(2026, 11, 2))  # noqa: DTZ001
    with pytest.raises(ValueError, match="uncached_input"):
        TokenUsage(uncached_input=-1)


# --- price files ---------------------------------------------------------------------------------------

GOOD = "openai,gpt-5.4,input,standard,0,2.50,1M tokens,USD,2026-01-01,,,https://example.com,2026-01-01,"


@pytest.mark.parametrize(
    ("line", "column", "value"),
    [
        ("openai,gpt-5.4,input,standard,0,cheap,1M tokens,USD,2026-01-01,,,s,2026-01-01,", "unit_price", "cheap"),
        ("openai,gpt-5.4,input,standard,0,2.5,1M tokens,USD,2026-13-01,,,s,2026-01-01,", "valid_from", "2026-13-01"),
        (
            "openai,gpt-5.4,input,standard,0,2.5,1M tokens,USD,2026-01-01T00:00:00,,,s,2026-01-01,",
            "valid_from",
            "2026-01-01T00:00:00",
        ),
        ("openai,gpt-5.4,input,standard,0,2.5,1M tokens,USD,2026-01-01,,,,2026-01-01,", "source", ""),
        ("openai,gpt-5.4,input,standard,0,2.5,1M tokens,USD,2026-01-01,,,s,last week,", "source_date", "last week"),
        (
            "openai,gpt-5.4,input,standard,many,2.5,1M tokens,USD,2026-01-01,,,s,2026-01-01,",
            "context_threshold",
            "many",
        ),
        ("deepseek,x,input,standard,0,1,1M tokens,USD,2026-01-01,,25-26,s,2026-01-01,", "window", "25-26"),
        (
            "deepseek,x,input,standard,0,1,1M tokens,USD,2026-01-01,,fri-mon@01-02,s,2026-01-01,",
            "window",
            "fri-mon@01-02",
        ),
        (
            "deepseek,x,input,standard,0,1,1M tokens,USD,2026-01-01,,01-02; except=soon,s,2026-01-01,",
            "window",
            "01-02; except=soon",
        ),
    ],
)
def test_a_bad_value_is_reported_with_file_line_column_and_value(line: str, column: str, value: str) -> None:
    with pytest.raises(PriceFileError) as error:
        tenant_rows(GOOD, line)
    assert str(error.value).startswith("tenant.csv:3: ")
    assert f"column {column!r}" in str(error.value)
    assert repr(value) in str(error.value)


@pytest.mark.parametrize(
    ("line", "mentions"),
    [
        ("openai,gpt-5.4,reasoning,standard,0,2.5,1M tokens,USD,2026-01-01,,,s,2026-01-01,", "token_type 'reasoning'"),
        ("openai,gpt-5.4,input,scale,0,2.5,1M tokens,USD,2026-01-01,,,s,2026-01-01,", "service_tier 'scale'"),
        (
            "openai,gpt-5.4,input,standard,150000,2.5,1M tokens,USD,2026-01-01,,,s,2026-01-01,",
            "context_threshold 150000",
        ),
        ("openai,gpt-5.4,input,standard,0,2.5,hour,USD,2026-01-01,,,s,2026-01-01,", "unit 'hour'"),
        ("openai,gpt-5.4,input,standard,0,-1,1M tokens,USD,2026-01-01,,,s,2026-01-01,", "unit_price"),
        ("openai,gpt-5.4,input,standard,0,2.5,1M tokens,usd,2026-01-01,,,s,2026-01-01,", "currency 'usd'"),
        ("openai,gpt-5.4,input,standard,0,2.5,1M tokens,USD,2026-02-01,2026-01-01,,s,2026-01-01,", "valid_to"),
        ("openai,gpt-5.4,input,standard,0,2.5,1M tokens,USD,2026-01-01,,,s,2026-01-01", "expected 14 columns"),
    ],
)
def test_a_line_that_contradicts_the_vocabulary_is_reported_with_its_line(line: str, mentions: str) -> None:
    with pytest.raises(PriceFileError) as error:
        tenant_rows(GOOD, line)
    assert str(error.value).startswith("tenant.csv:3: ")
    assert mentions in str(error.value)


def test_a_header_with_missing_or_unknown_columns_is_refused() -> None:
    with pytest.raises(PriceFileError, match=r"prices\.csv:2: bad header: missing unit; unknown colour"):
        parse_price_csv("# tenant prices\n" + HEADER.replace("unit,", "colour,", 1), origin="prices.csv")
    with pytest.raises(PriceFileError, match="no header"):
        parse_price_csv("# only a comment\n", origin="prices.csv")


def test_comments_blank_lines_and_quoted_fields_are_read() -> None:
    rows = parse_price_csv(
        f"# tenant file\n\n{HEADER}\n# DeepSeek peak\n"
        "deepseek,x,input,standard,0,1.32,1M tokens,USD,2026-08-16T16:00:00Z,"
        ',"mon-fri@01-04,06-10",https://example.com,2026-11-15,"peak, weekdays"\n',
        origin="t.csv",
    )
    [row] = rows
    assert row.window is not None
    assert row.window.spec == "mon-fri@01-04,06-10"
    assert row.valid_from == utc(2026, 8, 16, 16)
    assert row.note == "peak, weekdays"
    assert row.origin == "t.csv:5"


def test_two_rows_for_the_same_price_at_the_same_time_are_a_conflict() -> None:
    rows = tenant_rows(GOOD, GOOD.replace("2.50", "2.60").replace("2026-01-01,,", "2026-06-01,,", 1))
    with pytest.raises(PriceConflictError, match=r"tenant\.csv:3 and tenant\.csv:2"):
        PriceCatalog(rows)


def test_windows_of_one_price_must_not_overlap_but_may_complement_a_windowless_base() -> None:
    base = "deepseek,x,input,standard,0,1,1M tokens,USD,2026-01-01,,,s,2026-01-01,"
    peak = 'deepseek,x,input,standard,0,2,1M tokens,USD,2026-01-01,,"01-04,06-10",s,2026-01-01,'
    night = "deepseek,x,input,standard,0,3,1M tokens,USD,2026-01-01,,22-24,s,2026-01-01,"
    catalog = PriceCatalog(tenant_rows(base, peak, night))
    assert [price_at(catalog, hour) for hour in (0, 1, 5, 9, 22)] == [1, 2, 1, 2, 3]
    with pytest.raises(PriceConflictError):
        PriceCatalog(tenant_rows(base, peak, peak.replace("01-04,06-10", "03-05")))


def price_at(catalog: PriceCatalog, hour: int) -> Decimal | None:
    row = catalog.unit_price("deepseek", "x", "input", at=utc(2026, 3, 3, hour))
    return None if row is None else row.unit_price


# --- the bundled price file ------------------------------------------------------------------------------


def test_every_bundled_row_cites_https_sources_and_the_date_they_showed_the_price() -> None:
    assert len(BUNDLED) > 100
    for row in BUNDLED:
        assert row.source.split(), row.origin
        assert all(url.startswith("https://") for url in row.source.split()), row.origin
        assert date(2025, 1, 1) <= row.source_date <= date(2026, 11, 25), row.origin


def test_bundled_rows_are_canonical_usd_list_prices_of_the_catalog_vocabulary() -> None:
    for row in BUNDLED:
        assert row.model == normalize_model_name(row.provider, row.model), row.origin
        assert row.currency == "USD", row.origin
        assert not row.override, row.origin
        assert row.token_type in TOKEN_TYPES, row.origin
        assert row.service_tier in SERVICE_TIERS, row.origin
        assert row.context_threshold in (0, *CONTEXT_BAND_THRESHOLDS), row.origin


def test_the_bundled_file_covers_every_provider_the_brief_names() -> None:
    providers = {row.provider for row in BUNDLED}
    assert providers == {"openai", "anthropic", "google", "deepseek", "qwen", "mistral", "bedrock"}


# --- invariants ----------------------------------------------------------------------------------------

SCENARIOS = [
    ("openai", "gpt-5.4", "standard", 0, utc(2026, 11, 2, 12)),
    ("openai", "gpt-5.4", "batch", 4, utc(2026, 11, 2, 12)),
    ("anthropic", "claude-haiku-5-5", "standard", 1, utc(2026, 11, 2, 12)),
    ("anthropic", "claude-sonnet-4-6", "batch", 3, utc(2026, 3, 1, 12)),
    ("bedrock", "claude-sonnet-4-5", "standard", 0, utc(2026, 11, 2, 12)),
    ("deepseek", "deepseek-v4-pro", "standard", 0, utc(2026, 11, 24, 2)),
    ("google", "gemini-2.5-pro", "standard", 3, utc(2026, 11, 2, 12)),
    ("qwen", "qwen3.8-flash", "batch", 0, utc(2026, 11, 2, 12)),
]
counts = st.integers(min_value=0, max_value=10**12)
usages = st.builds(
    TokenUsage,
    uncached_input=counts,
    cached_input=counts,
    cache_write_5m=counts,
    cache_write_1h=counts,
    output=counts,
    requests=st.integers(0, 10**6),
    web_search_requests=st.integers(0, 10**6),
)


@settings(max_examples=150, deadline=None)
@given(a=usages, b=usages, scenario=st.sampled_from(SCENARIOS))
def test_cost_is_additive_for_the_same_hour_tier_and_band(
    a: TokenUsage, b: TokenUsage, scenario: tuple[str, str, str, int, datetime]
) -> None:
    provider, model, tier, band, at = scenario

    def cost(usage: TokenUsage) -> Cost:
        return CATALOG.cost(provider, model, usage, at=at, service_tier=tier, input_band=band)

    separate, together = cost(a), cost(b)
    combined = cost(a + b)
    assert separate.total + together.total == combined.total
    for token_type in combined.by_type:
        assert separate.by_type.get(token_type, 0) + together.by_type.get(token_type, 0) == combined.by_type[token_type]
    assert set(combined.unpriced) == set(separate.unpriced) | set(together.unpriced)


@settings(max_examples=150, deadline=None)
@given(usage=usages, scenario=st.sampled_from(SCENARIOS))
def test_every_amount_is_the_exact_product_of_quantity_and_price(
    usage: TokenUsage, scenario: tuple[str, str, str, int, datetime]
) -> None:
    provider, model, tier, band, at = scenario
    cost = CATALOG.cost(provider, model, usage, at=at, service_tier=tier, input_band=band)
    quantities = dict(usage.quantities())
    for token_type, amount in cost.by_type.items():
        row = CATALOG.unit_price(provider, model, token_type, at=at, service_tier=tier, input_band=band)
        assert row is not None
        assert amount == quantities[token_type] * row.price_per_token()
    assert cost.total == sum(cost.by_type.values(), Decimal(0))


def test_a_model_whose_prices_vary_within_a_day_is_priced_by_the_hour() -> None:
    catalog = PriceCatalog(load_bundled_prices())
    day = datetime(2026, 10, 14, tzinfo=UTC)
    assert catalog.constant_during("openai", "gpt-5.4", day, day + timedelta(days=1))
    assert not catalog.constant_during("deepseek", "deepseek-v4-flash", day, day + timedelta(days=1))
    assert catalog.constant_during("acme", "unknown-model", day, day + timedelta(days=1))


def test_a_day_splits_into_price_segments_priced_at_their_first_hour() -> None:
    catalog = PriceCatalog(load_bundled_prices())
    day = datetime(2026, 10, 14, tzinfo=UTC)  # a Wednesday, no holiday
    segments = catalog.price_segments([("deepseek", "deepseek-v4-flash")], day, day + timedelta(days=2))
    assert len(segments) == 48
    for hour, first in segments.items():
        assert first.date() == hour.date()
        assert first <= hour
        for token_type in ("input", "cached_input", "output"):
            assert catalog.unit_price("deepseek", "deepseek-v4-flash", token_type, at=hour) == catalog.unit_price(
                "deepseek", "deepseek-v4-flash", token_type, at=first
            )
    assert 2 <= len(set(segments.values())) // 2 <= 4  # peak and off-peak, not 24 hours
    flat = catalog.price_segments([("openai", "gpt-5.4")], day, day + timedelta(days=1))
    assert set(flat.values()) == {day}
