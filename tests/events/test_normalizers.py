"""Specification of the provider usage normalizers (ledger/events/normalizers.py).

Samples are written from each provider's documented usage shape; the comment above each names
the source. Canonical semantics: input counts every input token including cache reads and
writes, output every billed output token including reasoning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.events.normalizers import (
    SUPPORTED_PROVIDERS,
    NormalizedUsage,
    UnsupportedProviderError,
    UsageShapeError,
    normalize_usage,
)

# --- OpenAI (openai/openai-python src/openai/types/completion_usage.py, responses/response_usage.py)


def test_openai_chat_cached_tokens_are_part_of_prompt_tokens_and_reasoning_part_of_completion() -> None:
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 192,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }

    normalized = normalize_usage("openai", usage)

    assert normalized == NormalizedUsage(
        input_tokens=2006, output_tokens=300, cache_read_input_tokens=1920, reasoning_tokens=192
    )
    assert normalized.uncached_input_tokens == 86


def test_openai_chat_cache_write_tokens_are_part_of_prompt_tokens_with_no_ttl_split() -> None:
    usage = {
        "prompt_tokens": 4096,
        "completion_tokens": 12,
        "total_tokens": 4108,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 3072},
    }

    normalized = normalize_usage("openai", usage)

    assert normalized.input_tokens == 4096
    assert normalized.cache_creation_input_tokens == 3072
    assert normalized.cache_creation_1h_input_tokens == 0
    assert normalized.uncached_input_tokens == 1024


def test_openai_responses_api_shape_is_detected_by_its_keys() -> None:
    usage = {
        "input_tokens": 5120,
        "input_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 0},
        "output_tokens": 880,
        "output_tokens_details": {"reasoning_tokens": 640},
        "total_tokens": 6000,
    }

    assert normalize_usage("openai", usage) == NormalizedUsage(
        input_tokens=5120, output_tokens=880, cache_read_input_tokens=4096, reasoning_tokens=640
    )


def test_azure_reads_the_openai_shapes() -> None:
    usage = {"prompt_tokens": 300, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 256}}

    assert normalize_usage("azure", usage) == normalize_usage("openai", usage)


def test_openai_stream_usage_comes_from_the_final_chunk_with_empty_choices() -> None:
    # chat_completion_stream_options_param.py: with include_usage the extra last chunk carries the
    # totals for the whole request and `choices` is always [].
    final_chunk: dict[str, Any] = {
        "id": "chatcmpl-9x",
        "object": "chat.completion.chunk",
        "model": "gpt-5.4-mini-2026-03-17",
        "choices": [],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 85,
            "total_tokens": 1285,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "obfuscation": "q8Zr",
    }

    assert normalize_usage("openai", final_chunk["usage"]) == NormalizedUsage(
        input_tokens=1200, output_tokens=85, cache_read_input_tokens=1024
    )


def test_openai_stream_chunk_before_the_last_has_null_usage_which_is_rejected() -> None:
    earlier_chunk: dict[str, Any] = {"object": "chat.completion.chunk", "choices": [{}], "usage": None}

    with pytest.raises(UsageShapeError) as raised:
        normalize_usage("openai", earlier_chunk["usage"])

    assert raised.value.path == "usage"


def test_a_whole_response_envelope_instead_of_its_usage_is_rejected() -> None:
    envelope = {"id": "chatcmpl-9x", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}

    with pytest.raises(UsageShapeError, match=r"prompt_tokens.*input_tokens"):
        normalize_usage("openai", envelope)


# --- xAI, Groq, Together, Fireworks: OpenAI-compatible usage


def test_xai_chat_and_responses_samples_from_its_prompt_caching_docs() -> None:
    # docs.x.ai/developers/advanced-api-usage/prompt-caching/usage-and-pricing
    chat = {
        "prompt_tokens": 125,
        "completion_tokens": 48,
        "total_tokens": 173,
        "prompt_tokens_details": {"text_tokens": 125, "audio_tokens": 0, "image_tokens": 0, "cached_tokens": 98},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    responses = {
        "input_tokens": 125,
        "output_tokens": 48,
        "total_tokens": 173,
        "input_tokens_details": {"cached_tokens": 98},
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    expected = NormalizedUsage(input_tokens=125, output_tokens=48, cache_read_input_tokens=98)

    assert normalize_usage("xai", chat) == expected
    assert normalize_usage("xai", responses) == expected


@pytest.mark.parametrize("provider", ["groq", "together", "fireworks"])
def test_openai_compatible_providers_ignore_extra_fields_such_as_timings(provider: str) -> None:
    # Groq adds float timing fields beside the counts (console.groq.com/docs/api-reference).
    usage = {
        "queue_time": 0.021,
        "prompt_tokens": 24,
        "prompt_time": 0.0035,
        "completion_tokens": 377,
        "completion_time": 0.31,
        "total_tokens": 401,
    }

    assert normalize_usage(provider, usage) == NormalizedUsage(input_tokens=24, output_tokens=377)


# --- Anthropic (anthropics/anthropic-sdk-python src/anthropic/types/usage.py, message_delta_usage.py)

ANTHROPIC_MESSAGE_USAGE = {
    "input_tokens": 2105,
    "cache_creation_input_tokens": 1536,
    "cache_read_input_tokens": 24576,
    "cache_creation": {"ephemeral_5m_input_tokens": 512, "ephemeral_1h_input_tokens": 1024},
    "output_tokens": 318,
    "output_tokens_details": {"thinking_tokens": 120},
    "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 0},
    "service_tier": "standard",
    "inference_geo": "us",
}
ANTHROPIC_EXPECTED = NormalizedUsage(
    input_tokens=2105 + 24576 + 1536,
    output_tokens=318,
    cache_read_input_tokens=24576,
    cache_creation_input_tokens=1536,
    cache_creation_1h_input_tokens=1024,
    reasoning_tokens=120,
    web_search_requests=2,
    service_tier="standard",
)


def test_anthropic_input_tokens_exclude_cache_reads_and_writes_so_they_are_added() -> None:
    normalized = normalize_usage("anthropic", ANTHROPIC_MESSAGE_USAGE)

    assert normalized == ANTHROPIC_EXPECTED
    assert normalized.uncached_input_tokens == 2105


def test_anthropic_cache_writes_without_ttl_split_count_as_non_1h() -> None:
    usage = {"input_tokens": 10, "cache_creation_input_tokens": 2048, "output_tokens": 5}

    normalized = normalize_usage("anthropic", usage)

    assert normalized.input_tokens == 2058
    assert normalized.cache_creation_input_tokens == 2048
    assert normalized.cache_creation_1h_input_tokens == 0


def test_anthropic_null_cache_fields_read_as_zero() -> None:
    usage = {
        "input_tokens": 25,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
        "cache_creation": None,
        "server_tool_use": None,
        "service_tier": None,
        "output_tokens": 7,
    }

    assert normalize_usage("anthropic", usage) == NormalizedUsage(input_tokens=25, output_tokens=7)


def test_anthropic_thinking_tokens_are_capped_at_the_authoritative_output_tokens() -> None:
    # usage.py: output_tokens is "the inclusive, authoritative total used for billing"; thinking_tokens
    # "may differ from the model's exact generation count by a small number of tokens".
    usage = {"input_tokens": 10, "output_tokens": 100, "output_tokens_details": {"thinking_tokens": 103}}

    assert normalize_usage("anthropic", usage).reasoning_tokens == 100


def test_anthropic_stream_message_delta_usage_is_cumulative_not_added_to_message_start() -> None:
    # Billed: 2,105 uncached + 24,576 cache-read input, 318 output (reference A4 stream example).
    message_start_usage = {
        "input_tokens": 2105,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 24576,
        "output_tokens": 1,
    }
    message_delta_usage = {
        "input_tokens": 2105,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 24576,
        "output_tokens": 318,
    }

    assert normalize_usage("anthropic", message_start_usage).output_tokens == 1
    assert normalize_usage("anthropic", message_delta_usage) == NormalizedUsage(
        input_tokens=26681, output_tokens=318, cache_read_input_tokens=24576
    )


def test_anthropic_message_delta_usage_without_input_tokens_must_be_merged_first() -> None:
    with pytest.raises(UsageShapeError, match="message_start") as raised:
        normalize_usage("anthropic", {"output_tokens": 318})

    assert raised.value.path == "usage.input_tokens"


# --- Google Gemini (googleapis/python-genai google/genai/types.py GenerateContentResponseUsageMetadata)


def test_gemini_thoughts_are_outside_candidates_and_added_to_output() -> None:
    # gemini-2.5-pro-preview-05-06 response quoted in simonw/llm-gemini#75: 264 + 104 + 989 = 1357.
    usage_metadata = {
        "promptTokenCount": 264,
        "candidatesTokenCount": 104,
        "totalTokenCount": 1357,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 6}, {"modality": "IMAGE", "tokenCount": 258}],
        "thoughtsTokenCount": 989,
    }

    assert normalize_usage("google", usage_metadata) == NormalizedUsage(
        input_tokens=264, output_tokens=1093, reasoning_tokens=989
    )


def test_gemini_python_sdk_snake_case_is_read_like_the_wire_camel_case() -> None:
    usage_metadata = {
        "prompt_token_count": 444,
        "candidates_token_count": 133,
        "thoughts_token_count": 3343,
        "cached_content_token_count": None,
        "tool_use_prompt_token_count": None,
        "total_token_count": 3920,
        "traffic_type": None,
    }

    assert normalize_usage("gemini", usage_metadata) == NormalizedUsage(
        input_tokens=444, output_tokens=3476, reasoning_tokens=3343
    )


def test_gemini_whole_response_cached_content_is_inside_prompt_and_tool_use_prompt_is_extra_input() -> None:
    response = {
        "candidates": [{"content": {"parts": [{"text": "..."}], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": {
            "promptTokenCount": 40000,
            "cachedContentTokenCount": 32768,
            "candidatesTokenCount": 500,
            "toolUsePromptTokenCount": 1200,
            "thoughtsTokenCount": 800,
            "totalTokenCount": 42500,
            "trafficType": "ON_DEMAND",
        },
        "modelVersion": "gemini-2.5-flash",
    }

    assert normalize_usage("vertex", response) == NormalizedUsage(
        input_tokens=41200,
        output_tokens=1300,
        cache_read_input_tokens=32768,
        reasoning_tokens=800,
        service_tier="standard",
    )


@pytest.mark.parametrize(
    ("traffic_type", "tier"),
    [
        ("ON_DEMAND", "standard"),
        ("ON_DEMAND_PRIORITY", "priority"),
        ("ON_DEMAND_FLEX", "flex"),
        ("PROVISIONED_THROUGHPUT", None),
        ("TRAFFIC_TYPE_UNSPECIFIED", None),
    ],
)
def test_vertex_traffic_type_is_reported_as_the_service_tier_it_is_billed_at(
    traffic_type: str, tier: str | None
) -> None:
    usage_metadata = {"promptTokenCount": 9, "candidatesTokenCount": 4, "trafficType": traffic_type}

    assert normalize_usage("vertex", usage_metadata).service_tier == tier


def test_gemini_omitted_zero_fields_read_as_zero() -> None:
    assert normalize_usage("google", {"promptTokenCount": 7, "totalTokenCount": 7}) == NormalizedUsage(
        input_tokens=7, output_tokens=0
    )


def test_gemini_thoughts_already_inside_candidates_per_the_total_are_counted_once() -> None:
    # The 2025 Gemini API reported candidates including thoughts (BerriAI/litellm PR #10141 review);
    # totalTokenCount = prompt + candidates then shows it.
    usage_metadata = {
        "promptTokenCount": 100,
        "candidatesTokenCount": 500,
        "thoughtsTokenCount": 400,
        "totalTokenCount": 600,
    }

    assert normalize_usage("google", usage_metadata) == NormalizedUsage(
        input_tokens=100, output_tokens=500, reasoning_tokens=400
    )


def test_gemini_stream_final_chunk_carries_the_request_totals() -> None:
    last_chunk = {
        "candidates": [{"content": {"parts": [{"text": "."}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 20, "totalTokenCount": 70},
    }

    assert normalize_usage("gemini", last_chunk) == NormalizedUsage(input_tokens=50, output_tokens=20)


def test_vertex_also_reads_claude_on_vertex_in_the_anthropic_shape() -> None:
    # anthropics/anthropic-sdk-python src/anthropic/lib/vertex reuses the Messages resource and Usage.
    assert normalize_usage("vertex", ANTHROPIC_MESSAGE_USAGE) == ANTHROPIC_EXPECTED


# --- DeepSeek (api-docs.deepseek.com/guides/kv_cache)


def test_deepseek_live_sample_without_cache_hits() -> None:
    # Live response published at toiotech.apifox.cn/deepseek-reasoner-398141713e0.
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 11,
        "total_tokens": 21,
        "prompt_tokens_details": {"cached_tokens": 0},
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 10,
    }

    assert normalize_usage("deepseek", usage) == NormalizedUsage(input_tokens=10, output_tokens=11)


def test_deepseek_hits_reported_twice_are_counted_once() -> None:
    usage = {
        "prompt_tokens": 1900,
        "completion_tokens": 850,
        "total_tokens": 2750,
        "prompt_tokens_details": {"cached_tokens": 1792},
        "prompt_cache_hit_tokens": 1792,
        "prompt_cache_miss_tokens": 108,
        "completion_tokens_details": {"reasoning_tokens": 610},
    }

    normalized = normalize_usage("deepseek", usage)

    assert normalized == NormalizedUsage(
        input_tokens=1900, output_tokens=850, cache_read_input_tokens=1792, reasoning_tokens=610
    )
    assert normalized.uncached_input_tokens == 108


def test_deepseek_flat_fields_win_over_cached_tokens() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 1,
        "prompt_tokens_details": {"cached_tokens": 0},
        "prompt_cache_hit_tokens": 64,
        "prompt_cache_miss_tokens": 36,
    }

    assert normalize_usage("deepseek", usage).cache_read_input_tokens == 64


# --- Qwen / Alibaba Model Studio compatible mode (alibabacloud.com/help/en/model-studio/user-guide/context-cache)


def test_qwen_implicit_cache_hits_are_inside_prompt_tokens() -> None:
    usage = {
        "prompt_tokens": 3019,
        "completion_tokens": 104,
        "total_tokens": 3123,
        "prompt_tokens_details": {
            "text_tokens": 3019,
            "cached_tokens": 1605,
            "cache_creation_input_tokens": 0,
            "cache_type": "ephemeral",
        },
    }

    assert normalize_usage("qwen", usage) == NormalizedUsage(
        input_tokens=3019, output_tokens=104, cache_read_input_tokens=1605
    )


@pytest.mark.parametrize("provider", ["qwen", "dashscope", "alibaba"])
def test_qwen_explicit_cache_creation_is_also_inside_prompt_tokens(provider: str) -> None:
    # 2059 prompt tokens of which 2048 created the cache: 11 billed at the plain rate.
    usage = {
        "prompt_tokens": 2059,
        "completion_tokens": 30,
        "total_tokens": 2089,
        "prompt_tokens_details": {
            "cached_tokens": 0,
            "cache_creation_input_tokens": 2048,
            "cache_creation": {"ephemeral_5m_input_tokens": 2048},
            "cache_type": "ephemeral",
        },
    }

    normalized = normalize_usage(provider, usage)

    assert normalized.cache_creation_input_tokens == 2048
    assert normalized.cache_creation_1h_input_tokens == 0
    assert normalized.uncached_input_tokens == 11


# --- Mistral (mistralai/client-python models/usageinfo.py) and vLLM (vllm/entrypoints/openai/engine/protocol.py)


def test_mistral_prompt_cache_hits_are_inside_prompt_tokens() -> None:
    usage = {
        "prompt_tokens": 3200,
        "completion_tokens": 150,
        "total_tokens": 3350,
        "prompt_audio_seconds": None,
        "prompt_tokens_details": {"cached_tokens": 2816},
    }

    assert normalize_usage("mistral", usage) == NormalizedUsage(
        input_tokens=3200, output_tokens=150, cache_read_input_tokens=2816
    )


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 12, "total_tokens": 12, "completion_tokens": None, "prompt_tokens_details": None},
        {"prompt_tokens": 12, "total_tokens": 12, "prompt_tokens_details": {"cached_tokens": None}},
    ],
    ids=["null-completion-and-details", "absent-completion-null-cached"],
)
def test_vllm_null_or_absent_counts_read_as_zero(usage: dict[str, Any]) -> None:
    assert normalize_usage("vllm", usage) == NormalizedUsage(input_tokens=12, output_tokens=0)


# --- OpenRouter (OpenRouterTeam/typescript-sdk src/models/chatusage.ts; openrouter.ai/docs/use-cases/usage-accounting)


def test_openrouter_cost_becomes_an_exact_decimal() -> None:
    raw = (
        '{"prompt_tokens":15840,"completion_tokens":612,"total_tokens":16452,"cost":0.0235224,"is_byok":false,'
        '"prompt_tokens_details":{"cached_tokens":12288,"cache_write_tokens":0},'
        '"completion_tokens_details":{"reasoning_tokens":0},'
        '"cost_details":{"upstream_inference_cost":null,"upstream_inference_prompt_cost":0.0143424,'
        '"upstream_inference_completions_cost":0.00918}}'
    )

    from_floats = normalize_usage("openrouter", json.loads(raw))
    from_decimals = normalize_usage("openrouter", json.loads(raw, parse_float=Decimal))

    assert from_floats == NormalizedUsage(
        input_tokens=15840,
        output_tokens=612,
        cache_read_input_tokens=12288,
        reported_cost=Decimal("0.0235224"),
    )
    assert from_decimals == from_floats


def test_openrouter_cache_writes_and_web_searches() -> None:
    # Usage Accounting docs example (cache_write_tokens 100 inside prompt_tokens 194) plus
    # server_tool_use_details from the ChatUsage schema.
    usage = {
        "completion_tokens": 2,
        "completion_tokens_details": {"reasoning_tokens": 0},
        "cost": 0.95,
        "cost_details": {"upstream_inference_cost": 19},
        "prompt_tokens": 194,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 100, "audio_tokens": 0},
        "server_tool_use_details": {"web_search_requests": 1, "tool_calls_requested": 1, "tool_calls_executed": 1},
        "total_tokens": 196,
    }

    assert normalize_usage("openrouter", usage) == NormalizedUsage(
        input_tokens=194,
        output_tokens=2,
        cache_creation_input_tokens=100,
        web_search_requests=1,
        reported_cost=Decimal("0.95"),
    )


def test_openrouter_responses_shape_with_cost() -> None:
    # openrouter.ai/docs/agent-sdk/typescript/models/openresponsesusage
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 25,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 35,
        "cost": 0.00012,
    }

    assert normalize_usage("openrouter", usage).reported_cost == Decimal("0.00012")


# --- Amazon Bedrock (botocore data/bedrock-runtime service-2.json TokenUsage; AWS prompt-caching guide)

BEDROCK_CONVERSE_USAGE = {
    "inputTokens": 12,
    "outputTokens": 240,
    "totalTokens": 4352,
    "cacheReadInputTokens": 2048,
    "cacheWriteInputTokens": 2052,
    "cacheDetails": [{"ttl": "1h", "inputTokens": 2000}, {"ttl": "5m", "inputTokens": 52}],
}


def test_bedrock_converse_input_tokens_exclude_the_cache_and_details_split_writes_by_ttl() -> None:
    assert normalize_usage("bedrock", BEDROCK_CONVERSE_USAGE) == NormalizedUsage(
        input_tokens=4112,
        output_tokens=240,
        cache_read_input_tokens=2048,
        cache_creation_input_tokens=2052,
        cache_creation_1h_input_tokens=2000,
    )


def test_bedrock_converse_without_caching() -> None:
    usage = {"inputTokens": 30, "outputTokens": 628, "totalTokens": 658}

    assert normalize_usage("bedrock", usage) == NormalizedUsage(input_tokens=30, output_tokens=628)


def test_bedrock_invoke_model_for_claude_answers_in_the_anthropic_shape() -> None:
    # anthropics/anthropic-sdk-python src/anthropic/lib/bedrock reuses the Messages resource and Usage.
    assert normalize_usage("bedrock", ANTHROPIC_MESSAGE_USAGE) == ANTHROPIC_EXPECTED


# --- LiteLLM (BerriAI/litellm litellm/types/utils.py Usage; llms/anthropic/chat/transformation.py)


def test_litellm_usage_of_an_anthropic_call_normalizes_like_the_raw_anthropic_usage() -> None:
    litellm_usage = {
        "prompt_tokens": 28217,
        "completion_tokens": 318,
        "total_tokens": 28535,
        "prompt_tokens_details": {
            "cached_tokens": 24576,
            "cache_write_tokens": 1536,
            "cache_creation_tokens": 1536,
            "cache_creation_token_details": {"ephemeral_5m_input_tokens": 512, "ephemeral_1h_input_tokens": 1024},
        },
        "completion_tokens_details": {"reasoning_tokens": 120, "text_tokens": 198},
        "cache_creation_input_tokens": 1536,
        "cache_read_input_tokens": 24576,
        "server_tool_use": {"web_search_requests": 2},
    }

    normalized = normalize_usage("litellm", litellm_usage)

    assert normalized == NormalizedUsage(
        input_tokens=28217,
        output_tokens=318,
        cache_read_input_tokens=24576,
        cache_creation_input_tokens=1536,
        cache_creation_1h_input_tokens=1024,
        reasoning_tokens=120,
        web_search_requests=2,
    )
    assert (
        normalized.uncached_input_tokens == normalize_usage("anthropic", ANTHROPIC_MESSAGE_USAGE).uncached_input_tokens
    )


def test_litellm_top_level_cache_fields_are_used_when_details_are_absent() -> None:
    usage = {
        "prompt_tokens": 3000,
        "completion_tokens": 10,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 900,
    }

    normalized = normalize_usage("litellm", usage)

    assert (normalized.cache_read_input_tokens, normalized.cache_creation_input_tokens) == (2000, 900)


# --- Perplexity (OpenAI-compatible)


def test_perplexity_sonar_chat_usage() -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 312, "total_tokens": 321, "search_context_size": "low"}

    assert normalize_usage("perplexity", usage) == NormalizedUsage(input_tokens=9, output_tokens=312)


def test_perplexity_deep_research_counts_without_a_canonical_field_are_refused() -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 3000, "citation_tokens": 12000, "num_search_queries": 20}

    with pytest.raises(UsageShapeError) as raised:
        normalize_usage("perplexity", usage)

    assert raised.value.path == "usage.citation_tokens"


# --- dispatch


def test_supported_providers_are_exactly_the_documented_slugs_and_aliases() -> None:
    assert {
        "openai",
        "azure",
        "anthropic",
        "google",
        "gemini",
        "vertex",
        "deepseek",
        "qwen",
        "dashscope",
        "alibaba",
        "mistral",
        "vllm",
        "openrouter",
        "bedrock",
        "litellm",
        "together",
        "groq",
        "fireworks",
        "xai",
        "perplexity",
    } == SUPPORTED_PROVIDERS


def test_unknown_provider_is_refused_with_the_supported_list_even_for_openai_shaped_usage() -> None:
    with pytest.raises(UnsupportedProviderError) as raised:
        normalize_usage("cohere", {"prompt_tokens": 1, "completion_tokens": 1})

    message = str(raised.value)
    assert "'cohere'" in message
    assert all(slug in message for slug in SUPPORTED_PROVIDERS)
    assert isinstance(raised.value, ValueError)


# --- bad input names the JSON path

CHAT = {"prompt_tokens": 10, "completion_tokens": 4}


@pytest.mark.parametrize(
    ("provider", "usage", "path"),
    [
        ("openai", {**CHAT, "prompt_tokens": -1}, "usage.prompt_tokens"),
        ("openai", {**CHAT, "prompt_tokens": 10.0}, "usage.prompt_tokens"),
        ("openai", {**CHAT, "prompt_tokens": True}, "usage.prompt_tokens"),
        ("openai", {**CHAT, "prompt_tokens": "10"}, "usage.prompt_tokens"),
        ("openai", {**CHAT, "prompt_tokens": None}, "usage.prompt_tokens"),
        ("openai", {"prompt_tokens": 10}, "usage.completion_tokens"),
        ("openai", {"completion_tokens": 4}, "usage"),
        ("openai", {**CHAT, "prompt_tokens_details": 3}, "usage.prompt_tokens_details"),
        (
            "openai",
            {**CHAT, "prompt_tokens_details": {"cached_tokens": -5}},
            "usage.prompt_tokens_details.cached_tokens",
        ),
        (
            "openai",
            {**CHAT, "prompt_tokens_details": {"cached_tokens": 11}},
            "usage.prompt_tokens_details.cached_tokens",
        ),
        (
            "openai",
            {**CHAT, "prompt_tokens_details": {"cached_tokens": 6, "cache_write_tokens": 5}},
            "usage.prompt_tokens_details.cache_write_tokens",
        ),
        (
            "openai",
            {**CHAT, "completion_tokens_details": {"reasoning_tokens": 5}},
            "usage.completion_tokens_details.reasoning_tokens",
        ),
        (
            "openai",
            {"input_tokens": 5, "output_tokens": 1, "input_tokens_details": {"cached_tokens": 6}},
            "usage.input_tokens_details.cached_tokens",
        ),
        (
            "anthropic",
            {
                "input_tokens": 1,
                "output_tokens": 1,
                "cache_creation_input_tokens": 100,
                "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 10},
            },
            "usage.cache_creation",
        ),
        ("anthropic", {"input_tokens": 1, "output_tokens": 1, "service_tier": 3}, "usage.service_tier"),
        ("anthropic", {"input_tokens": 1, "output_tokens": 1, "server_tool_use": []}, "usage.server_tool_use"),
        ("google", {"promptTokenCount": 10, "cachedContentTokenCount": 11}, "usage.cachedContentTokenCount"),
        ("google", {"candidatesTokenCount": 5}, "usage"),
        ("google", {"usageMetadata": {"candidatesTokenCount": 5}}, "usage.usageMetadata.promptTokenCount"),
        ("google", {"promptTokenCount": 10, "prompt_token_count": 10}, "usage.prompt_token_count"),
        ("google", {"usageMetadata": [1]}, "usage.usageMetadata"),
        (
            "google",
            {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 8, "totalTokenCount": 15},
            "usage.thoughtsTokenCount",
        ),
        (
            "deepseek",
            {**CHAT, "prompt_cache_hit_tokens": 3, "prompt_cache_miss_tokens": 8},
            "usage.prompt_cache_miss_tokens",
        ),
        ("deepseek", {**CHAT, "prompt_cache_hit_tokens": 3}, "usage.prompt_cache_miss_tokens"),
        ("qwen", {"input_tokens": 10, "output_tokens": 4}, "usage"),
        (
            "qwen",
            {**CHAT, "prompt_tokens_details": {"cached_tokens": 6, "cache_creation_input_tokens": 5}},
            "usage.prompt_tokens_details.cache_creation_input_tokens",
        ),
        ("bedrock", {"inputTokens": 1}, "usage.outputTokens"),
        (
            "bedrock",
            {"inputTokens": 1, "outputTokens": 1, "cacheDetails": [{"ttl": "24h", "inputTokens": 5}]},
            "usage.cacheDetails[0].ttl",
        ),
        (
            "bedrock",
            {"inputTokens": 1, "outputTokens": 1, "cacheDetails": [{"ttl": "5m", "inputTokens": -5}]},
            "usage.cacheDetails[0].inputTokens",
        ),
        (
            "bedrock",
            {
                "inputTokens": 1,
                "outputTokens": 1,
                "cacheWriteInputTokens": 9,
                "cacheDetails": [{"ttl": "5m", "inputTokens": 5}],
            },
            "usage.cacheDetails",
        ),
        ("bedrock", {"inputTokens": 1, "outputTokens": 1, "cacheDetails": {"ttl": "5m"}}, "usage.cacheDetails"),
        ("bedrock", {"inputTokens": 1, "outputTokens": 1, "cacheDetails": [7]}, "usage.cacheDetails[0]"),
        ("openrouter", {**CHAT, "cost": "0.01"}, "usage.cost"),
        ("openrouter", {**CHAT, "cost": -0.01}, "usage.cost"),
        ("openrouter", {**CHAT, "cost": float("nan")}, "usage.cost"),
        ("openrouter", {**CHAT, "cost": True}, "usage.cost"),
        ("litellm", {**CHAT, "cache_read_input_tokens": 11}, "usage.cache_read_input_tokens"),
        ("mistral", {"completion_tokens": 3}, "usage"),
    ],
)
def test_bad_usage_raises_an_error_naming_the_json_path(provider: str, usage: dict[str, Any], path: str) -> None:
    with pytest.raises(UsageShapeError) as raised:
        normalize_usage(provider, usage)

    assert raised.value.path == path
    assert str(raised.value).startswith(f"{path}: ")


@pytest.mark.parametrize("usage", [[1, 2], None, "prompt_tokens=3", 12])
def test_usage_that_is_not_a_json_object_is_rejected(usage: Any) -> None:
    with pytest.raises(UsageShapeError) as raised:
        normalize_usage("openai", usage)

    assert raised.value.path == "usage"


# --- the canonical record keeps its own invariants


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 6, "cache_creation_input_tokens": 5},
            "exceed",
        ),
        (
            {
                "input_tokens": 10,
                "output_tokens": 1,
                "cache_creation_input_tokens": 2,
                "cache_creation_1h_input_tokens": 3,
            },
            "cache_creation_1h_input_tokens",
        ),
        ({"input_tokens": 10, "output_tokens": 1, "reasoning_tokens": 2}, "reasoning_tokens"),
        ({"input_tokens": -1, "output_tokens": 1}, "input_tokens"),
        ({"input_tokens": True, "output_tokens": 1}, "input_tokens"),
        ({"input_tokens": 1, "output_tokens": 1, "reported_cost": Decimal("-0.01")}, "reported_cost"),
        ({"input_tokens": 1, "output_tokens": 1, "reported_cost": 0.01}, "reported_cost"),
    ],
)
def test_normalized_usage_refuses_impossible_counts(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        NormalizedUsage(**fields)


# --- property: encoding a canonical split in each provider's shape and normalizing loses nothing


@dataclass(frozen=True)
class Split:
    """A request's canonical token split."""

    uncached: int
    cache_read: int
    write_5m: int
    write_1h: int
    output: int
    reasoning: int
    web_search: int

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h

    @property
    def input_total(self) -> int:
        return self.uncached + self.cache_read + self.write

    def expected(self) -> NormalizedUsage:
        return NormalizedUsage(
            input_tokens=self.input_total,
            output_tokens=self.output,
            cache_read_input_tokens=self.cache_read,
            cache_creation_input_tokens=self.write,
            cache_creation_1h_input_tokens=self.write_1h,
            reasoning_tokens=self.reasoning,
            web_search_requests=self.web_search,
        )


