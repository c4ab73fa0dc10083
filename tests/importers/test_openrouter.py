"""OpenRouter: one generation record is one request; one activity row is one model on one day."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from importers.base import StatementError, StatementLine, unrecognised
from importers.openrouter import OpenRouterImporter
from tests.importers.golden import json_document

GENERATION = {
    "id": "gen-1",
    "created_at": "2026-10-01T14:03:22.482Z",
    "model": "anthropic/claude-sonnet-4.6",
    "total_cost": 0.0235224,
    "cache_discount": 0.0331776,
    "native_tokens_prompt": 15840,
    "native_tokens_cached": 12288,
    "native_tokens_completion": 612,
    "native_tokens_reasoning": 40,
    "tokens_prompt": 15502,
    "tokens_completion": 600,
    "provider_name": "Anthropic",
    "upstream_id": "msg_1",
    "cancelled": False,
    "finish_reason": "stop",
}


def parse_generation(**changes: Any) -> list[StatementLine]:
    return OpenRouterImporter().parse(json_document("generation.json", {"data": {**GENERATION, **changes}}))


def test_a_generation_bills_native_tokens_and_its_total_cost_on_one_request() -> None:
    lines = parse_generation()

    assert {line.usage_type: (line.quantity, line.amount) for line in lines} == {
        "uncached_input": (Decimal(15840 - 12288), None),
        "cached_input": (Decimal(12288), None),
        "output": (Decimal(612), None),
        "requests": (Decimal(1), Decimal("0.0235224")),
    }
    assert {(line.request_id, line.model, line.currency) for line in lines if line.amount} == {
        ("gen-1", "anthropic/claude-sonnet-4.6", "USD")
    }


def test_a_generation_is_an_instant_and_keeps_its_routing_details() -> None:
    line = parse_generation()[0]

    assert line.period_start == line.period_end == datetime(2026, 10, 1, 14, 3, 22, 482000, tzinfo=UTC)
    for key in ("cache_discount", "provider_name", "model", "upstream_id", "cancelled", "finish_reason"):
        assert key in line.raw


def test_a_generation_without_cache_counts_all_prompt_tokens_as_uncached() -> None:
    lines = parse_generation(native_tokens_cached=None)

    assert {line.usage_type: line.quantity for line in lines}["uncached_input"] == Decimal(15840)
    assert "cached_input" not in {line.usage_type for line in lines}


def test_more_cached_than_prompt_tokens_is_an_error_naming_the_field() -> None:
    with pytest.raises(StatementError) as raised:
        parse_generation(native_tokens_cached=20000)

    assert str(raised.value) == (
        "generation.json: data.native_tokens_cached: 20000 is more than native_tokens_prompt (15840)"
    )


def test_a_generation_without_a_cost_is_an_error() -> None:
    with pytest.raises(StatementError, match=r"^generation\.json: data\.total_cost: is null$"):
        parse_generation(total_cost=None)


def test_an_activity_row_gives_requests_with_their_cost_and_output_tokens() -> None:
    row = {
        "date": "2026-10-01",
        "model": "openai/gpt-5.4",
        "usage": 3.2,
        "byok_usage_inference": 0.8,
        "requests": 75,
        "prompt_tokens": 410000,
        "completion_tokens": 61000,
        "reasoning_tokens": 15000,
    }

    lines = OpenRouterImporter().parse(json_document("activity.json", {"data": [row]}))

    assert [(line.usage_type, line.quantity, line.amount) for line in lines] == [
        ("requests", Decimal(75), Decimal("3.2")),
        ("output", Decimal(61000), None),
        ("other", Decimal(410000), None),
    ]
    assert {(line.period_start, line.period_end) for line in lines} == {
        (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC))
    }
    assert unrecognised(lines) == {"prompt_tokens": 1}


def test_an_activity_date_that_is_not_a_date_is_an_error() -> None:
    row = {"date": "01/10/2026", "model": "m", "usage": 1, "requests": 1}

    with pytest.raises(StatementError, match=r"data\[0\]\.date: expected a date like 2026-10-01, got '01/10/2026'"):
        OpenRouterImporter().parse(json_document("activity.json", {"data": [row]}))


def test_identify_claims_generations_and_activity_days() -> None:
    importer = OpenRouterImporter()

    assert importer.identify(json_document("generation.json", {"data": GENERATION}))
    assert importer.identify(json_document("a.json", {"data": [{"date": "2026-10-01", "requests": 1}]}))
    assert importer.identify(json_document("/api/v1/activity?date=2026-10-01", {"data": []}))
    assert not importer.identify(json_document("other.json", {"data": []}))
    assert not importer.identify(json_document("r.json", {"data": [], "has_more": False}))
