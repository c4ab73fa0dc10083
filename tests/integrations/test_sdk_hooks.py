"""SDK hooks: the real openai and anthropic SDKs, against a local server answering in the providers' documented
shapes (plain JSON and SSE), recording into a running TokenLedger. The stored row carries exactly the tokens
of the response."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from ledger.integrations.client import TokenLedger
from ledger.integrations.instrument import instrument_anthropic, instrument_openai, provider_for_host
from ledger.integrations.instrument.sse import SSEParser
from tests.conftest import TenantKeys
from tests.integrations.harness import only_event, stored_events, tokens_of
from tests.integrations.provider_mock import ProviderMock, Reply, named_sse, sse

CHAT_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 310,
    "total_tokens": 1510,
    "prompt_tokens_details": {"cached_tokens": 1024},
    "completion_tokens_details": {"reasoning_tokens": 64},
}
CHAT_TOKENS = {
    "input_tokens": 1200,
    "output_tokens": 310,
    "cache_read_input_tokens": 1024,
    "cache_creation_input_tokens": 0,
    "reasoning_tokens": 64,
}


def chat_completion(**fields: Any) -> dict[str, Any]:
    body = {
        "id": "chatcmpl-plain1",
        "object": "chat.completion",
        "created": 1780000000,
        "model": "gpt-5.4-mini-2026-03-17",
        "service_tier": "default",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}],
        "usage": CHAT_USAGE,
    }
    return {**body, **fields}


def chat_chunks(*, model: str = "gpt-5.4-mini-2026-03-17", usage: dict[str, Any] = CHAT_USAGE) -> list[Any]:
    """A Chat Completions stream with stream_options.include_usage: the usage comes in an extra last chunk
    whose `choices` is empty (openai/openai-python chat_completion_stream_options_param.py)."""
    base = {"id": "chatcmpl-stream1", "object": "chat.completion.chunk", "created": 1780000000, "model": model}
    return [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
        {**base, "choices": [], "usage": usage},
        "[DONE]",
    ]


def openai_client(provider: ProviderMock, ledger: TokenLedger, **labels: Any) -> openai.OpenAI:
    client = openai.OpenAI(api_key="sk-test", base_url=f"{provider.base_url}/v1", max_retries=0)
    return instrument_openai(client, ledger, **labels)


def test_a_chat_completion_is_stored_with_exactly_its_tokens(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(Reply(200, chat_completion()))
    client = openai_client(provider, ledger, app="support-bot", tags={"team": "search"})

    client.chat.completions.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=400
    )

    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert tokens_of(row) == CHAT_TOKENS
    assert row["provider"] == "openai"
    assert row["request_model"] == "gpt-5.4-mini"
    assert row["response_model"] == "gpt-5.4-mini-2026-03-17"
    assert row["finish_reason"] == "stop"
    assert row["provider_request_id"] == "chatcmpl-plain1"
    assert row["max_tokens"] == 400
    assert row["service_tier"] == "standard"
    assert (row["status_code"], row["error_type"], row["stream"]) == (200, None, False)
    assert row["app"] == "support-bot"
    assert row["tags"] == {"team": "search"}
    assert row["latency_ms"] is not None
    assert row["usage_raw"] == CHAT_USAGE


def test_a_chat_stream_asks_for_usage_hides_the_usage_chunk_and_stores_its_tokens(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(Reply(200, events=sse(*chat_chunks()), event_delay=0.01))
    client = openai_client(provider, ledger)

    stream = client.chat.completions.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}], stream=True, max_tokens=3
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)  # would fail on a choices=[] chunk

    assert text == "Hello"
    assert provider.received[0].body["stream_options"] == {"include_usage": True}
    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert tokens_of(row) == CHAT_TOKENS
    assert row["stream"] is True
    assert row["finish_reason"] == "length"
    assert row["max_tokens"] == 3
    assert 0 < row["ttft_ms"] <= row["latency_ms"]


def test_a_caller_that_asked_for_the_usage_chunk_still_gets_it(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(Reply(200, events=sse(*chat_chunks())))
    client = openai_client(provider, ledger)

    chunks = list(
        client.chat.completions.create(
            model="gpt-5.4-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 1200
    assert ledger.flush(10)
    assert tokens_of(only_event(engine, tenant)) == CHAT_TOKENS


RESPONSES_USAGE = {
    "input_tokens": 5000,
    "input_tokens_details": {"cached_tokens": 4096},
    "output_tokens": 900,
    "output_tokens_details": {"reasoning_tokens": 512},
    "total_tokens": 5900,
}


def response_object(status: str = "completed") -> dict[str, Any]:
    """A Responses API `Response` (openai/openai-python types/responses/response.py)."""
    return {
        "id": "resp_123",
        "object": "response",
        "created_at": 1780000000,
        "status": status,
        "model": "gpt-5.4-2026-03-05",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hi.", "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": RESPONSES_USAGE,
    }


def test_a_responses_api_call_is_stored_with_exactly_its_tokens(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(Reply(200, response_object()))
    client = openai_client(provider, ledger)

    client.responses.create(model="gpt-5.4", input="hi", max_output_tokens=2000)

    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert tokens_of(row) == {
        "input_tokens": 5000,
        "output_tokens": 900,
        "cache_read_input_tokens": 4096,
        "cache_creation_input_tokens": 0,
        "reasoning_tokens": 512,
    }
    assert (row["request_model"], row["response_model"]) == ("gpt-5.4", "gpt-5.4-2026-03-05")
    assert row["provider_request_id"] == "resp_123"
    assert row["finish_reason"] == "stop"
    assert row["max_tokens"] == 2000


def test_a_streamed_responses_call_takes_its_usage_from_response_completed(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    created = {**response_object("in_progress"), "usage": None, "output": []}
    provider.script(
        Reply(
            200,
            events=named_sse(
                {"type": "response.created", "sequence_number": 0, "response": created},
                {
                    "type": "response.output_text.delta",
                    "sequence_number": 1,
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "Hi.",
                    "logprobs": [],
                },
                {"type": "response.completed", "sequence_number": 2, "response": response_object()},
            ),
        )
    )
    client = openai_client(provider, ledger)

    events = [event.type for event in client.responses.create(model="gpt-5.4", input="hi", stream=True)]

    assert events == ["response.created", "response.output_text.delta", "response.completed"]
    assert "stream_options" not in provider.received[0].body
    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert (row["input_tokens"], row["cache_read_input_tokens"], row["output_tokens"]) == (5000, 4096, 900)
    assert row["stream"] is True
    assert row["ttft_ms"] is not None


ANTHROPIC_USAGE = {
    "input_tokens": 2105,
    "cache_creation_input_tokens": 1000,
    "cache_read_input_tokens": 24576,
    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 318,
    "service_tier": "standard",
}


def anthropic_client(provider: ProviderMock, ledger: TokenLedger) -> anthropic.Anthropic:
    client = anthropic.Anthropic(api_key="sk-ant", base_url=provider.base_url, max_retries=0)
    return instrument_anthropic(client, ledger)


def test_an_anthropic_message_is_stored_with_its_cache_inside_input_tokens(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(
        Reply(
            200,
            {
                "id": "msg_plain1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-6-20260101",
                "content": [{"type": "text", "text": "Hi."}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": ANTHROPIC_USAGE,
            },
        )
    )
    client = anthropic_client(provider, ledger)

    client.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=[{"role": "user", "content": "hi"}])

    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert tokens_of(row) == {
        "input_tokens": 2105 + 1000 + 24576,
        "output_tokens": 318,
        "cache_read_input_tokens": 24576,
        "cache_creation_input_tokens": 1000,
        "reasoning_tokens": 0,
    }
    assert (row["provider"], row["finish_reason"]) == ("anthropic", "end_turn")
    assert row["provider_request_id"] == "msg_plain1"
    assert row["max_tokens"] == 1024


def anthropic_stream() -> tuple[tuple[str | None, str], ...]:
    """The documented stream: message_start carries input and cache counts and a placeholder output count;
    message_delta's usage is cumulative (2,105 uncached + 24,576 cache-read input, 318 output billed)."""
    return named_sse(
        {
            "type": "message_start",
            "message": {
                "id": "msg_stream1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-6-20260101",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 2105,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 24576,
                    "output_tokens": 1,
                },
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
            "usage": {"output_tokens": 318},
        },
        {"type": "message_stop"},
    )