def _chat(s: Split) -> dict[str, Any]:
    return {
        "prompt_tokens": s.input_total,
        "completion_tokens": s.output,
        "total_tokens": s.input_total + s.output,
        "prompt_tokens_details": {"cached_tokens": s.cache_read, "cache_write_tokens": s.write},
        "completion_tokens_details": {"reasoning_tokens": s.reasoning},
    }


def _responses(s: Split) -> dict[str, Any]:
    return {
        "input_tokens": s.input_total,
        "input_tokens_details": {"cached_tokens": s.cache_read, "cache_write_tokens": s.write},
        "output_tokens": s.output,
        "output_tokens_details": {"reasoning_tokens": s.reasoning},
        "total_tokens": s.input_total + s.output,
    }


def _anthropic(s: Split) -> dict[str, Any]:
    return {
        "input_tokens": s.uncached,
        "cache_read_input_tokens": s.cache_read,
        "cache_creation_input_tokens": s.write,
        "cache_creation": {"ephemeral_5m_input_tokens": s.write_5m, "ephemeral_1h_input_tokens": s.write_1h},
        "output_tokens": s.output,
        "output_tokens_details": {"thinking_tokens": s.reasoning},
        "server_tool_use": {"web_search_requests": s.web_search, "web_fetch_requests": 0},
    }


