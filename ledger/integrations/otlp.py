"""OpenTelemetry traces → usage events: the GenAI spans of an OTLP export request become events. Pure.

Bodies are OTLP/HTTP protobuf or JSON. The JSON is the protobuf JSON mapping with OTLP's deviations
(open-telemetry/opentelemetry-proto docs/specification.md, "JSON Protobuf Encoding"): trace and span ids are
case-insensitive hex, not base64; enums are integers; int64 may be a string or a number; unknown fields are
ignored. Both decode into the same `ExportTraceServiceRequest`, so one mapping serves both.

A span is a GenAI model call when it carries GenAI semantic-convention attributes (gen_ai.*) or is an
OpenInference LLM / EMBEDDING span; spans of other operations (agents, tools, retrieval, …) would count their
children's tokens again and are ignored like any other span. Attribute names, current first, then older ones:

  provider        gen_ai.provider.name, gen_ai.system, llm.provider, llm.system (then server.address)
  models          gen_ai.request.model / gen_ai.response.model; llm.request.model_name / llm.response.model_name,
                  llm.model_name
  input tokens    gen_ai.usage.input_tokens, gen_ai.usage.prompt_tokens, llm.token_count.prompt
  output tokens   gen_ai.usage.output_tokens, gen_ai.usage.completion_tokens, llm.token_count.completion
  cache reads     gen_ai.usage.cache_read.input_tokens, gen_ai.usage.cache_read_input_tokens,
                  llm.token_count.prompt_details.cache_read
  cache writes    gen_ai.usage.cache_creation.input_tokens, gen_ai.usage.cache_creation_input_tokens,
                  gen_ai.usage.cache_write_input_tokens, llm.token_count.prompt_details.cache_write
  1-hour writes   gen_ai.usage.cache_creation.ephemeral_1h_input_tokens,
                  gen_ai.usage.cache_creation_1h_input_tokens (no convention names them; part of the writes)
  reasoning       gen_ai.usage.reasoning.output_tokens, llm.token_count.completion_details.reasoning
  other           gen_ai.response.finish_reasons / llm.finish_reason, gen_ai.request.max_tokens (or
                  llm.invocation_parameters), gen_ai.request.stream, gen_ai.response.id,
                  gen_ai.response.time_to_first_chunk, error.type, http.response.status_code, span status,
                  llm.cost.total, openai.response.service_tier, user.id; resource service.name → app

Sources: open-telemetry/semantic-conventions-genai docs/registry/attributes/gen-ai.md (and the deprecated
section of open-telemetry/semantic-conventions docs/registry/attributes/gen-ai.md); Arize-ai/openinference
spec/semantic_conventions.md and python/openinference-semantic-conventions.

Input tokens: the GenAI convention says `gen_ai.usage.input_tokens` "SHOULD include all types of input tokens,
including cached tokens", cache reads and writes "SHOULD be included" in it, as TokenLedger counts them. Some
instrumentations report Anthropic's own `input_tokens`, which excludes the cache. Where the counts prove it
(cache reads + writes above the input count, or a total equal to input + output + cache) the cache counts are
added; this is the test OpenInference's Strands processor applies (Arize-ai/openinference
openinference-instrumentation-strands-agents tests/test_processor.py).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from ledger.events.schema import stored_cost
from ledger.integrations.instrument.calls import error_type_for_status, provider_for_host
from ledger.vocabulary import ServiceTier

MODEL_CALL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
OPENINFERENCE_MODEL_KINDS = frozenset({"LLM", "EMBEDDING"})

# gen_ai.provider.name / gen_ai.system well-known values, OpenInference llm.provider / llm.system values and
# their older spellings → event provider slugs. Anything else is kept, lower-cased, when it is a slug.
PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "bedrock",
    "aws": "bedrock",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "azure": "azure",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "gemini": "google",
    "google": "google",
    "gcp.vertex_ai": "vertex",
    "vertex_ai": "vertex",
    "vertexai": "vertex",
    "deepseek": "deepseek",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "groq": "groq",
    "x_ai": "xai",
    "xai": "xai",
    "perplexity": "perplexity",
    "cohere": "cohere",
    "moonshot_ai": "moonshot",
    "moonshot": "moonshot",
    "ibm.watsonx.ai": "watsonx",
    "fireworks": "fireworks",
    "together": "together",
    "cerebras": "cerebras",
    "ollama": "ollama",
}

_INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
_OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion")
_CACHE_READ = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
)
_CACHE_WRITE = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.cache_write_input_tokens",
    "llm.token_count.prompt_details.cache_write",
)
# No semantic convention names the part of the cache writes kept for an hour (Anthropic's
# usage.cache_creation.ephemeral_1h_input_tokens, billed at 2x the input price where a 5-minute write costs
# 1.25x; docs.anthropic.com prompt caching): read under the convention's cache_creation namespace with
# Anthropic's name, or under the event schema's own.
_CACHE_WRITE_1H = (
    "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens",
    "gen_ai.usage.cache_creation_1h_input_tokens",
)
_REASONING = ("gen_ai.usage.reasoning.output_tokens", "llm.token_count.completion_details.reasoning")
_TOTAL = ("gen_ai.usage.total_tokens", "llm.token_count.total")
_GENAI_MARKERS = (
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "llm.request.model_name",
    *_INPUT,
    *_OUTPUT,
)
# `openai.response.service_tier` values (OpenAI's spelling: `default` is the standard tier) as our tiers.
_SERVICE_TIERS = {
    "default": ServiceTier.STANDARD,
    "standard": ServiceTier.STANDARD,
    "flex": ServiceTier.FLEX,
    "priority": ServiceTier.PRIORITY,
}
# error.type values that are exception names rather than HTTP statuses, matched case-insensitively.
_ERROR_WORDS = (
    ("timeout", "timeout"),
    ("ratelimit", "rate_limit"),
    ("rate_limit", "rate_limit"),
    ("authentication", "auth"),
    ("permission", "auth"),
    ("contentfilter", "content_filter"),
    ("content_filter", "content_filter"),
    ("badrequest", "invalid_request"),
    ("invalid_request", "invalid_request"),
    ("internalserver", "server_error"),
    ("overloaded", "server_error"),
    ("serviceunavailable", "server_error"),
)
_STATUS_OF_ERROR = {"timeout": 408, "rate_limit": 429, "auth": 401, "invalid_request": 400, "content_filter": 400}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SLUG = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class OtlpDecodeError(ValueError):
    """A body that is not an OTLP trace export request."""


@dataclass(frozen=True, slots=True)
class SpanRejection:
    """A GenAI span that cannot be an event, and why."""

    trace_id: str
    span_id: str
    field: str
    message: str

    def describe(self) -> str:
        return f"span {self.trace_id}/{self.span_id}: {self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class TraceEvents:
    """The events of an export request's GenAI spans, and the GenAI spans rejected."""

    events: tuple[dict[str, Any], ...]
    rejected: tuple[SpanRejection, ...]


