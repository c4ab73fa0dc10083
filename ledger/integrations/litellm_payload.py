"""LiteLLM's standard logging payload → usage events. Pure.

LiteLLM builds one `StandardLoggingPayload` per call (SDK and proxy alike) and hands it to custom loggers as
`kwargs["standard_logging_object"]`; its generic API logger POSTs the same objects, as a JSON array (its
default `log_format`), NDJSON or one object per request. Field names are those of litellm 1.110
`litellm/types/utils.py`: `StandardLoggingPayload` (id, call_type, status, custom_llm_provider, model,
model_group, prompt_tokens, completion_tokens, response_cost, response_cost_failure_debug_info, cache_hit,
stream, startTime, endTime, completionStartTime, end_user, model_parameters, response, error_information),
`StandardLoggingMetadata` (usage_object, user_api_key_alias, user_api_key_team_alias),
`StandardLoggingHiddenParams` (usage_object) and `StandardLoggingPayloadErrorInformation` (error_code,
error_class, error_provider_request_id).

Tokens come from the payload's `usage_object` (LiteLLM's unified `Usage`, cache reads and writes inside
`prompt_tokens` for every backend), normalized with the `litellm` reader of `ledger.events.normalizers` and sent as
explicit counts: the event's provider is the real one, whose own reader would not know LiteLLM's shape.
Calls LiteLLM answered from its own cache (`cache_hit`) never reached a provider and are skipped, as are
call types that are not token-billed model requests (images, audio, files, batches, …).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.events.normalizers import UsageShapeError, normalize_usage
from ledger.events.schema import PROVIDER_ID_MAX, EventProblem, stable_event_id, stored_cost
from ledger.integrations.instrument.calls import error_type_for_status, responses_finish_reason

LLM_CALL_TYPES = frozenset(
    {
        "completion",
        "acompletion",
        "text_completion",
        "atext_completion",
        "embedding",
        "aembedding",
        "responses",
        "aresponses",
        "anthropic_messages",
        "aanthropic_messages",
        "generate_content",
        "agenerate_content",
        "generate_content_stream",
        "agenerate_content_stream",
        "pass_through_endpoint",
    }
)

# LiteLLM `custom_llm_provider` (litellm/types/utils.py `LlmProviders`) → event provider slug.
PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure",
    "azure_text": "azure",
    "azure_ai": "azure",
    "anthropic": "anthropic",
    "anthropic_text": "anthropic",
    "bedrock": "bedrock",
    "vertex_ai": "vertex",
    "vertex_ai_beta": "vertex",
    "gemini": "google",
    "deepseek": "deepseek",
    "dashscope": "qwen",
    "mistral": "mistral",
    "codestral": "mistral",
    "openrouter": "openrouter",
    "vllm": "vllm",
    "hosted_vllm": "vllm",
    "groq": "groq",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "xai": "xai",
    "perplexity": "perplexity",
}

# LiteLLM exception classes (litellm/exceptions.py) → HTTP status when error_code is not one, and error type
# where the status alone would say less.
_ERROR_STATUS = {
    "Timeout": 408,
    "RateLimitError": 429,
    "AuthenticationError": 401,
    "PermissionDeniedError": 403,
    "BadRequestError": 400,
    "ContentPolicyViolationError": 400,
    "ContextWindowExceededError": 400,
    "NotFoundError": 404,
    "UnprocessableEntityError": 422,
    "InternalServerError": 500,
    "ServiceUnavailableError": 503,
    "APIConnectionError": 500,
    "APIError": 500,
}
_ERROR_TYPE = {"Timeout": "timeout", "ContentPolicyViolationError": "content_filter", "APIConnectionError": "other"}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SLUG = re.compile(r"[a-z0-9][a-z0-9_.-]*")
MAX_TAG_VALUE = 1024


class PayloadError(ValueError):
    """A payload that cannot be mapped; `field` is its path in the payload."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class MappedPayloads:
    """A batch of payloads mapped: the events (each with the index of its payload), the payloads that cannot be
    mapped (index and field), and how many were skipped (not provider-billed calls)."""

    events: list[tuple[int, dict[str, Any]]]
    problems: list[EventProblem]
    skipped: int