def _anthropic_delta(s: Split) -> dict[str, Any]:
    return {
        "input_tokens": s.uncached,
        "cache_read_input_tokens": s.cache_read,
        "cache_creation_input_tokens": s.write,
        "output_tokens": s.output,
        "server_tool_use": {"web_search_requests": s.web_search, "web_fetch_requests": 0},
        "output_tokens_details": {"thinking_tokens": s.reasoning},
    }


def _gemini_counts(s: Split, *, thoughts_inside_candidates: bool = False) -> dict[str, int]:
    tool_use = s.uncached // 3
    prompt = s.uncached - tool_use + s.cache_read
    candidates = s.output if thoughts_inside_candidates else s.output - s.reasoning
    total = prompt + candidates + tool_use + (0 if thoughts_inside_candidates else s.reasoning)
    return {
        "promptTokenCount": prompt,
        "cachedContentTokenCount": s.cache_read,
        "toolUsePromptTokenCount": tool_use,
        "candidatesTokenCount": candidates,
        "thoughtsTokenCount": s.reasoning,
        "totalTokenCount": total,
    }


def _gemini_snake(s: Split) -> dict[str, Any]:
    camel_to_snake = {
        "promptTokenCount": "prompt_token_count",
        "cachedContentTokenCount": "cached_content_token_count",
        "toolUsePromptTokenCount": "tool_use_prompt_token_count",
        "candidatesTokenCount": "candidates_token_count",
        "thoughtsTokenCount": "thoughts_token_count",
        "totalTokenCount": "total_token_count",
    }
    return {camel_to_snake[key]: value for key, value in _gemini_counts(s).items()}


