"""SDK hooks: one usage event per request an OpenAI or Anthropic SDK client makes, sync or async, plain or
streamed, recorded into a `TokenLedger` client.

    client = instrument_openai(OpenAI(), ledger, app="support-bot")
    client = instrument_anthropic(AsyncAnthropic(), ledger, tags={"team": "search"})

Recorded per request: the raw usage object (normalized by the service, `ledger.events.normalizers`), latency,
time to first token of a stream, finish reason (OpenAI `finish_reason`, Anthropic `stop_reason`), status and
error type of failures (429 rate_limit, 5xx server_error, 401/403 auth, 400 invalid_request, timeouts
timeout), the response id, requested and answering model, `max_tokens` and `stream`. Each HTTP attempt is one
event, SDK retries included, since each reached the provider; requests that never connected are not.

OpenAI-compatible servers work through `base_url`; the provider is `provider=` or inferred from the host:
api.openai.com openai, *.openai.azure.com azure, api.deepseek.com deepseek, dashscope*.aliyuncs.com qwen,
api.mistral.ai mistral, openrouter.ai openrouter; any other host is recorded as `openai` (pass
`provider="vllm"` for a vLLM server). OpenAI chat streams are sent `stream_options.include_usage` when the
caller did not ask for it, and the extra usage-only chunk (`choices: []`) is then hidden from the caller,
whose code was not written for it; a caller that asked for it gets it. Recording never raises into the caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from ledger.integrations.client import UsageRecorder
from ledger.integrations.instrument.calls import Family, Labels, provider_for_host
from ledger.integrations.instrument.transport import instrument_http_client

__all__ = ["instrument_anthropic", "instrument_openai", "provider_for_host"]

Client = TypeVar("Client")
_SLUG = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def instrument_openai(
    client: Client,
    ledger: UsageRecorder,
    *,
    app: str | None = None,
    tags: Mapping[str, str] | None = None,
    provider: str | None = None,
    account: str | None = None,
) -> Client:
    """Record every Chat Completions and Responses request of an `openai.OpenAI` / `AsyncOpenAI` /
    `AzureOpenAI` client (or one pointed at a compatible server). `account` defaults to the client's
    OpenAI project. Returns the same client."""
    return _instrument("openai", client, ledger, app=app, tags=tags, provider=provider, account=account)


def instrument_anthropic(
    client: Client,
    ledger: UsageRecorder,
    *,
    app: str | None = None,
    tags: Mapping[str, str] | None = None,
    provider: str | None = None,
    account: str | None = None,
) -> Client:
    """Record every Messages request of an `anthropic.Anthropic` / `AsyncAnthropic` client. Returns it."""
    return _instrument("anthropic", client, ledger, app=app, tags=tags, provider=provider, account=account)


def _instrument(
    family: Family,
    client: Client,
    ledger: UsageRecorder,
    *,
    app: str | None,
    tags: Mapping[str, str] | None,
    provider: str | None,
    account: str | None,
) -> Client:
    if provider is not None and not _SLUG.fullmatch(provider):
        raise ValueError(f"provider must be a lower-case slug such as 'openai' or 'vllm', got {provider!r}")
    if tags is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise ValueError("tags must map strings to strings")
    http_client: Any = getattr(client, "_client", None)
    if http_client is None:
        raise TypeError(f"expected an {family} SDK client, got {type(client).__name__}")
    labels = Labels(family, provider, app, account, dict(tags) if tags else None)
    instrument_http_client(http_client, labels, ledger.record)
    return client