def test_an_anthropic_stream_replaces_the_start_usage_with_the_cumulative_delta(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(Reply(200, events=anthropic_stream(), event_delay=0.01))
    client = anthropic_client(provider, ledger)

    with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=318, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert "".join(stream.text_stream) == "Hi"

    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert tokens_of(row) == {
        "input_tokens": 2105 + 24576,
        "output_tokens": 318,  # not 319: the delta's count is the total, not an increment
        "cache_read_input_tokens": 24576,
        "cache_creation_input_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert (row["stream"], row["finish_reason"]) == (True, "max_tokens")
    assert 0 < row["ttft_ms"] <= row["latency_ms"]


def test_a_deepseek_base_url_is_recorded_as_deepseek_with_its_cache_hits(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    usage = {
        "prompt_tokens": 900,
        "completion_tokens": 120,
        "total_tokens": 1020,
        "prompt_cache_hit_tokens": 768,
        "prompt_cache_miss_tokens": 132,
        "prompt_tokens_details": {"cached_tokens": 768},
    }
    provider.script(Reply(200, chat_completion(model="deepseek-chat", usage=usage)))
    # The request goes to http://api.deepseek.com/v1 through the stand-in acting as an HTTP proxy.
    http_client = openai.DefaultHttpxClient(proxy=provider.base_url)
    client = openai.OpenAI(
        api_key="sk-ds", base_url="http://api.deepseek.com/v1", http_client=http_client, max_retries=0
    )
    instrument_openai(client, ledger)

    client.chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "hi"}])

    assert provider.received[0].host == "api.deepseek.com"
    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert row["provider"] == "deepseek"
    assert (row["input_tokens"], row["cache_read_input_tokens"], row["output_tokens"]) == (900, 768, 120)