def _deepseek(s: Split) -> dict[str, Any]:
    return {
        "prompt_tokens": s.input_total,
        "completion_tokens": s.output,
        "prompt_tokens_details": {"cached_tokens": s.cache_read},
        "prompt_cache_hit_tokens": s.cache_read,
        "prompt_cache_miss_tokens": s.uncached,
        "completion_tokens_details": {"reasoning_tokens": s.reasoning},
    }


def _qwen(s: Split) -> dict[str, Any]:
    return {
        "prompt_tokens": s.input_total,
        "completion_tokens": s.output,
        "prompt_tokens_details": {
            "cached_tokens": s.cache_read,
            "cache_creation_input_tokens": s.write,
            "cache_creation": {"ephemeral_5m_input_tokens": s.write},
        },
        "completion_tokens_details": {"reasoning_tokens": s.reasoning},
    }


def _plain_chat(s: Split) -> dict[str, Any]:
    return {
        "prompt_tokens": s.input_total,
        "completion_tokens": s.output,
        "prompt_tokens_details": {"cached_tokens": s.cache_read},
    }


def _openrouter(s: Split) -> dict[str, Any]:
    return {**_chat(s), "server_tool_use_details": {"web_search_requests": s.web_search}}


def _bedrock(s: Split) -> dict[str, Any]:
    details = [{"ttl": ttl, "inputTokens": n} for ttl, n in (("1h", s.write_1h), ("5m", s.write_5m)) if n]
    return {
        "inputTokens": s.uncached,
        "outputTokens": s.output,
        "totalTokens": s.input_total + s.output,
        "cacheReadInputTokens": s.cache_read,
        "cacheWriteInputTokens": s.write,
        "cacheDetails": details,
    }


