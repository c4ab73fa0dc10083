"""OpenTelemetry: `POST /v1/traces` turns GenAI spans into usage events, from the real opentelemetry-sdk and
its OTLP/HTTP protobuf exporter, and from OTLP JSON bodies; invalid GenAI spans make a partial success."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sqlalchemy.engine import Engine

from ledger.integrations.otlp import event_from_span
from ledger.server import create_app
from ledger.settings import Settings
from tests.conftest import TenantKeys
from tests.integrations.harness import LedgerServer, free_port, only_event, stored_events, tokens_of
from tests.integrations.provider_mock import ProviderMock, Reply

START = datetime(2026, 11, 20, 9, 30, 0, 123456, tzinfo=UTC)
START_NS = int(START.timestamp()) * 1_000_000_000 + START.microsecond * 1000
CHAT_ATTRIBUTES: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-5.4-mini",
    "gen_ai.response.model": "gpt-5.4-mini-2026-03-17",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 310,
    "gen_ai.usage.cache_read.input_tokens": 1024,
    "gen_ai.usage.reasoning.output_tokens": 64,
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.request.max_tokens": 400,
    "gen_ai.response.id": "chatcmpl-otel1",
    "server.address": "api.openai.com",
}


def tracer_provider(*processors: Any) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def emit(provider: TracerProvider, name: str, attributes: dict[str, Any], *, error: bool = False) -> None:
    span = provider.get_tracer("test").start_span(name, attributes=attributes, start_time=START_NS)
    if error:
        span.set_status(StatusCode.ERROR, "boom")
    span.end(end_time=START_NS + 1_250_000_000)


def test_the_sdk_exporter_delivers_a_genai_span_as_an_event_with_exactly_its_tokens(
    ledger_server: LedgerServer, engine: Engine, tenant: TenantKeys
) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{ledger_server.url}/v1/traces", headers=tenant.ingest)
    provider = tracer_provider(SimpleSpanProcessor(exporter))

    emit(provider, "chat gpt-5.4-mini", CHAT_ATTRIBUTES)
    emit(provider, "GET /orders", {"http.request.method": "GET"})
    emit(provider, "invoke_agent triage", {**CHAT_ATTRIBUTES, "gen_ai.operation.name": "invoke_agent"})
    provider.shutdown()

    row = only_event(engine, tenant)
    assert tokens_of(row) == {
        "input_tokens": 1200,
        "output_tokens": 310,
        "cache_read_input_tokens": 1024,
        "cache_creation_input_tokens": 0,
        "reasoning_tokens": 64,
    }
    assert row["event_id"].startswith("otel:")
    assert len(row["event_id"]) == 5 + 32 + 1 + 16
    assert row["occurred_at"] == START
    assert row["latency_ms"] == 1250
    assert (row["provider"], row["request_model"], row["response_model"]) == (
        "openai",
        "gpt-5.4-mini",
        "gpt-5.4-mini-2026-03-17",
    )
    assert (row["finish_reason"], row["max_tokens"], row["provider_request_id"]) == ("stop", 400, "chatcmpl-otel1")
    assert (row["status_code"], row["error_type"], row["app"]) == (200, None, "support-bot")


def test_the_sdk_exporter_can_gzip(ledger_server: LedgerServer, engine: Engine, tenant: TenantKeys) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"{ledger_server.url}/v1/traces", headers=tenant.ingest, compression=Compression.Gzip
    )
    provider = tracer_provider(SimpleSpanProcessor(exporter))

    emit(provider, "chat", CHAT_ATTRIBUTES)
    provider.shutdown()

    assert only_event(engine, tenant)["input_tokens"] == 1200


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    memory = InMemorySpanExporter()
    provider = tracer_provider(SimpleSpanProcessor(memory))
    yield provider, memory
    provider.shutdown()


def post_protobuf(client: TestClient, tenant: TenantKeys, memory: InMemorySpanExporter) -> Any:
    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    return client.post("/v1/traces", content=body, headers={**tenant.ingest, "Content-Type": "application/x-protobuf"})


def test_invalid_genai_spans_are_a_partial_success_in_protobuf(
    client: TestClient, tenant: TenantKeys, engine: Engine, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, memory = spans
    emit(provider, "chat ok", CHAT_ATTRIBUTES)
    without_usage = {k: v for k, v in CHAT_ATTRIBUTES.items() if not k.startswith("gen_ai.usage.")}
    emit(provider, "chat without usage", without_usage)
    emit(provider, "chat reasoning above output", {**CHAT_ATTRIBUTES, "gen_ai.usage.reasoning.output_tokens": 999})

    answer = post_protobuf(client, tenant, memory)

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_spans == 2
    assert "gen_ai.usage.input_tokens: is missing" in response.partial_success.error_message
    assert "gen_ai.usage.reasoning.output_tokens" in response.partial_success.error_message
    assert len(stored_events(engine, tenant)) == 1


def test_a_failed_genai_span_is_recorded_as_a_failure_without_tokens(
    client: TestClient, tenant: TenantKeys, engine: Engine, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, memory = spans
    failed = {k: v for k, v in CHAT_ATTRIBUTES.items() if not k.startswith("gen_ai.usage.")}
    emit(provider, "chat", {**failed, "error.type": "429"}, error=True)
    emit(provider, "chat", {**failed, "error.type": "openai.APITimeoutError"}, error=True)

    answer = post_protobuf(client, tenant, memory)

    assert ExportTraceServiceResponse.FromString(answer.content).partial_success.rejected_spans == 0
    rows = stored_events(engine, tenant)
    assert sorted((row["status_code"], row["error_type"], row["input_tokens"]) for row in rows) == [
        (408, "timeout", 0),
        (429, "rate_limit", 0),
    ]


@pytest.fixture
def instrumented_openai(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> Iterator[tuple[InMemorySpanExporter, OpenAIInstrumentor]]:
    """The openai SDK instrumented by opentelemetry-instrumentation-openai-v2, its spans kept in memory."""
    provider, memory = spans
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield memory, instrumentor
    instrumentor.uninstrument()


def test_a_call_that_never_reached_the_provider_is_no_event_while_a_provider_5xx_is_a_server_error(
    client: TestClient,
    tenant: TenantKeys,
    engine: Engine,
    provider: ProviderMock,
    instrumented_openai: tuple[InMemorySpanExporter, OpenAIInstrumentor],
) -> None:
    memory, _ = instrumented_openai
    refused = openai.OpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        refused.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])
    provider.script(Reply(500, {"error": {"message": "The server had an error", "type": "server_error"}}))
    failing = openai.OpenAI(api_key="sk-test", base_url=f"{provider.base_url}/v1", max_retries=0)
    with pytest.raises(openai.InternalServerError):
        failing.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])
    assert len(memory.get_finished_spans()) == 2

    answer = post_protobuf(client, tenant, memory)

    assert ExportTraceServiceResponse.FromString(answer.content).partial_success.rejected_spans == 0
    row = only_event(engine, tenant)
    assert (row["status_code"], row["error_type"]) == (500, "server_error")


def json_span(span_id: str, attributes: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": span_id,
        "name": "chat claude-sonnet-4-6",
        "kind": 3,
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(START_NS + 2_000_000_000),
        "attributes": attributes,
        "status": {},
        **fields,
    }


def json_body(*spans: dict[str, Any]) -> dict[str, Any]:
    """An OTLP JSON export request: lowerCamelCase keys, hex ids, int64 as strings, enums as integers."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "summarizer"}}]},
                "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.anthropic"}, "spans": list(spans)}],
            }
        ]
    }