def events_from_payloads(
    payloads: Sequence[Any],
    *,
    app: str | None = None,
    account: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> MappedPayloads:
    """Map every payload of a batch on its own: one that cannot be mapped is a problem of its own index and
    does not keep the others from being recorded."""
    events: list[tuple[int, dict[str, Any]]] = []
    problems: list[EventProblem] = []
    skipped = 0
    for index, payload in enumerate(payloads):
        try:
            event = event_from_payload(payload, app=app, account=account, tags=tags)
        except PayloadError as error:
            problems.append(EventProblem(index, error.field, error.message))
            continue
        if event is None:
            skipped += 1
        else:
            events.append((index, event))
    return MappedPayloads(events, problems, skipped)


def event_from_payload(
    payload: Any,
    *,
    app: str | None = None,
    account: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """The usage event of one payload, or None when it is not a provider-billed model call."""
    if not isinstance(payload, Mapping):
        raise PayloadError("payload", f"must be a JSON object (a StandardLoggingPayload), got {type(payload).__name__}")
    call_type = _required_text(payload, "call_type")
    if call_type not in LLM_CALL_TYPES or payload.get("cache_hit") is True:
        return None
    call_id = _required_text(payload, "id")
    if len(call_id) > PROVIDER_ID_MAX:
        raise PayloadError("id", f"must be at most {PROVIDER_ID_MAX} characters, got {len(call_id)}")
    event_id = stable_event_id(call_id)  # a Responses id (resp_ + base64, up to 201 characters) by its hash
    status = payload.get("status")
    if status not in ("success", "failure"):
        raise PayloadError("status", f"must be 'success' or 'failure', got {status!r}")
    succeeded = status == "success"
    started = _unix_time(payload, "startTime")
    if started is None:
        raise PayloadError("startTime", f"is required (a Unix time in seconds), got {payload.get('startTime')!r}")
    ended = _unix_time(payload, "endTime")
    first_output = _unix_time(payload, "completionStartTime")
    stream = payload.get("stream") is True
    response = _mapping(payload.get("response"))
    metadata = _mapping(payload.get("metadata"))

    event: dict[str, Any] = {
        "event_id": event_id,
        "occurred_at": _EPOCH + timedelta(microseconds=int(started * 1_000_000)),
        "provider": _provider(payload),
        "request_model": _required_text(payload, "model"),
        "stream": stream,
        **_tokens(payload, metadata, required=succeeded),
    }
    status_code, error_type = (200, None) if succeeded else _failure(_mapping(payload.get("error_information")))
    error_information = _mapping(payload.get("error_information"))
    optional: dict[str, Any] = {
        "response_model": _text(response.get("model")),
        "status_code": status_code,
        "error_type": error_type,
        "finish_reason": _finish_reason(response),
        "latency_ms": _milliseconds(ended - started) if ended is not None and ended >= started else None,
        "ttft_ms": (
            _milliseconds(first_output - started)
            if stream and first_output is not None and first_output >= started
            else None
        ),
        "max_tokens": _max_tokens(_mapping(payload.get("model_parameters"))),
        "provider_request_id": _text(response.get("id"))
        or _text(error_information.get("error_provider_request_id"))
        or (call_id if call_id != event_id else None),
        "reported_cost": _reported_cost(payload) if succeeded else None,
        "user": _text(payload.get("end_user")),
        "app": app,
        "account": account,
    }
    event.update({key: value for key, value in optional.items() if value is not None})
    labels = dict(tags or {})
    for tag, value in (
        ("litellm.model_group", payload.get("model_group")),
        ("litellm.key_alias", metadata.get("user_api_key_alias")),
        ("litellm.team_alias", metadata.get("user_api_key_team_alias")),
    ):
        if text := _text(value):
            labels[tag] = text[:MAX_TAG_VALUE]
    if labels:
        event["tags"] = labels
    return event


def _provider(payload: Mapping[str, Any]) -> str:
    name = _text(payload.get("custom_llm_provider"))
    if name is None:
        hidden = _mapping(payload.get("hidden_params"))
        prefix, slash, _ = (_text(hidden.get("litellm_model_name")) or "").partition("/")
        name = prefix if slash else None
    if name is None:
        raise PayloadError("custom_llm_provider", "is required: the provider LiteLLM called")
    provider = PROVIDERS.get(name, name.lower())
    if not _SLUG.fullmatch(provider):
        raise PayloadError("custom_llm_provider", f"is not a provider name: {name!r}")
    return provider


def _tokens(payload: Mapping[str, Any], metadata: Mapping[str, Any], *, required: bool) -> dict[str, int]:
    for field, usage in (
        ("metadata.usage_object", metadata.get("usage_object")),
        ("hidden_params.usage_object", _mapping(payload.get("hidden_params")).get("usage_object")),
    ):
        if isinstance(usage, Mapping) and usage:
            try:
                counts = normalize_usage("litellm", usage)
            except UsageShapeError as error:
                raise PayloadError(field + error.path.removeprefix("usage"), str(error).partition(": ")[2]) from error
            except ValueError as error:
                raise PayloadError(field, str(error)) from error
            return {
                "input_tokens": counts.input_tokens,
                "output_tokens": counts.output_tokens,
                "cache_read_input_tokens": counts.cache_read_input_tokens,
                "cache_creation_input_tokens": counts.cache_creation_input_tokens,
                "cache_creation_1h_input_tokens": counts.cache_creation_1h_input_tokens,
                "reasoning_tokens": counts.reasoning_tokens,
                "web_search_requests": counts.web_search_requests,
            }
    return {
        "input_tokens": _count(payload, "prompt_tokens", required=required),
        "output_tokens": _count(payload, "completion_tokens", required=required),
    }


def _failure(error: Mapping[str, Any]) -> tuple[int, str]:
    """Status code and error type of a failed call."""
    error_class = _text(error.get("error_class")) or ""
    code = str(error.get("error_code") or "")
    plain = code.isascii() and code.isdigit()  # "²" is a digit to str.isdigit, not to int()
    status = int(code) if plain and 100 <= int(code) <= 599 else _ERROR_STATUS.get(error_class, 500)
    return status, _ERROR_TYPE.get(error_class) or error_type_for_status(status) or "other"


def _finish_reason(response: Mapping[str, Any]) -> str | None:
    choices = response.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        return _text(choices[0].get("finish_reason"))
    return _text(response.get("stop_reason")) or responses_finish_reason(response)


def _max_tokens(parameters: Mapping[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = parameters.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _reported_cost(payload: Mapping[str, Any]) -> Decimal | None:
    """LiteLLM's computed cost, unless it says it could not compute one."""
    if payload.get("response_cost_failure_debug_info"):
        return None
    cost = _decimal(payload.get("response_cost"))
    if cost is None:
        return None
    if not cost.is_finite() or cost < 0:
        raise PayloadError("response_cost", f"must be a finite non-negative number, got {cost}")
    return stored_cost(cost)  # a float LiteLLM computed: to the places the cost columns keep


def _required_text(payload: Mapping[str, Any], field: str) -> str:
    value = _text(payload.get(field))
    if value is None:
        raise PayloadError(field, f"is required (a non-empty string), got {payload.get(field)!r}")
    return value


def _count(payload: Mapping[str, Any], field: str, *, required: bool) -> int:
    value = payload.get(field)
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError(field, f"must be a non-negative integer, got {value!r}")
    return value


def _unix_time(payload: Mapping[str, Any], field: str) -> Decimal | None:
    """A Unix time in seconds (LiteLLM writes floats), or None when absent."""
    if payload.get(field) is None:
        return None
    value = _decimal(payload.get(field))
    if value is None or not value.is_finite() or not 0 < value < _LAST_UNIX_TIME:
        raise PayloadError(field, f"must be a Unix time in seconds, got {payload.get(field)!r}")
    return value


_LAST_UNIX_TIME = Decimal(253_402_300_800)
"""9999-12-31T23:59:59Z and beyond cannot be a datetime."""


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        return Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None


def _milliseconds(seconds: Decimal) -> int:
    return int(seconds * 1000)


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