def _litellm(s: Split) -> dict[str, Any]:
    chat = _chat(s)
    chat["prompt_tokens_details"]["cache_creation_token_details"] = {
        "ephemeral_5m_input_tokens": s.write_5m,
        "ephemeral_1h_input_tokens": s.write_1h,
    }
    return {
        **chat,
        "cache_read_input_tokens": s.cache_read,
        "cache_creation_input_tokens": s.write,
        "server_tool_use": {"web_search_requests": s.web_search},
    }


WRITES, WRITES_1H, REASONING, WEB_SEARCH = "writes", "writes_1h", "reasoning", "web_search"


@dataclass(frozen=True)
class Encoding:
    provider: str
    encode: Callable[[Split], dict[str, Any]]
    expresses: frozenset[str]


ENCODINGS = {
    "openai-chat": Encoding("openai", _chat, frozenset({WRITES, REASONING})),
    "openai-responses": Encoding("openai", _responses, frozenset({WRITES, REASONING})),
    "azure-chat": Encoding("azure", _chat, frozenset({WRITES, REASONING})),
    "xai-responses": Encoding("xai", _responses, frozenset({WRITES, REASONING})),
    "together-chat": Encoding("together", _plain_chat, frozenset()),
    "groq-chat": Encoding("groq", _plain_chat, frozenset()),
    "fireworks-chat": Encoding("fireworks", _plain_chat, frozenset()),
    "perplexity-chat": Encoding("perplexity", _plain_chat, frozenset()),
    "anthropic": Encoding("anthropic", _anthropic, frozenset({WRITES, WRITES_1H, REASONING, WEB_SEARCH})),
    "anthropic-message-delta": Encoding("anthropic", _anthropic_delta, frozenset({WRITES, REASONING, WEB_SEARCH})),
    "bedrock-invoke-claude": Encoding("bedrock", _anthropic, frozenset({WRITES, WRITES_1H, REASONING, WEB_SEARCH})),
    "vertex-claude": Encoding("vertex", _anthropic, frozenset({WRITES, WRITES_1H, REASONING, WEB_SEARCH})),
    "gemini-camel": Encoding("google", _gemini_counts, frozenset({REASONING})),
    "gemini-snake": Encoding("gemini", _gemini_snake, frozenset({REASONING})),
    "gemini-response": Encoding("vertex", lambda s: {"usageMetadata": _gemini_counts(s)}, frozenset({REASONING})),
    "gemini-thoughts-in-candidates": Encoding(
        "google", lambda s: _gemini_counts(s, thoughts_inside_candidates=True), frozenset({REASONING})
    ),
    "deepseek": Encoding("deepseek", _deepseek, frozenset({REASONING})),
    "qwen": Encoding("qwen", _qwen, frozenset({WRITES, REASONING})),
    "mistral": Encoding("mistral", _plain_chat, frozenset()),
    "vllm": Encoding("vllm", _plain_chat, frozenset()),
    "openrouter": Encoding("openrouter", _openrouter, frozenset({WRITES, REASONING, WEB_SEARCH})),
    "bedrock-converse": Encoding("bedrock", _bedrock, frozenset({WRITES, WRITES_1H})),
    "litellm": Encoding("litellm", _litellm, frozenset({WRITES, WRITES_1H, REASONING, WEB_SEARCH})),
}

