"""One observed LLM API call, from the request bytes to the usage event. Pure: the HTTP layer
(`ledger.integrations.instrument.transport`) feeds it what passed on the wire and hands the finished event to a sink.

APIs read: OpenAI Chat Completions and Responses (and OpenAI-compatible servers), Anthropic Messages; plain
JSON bodies and Server-Sent Event streams alike.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ledger.events.normalizers import normalize_usage
from ledger.integrations.instrument.sse import SSEEvent
from ledger.vocabulary import ServiceTier

log = logging.getLogger("tokenledger.instrument")

Family = Literal["openai", "anthropic"]
Api = Literal["chat", "responses", "messages"]
EventSink = Callable[[dict[str, Any]], None]

MAX_BODY_BYTES = 16 * 1024 * 1024
USAGE_TAG = "tokenledger.usage"

# OpenAI-compatible servers that accept stream_options.include_usage. Mistral sends usage in its last chunk
# unasked (mistralai/client-python#40); OpenRouter always does and ignores the option (openrouter.ai/docs
# "Usage Accounting"); so neither is sent it.
_INCLUDE_USAGE_PROVIDERS = frozenset({"openai", "azure", "deepseek", "qwen", "vllm"})

_HOSTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"api\.openai\.com"), "openai"),
    (re.compile(r"[a-z0-9-]+\.openai\.azure\.com"), "azure"),
    (re.compile(r"api\.deepseek\.com"), "deepseek"),
    (re.compile(r"dashscope[a-z0-9.-]*\.aliyuncs\.com"), "qwen"),
    (re.compile(r"api\.mistral\.ai"), "mistral"),
    (re.compile(r"(?:[a-z0-9-]+\.)?openrouter\.ai"), "openrouter"),
    (re.compile(r"api\.anthropic\.com"), "anthropic"),
)

# The tier a response says it ran on, in the event schema's vocabulary. OpenAI reports `default` for the
# standard tier and `fast` requests as `priority` (openai/openai-python types/chat/chat_completion.py).
_SERVICE_TIERS = {
    "default": ServiceTier.STANDARD,
    "standard": ServiceTier.STANDARD,
    "flex": ServiceTier.FLEX,
    "priority": ServiceTier.PRIORITY,
    "batch": ServiceTier.BATCH,
}

# Error `type`s inside a stream (Anthropic `event: error`, OpenAI `{"error": …}` chunks).
_STREAM_ERRORS = {
    "overloaded_error": "server_error",
    "api_error": "server_error",
    "server_error": "server_error",
    "rate_limit_error": "rate_limit",
    "invalid_request_error": "invalid_request",
    "authentication_error": "auth",
    "permission_error": "auth",
    "timeout_error": "timeout",
}


def provider_for_host(host: str) -> str | None:
    """The provider slug of a well-known API host, or None for any other host (a self-hosted server)."""
    host = host.lower().rstrip(".")
    return next((slug for pattern, slug in _HOSTS if pattern.fullmatch(host)), None)


def error_type_for_status(status_code: int) -> str | None:
    """The event's error_type for an HTTP status: None for success."""
    if status_code < 400:
        return None
    if status_code == 408:
        return "timeout"
    if status_code == 429:
        return "rate_limit"
    if status_code in (401, 403):
        return "auth"
    if status_code >= 500:
        return "server_error"
    return "invalid_request"


@dataclass(frozen=True, slots=True)
class Labels:
    """What `instrument_*()` was told to put on every event."""

    family: Family
    provider: str | None = None
    app: str | None = None
    account: str | None = None
    tags: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """A request recognised as an LLM call: the call to feed, and the body to send instead (or None)."""

    call: Call
    body: bytes | None


def plan_call(
    labels: Labels,
    *,
    method: str,
    host: str,
    path: str,
    body: bytes,
    headers: Mapping[str, str],
    occurred_at: datetime,
    started: float,
    sink: EventSink,
) -> PlannedCall | None:
    """Recognise an LLM API request; None for anything else (files, models, batches, …). For an OpenAI chat
    stream without `stream_options.include_usage` the usage chunk is asked for, and hidden from the caller:
    it has `choices: []`, which code written without the option indexes into (`chunk.choices[0]`)."""
    api = _api_of(labels.family, method, path)
    if api is None:
        return None
    try:
        request = json.loads(body)
    except ValueError:
        return None
    if not isinstance(request, dict):
        return None
    provider = labels.provider or provider_for_host(host) or _fallback_provider(labels.family, host)
    new_body: bytes | None = None
    hide_usage_chunk = False
    if api == "chat" and request.get("stream") is True and provider in _INCLUDE_USAGE_PROVIDERS:
        options = request.get("stream_options")
        if not (isinstance(options, dict) and options.get("include_usage") is True):
            asked = options if isinstance(options, dict) else {}
            request = {**request, "stream_options": {**asked, "include_usage": True}}
            new_body = json.dumps(request, separators=(",", ":")).encode()
            hide_usage_chunk = True
    account = labels.account or headers.get("openai-project")
    call = Call(
        api=api,
        provider=provider,
        request=request,
        deployment=_azure_deployment(path),
        labels=labels,
        account=account,
        occurred_at=occurred_at,
        started=started,
        sink=sink,
        hide_usage_chunk=hide_usage_chunk,
    )
    return PlannedCall(call, new_body)