def decode_request(body: bytes, *, protobuf: bool) -> ExportTraceServiceRequest:
    """An OTLP/HTTP trace export body (binary protobuf, or OTLP JSON)."""
    request = ExportTraceServiceRequest()
    if protobuf:
        try:
            request.ParseFromString(body)
        except DecodeError as error:
            raise OtlpDecodeError(f"not an ExportTraceServiceRequest protobuf: {error}") from error
        return request
    try:
        data = json.loads(body)
    except ValueError as error:
        raise OtlpDecodeError(f"invalid JSON: {error}") from error
    except RecursionError as error:
        raise OtlpDecodeError("invalid JSON: nested too deeply") from error
    if not isinstance(data, dict):
        raise OtlpDecodeError("the body must be a JSON object (an ExportTraceServiceRequest)")
    try:
        _hex_ids_to_base64(data, "")
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise OtlpDecodeError(str(error)) from error
    except RecursionError as error:
        raise OtlpDecodeError("the request nests too deeply") from error
    return request


def events_from_request(request: ExportTraceServiceRequest) -> TraceEvents:
    events: list[dict[str, Any]] = []
    rejected: list[SpanRejection] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
                try:
                    event = event_from_span(span, resource)
                except SpanProblem as problem:
                    rejected.append(SpanRejection(trace_id, span_id, problem.field, problem.message))
                    continue
                if event is not None:
                    events.append(event)
    return TraceEvents(tuple(events), tuple(rejected))


def export_response(rejections: list[str]) -> ExportTraceServiceResponse:
    """The OTLP answer: a partial success naming the first rejections, or an empty (full) success."""
    response = ExportTraceServiceResponse()
    if rejections:
        response.partial_success.rejected_spans = len(rejections)
        more = f" (and {len(rejections) - 5} more)" if len(rejections) > 5 else ""
        response.partial_success.error_message = (
            f"{len(rejections)} GenAI span(s) rejected: " + "; ".join(rejections[:5]) + more
        )
    return response


def response_json(response: ExportTraceServiceResponse) -> dict[str, Any]:
    """The OTLP JSON form of a response (lowerCamelCase; int64 as decimal strings)."""
    body: dict[str, Any] = json_format.MessageToDict(response)
    return body


