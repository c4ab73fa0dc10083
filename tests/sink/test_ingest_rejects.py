"""Bad input: every problem is named, the status says what kind, and nothing of the request is written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ledger.server import create_app
from ledger.settings import Settings
from tests.conftest import TenantKeys
from tests.events_factory import usage_event


def problems(response) -> list[dict]:
    assert response.status_code == 422, response.text
    return response.json()["error"]["details"]


def event_count(engine: Engine, tenant: TenantKeys) -> int:
    with engine.connect() as conn:
        return conn.scalar(
            sa.text("SELECT count(*) FROM usage_events e JOIN tenants t ON t.id = e.tenant_id WHERE t.name = :n"),
            {"n": tenant.name},
        )


def test_a_misspelt_field_is_rejected_by_name_not_ignored(client: TestClient, tenant: TenantKeys) -> None:
    event = usage_event()
    event["input_token"] = event.pop("input_tokens")
    assert problems(client.post("/v1/events", json=event, headers=tenant.ingest)) == [
        {"index": 0, "field": "input_token", "message": "unknown field; did you mean 'input_tokens'?"}
    ]


def test_a_misspelt_field_names_the_field_it_was_probably_meant_to_be(client: TestClient, tenant: TenantKeys) -> None:
    event = usage_event()
    event["output_tokns"] = event.pop("output_tokens")
    event["cache_read_tokens"] = event.pop("cache_read_input_tokens")
    event["colour"] = "red"
    assert problems(client.post("/v1/events", json=event, headers=tenant.ingest)) == [
        {"index": 0, "field": "output_tokns", "message": "unknown field; did you mean 'output_tokens'?"},
        {"index": 0, "field": "cache_read_tokens", "message": "unknown field; did you mean 'cache_read_input_tokens'?"},
        {"index": 0, "field": "colour", "message": "unknown field"},
    ]


def test_a_time_or_provider_in_another_format_is_told_the_format(client: TestClient, tenant: TenantKeys) -> None:
    batch = [
        usage_event(occurred_at="2026-10-05T10:00:00"),
        usage_event(occurred_at=1_760_000_000),  # a Unix time: seconds or milliseconds would only be a guess
        usage_event(occurred_at="yesterday"),
        usage_event(provider="OpenAI"),
        usage_event(error_type="boom"),
    ]
    assert problems(client.post("/v1/events", json=batch, headers=tenant.ingest)) == [
        {
            "index": 0,
            "field": "occurred_at",
            "message": "must carry its UTC offset (RFC 3339): 2026-10-05T14:03:11Z or 2026-10-05T16:03:11+02:00",
        },
        {
            "index": 1,
            "field": "occurred_at",
            "message": "must be an RFC 3339 time with its offset, such as 2026-10-05T14:03:11Z, not a number",
        },
        {
            "index": 2,
            "field": "occurred_at",
            "message": "must be an RFC 3339 time with its offset, such as 2026-10-05T14:03:11Z",
        },
        {
            "index": 3,
            "field": "provider",
            "message": "must be a lower-case slug such as 'openai' or 'anthropic' ('openai'?)",
        },
        {
            "index": 4,
            "field": "error_type",
            "message": "must be one of rate_limit, timeout, server_error, invalid_request, auth, content_filter, other",
        },
    ]


def test_every_bad_event_is_reported_not_only_the_first(client: TestClient, tenant: TenantKeys) -> None:
    batch = [usage_event(input_tokens=None), usage_event(), usage_event(colour="red"), "not an object"]
    assert problems(client.post("/v1/events", json=batch, headers=tenant.ingest)) == [
        {"index": 0, "field": "input_tokens", "message": "required unless a usage object is given (provider 'openai')"},
        {"index": 2, "field": "colour", "message": "unknown field"},
        {"index": 3, "field": "event", "message": "each event must be a JSON object"},
    ]


def test_one_bad_event_rejects_the_whole_request(client: TestClient, tenant: TenantKeys, engine: Engine) -> None:
    batch = [usage_event(), usage_event(output_tokens=-3), usage_event()]
    assert problems(client.post("/v1/events", json=batch, headers=tenant.ingest)) == [
        {"index": 1, "field": "output_tokens", "message": "Input should be greater than or equal to 0"}
    ]
    assert event_count(engine, tenant) == 0


def test_values_no_request_has_are_refused_before_they_reach_the_rollups(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    """A trillion tokens, a million dollars, a year before 2000: a bad unit or a bad clock, not usage. Stored, they
    would overflow an hourly rollup's sums (refusing every later event of that hour) or create a partition for
    the year 0001."""
    cases = {
        "input_tokens": (usage_event(input_tokens=10**12 + 1), "less than or equal to 1000000000000"),
        "reported_cost": (usage_event(reported_cost=10**15), "reported cost 1000000000000000 USD is not between 0"),
        "occurred_at": (usage_event(occurred_at="1970-01-01T00:00:00Z"), "is before 2000-01-01"),
    }
    for field, (event, message) in cases.items():
        (problem,) = problems(client.post("/v1/events", json=event, headers=tenant.ingest))
        assert problem["field"] == field
        assert message in problem["message"], problem
    negative = problems(client.post("/v1/events", json=usage_event(reported_cost="-0.01"), headers=tenant.ingest))
    assert negative[0]["field"] == "reported_cost"
    assert event_count(engine, tenant) == 0


def test_json_nested_past_reason_is_refused_not_a_server_error(client: TestClient, tenant: TenantKeys) -> None:
    deep_body = json.dumps(usage_event(usage=None))[:-1] + ', "usage": ' + "[" * 100_000 + "]" * 100_000 + "}"
    deep_usage = usage_event(input_tokens=None, output_tokens=None, usage=json.loads('{"a":' * 17 + "1" + "}" * 17))
    headers = {**tenant.ingest, "Content-Type": "application/json"}

    assert problems(client.post("/v1/events", content=deep_body, headers=headers)) == [
        {"index": 0, "field": "body", "message": "invalid JSON: nested too deeply"}
    ]
    assert problems(client.post("/v1/events", json=deep_usage, headers=tenant.ingest)) == [
        {"index": 0, "field": "usage", "message": "nests more than 16 levels deep"}
    ]


def test_each_rule_of_the_schema_names_its_field(client: TestClient, tenant: TenantKeys) -> None:
    future = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    cases = {
        "occurred_at": usage_event(occurred_at="2026-10-05T10:00:00"),
        "provider": usage_event(provider="OpenAI"),
        "request_model": usage_event(request_model=None),
        "status_code": usage_event(status_code=700),
        "max_tokens": usage_event(max_tokens=0),
        "error_type": usage_event(error_type="boom"),
        "service_tier": usage_event(service_tier="gold"),
        "tags": usage_event(tags={f"k{i}": "v" for i in range(33)}),
        "stream": usage_event(stream="yes"),
        "input_tokens": usage_event(input_tokens=12.5),
        "event_id": usage_event(event_id="x" * 129),
        "reported_cost": usage_event(reported_cost="twelve"),
    }
    for field, event in cases.items():
        found = problems(client.post("/v1/events", json=event, headers=tenant.ingest))
        assert [problem["field"] for problem in found] == [field], (field, found)
    assert (
        problems(client.post("/v1/events", json=usage_event(occurred_at=future), headers=tenant.ingest))[0]["field"]
        == "occurred_at"
    )
    no_id = usage_event(event_id=None)
    assert problems(client.post("/v1/events", json=no_id, headers=tenant.ingest))[0] == {
        "index": 0,
        "field": "event_id",
        "message": "required unless provider_request_id is given",
    }


def test_numbers_beyond_what_their_columns_hold_are_refused_by_name(client: TestClient, tenant: TenantKeys) -> None:
    cases = {
        "max_tokens": usage_event(max_tokens=2**31),
        "latency_ms": usage_event(latency_ms=2**31),
        "ttft_ms": usage_event(ttft_ms=2**40),
        "input_tokens": usage_event(input_tokens=2**63),
        "usage": usage_event(
            provider="openai",
            input_tokens=None,
            output_tokens=None,
            usage={"prompt_tokens": 2**64, "completion_tokens": 1},
        ),
    }
    for field, event in cases.items():
        found = problems(client.post("/v1/events", json=event, headers=tenant.ingest))
        assert [problem["field"] for problem in found] == [field], (field, found)
    assert client.post("/v1/events", json=usage_event(max_tokens=2**31 - 1), headers=tenant.ingest).status_code == 202


def test_a_nul_character_anywhere_is_refused_by_name_and_nothing_is_stored(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    """PostgreSQL stores no NUL character in text or jsonb; such an event gets a 422, not a server error."""
    batch = [
        usage_event(),
        usage_event(app="chat\u0000bot"),
        usage_event(tags={"team": "se\u0000arch"}),
        usage_event(provider="openai", usage={"prompt_tokens": 5, "completion_tokens": 1, "note": ["\u0000"]}),
        usage_event(colour="red", user="a\u0000"),
    ]
    found = problems(client.post("/v1/events", json=batch, headers=tenant.ingest))
    assert [(problem["index"], problem["field"]) for problem in found] == [
        (1, "app"),
        (2, "tags.team"),
        (3, "usage.note[0]"),
        (4, "user"),
        (4, "colour"),
    ]
    assert "NUL character" in found[0]["message"]
    ndjson = "\n".join(json.dumps(event) for event in batch[:2])
    response = client.post(
        "/v1/events", content=ndjson, headers={**tenant.ingest, "Content-Type": "application/x-ndjson"}
    )
    assert [problem["index"] for problem in problems(response)] == [1]
    assert event_count(engine, tenant) == 0


def test_token_arithmetic_must_hold(client: TestClient, tenant: TenantKeys) -> None:
    too_much_cache = usage_event(input_tokens=100, cache_read_input_tokens=80, cache_creation_input_tokens=30)
    assert problems(client.post("/v1/events", json=too_much_cache, headers=tenant.ingest))[0]["field"] == (
        "cache_read_input_tokens"
    )
    too_much_reasoning = usage_event(output_tokens=10, reasoning_tokens=11)
    assert problems(client.post("/v1/events", json=too_much_reasoning, headers=tenant.ingest))[0]["field"] == (
        "reasoning_tokens"
    )


def test_a_provider_without_normalizer_needs_token_fields(client: TestClient, tenant: TenantKeys) -> None:
    event = usage_event(
        provider="acme-llm",
        input_tokens=None,
        output_tokens=None,
        cache_read_input_tokens=None,
        usage={"tokens_in": 5, "tokens_out": 7},
    )
    found = problems(client.post("/v1/events", json=event, headers=tenant.ingest))
    assert found[0]["field"] == "usage"
    assert "acme-llm" in found[0]["message"]


def test_invalid_json_is_a_422_naming_the_body(client: TestClient, tenant: TenantKeys) -> None:
    response = client.post(
        "/v1/events", content=b'{"event_id": ', headers={**tenant.ingest, "Content-Type": "application/json"}
    )
    assert problems(response)[0]["field"] == "body"
    ndjson = b'{"event_id": "a"}\nnot json\n'
    response = client.post(
        "/v1/events", content=ndjson, headers={**tenant.ingest, "Content-Type": "application/x-ndjson"}
    )
    assert "line 2" in problems(response)[0]["message"]


def test_oversized_requests_get_413(client: TestClient, tenant: TenantKeys, engine: Engine) -> None:
    many = [usage_event() for _ in range(10_001)]
    assert client.post("/v1/events", json=many, headers=tenant.ingest).status_code == 413
    huge = json.dumps([usage_event(tags={"blob": "x" * 1000}) for _ in range(9_000)]).encode()
    assert len(huge) > 10 * 1024 * 1024
    response = client.post("/v1/events", content=huge, headers={**tenant.ingest, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert event_count(engine, tenant) == 0


def test_keys_are_required_and_must_allow_ingest(client: TestClient, tenant: TenantKeys) -> None:
    event = usage_event()
    assert client.post("/v1/events", json=event).status_code == 401
    assert client.post("/v1/events", json=event, headers={"Authorization": "Bearer tl_nope.nope"}).status_code == 401
    assert client.post("/v1/events", json=event, headers=tenant.read).status_code == 403
    assert client.post("/v1/events", json=event, headers=tenant.admin).status_code == 202


def test_how_far_ahead_an_event_may_be_is_a_setting(settings: Settings, engine: Engine, tenant: TenantKeys) -> None:
    lenient = settings.model_copy(update={"max_future_skew_seconds": 3_600})
    in_half_an_hour = usage_event(occurred_at=(datetime.now(UTC) + timedelta(minutes=30)).isoformat())
    in_two_hours = usage_event(occurred_at=(datetime.now(UTC) + timedelta(hours=2)).isoformat())
    with TestClient(create_app(lenient, engine=engine)) as client:
        assert client.post("/v1/events", json=in_half_an_hour, headers=tenant.ingest).status_code == 202
        (problem,) = problems(client.post("/v1/events", json=in_two_hours, headers=tenant.ingest))
    assert problem["field"] == "occurred_at"
    assert "more than 3600 seconds in the future" in problem["message"]