_warned_hosts: set[str] = set()


def _fallback_provider(family: Family, host: str) -> str:
    """An unknown host speaks the SDK's API: record it as that provider, and say so once per host."""
    if host not in _warned_hosts:
        _warned_hosts.add(host)
        log.warning(
            "TokenLedger: %s is not a known %s host; its calls are recorded as provider %r "
            "(pass provider=..., e.g. 'vllm', to instrument_%s)",
            host,
            family,
            family,
            family,
        )
    return family


def _api_of(family: Family, method: str, path: str) -> Api | None:
    if method.upper() != "POST":
        return None
    path = path.rstrip("/")
    if family == "openai":
        if path.endswith("/chat/completions"):
            return "chat"
        if path.endswith("/responses"):
            return "responses"
        return None
    return "messages" if path.endswith("/messages") else None


def _azure_deployment(path: str) -> str | None:
    """Azure's deployment-scoped URLs name the model deployment in the path, not in the body."""
    match = re.search(r"/deployments/([^/]+)/", path)
    return match.group(1) if match else None


@dataclass(slots=True)
class _Facts:
    """What the response said so far."""

    response_id: str | None = None
    response_model: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    service_tier: str | None = None
    first_output_at: float | None = None
    complete: bool = False
    stream_error: str | None = None