class SpanProblem(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def event_from_span(span: Span, resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """The usage event of a GenAI model-call span; None for any other span."""
    attributes = _attributes(span.attributes)
    if not _is_model_call(attributes):
        return None
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    if not trace_id.strip("0") or not span_id.strip("0"):
        raise SpanProblem("traceId/spanId", "a span needs a trace id and a span id")
    if span.start_time_unix_nano == 0:
        raise SpanProblem("startTimeUnixNano", "is missing")
    if span.end_time_unix_nano and span.end_time_unix_nano < span.start_time_unix_nano:
        raise SpanProblem("endTimeUnixNano", "is before startTimeUnixNano")
    if _never_reached_the_provider(attributes):
        return None
    status_code, error_type = _outcome(span, attributes)
    failed = error_type is not None
    operation = attributes.get("gen_ai.operation.name")
    event: dict[str, Any] = {
        "event_id": f"otel:{trace_id}:{span_id}",
        "occurred_at": _EPOCH + timedelta(microseconds=span.start_time_unix_nano // 1000),
        "provider": _provider(attributes),
        "request_model": _model(attributes),
        "status_code": status_code,
        **_tokens(attributes, required=not failed, output_required=operation != "embeddings"),
    }
    optional: dict[str, Any] = {
        "response_model": _text(attributes, "gen_ai.response.model", "llm.response.model_name"),
        "error_type": error_type,
        "finish_reason": _finish_reason(attributes),
        "latency_ms": (
            (span.end_time_unix_nano - span.start_time_unix_nano) // 1_000_000 if span.end_time_unix_nano else None
        ),
        "ttft_ms": _ttft_ms(attributes),
        "max_tokens": _max_tokens(attributes),
        "stream": stream if isinstance(stream := attributes.get("gen_ai.request.stream"), bool) else None,
        "provider_request_id": _text(attributes, "gen_ai.response.id"),
        "service_tier": _SERVICE_TIERS.get(_text(attributes, "openai.response.service_tier") or ""),
        "reported_cost": _cost(attributes),
        "user": _text(attributes, "user.id"),
        "app": _text(resource, "service.name"),
    }
    event.update({key: value for key, value in optional.items() if value is not None})
    return event


def _is_model_call(attributes: Mapping[str, Any]) -> bool:
    operation = attributes.get("gen_ai.operation.name")
    kind = attributes.get("openinference.span.kind")
    for name, value in (("gen_ai.operation.name", operation), ("openinference.span.kind", kind)):
        if value is not None and not isinstance(value, str):
            raise SpanProblem(name, f"must be a string, got {type(value).__name__}")
    if operation is not None and operation not in MODEL_CALL_OPERATIONS:
        return False
    if kind is not None:
        return kind in OPENINFERENCE_MODEL_KINDS
    return any(name in attributes for name in _GENAI_MARKERS)


def _provider(attributes: Mapping[str, Any]) -> str:
    name = _text(attributes, "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
    if name is None:
        name = provider_for_host(_text(attributes, "server.address") or "")
    if name is None:
        raise SpanProblem("gen_ai.provider.name", "is missing (so are gen_ai.system, llm.provider, llm.system)")
    provider = PROVIDERS.get(name.lower(), name.lower())
    if not _SLUG.fullmatch(provider):
        raise SpanProblem("gen_ai.provider.name", f"is not a provider name: {name!r}")
    return provider


def _model(attributes: Mapping[str, Any]) -> str:
    model = _text(
        attributes,
        "gen_ai.request.model",
        "llm.request.model_name",
        "llm.model_name",
        "gen_ai.response.model",
        "llm.response.model_name",
    )
    if model is None:
        raise SpanProblem("gen_ai.request.model", "is missing (nor llm.model_name)")
    return model


def _tokens(attributes: Mapping[str, Any], *, required: bool, output_required: bool) -> dict[str, int]:
    input_tokens = _count(attributes, _INPUT)
    output_tokens = _count(attributes, _OUTPUT)
    if input_tokens is None:
        if required:
            raise SpanProblem(_INPUT[0], "is missing (nor gen_ai.usage.prompt_tokens, llm.token_count.prompt)")
        input_tokens = 0
    if output_tokens is None:
        if required and output_required:
            raise SpanProblem(_OUTPUT[0], "is missing (nor gen_ai.usage.completion_tokens, llm.token_count.completion)")
        output_tokens = 0
    cache_read = _count(attributes, _CACHE_READ) or 0
    cache_write = _count(attributes, _CACHE_WRITE) or 0
    cache_write_1h = _count(attributes, _CACHE_WRITE_1H) or 0
    if cache_write_1h > cache_write:
        raise SpanProblem(_CACHE_WRITE_1H[0], f"({cache_write_1h}) exceeds the cache writes ({cache_write})")
    reasoning = _count(attributes, _REASONING) or 0
    total = _count(attributes, _TOTAL)
    cache = cache_read + cache_write
    if cache and (input_tokens < cache or total == input_tokens + output_tokens + cache):
        input_tokens += cache  # reported like Anthropic's input_tokens: without the cache (see module doc)
    if reasoning > output_tokens:
        raise SpanProblem(_REASONING[0], f"({reasoning}) exceeds the output tokens ({output_tokens})")
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
        "cache_creation_1h_input_tokens": cache_write_1h,
        "reasoning_tokens": reasoning,
    }


def _outcome(span: Span, attributes: Mapping[str, Any]) -> tuple[int, str | None]:
    """HTTP status and error type. A span without an HTTP status gets a representative one for its error."""
    status = attributes.get("http.response.status_code")
    status = status if isinstance(status, int) and 100 <= status <= 599 else None
    error = _text(attributes, "error.type")
    if error is None and span.status.code != Status.STATUS_CODE_ERROR and (status is None or status < 400):
        return status or 200, None
    if error is not None and error.isdigit() and 100 <= int(error) <= 599:
        status = status or int(error)
    error_type = error_type_for_status(status) if status else None
    lowered = (error or "").lower().replace(".", "").replace(" ", "")
    for word, kind in _ERROR_WORDS:
        if word in lowered:
            error_type = kind
            break
    error_type = error_type or "other"
    return status or _STATUS_OF_ERROR.get(error_type, 500), error_type


def _never_reached_the_provider(attributes: Mapping[str, Any]) -> bool:
    """A call that failed to connect (refused, unreachable, DNS), with no HTTP status and no token counted: the
    provider never saw it, so it is no call (as the SDK hooks do not record one), and never a provider's 5xx. The
    instrumentations name the client's exception in `error.type`: openai's `APIConnectionError` (whose subclass
    `APITimeoutError` is a timeout, kept), httpx's `ConnectError`, Python's `ConnectionRefusedError`."""
    error = (_text(attributes, "error.type") or "").lower()
    if "connect" not in error or "timeout" in error:
        return False
    if attributes.get("http.response.status_code") is not None:
        return False
    return all(_count(attributes, names) in (None, 0) for names in (_INPUT, _OUTPUT))


def _finish_reason(attributes: Mapping[str, Any]) -> str | None:
    reasons = attributes.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, list) and reasons and isinstance(reasons[0], str) and reasons[0]:
        return reasons[0]
    if isinstance(reasons, str) and reasons:
        return reasons
    return _text(attributes, "llm.finish_reason")


def _max_tokens(attributes: Mapping[str, Any]) -> int | None:
    value = attributes.get("gen_ai.request.max_tokens")
    if value is None and isinstance(attributes.get("llm.invocation_parameters"), str):
        try:
            parameters = json.loads(attributes["llm.invocation_parameters"])
        except (ValueError, RecursionError):
            parameters = None
        if isinstance(parameters, dict):
            keys = ("max_completion_tokens", "max_tokens", "max_output_tokens")
            value = next((parameters[key] for key in keys if key in parameters), None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _ttft_ms(attributes: Mapping[str, Any]) -> int | None:
    seconds = attributes.get("gen_ai.response.time_to_first_chunk")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
        return int(Decimal(str(seconds)) * 1000)
    return None


def _cost(attributes: Mapping[str, Any]) -> Decimal | None:
    value = attributes.get("llm.cost.total")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        return None
    if not cost.is_finite() or cost < 0:
        raise SpanProblem("llm.cost.total", f"must be a finite non-negative number, got {value!r}")
    return stored_cost(cost)  # an instrumentation's float: to the places the cost columns keep


def _count(attributes: Mapping[str, Any], names: tuple[str, ...]) -> int | None:
    """The first of `names` present, as a token count (int, or an integral double or string)."""
    for name in names:
        if name not in attributes:
            continue
        value = attributes[name]
        if (isinstance(value, str) and value.strip().isdigit()) or (isinstance(value, float) and value.is_integer()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SpanProblem(name, f"must be a non-negative integer, got {value!r}")
        return value
    return None


def _text(attributes: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: _value(pair.value) for pair in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _hex_ids_to_base64(node: Any, path: str) -> None:
    """OTLP JSON writes ids in hex where the protobuf JSON mapping expects base64: convert them in place."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _hex_ids_to_base64(item, f"{path}[{index}]")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if key in _ID_FIELDS and isinstance(value, str):
            try:
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError as error:
                raise OtlpDecodeError(f"{where}: must be a hex-encoded id, got {value!r}") from error
        elif key not in ("attributes", "value"):
            _hex_ids_to_base64(value, where)