ANTHROPIC_JSON_ATTRIBUTES = [
    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
    {"key": "gen_ai.provider.name", "value": {"stringValue": "anthropic"}},
    {"key": "gen_ai.request.model", "value": {"stringValue": "claude-sonnet-4-6"}},
    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "26681"}},
    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 318}},
    {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": "24576"}},
    {"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": [{"stringValue": "end_turn"}]}}},
]


def post_json(client: TestClient, tenant: TenantKeys, body: Any, **headers: str) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/v1/traces", content=content, headers={**tenant.ingest, "Content-Type": "application/json", **headers}
    )


def test_an_otlp_json_body_is_stored_once_however_often_it_is_exported(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    body = json_body(json_span("EEE19B7EC3C1B174", ANTHROPIC_JSON_ATTRIBUTES))

    first = post_json(client, tenant, body)
    again = post_json(client, tenant, gzip.compress(json.dumps(body).encode()), **{"Content-Encoding": "gzip"})

    assert (first.status_code, first.json()) == (200, {})
    assert (again.status_code, again.json()) == (200, {})
    row = only_event(engine, tenant)
    assert row["event_id"] == "otel:5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174"
    assert tokens_of(row) == {
        "input_tokens": 26681,  # GenAI input_tokens already include the cache reads
        "output_tokens": 318,
        "cache_read_input_tokens": 24576,
        "cache_creation_input_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert (row["occurred_at"], row["latency_ms"], row["app"]) == (START, 2000, "summarizer")
    assert row["finish_reason"] == "end_turn"


def test_a_json_partial_success_names_the_rejected_spans(client: TestClient, tenant: TenantKeys) -> None:
    missing_model = [a for a in ANTHROPIC_JSON_ATTRIBUTES if a["key"] != "gen_ai.request.model"]
    body = json_body(
        json_span("00000000000000a1", ANTHROPIC_JSON_ATTRIBUTES),
        json_span("00000000000000a2", missing_model),
    )

    answer = post_json(client, tenant, body)

    partial = answer.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1  # int64: a decimal string in OTLP JSON
    assert "00000000000000a2: gen_ai.request.model: is missing" in partial["errorMessage"]


def test_an_attribute_of_the_wrong_type_rejects_its_span_not_the_export(client: TestClient, tenant: TenantKeys) -> None:
    listed_operation = [
        {"key": "gen_ai.operation.name", "value": {"arrayValue": {"values": []}}} if a["key"] == "gen_ai.operation.name"
        else a
        for a in ANTHROPIC_JSON_ATTRIBUTES
    ]  # fmt: skip
    body = json_body(json_span("00000000000000b1", listed_operation))

    answer = post_json(client, tenant, body)

    assert answer.status_code == 200
    assert (
        "00000000000000b1: gen_ai.operation.name: must be a string, got list"
        in (answer.json()["partialSuccess"]["errorMessage"])
    )


def test_older_and_openinference_attribute_names_are_read(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    def attrs(**values: Any) -> list[dict[str, Any]]:
        kinds = {str: "stringValue", int: "intValue", float: "doubleValue"}
        return [{"key": k, "value": {kinds[type(v)]: v}} for k, v in values.items()]

    legacy = attrs(
        **{
            "gen_ai.system": "az.ai.openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": 100,
            "gen_ai.usage.completion_tokens": 20,
        }
    )
    openinference = attrs(
        **{
            "openinference.span.kind": "LLM",
            "llm.provider": "mistralai",
            "llm.model_name": "mistral-large",
            "llm.token_count.prompt": 300,
            "llm.token_count.completion": 40,
            "llm.token_count.prompt_details.cache_read": 256,
            "llm.cost.total": 0.0066,
            "llm.invocation_parameters": '{"temperature": 0.2, "max_tokens": 512}',
        }
    )
    chain = attrs(**{"openinference.span.kind": "CHAIN", "llm.token_count.prompt": 300})

    post_json(
        client,
        tenant,
        json_body(
            json_span("00000000000000b1", legacy),
            json_span("00000000000000b2", openinference),
            json_span("00000000000000b3", chain),
        ),
    )

    rows = {row["provider"]: row for row in stored_events(engine, tenant)}
    assert set(rows) == {"azure", "mistral"}
    assert (rows["azure"]["input_tokens"], rows["azure"]["output_tokens"]) == (100, 20)
    mistral = rows["mistral"]
    assert (mistral["input_tokens"], mistral["cache_read_input_tokens"], mistral["output_tokens"]) == (300, 256, 40)
    assert (mistral["reported_cost"], mistral["max_tokens"]) == (Decimal("0.0066"), 512)


def test_undecodable_bodies_are_refused(client: TestClient, tenant: TenantKeys) -> None:
    protobuf = {**tenant.ingest, "Content-Type": "application/x-protobuf"}
    bad_id = json_body(json_span("not-hex", ANTHROPIC_JSON_ATTRIBUTES))

    assert client.post("/v1/traces", content=b"\xff\xff\xff", headers=protobuf).status_code == 400
    assert post_json(client, tenant, bad_id).status_code == 400
    assert "spans[0].spanId" in post_json(client, tenant, bad_id).json()["error"]["message"]
    assert post_json(client, tenant, b"[1, 2").status_code == 400
    deep = post_json(client, tenant, b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert deep.status_code == 400
    assert "nested too deeply" in deep.json()["error"]["message"]
    assert post_json(client, tenant, b"not gzip", **{"Content-Encoding": "gzip"}).status_code == 400
    assert (
        client.post("/v1/traces", content=b"{}", headers={**tenant.ingest, "Content-Type": "text/plain"}).status_code
        == 415
    )
    assert client.post("/v1/traces", json={}).status_code == 401


def test_bodies_over_the_limit_are_refused_even_compressed(
    engine: Engine, database_url: str, tenant: TenantKeys
) -> None:
    settings = Settings(database_url=database_url, auth_cache_seconds=0, scheduler_enabled=False, max_body_bytes=2000)
    big = json.dumps(json_body(*[json_span(f"{n:016x}", ANTHROPIC_JSON_ATTRIBUTES) for n in range(1, 40)])).encode()
    with TestClient(create_app(settings, engine=engine)) as small:
        headers = {**tenant.ingest, "Content-Type": "application/json"}
        assert small.post("/v1/traces", content=big, headers=headers).status_code == 413
        zipped = small.post("/v1/traces", content=gzip.compress(big), headers={**headers, "Content-Encoding": "gzip"})
        assert len(gzip.compress(big)) < 2000
        assert zipped.status_code == 413
        assert small.post("/v1/integrations/litellm", content=big, headers=headers).status_code == 413


def proto_span(attributes: dict[str, Any]) -> Span:
    def value(item: Any) -> AnyValue:
        return AnyValue(string_value=item) if isinstance(item, str) else AnyValue(int_value=item)

    return Span(
        trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
        span_id=bytes.fromhex("b7ad6b7169203331"),
        start_time_unix_nano=START_NS,
        end_time_unix_nano=START_NS + 10**9,
        attributes=[KeyValue(key=key, value=value(item)) for key, item in attributes.items()],
        status=Status(),
    )


COUNTS = st.integers(min_value=0, max_value=10**7)


@given(uncached=COUNTS, output=COUNTS, cache_read=COUNTS, cache_write=COUNTS, with_total=st.booleans())
def test_input_tokens_always_include_the_cache_whichever_way_it_was_reported(
    uncached: int, output: int, cache_read: int, cache_write: int, with_total: bool
) -> None:
    base = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-6",
        "gen_ai.usage.output_tokens": output,
        "gen_ai.usage.cache_read.input_tokens": cache_read,
        "gen_ai.usage.cache_creation.input_tokens": cache_write,
    }
    total_input = uncached + cache_read + cache_write
    as_specified = {**base, "gen_ai.usage.input_tokens": total_input}
    # Anthropic's own input_tokens (the uncached part), with a total that shows it.
    as_anthropic = {**base, "gen_ai.usage.input_tokens": uncached}
    if with_total:
        as_specified["gen_ai.usage.total_tokens"] = total_input + output
        as_anthropic["gen_ai.usage.total_tokens"] = total_input + output

    specified = event_from_span(proto_span(as_specified), {})
    assert specified is not None
    assert specified["input_tokens"] == total_input
    anthropic = event_from_span(proto_span(as_anthropic), {})
    assert anthropic is not None
    if with_total or uncached < cache_read + cache_write:
        assert anthropic["input_tokens"] == total_input
    assert anthropic["input_tokens"] >= anthropic["cache_read_input_tokens"] + anthropic["cache_creation_input_tokens"]


def test_a_span_that_reports_input_below_its_cache_reads_is_taken_as_excluding_them() -> None:
    event = event_from_span(
        proto_span(
            {
                "gen_ai.system": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-6",
                "gen_ai.usage.input_tokens": 2105,
                "gen_ai.usage.output_tokens": 318,
                "gen_ai.usage.cache_read_input_tokens": 24576,
            }
        ),
        {},
    )

    assert event is not None
    assert (event["input_tokens"], event["cache_read_input_tokens"]) == (2105 + 24576, 24576)
    assert event["occurred_at"] == START


def test_one_hour_cache_writes_of_a_span_are_kept_apart(
    ledger_server: LedgerServer, engine: Engine, tenant: TenantKeys
) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{ledger_server.url}/v1/traces", headers=tenant.ingest)
    provider = tracer_provider(SimpleSpanProcessor(exporter))
    anthropic = {
        **CHAT_ATTRIBUTES,
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-6",
        "gen_ai.response.model": "claude-sonnet-4-6",
        "gen_ai.usage.input_tokens": 4_000,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.cache_creation.input_tokens": 3_000,
        "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens": 2_000,
    }

    emit(provider, "chat claude-sonnet-4-6", anthropic)
    provider.shutdown()

    row = only_event(engine, tenant)
    assert (row["cache_creation_input_tokens"], row["cache_creation_1h_input_tokens"]) == (3_000, 2_000)
