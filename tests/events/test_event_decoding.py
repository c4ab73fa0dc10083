"""Decoding a request body: the one-pass path for plain events gives exactly the rows of the exact path
(json with Decimal numbers, then validation), for every body shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.events.schema import EventValidationError, decode_events, parse_body, validate_events

NOW = datetime(2026, 10, 7, 12, tzinfo=UTC)
# Text a JSON body can carry and PostgreSQL can store: UTF-8 (no lone surrogates, which newer Hypothesis
# versions draw by default) without NUL.
storable_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=5)

events = st.fixed_dictionaries(
    {
        "event_id": st.text(st.characters(categories=["L", "N", "P"]), min_size=1, max_size=20),
        "occurred_at": st.sampled_from(["2026-10-07T11:59:00Z", "2026-10-07T13:30:00.123456+02:00"]),
        "provider": st.sampled_from(["openai", "anthropic", "vllm"]),
        "request_model": st.sampled_from(["gpt-5.4", " claude-haiku-4-5 "]),
        "input_tokens": st.integers(1_000, 10**7),
        "output_tokens": st.integers(0, 10**6),
    },
    optional={
        "cache_read_input_tokens": st.integers(0, 500),
        "response_model": st.just("gpt-5.4-2026-03-05"),
        "finish_reason": st.none() | st.sampled_from(["stop", "length"]),
        "status_code": st.sampled_from([200, 429, 503]),
        "latency_ms": st.integers(0, 10**6),
        "stream": st.booleans(),
        "tags": st.dictionaries(storable_text, storable_text, max_size=3),
        "service_tier": st.sampled_from(["standard", "batch"]),
    },
)


def body_of(batch: list[dict[str, Any]], shape: str) -> tuple[bytes, str]:
    if shape == "ndjson":
        return "\n".join(json.dumps(event) for event in batch).encode(), "application/x-ndjson"
    if shape == "object":
        return json.dumps(batch[0]).encode(), "application/json"
    return json.dumps(batch).encode(), "application/json"


@settings(max_examples=150, deadline=None)
@given(st.lists(events, min_size=1, max_size=5), st.sampled_from(["array", "ndjson", "object"]))
def test_plain_events_decode_to_the_rows_of_the_exact_path(batch: list[dict[str, Any]], shape: str) -> None:
    body, content_type = body_of(batch, shape)
    exact = validate_events(parse_body(body, content_type), tenant_id=7, now=NOW)
    assert decode_events(body, content_type, tenant_id=7, now=NOW) == exact


def test_a_bad_event_is_named_as_the_exact_path_names_it() -> None:
    good = {"event_id": "a", "occurred_at": "2026-10-07T11:00:00Z", "provider": "openai", "request_model": "m",
            "input_tokens": 10, "output_tokens": 1}  # fmt: skip
    body = json.dumps([good, {**good, "event_id": "b", "input_tokns": 5}]).encode()
    with pytest.raises(EventValidationError) as raised:
        decode_events(body, "application/json", tenant_id=7, now=NOW)
    assert [problem.as_dict() for problem in raised.value.problems] == [
        {"index": 1, "field": "input_tokns", "message": "unknown field; did you mean 'input_tokens'?"}
    ]
    assert raised.value.events == 2


def test_fractional_numbers_keep_every_digit_and_a_cost_the_column_would_round_is_refused() -> None:
    event = ('{"event_id": "a", "occurred_at": "2026-10-07T11:00:00Z", "provider": "openai", "request_model": "m", '
             '"input_tokens": 10, "output_tokens": 1, "reported_cost": %s}')  # fmt: skip
    (row,) = decode_events((event % "987654.3210987653").encode(), "application/json", tenant_id=7, now=NOW)
    assert str(row.reported_cost) == "987654.3210987653"  # a float would read 987654.3210987652
    for cost, problem in [
        ("0.1000000000000000000000000001", "has more than 10 decimal places; it would be rounded"),
        ("1e-11", "has more than 10 decimal places; it would be rounded"),  # stored as 0
        ("999999.99999999999", "has more than 10 decimal places"),  # stored as 1000000, past the limit
        ('"1_000"', "must be a JSON number or a decimal string such as \"0.0123\", got '1_000'"),
        ('" 12 "', "must be a JSON number or a decimal string"),
        ("true", "must be a number, not true or false"),
    ]:
        with pytest.raises(EventValidationError) as raised:
            decode_events((event % cost).encode(), "application/json", tenant_id=7, now=NOW)
        assert [(p.field, problem in p.message) for p in raised.value.problems] == [("reported_cost", True)], cost
    (row,) = decode_events((event % '"0.0123000000000"').encode(), "application/json", tenant_id=7, now=NOW)
    assert row.reported_cost == Decimal("0.0123")  # trailing zeros change nothing


def test_every_field_lands_in_its_own_column() -> None:
    event = {
        "event_id": "evt-1", "occurred_at": "2026-10-07T13:00:00+02:00", "provider": "openai", "account": "proj",
        "api_key_id": "key", "request_model": "gpt-5.4", "response_model": "gpt-5.4-2026-03-05",
        "input_tokens": 1000, "output_tokens": 300, "cache_read_input_tokens": 200,
        "cache_creation_input_tokens": 100, "reasoning_tokens": 50, "system_prompt_tokens": 120, "max_tokens": 900,
        "finish_reason": "length", "status_code": 201, "error_type": "other", "latency_ms": 850, "ttft_ms": 90,
        "stream": True, "service_tier": "flex", "region": "eu", "app": "bot", "user": "u-1", "tags": {"team": "a"},
        "provider_request_id": "chatcmpl-1",
    }  # fmt: skip
    (row,) = decode_events(json.dumps(event).encode(), "application/json", tenant_id=7, now=NOW)
    assert row._asdict() == {
        "tenant_id": 7, "occurred_at": datetime(2026, 10, 7, 11, tzinfo=UTC), "event_id": "evt-1",
        "received_at": NOW, "provider": "openai", "account": "proj", "api_key_id": "key",
        "request_model": "gpt-5.4", "response_model": "gpt-5.4-2026-03-05", "input_tokens": 1000,
        "output_tokens": 300, "cache_read_input_tokens": 200, "cache_creation_input_tokens": 100,
        "cache_creation_1h_input_tokens": 0, "reasoning_tokens": 50, "web_search_requests": 0,
        "system_prompt_tokens": 120, "max_tokens": 900, "finish_reason": "length", "status_code": 201,
        "error_type": "other", "latency_ms": 850, "ttft_ms": 90, "stream": True, "service_tier": "flex",
        "region": "eu", "app": "bot", "user_label": "u-1", "tags": {"team": "a"},
        "provider_request_id": "chatcmpl-1", "reported_cost": None, "usage_raw": None,
    }  # fmt: skip