_TOKENS = st.integers(min_value=0, max_value=2_000_000)


@st.composite
def splits(draw: st.DrawFn, expresses: frozenset[str]) -> Split:
    def maybe(capability: str, strategy: st.SearchStrategy[int]) -> int:
        return draw(strategy) if capability in expresses else 0

    output = draw(_TOKENS)
    return Split(
        uncached=draw(_TOKENS),
        cache_read=draw(_TOKENS),
        write_5m=maybe(WRITES, _TOKENS),
        write_1h=maybe(WRITES_1H, _TOKENS),
        output=output,
        reasoning=maybe(REASONING, st.integers(min_value=0, max_value=output)),
        web_search=maybe(WEB_SEARCH, st.integers(min_value=0, max_value=50)),
    )


@pytest.mark.parametrize("encoding", ENCODINGS.values(), ids=ENCODINGS.keys())
@given(data=st.data())
def test_no_token_is_lost_or_double_counted(encoding: Encoding, data: st.DataObject) -> None:
    split = data.draw(splits(encoding.expresses))

    normalized = normalize_usage(encoding.provider, encoding.encode(split))

    assert normalized == split.expected()
    assert normalized.uncached_input_tokens == split.uncached


def test_every_supported_provider_has_a_property_encoding() -> None:
    assert {encoding.provider for encoding in ENCODINGS.values()} == SUPPORTED_PROVIDERS - {
        "dashscope",
        "alibaba",
    }


