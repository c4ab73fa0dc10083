"""Anthropic Admin API pages: usage report token classes, cost report amounts in cents."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from importers.anthropic import AnthropicImporter
from importers.base import StatementError, StatementLine
from tests.importers.golden import json_document

DAY = {"starting_at": "2026-10-01T00:00:00Z", "ending_at": "2026-10-02T00:00:00Z"}


def page(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"data": [{**DAY, "results": list(rows)}], "has_more": False, "next_page": None}


def parse(body: dict[str, Any], name: str = "cost_report.json") -> list[StatementLine]:
    return AnthropicImporter().parse(json_document(name, body))


def cost_row(amount: str, **fields: Any) -> dict[str, Any]:
    return {"currency": "USD", "amount": amount, "workspace_id": "wrkspc_1", **fields}


@pytest.mark.parametrize(
    ("token_type", "usage_type"),
    [
        ("uncached_input_tokens", "uncached_input"),
        ("cache_read_input_tokens", "cached_input"),
        ("cache_creation.ephemeral_5m_input_tokens", "cache_write_5m"),
        ("cache_creation.ephemeral_1h_input_tokens", "cache_write_1h"),
        ("output_tokens", "output"),
        ("thinking_tokens", "other"),
    ],
)
def test_cost_token_types_map_to_usage_types(token_type: str, usage_type: str) -> None:
    [line] = parse(page(cost_row("100", cost_type="tokens", token_type=token_type, model="claude-sonnet-4-6")))

    assert line.usage_type == usage_type
    assert line.model == "claude-sonnet-4-6"


@pytest.mark.parametrize(
    ("cost_type", "usage_type"),
    [("web_search", "web_search"), ("code_execution", "other"), ("session_usage", "other"), (None, "other")],
)
def test_costs_that_are_not_tokens_keep_their_cost_type(cost_type: str | None, usage_type: str) -> None:
    [line] = parse(page(cost_row("100", cost_type=cost_type, token_type=None)))

    assert line.usage_type == usage_type
    assert line.raw["cost_type"] == cost_type


def test_cost_amounts_are_cents_written_as_decimal_strings() -> None:
    [line] = parse(page(cost_row("123.45", cost_type="tokens", token_type="output_tokens")))

    assert (line.amount, line.currency, line.quantity) == (Decimal("1.2345"), "USD", None)


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=5, allow_nan=False, allow_infinity=False))
def test_a_cost_in_cents_is_exactly_a_hundredth_in_dollars(cents: Decimal) -> None:
    [line] = parse(page(cost_row(str(cents), cost_type="tokens", token_type="output_tokens")))

    assert line.amount is not None
    assert line.amount * 100 == cents


def test_usage_rows_give_one_line_per_token_class_and_web_searches() -> None:
    row = {
        "uncached_input_tokens": 1500,
        "cache_creation": {"ephemeral_1h_input_tokens": 100, "ephemeral_5m_input_tokens": 400},
        "cache_read_input_tokens": 2400,
        "output_tokens": 180,
        "server_tool_use": {"web_search_requests": 12},
        "workspace_id": None,
        "api_key_id": None,
        "model": "claude-sonnet-4-6",
        "service_tier": "priority",
    }

    lines = parse(page(row), "usage_report.json")

    assert {line.usage_type: (line.quantity, line.unit) for line in lines} == {
        "uncached_input": (Decimal(1500), "tokens"),
        "cached_input": (Decimal(2400), "tokens"),
        "cache_write_5m": (Decimal(400), "tokens"),
        "cache_write_1h": (Decimal(100), "tokens"),
        "output": (Decimal(180), "tokens"),
        "web_search": (Decimal(12), "requests"),
    }
    assert {(line.account, line.api_key_id, line.service_tier, line.amount) for line in lines} == {
        (None, None, "priority", None)
    }


@given(
    uncached=st.integers(0, 10**12),
    read=st.integers(0, 10**12),
    write_5m=st.integers(0, 10**12),
    write_1h=st.integers(0, 10**12),
)
def test_usage_never_loses_an_input_token(uncached: int, read: int, write_5m: int, write_1h: int) -> None:
    row = {
        "uncached_input_tokens": uncached,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
        "output_tokens": 0,
    }

    lines = parse(page(row), "usage_report.json")

    inputs = [line.quantity or 0 for line in lines if line.usage_type not in ("output", "web_search")]
    assert sum(inputs) == uncached + read + write_5m + write_1h


def test_identify_claims_report_pages_and_empty_pages() -> None:
    importer = AnthropicImporter()

    assert importer.identify(json_document("r.json", page(cost_row("1"))))
    assert importer.identify(json_document("r.json", {"data": [], "has_more": False, "next_page": None}))
    assert not importer.identify(json_document("r.json", {"object": "page", "data": [], "has_more": False}))
    assert not importer.identify(json_document("r.json", {"data": [{"date": "2026-10-01"}], "has_more": False}))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (page(cost_row("a lot")), "cost_report.json: data[0].results[0].amount: expected a number, got 'a lot'"),
        (page(cost_row("1", currency=None)), "cost_report.json: data[0].results[0].currency: is null"),
        (
            {"data": [{"starting_at": "yesterday", "ending_at": "2026-10-02T00:00:00Z", "results": []}]},
            "cost_report.json: data[0].starting_at: expected an RFC 3339 timestamp, got 'yesterday'",
        ),
        (
            {"data": [{"starting_at": "2026-10-01T00:00:00", "ending_at": "2026-10-02T00:00:00Z", "results": []}]},
            "cost_report.json: data[0].starting_at: expected a timestamp with a UTC offset, got '2026-10-01T00:00:00'",
        ),
        (
            page(
                {"uncached_input_tokens": 1, "output_tokens": 1, "cache_creation": {"ephemeral_5m_input_tokens": 0.5}}
            ),
            "cost_report.json: data[0].results[0].cache_creation.ephemeral_5m_input_tokens: "
            "expected an integer, got 0.5",
        ),
        ({"data": {"starting_at": "2026-10-01T00:00:00Z"}}, "cost_report.json: data: expected a list, got dict"),
    ],
)
def test_a_bad_value_is_reported_with_its_file_path_and_field(body: dict[str, Any], message: str) -> None:
    with pytest.raises(StatementError) as raised:
        parse(body)

    assert str(raised.value) == message


def test_a_bucket_starting_on_9999_12_31_is_reported_with_its_path() -> None:
    page = {
        "data": [{"starting_at": "9999-12-31T00:00:00Z", "ending_at": "9999-12-31T23:59:59Z", "results": []}],
        "has_more": False,
        "next_page": None,
    }

    with pytest.raises(
        StatementError, match=r"^usage\.json: data\[0\]\.starting_at: 9999-12-31T00:00:00\+00:00 is outside"
    ):
        AnthropicImporter().parse(json_document("usage.json", page))