@dataclass(slots=True)
class Call:
    """One LLM API request in flight. Feed it the response; it emits exactly one event, at `finish`."""

    api: Api
    provider: str
    request: dict[str, Any]
    deployment: str | None
    labels: Labels
    account: str | None
    occurred_at: datetime
    started: float
    sink: EventSink
    hide_usage_chunk: bool = False
    status_code: int | None = None
    failure: str | None = None
    facts: _Facts = field(default_factory=_Facts)
    _body: bytearray = field(default_factory=bytearray)
    _body_overflow: bool = False
    _recorded: bool = False

    @property
    def stream(self) -> bool:
        return self.request.get("stream") is True

    def response_started(self, status_code: int) -> None:
        self.status_code = status_code

    def feed_body(self, data: bytes) -> None:
        """Bytes of a JSON response body (decoded), as they arrive."""
        if len(self._body) + len(data) > MAX_BODY_BYTES:
            self._body_overflow = True
            return
        self._body.extend(data)

    def feed_event(self, event: SSEEvent, at: float) -> bool:
        """One event of a streamed response; True when it must be hidden from the caller."""
        if event.data.strip() == "[DONE]":
            self.facts.complete = True
            return False
        try:
            data = json.loads(event.data)
        except ValueError:
            return False
        if not isinstance(data, dict):
            return False
        if self.api == "chat":
            return _read_chat_chunk(self.facts, data, at, hide_usage_chunk=self.hide_usage_chunk)
        if self.api == "responses":
            _read_responses_event(self.facts, data, at)
        else:
            _read_anthropic_event(self.facts, data, at)
        return False

    def fail(self, failure: Literal["timeout", "network"]) -> None:
        """No (complete) response: the request timed out or the connection broke."""
        self.failure = self.failure or failure

    def finish(self, at: float) -> None:
        """The response is over (or abandoned): emit its event. Never raises; a second call does nothing."""
        if self._recorded:
            return
        self._recorded = True
        try:
            self.sink(self.event(at))
        except Exception:
            log.warning("TokenLedger: could not record a %s %s call", self.provider, self.api, exc_info=True)

    def event(self, at: float) -> dict[str, Any]:
        """The usage event of this call as it stands at monotonic time `at`."""
        if self._body and not self._body_overflow:
            self._read_body()
        facts = self.facts
        status_code, error_type = self._outcome()
        event: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "occurred_at": self.occurred_at,
            "provider": self.provider,
            "request_model": _text(self.request.get("model")) or self.deployment or facts.response_model or "unknown",
            "status_code": status_code,
            "stream": self.stream,
            "latency_ms": _milliseconds(at - self.started),
        }
        optional = {
            "response_model": facts.response_model,
            "error_type": error_type,
            "finish_reason": facts.finish_reason,
            "ttft_ms": (
                _milliseconds(facts.first_output_at - self.started)
                if self.stream and facts.first_output_at is not None
                else None
            ),
            "max_tokens": self._max_tokens(),
            "provider_request_id": facts.response_id,
            "service_tier": _SERVICE_TIERS.get(facts.service_tier or ""),
            "app": self.labels.app,
            "account": self.account,
        }
        event.update({key: value for key, value in optional.items() if value is not None})
        tags = dict(self.labels.tags or {})
        succeeded = error_type is None
        # A 2xx response that began but never ended (the provider or a proxy cut the stream, it timed out, the
        # caller abandoned it): the provider bills what it processed, so the counts already received are kept
        # (Anthropic sends the input and cache counts in message_start) and the rest is tagged missing.
        cut_short = status_code < 300 and not facts.complete and facts.stream_error is None
        if facts.usage is not None and (succeeded or facts.complete or cut_short):
            try:
                normalize_usage(self.provider, facts.usage)
                event["usage"] = facts.usage
            except ValueError as error:
                log.warning(
                    "TokenLedger: unreadable %s usage on a %s call, recorded without tokens: %s",
                    self.provider,
                    self.api,
                    error,
                )
                tags[USAGE_TAG] = "unreadable"
        if "usage" not in event:
            event["input_tokens"] = event["output_tokens"] = 0
        if cut_short or ("usage" not in event and succeeded):
            # A 2xx cut short, or one without usage (a server that does not report it).
            tags[USAGE_TAG] = tags.get(USAGE_TAG, "missing")
        if tags:
            event["tags"] = tags
        return event

    def _outcome(self) -> tuple[int, str | None]:
        """HTTP status (408 for a timeout, 502 for a broken connection: no status was received) and error type."""
        if self.status_code is None or (self.failure and not self.facts.complete):
            if self.failure == "timeout":
                return self.status_code or 408, "timeout"
            return self.status_code or 502, "other"
        if self.facts.stream_error:
            return self.status_code, self.facts.stream_error
        error_type = error_type_for_status(self.status_code)
        if self.status_code == 400 and self._error_code() == "content_filter":
            # Azure OpenAI refuses a filtered prompt with HTTP 400, error.code "content_filter"
            # (learn.microsoft.com/azure/ai-services/openai/concepts/content-filter).
            error_type = "content_filter"
        return self.status_code, error_type

    def _error_code(self) -> str | None:
        try:
            error = json.loads(bytes(self._body)).get("error")
        except (ValueError, AttributeError):
            return None
        return _text(error.get("code")) if isinstance(error, dict) else None

    def _max_tokens(self) -> int | None:
        keys = {
            "chat": ("max_completion_tokens", "max_tokens"),
            "responses": ("max_output_tokens",),
            "messages": ("max_tokens",),
        }[self.api]
        for key in keys:
            value = self.request.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    def _read_body(self) -> None:
        if self.status_code is None or self.status_code >= 300:
            return
        try:
            body = json.loads(bytes(self._body))
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if self.api == "chat":
            _read_chat_completion(self.facts, body)
        elif self.api == "responses":
            _read_response(self.facts, body)
        else:
            _read_anthropic_message(self.facts, body)
        self.facts.complete = True


# --- OpenAI Chat Completions (openai/openai-python types/chat/chat_completion.py, chat_completion_chunk.py) --


def _read_chat_completion(facts: _Facts, body: Mapping[str, Any]) -> None:
    facts.response_id = _text(body.get("id"))
    facts.response_model = _text(body.get("model"))
    facts.service_tier = _text(body.get("service_tier"))
    facts.usage = _object(body.get("usage"))
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        facts.finish_reason = _text(choices[0].get("finish_reason"))


