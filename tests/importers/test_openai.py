"""OpenAI Admin API pages: usage lines by token class, cost lines by line item."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from importers.base import RawDocument, StatementError, StatementLine, unrecognised
from importers.openai import OpenAIImporter
from tests.importers.golden import json_document

DAY = {"object": "bucket", "start_time": 1790812800, "end_time": 1790899200}


def usage_page(**result: Any) -> dict[str, Any]:
    row = {"object": "organization.usage.completions.result", "num_model_requests": 1, **result}
    return {"object": "page", "data": [{**DAY, "results": [row]}], "has_more": False, "next_page": None}


def cost_page(*results: dict[str, Any]) -> dict[str, Any]:
    rows = [{"object": "organization.costs.result", "project_id": "proj_1", **row} for row in results]
    return {"object": "page", "data": [{**DAY, "results": rows}], "has_more": False, "next_page": None}


def parse(body: dict[str, Any], name: str = "openai_usage_p1.json") -> list[StatementLine]:
    return OpenAIImporter().parse(json_document(name, body))


def by_type(lines: list[StatementLine]) -> dict[str, Decimal | None]:
    return {line.usage_type: line.quantity for line in lines}


def test_uncached_input_is_derived_when_the_page_does_not_give_it() -> None:
    lines = parse(
        usage_page(input_tokens=1000, input_cached_tokens=600, input_cache_write_tokens=100, output_tokens=50)
    )

    assert by_type(lines) == {
        "uncached_input": Decimal(300),
        "cached_input": Decimal(600),
        "cache_write_5m": Decimal(100),
        "output": Decimal(50),
        "requests": Decimal(1),
    }


def test_batch_usage_is_reported_under_the_batch_tier() -> None:
    lines = parse(usage_page(input_tokens=10, output_tokens=1, batch=True, service_tier="default"))

    assert {line.service_tier for line in lines} == {"batch"}


def test_ungrouped_dimensions_stay_null() -> None:
    lines = parse(usage_page(input_tokens=10, output_tokens=1, project_id=None, api_key_id=None, model=None))

    assert {(line.account, line.api_key_id, line.model, line.service_tier) for line in lines} == {
        (None, None, None, None)
    }


@given(
    uncached=st.integers(0, 10**12),
    cached=st.integers(0, 10**12),
    write=st.integers(0, 10**12),
    given_uncached=st.booleans(),
)
def test_usage_never_loses_an_input_token(uncached: int, cached: int, write: int, given_uncached: bool) -> None:
    fields: dict[str, Any] = {"input_tokens": uncached + cached + write, "output_tokens": 0}
    fields |= {"input_cached_tokens": cached, "input_cache_write_tokens": write}
    if given_uncached:
        fields["input_uncached_tokens"] = uncached

    lines = parse(usage_page(**fields))

    input_lines = [line for line in lines if line.usage_type in ("uncached_input", "cached_input", "cache_write_5m")]
    assert sum(line.quantity or 0 for line in input_lines) == uncached + cached + write


@pytest.mark.parametrize(
    ("line_item", "usage_type", "model", "tier"),
    [
        ("gpt-5.4-2026-03-05, input", "uncached_input", "gpt-5.4-2026-03-05", None),
        ("gpt-5.4-2026-03-05, cached input", "cached_input", "gpt-5.4-2026-03-05", None),
        ("gpt-5.4-2026-03-05, output", "output", "gpt-5.4-2026-03-05", None),
        ("gpt-5.6-sol, cache writes", "cache_write_5m", "gpt-5.6-sol", None),
        ("gpt-6-astra, input_tokens", "uncached_input", "gpt-6-astra", None),
        ("priority | gpt-5.6-sol, output, long context", "output", "gpt-5.6-sol", "priority"),
        ("gpt-image-2.5-flare text, cached input", "cached_input", "gpt-image-2.5-flare", None),
        ("gpt-audio-mini-2025-12-15 audio, input", "other", "gpt-audio-mini-2025-12-15", None),
        ("mystery | gpt-5.4, input", "other", "gpt-5.4", None),
        ("gpt-5.4, reasoning summary", "other", "gpt-5.4", None),
        ("web search tool calls", "other", None, None),
        (None, "other", None, None),
    ],
)
def test_cost_line_items_map_to_usage_types(
    line_item: str | None, usage_type: str, model: str | None, tier: str | None
) -> None:
    [line] = parse(cost_page({"amount": {"value": 1.5, "currency": "usd"}, "line_item": line_item}))

    assert (line.usage_type, line.model, line.service_tier) == (usage_type, model, tier)
    assert (line.amount, line.currency) == (Decimal("1.5"), "USD")
    assert line.raw["line_item"] == line_item


def test_cost_amounts_keep_every_digit_the_page_wrote() -> None:
    body = (
        b'{"object":"page","has_more":false,"data":[{"start_time":1790812800,"end_time":1790899200,"results":['
        b'{"object":"organization.costs.result","amount":{"value":0.11827500000000001,"currency":"usd"}}]}]}'
    )

    [line] = OpenAIImporter().parse(RawDocument("costs.json", body, "application/json", "openai"))

    assert line.amount == Decimal("0.11827500000000001")


@pytest.mark.parametrize(
    ("quantity", "unit", "expected"),
    [
        (96, "1000_tokens", (Decimal(96000), "tokens")),
        (450000, "tokens", (Decimal(450000), "tokens")),
        (450000.0, None, (Decimal(450000), "tokens")),
        (0.5, "gibibyte_hours", (Decimal("0.5"), "gibibyte_hours")),
    ],
)
def test_cost_quantities_are_counted_in_tokens_when_they_count_tokens(
    quantity: float, unit: str | None, expected: tuple[Decimal, str]
) -> None:
    line_item = "Vector storage" if unit == "gibibyte_hours" else "gpt-5.4, output"
    row: dict[str, Any] = {"amount": {"value": 1, "currency": "usd"}, "line_item": line_item}
    row |= {"quantity": quantity, "quantity_unit": unit}

    [line] = parse(cost_page(row))

    assert (line.quantity, line.unit) == expected


def test_unknown_line_items_can_be_listed_by_their_own_text() -> None:
    lines = parse(
        cost_page(
            {"amount": {"value": 0.5, "currency": "usd"}, "line_item": "web search tool calls"},
            {"amount": {"value": 0.1, "currency": "usd"}, "line_item": "Vector storage"},
            {"amount": {"value": 0.2, "currency": "usd"}, "line_item": "web search tool calls"},
            {"amount": {"value": 1.0, "currency": "usd"}, "line_item": "gpt-5.4, output"},
        )
    )

    assert unrecognised(lines) == {"web search tool calls": 2, "Vector storage": 1}


def test_results_of_other_usage_endpoints_are_kept_as_other_lines() -> None:
    body = usage_page(input_tokens=1, output_tokens=1)
    body["data"][0]["results"] = [
        {"object": "organization.usage.embeddings.result", "input_tokens": 5, "num_model_requests": 1}
    ]

    [line] = parse(body)

    assert line.usage_type == "other"
    assert line.raw["object"] == "organization.usage.embeddings.result"


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"end_time": 10**20}, "data[0].end_time: expected a Unix time in seconds, got 100000000000000000000"),
        ({"end_time": 1790726400}, "period_end: 2026-09-30T00:00:00+00:00 is before period_start"),
    ],
)
def test_bucket_bounds_that_are_no_day_name_the_page_and_field(bounds: dict[str, int], message: str) -> None:
    page = usage_page(model="gpt-5.4", input_tokens=10, output_tokens=2)
    page["data"][0].update(bounds)

    with pytest.raises(StatementError, match=r"^openai_usage_p1\.json: ") as refused:
        parse(page)

    assert message in str(refused.value)


def test_identify_claims_openai_pages_only() -> None:
    importer = OpenAIImporter()

    assert importer.identify(json_document("p.json", usage_page(input_tokens=1, output_tokens=1)))
    assert importer.identify(json_document("p.json", {"object": "page", "data": [], "has_more": False}))
    assert not importer.identify(json_document("p.json", {"data": [], "has_more": False}))
    assert not importer.identify(json_document("p.csv", {"object": "list", "data": []}))


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (
            {"input_tokens": "x", "output_tokens": 1},
            "openai_usage_p1.json: data[0].results[0].input_tokens: expected an integer, got 'x'",
        ),
        ({"input_tokens": 1}, "openai_usage_p1.json: data[0].results[0].output_tokens: is missing"),
        (
            {"input_tokens": 1, "output_tokens": -4},
            "openai_usage_p1.json: data[0].results[0].output_tokens: expected a count of zero or more, got -4",
        ),
        (
            {"input_tokens": 10, "input_cached_tokens": 8, "input_cache_write_tokens": 5, "output_tokens": 1},
            "openai_usage_p1.json: data[0].results[0].input_tokens: 10 is less than input_cached_tokens + "
            "input_cache_write_tokens (13)",
        ),
        (
            {"input_tokens": 1, "output_tokens": 1, "batch": "yes"},
            "openai_usage_p1.json: data[0].results[0].batch: expected true or false, got 'yes'",
        ),
    ],
)
def test_a_bad_usage_value_is_reported_with_its_file_path_and_field(result: dict[str, Any], message: str) -> None:
    with pytest.raises(StatementError) as raised:
        parse(usage_page(**result))

    assert str(raised.value) == message


def test_a_bad_bucket_time_and_a_bad_amount_are_reported_with_their_path() -> None:
    body = usage_page(input_tokens=1, output_tokens=1)
    body["data"][0]["start_time"] = "2026-10-01"
    with pytest.raises(StatementError, match=r"data\[0\]\.start_time: expected an integer, got '2026-10-01'"):
        parse(body)

    with pytest.raises(StatementError, match=r"data\[0\]\.results\[0\]\.amount\.value: expected a number, got 'lots'"):
        parse(cost_page({"amount": {"value": "lots", "currency": "usd"}}), "costs.json")


def test_text_that_is_not_json_is_reported_with_its_line_and_column() -> None:
    broken = RawDocument("costs.json", b'{"object": "page",\n "data": [}', "application/json", "openai")

    with pytest.raises(StatementError, match=r"^costs\.json: line 2 column 11: "):
        OpenAIImporter().parse(broken)


def test_a_document_nested_too_deeply_is_reported_with_its_line_and_column() -> None:
    deep = b'{"object": "page",\n "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    with pytest.raises(StatementError, match=r"^deep\.json: line 2 column 73: nests too deeply"):
        OpenAIImporter().parse(RawDocument("deep.json", deep, "application/json", "openai"))
    assert not OpenAIImporter().identify(RawDocument("deep.json", deep, "application/json", "openai"))


def test_a_lone_surrogate_is_reported_with_its_file_and_path() -> None:
    body = b'{"object": "page", "data": [{"start_time": 1790812800, "end_time": 1790899200, "results": [' + (
        b'{"object": "organization.costs.result", "line_item": "gpt\\ud800", "amount": {"value": 1, "currency": "usd"}}'
        b"]}]}"
    )

    with pytest.raises(StatementError) as raised:
        OpenAIImporter().parse(RawDocument("costs.json", body, "application/json", "openai"))

    assert (
        str(raised.value)
        == "costs.json: data[0].results[0].line_item: holds a lone surrogate (\\ud800-\\udfff), which is no text"
    )


@pytest.mark.parametrize(("start", "end"), [(253402214400, 253402300800), (-62135596800, -62135510400)])
def test_a_bucket_dated_9999_or_year_1_is_reported_with_its_path(start: int, end: int) -> None:
    body = usage_page(input_tokens=1, output_tokens=1)
    body["data"][0] |= {"start_time": start, "end_time": end}

    with pytest.raises(StatementError, match=r"^openai_usage_p1\.json: data\[0\]\.start_time: "):
        parse(body)
