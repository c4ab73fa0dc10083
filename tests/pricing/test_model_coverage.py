"""Coverage out of the box: model ids as real traffic and statements spell them (dated snapshots, gateway
slugs, OpenRouter slugs, Bedrock model, inference-profile and ARN ids, Vertex ids, Azure deployments) resolve
to one canonical model with its list price, from the sourced overlay or genai-prices' data beneath it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ledger.pricing.catalog import base_layer, shared_catalog
from ledger.pricing.prices import pricing_provider_of

AT = datetime(2026, 10, 15, 12, tzinfo=UTC)

# provider billing it, model as spelled, canonical model, input and output list price per 1M tokens at AT
GOLDEN = [
    ("openai", "gpt-4o", "gpt-4o", "2.5", "10"),
    ("openai", "gpt-4o-2024-08-06", "gpt-4o", "2.5", "10"),
    ("openai", "gpt-4o-2024-11-20", "gpt-4o", "2.5", "10"),
    ("openai", "openai/gpt-4o", "gpt-4o", "2.5", "10"),
    ("openai", "gpt-4o-mini", "gpt-4o-mini", "0.15", "0.6"),
    ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", "0.15", "0.6"),
    ("openai", "gpt-4.1", "gpt-4.1", "2", "8"),
    ("openai", "gpt-4.1-2025-04-14", "gpt-4.1", "2", "8"),
    ("openai", "gpt-4.1-mini", "gpt-4.1-mini", "0.4", "1.6"),
    ("openai", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini", "0.4", "1.6"),
    ("openai", "gpt-4.1-nano", "gpt-4.1-nano", "0.1", "0.4"),
    ("openai", "o4-mini", "o4-mini", "1.1", "4.4"),
    ("openai", "o4-mini-2025-04-16", "o4-mini", "1.1", "4.4"),
    ("openai", "o3", "o3", "2", "8"),
    ("openai", "o3-mini", "o3-mini", "1.1", "4.4"),
    ("openai", "gpt-5", "gpt-5", "1.25", "10"),
    ("openai", "gpt-5-mini", "gpt-5-mini", "0.25", "2"),
    ("openai", "gpt-5.4", "gpt-5.4", "2.5", "15"),
    ("openai", "gpt-5.4-mini-2026-03-17", "gpt-5.4-mini", "0.75", "4.5"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5", "3", "15"),
    ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "3", "15"),
    ("anthropic", "anthropic/claude-sonnet-4-5", "claude-sonnet-4-5", "3", "15"),
    ("anthropic", "claude-haiku-4-5", "claude-haiku-4-5", "1", "5"),
    ("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5", "1", "5"),
    ("anthropic", "claude-opus-4-1-20250805", "claude-opus-4-1", "15", "75"),
    ("anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest", "0.8", "4"),
    ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-0", "3", "15"),
    ("anthropic", "claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest", "3", "15"),
    ("google", "gemini-2.5-pro", "gemini-2.5-pro", "1.25", "10"),
    ("google", "gemini-2.5-flash", "gemini-2.5-flash", "0.3", "2.5"),
    ("google", "models/gemini-2.5-flash", "gemini-2.5-flash", "0.3", "2.5"),
    ("google", "gemini-2.0-flash", "gemini-2.0-flash", "0.1", "0.4"),
    ("google", "gemini-2.5-flash-lite", "gemini-2.5-flash-lite", "0.1", "0.4"),
    ("google", "vertex_ai/gemini-2.5-pro", "gemini-2.5-pro", "1.25", "10"),
    ("google", "claude-sonnet-4-5@20250929", "claude-sonnet-4-5", "3", "15"),
    ("google", "publishers/anthropic/models/claude-haiku-4-5@20251001", "claude-haiku-4-5", "1", "5"),
    ("deepseek", "deepseek-chat", "deepseek-chat", "0.15", "0.6"),
    ("deepseek", "deepseek-reasoner", "deepseek-reasoner", "0.15", "0.6"),
    ("deepseek", "deepseek/deepseek-chat", "deepseek-chat", "0.15", "0.6"),
    ("mistral", "mistral-large-latest", "mistral-large", "2", "6"),
    ("mistral", "mistral-large-2411", "mistral-large", "2", "6"),
    ("mistral", "mistral-small-latest", "mistral-small-latest", "0.15", "0.6"),
    ("mistral", "mistral-medium-latest", "mistral-medium-latest", "1.5", "7.5"),
    ("mistral", "codestral-latest", "codestral", "0.3", "0.9"),
    ("mistral", "ministral-8b-latest", "ministral-8b-latest", "0.15", "0.15"),
    ("qwen", "qwen-plus", "qwen-plus", "0.4", "1.2"),
    ("qwen", "qwen-max", "qwen-max", "1.6", "6.4"),
    ("qwen", "qwen-turbo", "qwen-turbo", "0.05", "0.2"),
    ("qwen", "qwen/qwen-plus", "qwen-plus", "0.4", "1.2"),
    ("qwen", "dashscope/qwen-plus", "qwen-plus", "0.4", "1.2"),
    ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5", "3", "15"),
    ("bedrock", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5", "3", "15"),
    ("bedrock", "anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5", "1", "5"),
    (
        "bedrock",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "claude-sonnet-4-5",
        "3",
        "15",
    ),
    ("bedrock", "bedrock/converse/us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5", "3", "15"),
    ("bedrock", "amazon.nova-pro-v1:0", "nova-pro", "0.8", "3.2"),
    ("bedrock", "us.amazon.nova-lite-v1:0", "nova-lite", "0.06", "0.24"),
    ("bedrock", "amazon.nova-micro-v1:0", "nova-micro", "0.035", "0.14"),
    ("bedrock", "meta.llama3-3-70b-instruct-v1:0", "llama3-3-70b-instruct", "0.72", "0.72"),
    ("bedrock", "us.meta.llama3-1-8b-instruct-v1:0", "llama3-1-8b-instruct", "0.22", "0.22"),
    ("bedrock", "mistral.mistral-large-2402-v1:0", "mistral-large-2402", "4", "12"),
    ("openrouter", "anthropic/claude-sonnet-4.5", "claude-sonnet-4-5", "3", "15"),
    ("openrouter", "anthropic/claude-haiku-4.5", "claude-haiku-4-5", "1", "5"),
    ("openrouter", "openai/gpt-4o", "gpt-4o", "2.5", "10"),
    ("openrouter", "openai/gpt-4.1-mini", "gpt-4.1-mini", "0.4", "1.6"),
    ("openrouter", "deepseek/deepseek-chat", "deepseek-chat", "0.15", "0.6"),
    ("openrouter", "qwen/qwen-plus", "qwen-plus", "0.4", "1.2"),
    ("openrouter", "mistralai/mistral-large", "mistral-large", "2", "6"),
    ("openrouter", "google/gemini-2.5-flash", "gemini-2.5-flash", "0.3", "2.5"),
    ("openrouter", "meta-llama/llama-3.3-70b-instruct", "llama-3.3-70b-instruct", "0.05", "0.24"),
    ("azure", "gpt-4o", "gpt-4o", "2.5", "10"),
    ("azure", "azure/gpt-4o-mini", "gpt-4o-mini", "0.15", "0.6"),
    ("azure", "gpt-4.1", "gpt-4.1", "2", "8"),
]
MAINSTREAM = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4.1"),
    ("openai", "gpt-4.1-mini"),
    ("openai", "o4-mini"),
    ("deepseek", "deepseek-chat"),
    ("deepseek", "deepseek-reasoner"),
    ("qwen", "qwen-plus"),
    ("mistral", "mistral-large-latest"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
]


def per_million(provider: str, model: str, token_type: str) -> Decimal | None:
    catalog = shared_catalog()
    row = catalog.unit_price(pricing_provider_of(provider, model), model, token_type, at=AT, billed_by=provider)
    return None if row is None else row.price_per_token() * 1_000_000


def test_the_golden_list_covers_the_providers_and_spellings_teams_use() -> None:
    assert len(GOLDEN) >= 60
    assert {provider for provider, *_ in GOLDEN} >= {
        "openai", "anthropic", "google", "deepseek", "mistral", "qwen", "bedrock", "openrouter", "azure",
    }  # fmt: skip


@pytest.mark.parametrize(("provider", "spelling", "canonical", "input_price", "output_price"), GOLDEN)
def test_a_model_as_spelled_in_traffic_resolves_to_its_canonical_model_and_list_price(
    provider: str, spelling: str, canonical: str, input_price: str, output_price: str
) -> None:
    assert shared_catalog().resolve(pricing_provider_of(provider, spelling), spelling) == canonical
    assert per_million(provider, spelling, "input") == Decimal(input_price)
    assert per_million(provider, spelling, "output") == Decimal(output_price)


@pytest.mark.parametrize(("provider", "model"), MAINSTREAM)
def test_mainstream_models_are_priced(provider: str, model: str) -> None:
    for token_type in ("input", "output"):
        assert per_million(provider, model, token_type) is not None, token_type
    if provider != "mistral":  # Mistral's API bills no cache reads
        assert per_million(provider, model, "cached_input") is not None


def test_the_base_layer_is_the_installed_genai_prices_data_and_prices_thousands_of_models() -> None:
    base, _ = base_layer()
    assert base.describe().startswith("genai-prices 0.2.")
    assert not base.updated
    assert base.model_count > 2_000
    assert all(row.layer == "genai-prices" and "genai-prices" in row.source for row in base.rows)


def test_the_overlay_wins_over_genai_prices_and_says_so() -> None:
    # genai-prices states Bedrock's regional Claude Sonnet 4.5 price; the overlay's sourced row wins.
    row = shared_catalog().unit_price("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "input", at=AT)
    assert row is not None
    assert (row.layer, row.price_per_token() * 1_000_000) == ("overlay", Decimal(3))
    gpt = shared_catalog().unit_price("openai", "gpt-4o", "input", at=AT)
    assert gpt is not None
    assert gpt.layer == "genai-prices"


def test_the_demo_says_how_many_models_are_priced_out_of_the_box() -> None:
    from ledger.cli.main import priced_out_of_the_box

    count, _, rest = priced_out_of_the_box().partition(" models priced out of the box: ")
    assert int(count.replace(",", "")) == shared_catalog().model_count() > 2_000
    assert "from the sourced overlay (ledger/pricing/prices.csv) over" in rest
    assert "genai-prices 0.2." in rest