def _read_chat_chunk(facts: _Facts, chunk: Mapping[str, Any], at: float, *, hide_usage_chunk: bool) -> bool:
    """A chunk: usage is in the last chunk that has it (vLLM's continuous stats repeat it: keep the last)."""
    if isinstance(chunk.get("error"), dict):
        facts.stream_error = _STREAM_ERRORS.get(_text(chunk["error"].get("type")) or "", "other")
        return False
    facts.response_id = facts.response_id or _text(chunk.get("id"))
    facts.response_model = _text(chunk.get("model")) or facts.response_model
    facts.service_tier = _text(chunk.get("service_tier")) or facts.service_tier
    usage = _object(chunk.get("usage"))
    if usage is not None:
        facts.usage = usage
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        facts.finish_reason = _text(choice.get("finish_reason")) or facts.finish_reason
        delta = choice.get("delta")
        if (
            facts.first_output_at is None
            and isinstance(delta, dict)
            and any(
                delta.get(key) for key in ("content", "refusal", "tool_calls", "function_call", "reasoning_content")
            )
        ):
            facts.first_output_at = at
    return hide_usage_chunk and choices == [] and usage is not None


# --- OpenAI Responses (openai/openai-python types/responses/response.py, response_stream_event.py) --------


def _read_response(facts: _Facts, response: Mapping[str, Any]) -> None:
    facts.response_id = _text(response.get("id")) or facts.response_id
    facts.response_model = _text(response.get("model")) or facts.response_model
    facts.service_tier = _text(response.get("service_tier")) or facts.service_tier
    facts.usage = _object(response.get("usage")) or facts.usage
    facts.finish_reason = responses_finish_reason(response) or facts.finish_reason


def responses_finish_reason(response: Mapping[str, Any]) -> str | None:
    """The Responses API has a status, not a finish reason: map it to the Chat Completions vocabulary the
    rollup counts (completed → stop, or tool_calls when it ends in a function call; incomplete because of
    max_output_tokens → length, of content_filter → content_filter)."""
    status = response.get("status")
    if status == "completed":
        output = response.get("output")
        items = output if isinstance(output, list) else []
        calls = any(isinstance(item, dict) and item.get("type") == "function_call" for item in items)
        return "tool_calls" if calls else "stop"
    if status == "incomplete":
        details = _object(response.get("incomplete_details")) or {}
        reason = _text(details.get("reason")) or ""
        return {"max_output_tokens": "length", "content_filter": "content_filter"}.get(reason)
    return None


def _read_responses_event(facts: _Facts, event: Mapping[str, Any], at: float) -> None:
    kind = _text(event.get("type")) or ""
    response = _object(event.get("response"))
    if response is not None:
        _read_response(facts, response)
    if kind in ("response.completed", "response.incomplete", "response.failed"):
        facts.complete = True
        if kind == "response.failed":
            error = _object(response.get("error") if response else None) or {}
            facts.stream_error = _STREAM_ERRORS.get(_text(error.get("code")) or "", "other")
    elif kind == "error":
        facts.stream_error = _STREAM_ERRORS.get(_text(event.get("code")) or "", "other")
    elif kind.endswith(".delta") and facts.first_output_at is None:
        facts.first_output_at = at


# --- Anthropic Messages (anthropics/anthropic-sdk-python types/message.py, raw_message_*_event.py) ---------


def _read_anthropic_message(facts: _Facts, message: Mapping[str, Any]) -> None:
    facts.response_id = _text(message.get("id"))
    facts.response_model = _text(message.get("model"))
    facts.finish_reason = _text(message.get("stop_reason"))
    facts.usage = _object(message.get("usage"))


def _read_anthropic_event(facts: _Facts, event: Mapping[str, Any], at: float) -> None:
    """message_start carries the input and cache counts; message_delta's usage is CUMULATIVE, so its
    non-null fields replace those of message_start (as the SDK's accumulator does,
    anthropics/anthropic-sdk-python lib/streaming/_messages.py), never add to them."""
    kind = event.get("type")
    if kind == "message_start":
        message = _object(event.get("message")) or {}
        facts.response_id = _text(message.get("id"))
        facts.response_model = _text(message.get("model"))
        facts.usage = dict(_object(message.get("usage")) or {})
    elif kind == "content_block_delta" and facts.first_output_at is None:
        facts.first_output_at = at
    elif kind == "message_delta":
        delta = _object(event.get("delta")) or {}
        facts.finish_reason = _text(delta.get("stop_reason")) or facts.finish_reason
        usage = _object(event.get("usage")) or {}
        facts.usage = {**(facts.usage or {}), **{key: value for key, value in usage.items() if value is not None}}
    elif kind == "message_stop":
        facts.complete = True
    elif kind == "error":
        error = _object(event.get("error")) or {}
        facts.stream_error = _STREAM_ERRORS.get(_text(error.get("type")) or "", "other")


# --- reading JSON --------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _object(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _milliseconds(seconds: float) -> int:
    return max(int(seconds * 1000), 0)
