"""Model names: whatever gateway, snapshot or cloud reported a model, it prices as one canonical name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.pricing.model_names import (
    billing_label_models,
    first_known,
    model_of_aws_usage_type,
    normalize_model_name,
    provider_of_model,
)

CANONICAL = [
    # gateway prefixes
    ("anthropic", "anthropic/claude-sonnet-4.6", "claude-sonnet-4-6"),
    ("openai", "openrouter/openai/gpt-5.4", "gpt-5.4"),
    ("openai", "openai/gpt-5.4-mini", "gpt-5.4-mini"),
    ("bedrock", "bedrock/converse/us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
    ("google", "vertex_ai/gemini-2.5-pro", "gemini-2.5-pro"),
    ("openai", "azure/gpt-5.4", "gpt-5.4"),
    ("deepseek", "deepseek/deepseek-v4-flash", "deepseek-v4-flash"),
    # dated snapshots
    ("openai", "gpt-5.4-mini-2026-03-17", "gpt-5.4-mini"),
    ("openai", "gpt-5-2025-08-07", "gpt-5"),
    ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    ("google", "claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
    ("google", "claude-sonnet-4-6@default", "claude-sonnet-4-6"),
    ("anthropic", "claude-haiku-5-5[1m]", "claude-haiku-5-5"),
    ("bedrock", "us.anthropic.claude-opus-5", "claude-opus-5"),
    ("qwen", "qwen3-max-2026-01-23", "qwen3-max"),
    # Bedrock model ids, inference profiles and ARNs
    ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
    ("bedrock", "global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
    ("bedrock", "anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
    (
        "bedrock",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "claude-sonnet-4-5",
    ),
    (
        "bedrock",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0",
        "claude-haiku-4-5",
    ),
    ("bedrock", "claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
    # Vertex publisher paths and Gemini API resource names
    ("google", "publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro"),
    ("google", "projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-flash", "gemini-2.5-flash"),
    ("google", "models/gemini-2.5-pro", "gemini-2.5-pro"),
    # dotted versus dashed versions, per model family
    ("anthropic", "claude-sonnet-4-6", "claude-sonnet-4-6"),
    ("anthropic", "Claude-Opus-4.6", "claude-opus-4-6"),
    ("openai", "gpt-5-4-mini", "gpt-5.4-mini"),
    ("google", "gemini-2-5-pro", "gemini-2.5-pro"),
    ("qwen", "qwen3-8-max", "qwen3.8-max"),
    # names that only look like versions stay as they are
    ("openai", "gpt-4-0613", "gpt-4-0613"),
    ("qwen", "qwen3-32b", "qwen3-32b"),
    ("bedrock", "amazon.titan-embed-text-v2:0", "titan-embed-text-v2"),
    ("google", "gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash-preview-09-2025"),
    ("mistral", "mistral-medium-latest", "mistral-medium-latest"),
    ("openai", "  GPT-5.4  ", "gpt-5.4"),
]


@pytest.mark.parametrize(("provider", "raw", "canonical"), CANONICAL)
def test_every_spelling_of_a_model_normalizes_to_its_canonical_name(provider: str, raw: str, canonical: str) -> None:
    assert normalize_model_name(provider, raw) == canonical


@pytest.mark.parametrize(("provider", "canonical"), sorted({(p, c) for p, _, c in CANONICAL}))
def test_a_canonical_name_is_its_own_normal_form(provider: str, canonical: str) -> None:
    assert normalize_model_name(provider, canonical) == canonical


@given(provider=st.text(max_size=12), raw=st.text(max_size=80))
def test_normalizing_is_total_and_lower_case(provider: str, raw: str) -> None:
    name = normalize_model_name(provider, raw)
    assert name == name.lower()
    assert "/" not in name


@pytest.mark.parametrize(
    ("raw", "provider"),
    [
        ("anthropic/claude-sonnet-4.6", "anthropic"),
        ("openai/gpt-5.4", "openai"),
        ("openrouter/openai/gpt-5.4", "openai"),
        ("openrouter/anthropic/claude-sonnet-4.6", "anthropic"),
        ("openrouter/auto", "openrouter"),
        ("bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock"),
        ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-v1:0", "bedrock"),
        ("vertex_ai/gemini-2.5-pro", "google"),
        ("publishers/google/models/gemini-2.5-pro", "google"),
        ("models/gemini-2.5-pro", "google"),
        ("azure/my-gpt-deployment", "azure"),
        ("dashscope/qwen3.8-max", "qwen"),
        ("mistralai/mistral-medium-latest", "mistral"),
    ],
)
def test_gateway_prefixes_name_the_billing_provider(raw: str, provider: str) -> None:
    assert provider_of_model(raw) == provider


@pytest.mark.parametrize("raw", ["gpt-5.4", "claude-sonnet-4-6", "some-team/fine-tune", ""])
def test_a_name_without_a_known_prefix_has_no_provider(raw: str) -> None:
    assert provider_of_model(raw) is None


def test_billing_meter_labels_name_the_model_they_charge_for() -> None:
    assert normalize_model_name("google", "Gemini 2.5 Flash Text Input") == "gemini-2.5-flash"
    assert normalize_model_name("google", "Gemini 2.5 Pro Cached Text Input") == "gemini-2.5-pro"
    assert normalize_model_name("azure", "gpt-4.1 Input global Tokens") == "gpt-4.1"
    assert normalize_model_name("bedrock", "Claude Sonnet 4.5 input tokens in US East (N. Virginia)") == (
        "claude-sonnet-4-5"
    )


@pytest.mark.parametrize(
    ("usage_type", "model"),
    [
        ("USE1-Claude4.5Sonnet-input-tokens", "claude-sonnet-4-5"),
        ("USW2-Claude4.5Sonnet-output-tokens", "claude-sonnet-4-5"),
        ("EUC1-Claude4.5Haiku-cache-read-input-token-count", "claude-haiku-4-5"),
        ("USE1-Claude4.5Sonnet-cache-write-input-token-count", "claude-sonnet-4-5"),
        ("USE1-Claude4.1Opus-input-tokens", "claude-opus-4-1"),
        ("USE1-Claude3.5Haiku-output-tokens", "claude-3-5-haiku"),
        ("USE1-NovaPro-input-tokens", "nova-pro"),
        ("USW2-Nova2Lite-output-tokens", "nova-2-lite"),
        ("USE1-Llama3.3-70B-Instruct-input-tokens", "llama3-3-70b-instruct"),
        ("USE1-MistralLarge-output-tokens", "mistral-large"),
        ("USE1-gpt-oss-120b-mantle-input-tokens-flex", "gpt-oss-120b"),
        ("USE1-Guardrail-TextUnits", None),
    ],
)
def test_an_aws_usage_type_names_the_model_as_its_vendor_spells_it(usage_type: str, model: str | None) -> None:
    assert model_of_aws_usage_type(usage_type) == model


def test_a_product_name_names_a_model_only_when_it_is_a_model_edition() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert billing_label_models(
        usage_type="USE1-Claude4.5Sonnet-input-tokens",
        resource_id=arn,
        product="Claude Sonnet 4.5 (Amazon Bedrock Edition)",
        texts=["Claude Sonnet 4.5 input tokens", None],
    ) == [
        "claude-sonnet-4-5",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "Claude Sonnet 4.5",
        "Claude Sonnet 4.5 input tokens",
    ]
    assert billing_label_models(product="Amazon Bedrock", texts=["Guardrail text units"]) == ["Guardrail text units"]


def test_of_several_names_the_first_a_price_is_known_for_wins() -> None:
    def known(provider: str, name: str) -> str | None:
        canonical = normalize_model_name(provider, name)
        return canonical if canonical == "claude-sonnet-4-5" else None

    names = ["acme-private-label", "Claude Sonnet 4.5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"]
    assert first_known("bedrock", names, known) == "Claude Sonnet 4.5"
    assert first_known("bedrock", ["acme-private-label", "other"], known) == "acme-private-label"
    assert first_known("bedrock", [], known) is None