def test_a_gzipped_response_is_read_as_the_sdk_reads_it(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(Reply(200, chat_completion(), gzip=True))
    client = openai_client(provider, ledger)

    completion = client.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])

    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 1200
    assert ledger.flush(10)
    assert tokens_of(only_event(engine, tenant)) == CHAT_TOKENS


def test_a_stream_the_caller_abandons_is_recorded_without_finish_reason_or_tokens(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(Reply(200, events=sse(*chat_chunks()), event_delay=0.05))
    client = openai_client(provider, ledger)

    with client.chat.completions.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    ) as stream:
        next(iter(stream))

    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert (row["stream"], row["finish_reason"], row["status_code"]) == (True, None, 200)
    assert (row["input_tokens"], row["output_tokens"]) == (0, 0)
    assert row["tags"] == {"tokenledger.usage": "missing"}


def read_until_cut(chunks: Any) -> list[Any]:
    """Read a stream the provider cuts: the SDK raises the transport's error ("incomplete chunked read")."""
    received: list[Any] = []
    with pytest.raises(Exception, match=r"incomplete|peer closed|Connection") as raised:
        received.extend(chunks)
    assert "ProtocolError" in type(raised.value).__name__ or "Connection" in type(raised.value).__name__
    return received


def test_a_chat_stream_the_provider_cuts_is_tagged_usage_missing(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(Reply(200, events=sse(*chat_chunks()), cut_after=2))
    client = openai_client(provider, ledger)

    chunks = read_until_cut(
        client.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
    )

    assert len(chunks) == 2
    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert (row["stream"], row["status_code"], row["finish_reason"]) == (True, 200, None)
    assert (row["input_tokens"], row["output_tokens"]) == (0, 0)
    assert row["tags"] == {"tokenledger.usage": "missing"}


def test_an_anthropic_stream_the_provider_cuts_keeps_the_input_and_cache_counts_it_received(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(Reply(200, events=anthropic_stream(), cut_after=4))  # after the first text delta
    client = anthropic_client(provider, ledger)

    with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=318, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = read_until_cut(stream.text_stream)

    assert text == ["Hi"]
    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert (row["input_tokens"], row["cache_read_input_tokens"]) == (2105 + 24576, 24576)
    assert row["output_tokens"] == 1  # message_start's count: the rest never arrived
    assert (row["status_code"], row["finish_reason"]) == (200, None)
    assert row["tags"] == {"tokenledger.usage": "missing"}


def test_a_rate_limited_request_is_recorded_as_a_rate_limit_failure(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(
        Reply(429, {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
    )
    client = openai_client(provider, ledger)

    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])

    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert (row["status_code"], row["error_type"]) == (429, "rate_limit")
    assert (row["input_tokens"], row["output_tokens"]) == (0, 0)


def test_a_timed_out_stream_is_recorded_as_a_timeout(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(Reply(200, events=sse(*chat_chunks()), event_delay=0.5))
    client = openai.OpenAI(api_key="sk-test", base_url=f"{provider.base_url}/v1", max_retries=0, timeout=0.2)
    instrument_openai(client, ledger)

    with pytest.raises(openai.APITimeoutError):
        list(
            client.chat.completions.create(
                model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )

    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert row["error_type"] == "timeout"
    assert row["finish_reason"] is None


def test_async_clients_are_recorded_too(
    provider: ProviderMock, ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(
        Reply(200, events=sse(*chat_chunks())),
        Reply(200, events=anthropic_stream()),
    )

    async def calls() -> None:
        openai_async = instrument_openai(
            openai.AsyncOpenAI(api_key="sk", base_url=f"{provider.base_url}/v1", max_retries=0), ledger, provider="vllm"
        )
        stream = await openai_async.chat.completions.create(
            model="meta-llama/Llama-4", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert [chunk.choices[0].index async for chunk in stream] == [0, 0, 0, 0]
        anthropic_async = instrument_anthropic(
            anthropic.AsyncAnthropic(api_key="sk", base_url=provider.base_url, max_retries=0), ledger
        )
        async with anthropic_async.messages.stream(
            model="claude-sonnet-4-6", max_tokens=318, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            await stream.get_final_message()
        assert await ledger.aflush(10)

    asyncio.run(calls())

    rows = {row["provider"]: row for row in stored_events(engine, tenant)}
    assert set(rows) == {"vllm", "anthropic"}
    assert tokens_of(rows["vllm"]) == CHAT_TOKENS
    assert (rows["anthropic"]["input_tokens"], rows["anthropic"]["output_tokens"]) == (2105 + 24576, 318)


class BrokenRecorder:
    def record(self, event: Any) -> None:
        raise RuntimeError("TokenLedger is having a bad day")


def test_recording_never_raises_into_the_caller(provider: ProviderMock) -> None:
    provider.script(Reply(200, chat_completion()))
    client = instrument_openai(
        openai.OpenAI(api_key="sk", base_url=f"{provider.base_url}/v1", max_retries=0), BrokenRecorder()
    )

    completion = client.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": "hi"}])

    assert completion.choices[0].message.content == "Hi."


@pytest.mark.parametrize(
    ("host", "provider"),
    [
        ("api.openai.com", "openai"),
        ("my-resource.openai.azure.com", "azure"),
        ("api.deepseek.com", "deepseek"),
        ("dashscope-intl.aliyuncs.com", "qwen"),
        ("dashscope.aliyuncs.com", "qwen"),
        ("api.mistral.ai", "mistral"),
        ("openrouter.ai", "openrouter"),
        ("api.anthropic.com", "anthropic"),
        ("gpu-box.internal", None),
    ],
)
def test_the_provider_is_inferred_from_well_known_hosts(host: str, provider: str | None) -> None:
    assert provider_for_host(host) == provider


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=12), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_server_sent_events_parse_the_same_however_the_bytes_are_cut(cuts: list[int], newline: bytes) -> None:
    stream = newline.join(
        [b"event: message_start", b'data: {"a": 1}', b"", b": comment", b"data: two", b"data: lines", b"", b""]
    )
    parser, events, position = SSEParser(), [], 0
    for size in [*cuts, len(stream)]:
        events += parser.feed(stream[position : position + size])
        position += size

    assert [(event.event, event.data) for event in events] == [("message_start", '{"a": 1}'), (None, "two\nlines")]
    assert b"".join(event.raw for event in events) + parser.rest() == stream