# --- property: any JSON object either normalizes to a valid record or raises UsageShapeError


def _keys(value: object) -> set[str]:
    """Every object key in a JSON value, at any depth."""
    if isinstance(value, dict):
        return set(value) | {key for child in value.values() for key in _keys(child)}
    if isinstance(value, list):
        return {key for child in value for key in _keys(child)}
    return set()


_ONE_OF_EACH = Split(uncached=1, cache_read=1, write_5m=1, write_1h=1, output=2, reasoning=1, web_search=1)
# The vocabulary of the real shapes, so random objects reach deep into every reader.
_FIELD_NAMES = st.sampled_from(
    sorted(
        {key for encoding in ENCODINGS.values() for key in _keys(encoding.encode(_ONE_OF_EACH))}
        | {"cost", "service_tier", "trafficType", "citation_tokens", "usageMetadata"}
    )
)
_JSON_LEAVES = (
    st.none() | st.booleans() | st.integers(-5, 5000) | st.floats(allow_nan=True) | st.sampled_from(["5m", "1h", "x"])
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_FIELD_NAMES, children, max_size=6),
    max_leaves=20,
)


@settings(max_examples=300)
@given(provider=st.sampled_from(sorted(SUPPORTED_PROVIDERS)), usage=st.dictionaries(_FIELD_NAMES, _JSON, max_size=8))
def test_arbitrary_usage_either_normalizes_or_raises_a_shape_error(provider: str, usage: dict[str, Any]) -> None:
    outcome: NormalizedUsage | UsageShapeError
    try:
        outcome = normalize_usage(provider, usage)
    except UsageShapeError as error:
        outcome = error

    if isinstance(outcome, UsageShapeError):
        assert outcome.path.startswith("usage")
    else:
        assert outcome.cache_read_input_tokens + outcome.cache_creation_input_tokens <= outcome.input_tokens
        assert outcome.reasoning_tokens <= outcome.output_tokens
