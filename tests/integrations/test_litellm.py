"""LiteLLM: the TokenLedgerLogger callback inside real `litellm.completion` calls against a local provider, and
`POST /v1/integrations/litellm` fed by LiteLLM's own generic API logger and by its real payloads."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import litellm
import pytest
from fastapi.testclient import TestClient
from litellm.integrations.custom_logger import CustomLogger
from litellm.integrations.generic_api.generic_api_callback import GenericAPILogger
from litellm.litellm_core_utils.safe_json_dumps import safe_dumps
from sqlalchemy.engine import Engine

from ledger.integrations.client import TokenLedger
from ledger.integrations.litellm_logger import TokenLedgerLogger
from ledger.integrations.litellm_payload import event_from_payload
from tests.conftest import TenantKeys
from tests.integrations.harness import LedgerServer, only_event, stored_events, tokens_of
from tests.integrations.provider_mock import ProviderMock, Reply, sse

USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 310,
    "total_tokens": 1510,
    "prompt_tokens_details": {"cached_tokens": 1024},
    "completion_tokens_details": {"reasoning_tokens": 64},
}
TOKENS = {
    "input_tokens": 1200,
    "output_tokens": 310,
    "cache_read_input_tokens": 1024,
    "cache_creation_input_tokens": 0,
    "reasoning_tokens": 64,
}
MESSAGES = [{"role": "user", "content": "hi"}]
# litellm's own pydantic models warn about ReadOnly TypedDict items when first built.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def completion_body(completion_id: str = "chatcmpl-lite1") -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": 1780000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}],
        "usage": USAGE,
    }


class Capture(CustomLogger):
    """Keeps LiteLLM's standard logging payloads, as a generic API logger would send them."""

    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[dict[str, Any]] = []

    def log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.payloads.append(json.loads(safe_dumps(kwargs["standard_logging_object"])))

    def log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.payloads.append(json.loads(safe_dumps(kwargs["standard_logging_object"])))


@pytest.fixture
def callbacks() -> Iterator[list[Any]]:
    """litellm.callbacks for this test alone. LiteLLM copies them into its own lists and keeps one logger per
    class there, so those are emptied before and after."""
    litellm.logging_callback_manager._reset_all_callbacks()
    yield litellm.callbacks
    litellm.logging_callback_manager._reset_all_callbacks()


def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    """LiteLLM runs success callbacks of sync calls in a background thread."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_logger_records_a_completion_with_exactly_its_tokens_and_litellms_cost(
    provider: ProviderMock, ledger: TokenLedger, callbacks: list[Any], engine: Engine, tenant: TenantKeys
) -> None:
    capture = Capture()
    callbacks.extend([TokenLedgerLogger(ledger, app="gateway"), capture])
    provider.script(Reply(200, completion_body()))

    litellm.completion(
        model="openai/gpt-4o-mini", messages=MESSAGES, api_base=f"{provider.base_url}/v1", api_key="sk", max_tokens=500
    )

    eventually(lambda: bool(capture.payloads) and ledger.buffered + ledger.sent > 0)
    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert tokens_of(row) == TOKENS
    assert (row["event_id"], row["provider_request_id"]) == ("chatcmpl-lite1", "chatcmpl-lite1")
    assert (row["provider"], row["request_model"], row["response_model"]) == (
        "openai",
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
    )
    assert (row["finish_reason"], row["max_tokens"], row["status_code"], row["app"]) == ("stop", 500, 200, "gateway")
    assert row["reported_cost"] == Decimal(str(capture.payloads[0]["response_cost"])) > 0
    assert row["latency_ms"] is not None


def test_the_logger_records_a_rate_limited_call_as_a_failure(
    provider: ProviderMock, ledger: TokenLedger, callbacks: list[Any], engine: Engine, tenant: TenantKeys
) -> None:
    callbacks.append(TokenLedgerLogger(ledger))
    provider.script(Reply(429, {"error": {"message": "Rate limit reached", "type": "requests"}}))

    with pytest.raises(litellm.RateLimitError):
        litellm.completion(
            model="openai/gpt-4o-mini",
            messages=MESSAGES,
            api_base=f"{provider.base_url}/v1",
            api_key="sk",
            num_retries=0,
            max_retries=0,
        )

    eventually(lambda: ledger.buffered + ledger.sent > 0)
    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert (row["status_code"], row["error_type"]) == (429, "rate_limit")
    assert (row["input_tokens"], row["output_tokens"], row["reported_cost"]) == (0, 0, None)


def test_the_logger_records_an_async_stream_once_with_its_usage(
    provider: ProviderMock, ledger: TokenLedger, callbacks: list[Any], engine: Engine, tenant: TenantKeys
) -> None:
    callbacks.append(TokenLedgerLogger(ledger))
    base = {"id": "chatcmpl-lite-s", "object": "chat.completion.chunk", "created": 1780000000, "model": "gpt-4o-mini"}
    provider.script(
        Reply(
            200,
            events=sse(
                {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]},
                {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                {**base, "choices": [], "usage": USAGE},
                "[DONE]",
            ),
            event_delay=0.01,
        )
    )

    async def call() -> None:
        stream = await litellm.acompletion(
            model="openai/gpt-4o-mini",
            messages=MESSAGES,
            api_base=f"{provider.base_url}/v1",
            api_key="sk",
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _ in stream:
            pass
        for _ in range(200):
            if ledger.buffered + ledger.sent:
                break
            await asyncio.sleep(0.02)

    asyncio.run(call())

    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert tokens_of(row) == TOKENS
    assert (row["stream"], row["finish_reason"]) == (True, "stop")
    assert row["ttft_ms"] is not None
    assert row["ttft_ms"] <= row["latency_ms"]


def test_litellms_generic_api_logger_delivers_to_the_endpoint(
    provider: ProviderMock, ledger_server: LedgerServer, callbacks: list[Any], engine: Engine, tenant: TenantKeys
) -> None:
    provider.script(Reply(200, completion_body("chatcmpl-generic1")))

    async def call() -> None:
        logger = GenericAPILogger(endpoint=f"{ledger_server.url}/v1/integrations/litellm", headers=tenant.ingest)
        callbacks.append(logger)
        await litellm.acompletion(
            model="openai/gpt-4o-mini", messages=MESSAGES, api_base=f"{provider.base_url}/v1", api_key="sk"
        )
        for _ in range(200):
            if logger.log_queue:
                break
            await asyncio.sleep(0.02)
        await logger.async_send_batch()

    asyncio.run(call())

    row = only_event(engine, tenant)
    assert row["event_id"] == "chatcmpl-generic1"
    assert tokens_of(row) == TOKENS


@pytest.fixture(scope="module")
def real_payloads() -> dict[str, dict[str, Any]]:
    """A success and a failure payload, as LiteLLM builds and serializes them."""
    litellm.logging_callback_manager._reset_all_callbacks()
    capture = Capture()
    litellm.callbacks = [capture]
    provider = ProviderMock()
    try:
        provider.script(
            Reply(200, completion_body("chatcmpl-real1")),
            Reply(500, {"error": {"message": "upstream overloaded", "type": "server_error"}}),
        )
        litellm.completion(
            model="openai/gpt-4o-mini",
            messages=MESSAGES,
            api_base=f"{provider.base_url}/v1",
            api_key="sk",
            max_tokens=64,
        )
        with pytest.raises(litellm.InternalServerError):
            litellm.completion(
                model="openai/gpt-4o-mini",
                messages=MESSAGES,
                api_base=f"{provider.base_url}/v1",
                api_key="sk",
                num_retries=0,
                max_retries=0,
            )
        eventually(lambda: len(capture.payloads) == 2)
    finally:
        litellm.logging_callback_manager._reset_all_callbacks()
        provider.close()
    by_status = {payload["status"]: payload for payload in capture.payloads}
    return {"success": by_status["success"], "failure": by_status["failure"]}


def post(client: TestClient, tenant: TenantKeys, body: Any, *, content: bytes | None = None, **params: str) -> Any:
    return client.post(
        "/v1/integrations/litellm",
        params=params,
        headers={**tenant.ingest, "Content-Type": "application/json"},
        content=content if content is not None else json.dumps(body).encode(),
    )


def test_the_endpoint_stores_a_payload_once_whatever_how_often_it_is_sent(
    client: TestClient, tenant: TenantKeys, engine: Engine, real_payloads: dict[str, dict[str, Any]]
) -> None:
    payload = real_payloads["success"]

    first = post(client, tenant, payload, app="gateway", account="proj_main")
    again = post(client, tenant, [payload])

    assert (first.status_code, first.json()) == (202, {"accepted": 1, "duplicates": 0})
    assert again.json() == {"accepted": 0, "duplicates": 1}
    row = only_event(engine, tenant)
    assert tokens_of(row) == TOKENS
    assert (row["event_id"], row["app"], row["account"], row["max_tokens"]) == (
        "chatcmpl-real1",
        "gateway",
        "proj_main",
        64,
    )
    assert row["reported_cost"] == Decimal(str(payload["response_cost"]))


def test_the_endpoint_reads_ndjson_sent_as_application_json(
    client: TestClient, tenant: TenantKeys, engine: Engine, real_payloads: dict[str, dict[str, Any]]
) -> None:
    lines = [json.dumps(real_payloads["success"]), json.dumps(real_payloads["failure"])]

    answer = post(client, tenant, None, content="\n".join(lines).encode())

    assert answer.json() == {"accepted": 2, "duplicates": 0}
    failure = next(row for row in stored_events(engine, tenant) if row["status_code"] != 200)
    assert (failure["status_code"], failure["error_type"], failure["input_tokens"]) == (500, "server_error", 0)


def test_a_payload_that_cannot_be_recorded_is_reported_by_index_and_its_neighbours_are_stored(
    client: TestClient, tenant: TenantKeys, engine: Engine, real_payloads: dict[str, dict[str, Any]]
) -> None:
    """LiteLLM does not retry a 4xx answer: refusing the whole batch for one bad payload would lose the rest."""
    broken = copy.deepcopy(real_payloads["success"])
    del broken["model"]
    negative = copy.deepcopy(real_payloads["success"])
    negative["metadata"]["usage_object"]["completion_tokens"] = -3
    too_early = copy.deepcopy(real_payloads["success"])
    too_early.update(id="chatcmpl-1970", startTime=1.0, endTime=1.5)  # maps, but the event is refused

    answer = post(client, tenant, [real_payloads["success"], broken, negative, too_early, real_payloads["failure"]])

    assert answer.status_code == 202
    body = answer.json()
    assert (body["accepted"], body["duplicates"], body["rejected_count"]) == (2, 0, 3)
    assert [(d["index"], d["field"]) for d in body["rejected"]] == [
        (1, "model"),
        (2, "metadata.usage_object.completion_tokens"),
        (3, "occurred_at"),
    ]
    assert len(stored_events(engine, tenant)) == 2

    nothing_valid = post(client, tenant, [broken, negative])
    assert nothing_valid.status_code == 422
    assert [(d["index"], d["field"]) for d in nothing_valid.json()["error"]["details"]] == [
        (0, "model"),
        (1, "metadata.usage_object.completion_tokens"),
    ]


def test_a_start_time_past_any_date_or_an_odd_error_code_is_refused_or_read_not_a_server_error(
    client: TestClient, tenant: TenantKeys, engine: Engine, real_payloads: dict[str, dict[str, Any]]
) -> None:
    far_future = {**real_payloads["success"], "id": "far-1", "startTime": 1e21}
    odd_code = copy.deepcopy(real_payloads["failure"])
    odd_code["id"] = "odd-1"
    odd_code["error_information"]["error_code"] = "²"  # a digit to str.isdigit, not to int()

    refused = post(client, tenant, [far_future])
    read = post(client, tenant, [odd_code])

    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "startTime"
    assert read.status_code == 202
    assert only_event(engine, tenant)["status_code"] == 500  # the error class decides when the code cannot


def test_calls_no_provider_billed_are_skipped(
    client: TestClient, tenant: TenantKeys, engine: Engine, real_payloads: dict[str, dict[str, Any]]
) -> None:
    image = {**real_payloads["success"], "id": "img-1", "call_type": "image_generation"}
    cached = {**real_payloads["success"], "id": "cached-1", "cache_hit": True}

    answer = post(client, tenant, [image, cached])

    assert answer.json() == {"accepted": 0, "duplicates": 0}
    assert stored_events(engine, tenant) == []


def test_the_endpoint_needs_an_ingest_key(client: TestClient, tenant: TenantKeys) -> None:
    assert client.post("/v1/integrations/litellm", json={}).status_code == 401
    assert client.post("/v1/integrations/litellm", json={}, headers=tenant.read).status_code == 403


@pytest.mark.parametrize(
    ("error_class", "error_code", "status", "error_type"),
    [
        ("Timeout", "408", 408, "timeout"),
        ("ContentPolicyViolationError", "400", 400, "content_filter"),
        ("APIConnectionError", None, 500, "other"),
        ("AuthenticationError", "401", 401, "auth"),
        ("ServiceUnavailableError", "503", 503, "server_error"),
    ],
)
def test_failures_are_classified_from_the_error_information(
    real_payloads: dict[str, dict[str, Any]], error_class: str, error_code: str | None, status: int, error_type: str
) -> None:
    payload = copy.deepcopy(real_payloads["failure"])
    payload["error_information"].update(error_class=error_class, error_code=error_code)

    event = event_from_payload(payload)

    assert event is not None
    assert (event["status_code"], event["error_type"]) == (status, error_type)


def captured_payload(provider: ProviderMock, call: Callable[[], Any]) -> dict[str, Any]:
    """The standard logging payload LiteLLM builds for one call against the provider mock."""
    litellm.logging_callback_manager._reset_all_callbacks()
    capture = Capture()
    litellm.callbacks = [capture]
    try:
        call()
        eventually(lambda: len(capture.payloads) == 1)
    finally:
        litellm.logging_callback_manager._reset_all_callbacks()
    return capture.payloads[0]


def test_a_responses_call_whose_id_litellm_made_long_is_recorded_under_a_stable_id(
    provider: ProviderMock, client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    provider.script(
        Reply(
            200,
            {
                "id": "resp_0123456789abcdef0123456789abcdef",
                "object": "response",
                "created_at": 1780000000,
                "status": "completed",
                "model": "gpt-5.4-mini",
                "output": [
                    {
                        "type": "message",
                        "id": "msg_1",
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "Hi.", "annotations": []}],
                    }
                ],
                "usage": {
                    "input_tokens": 100,
                    "input_tokens_details": {"cached_tokens": 40},
                    "output_tokens": 20,
                    "output_tokens_details": {"reasoning_tokens": 5},
                    "total_tokens": 120,
                },
            },
        )
    )
    payload = captured_payload(
        provider,
        lambda: litellm.responses(
            model="openai/gpt-5.4-mini", input="hi", api_base=f"{provider.base_url}/v1", api_key="sk"
        ),
    )
    assert len(payload["id"]) > 128  # resp_ + base64 of the provider, the model id and the response id

    first = post(client, tenant, [payload])
    again = post(client, tenant, [payload])  # a retry of the same call: the same id, a duplicate

    assert (first.json(), again.json()) == ({"accepted": 1, "duplicates": 0}, {"accepted": 0, "duplicates": 1})
    row = only_event(engine, tenant)
    assert row["event_id"].startswith("sha256:")
    assert len(row["event_id"]) <= 128
    assert row["provider_request_id"] == payload["id"]
    assert tokens_of(row) == {
        "input_tokens": 100,
        "output_tokens": 20,
        "cache_read_input_tokens": 40,
        "cache_creation_input_tokens": 0,
        "reasoning_tokens": 5,
    }


def test_one_hour_cache_writes_of_an_anthropic_call_through_litellm_are_kept_apart(
    provider: ProviderMock, client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    provider.script(
        Reply(
            200,
            {
                "id": "msg_01hour",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-6",
                "content": [{"type": "text", "text": "Hi."}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 10,
                    "cache_creation_input_tokens": 3000,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 20,
                    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
                },
            },
        )
    )
    payload = captured_payload(
        provider,
        lambda: litellm.completion(
            model="anthropic/claude-sonnet-4-6", messages=MESSAGES, api_base=provider.base_url, api_key="sk"
        ),
    )

    assert post(client, tenant, [payload]).json() == {"accepted": 1, "duplicates": 0}
    row = only_event(engine, tenant)
    assert (row["input_tokens"], row["cache_creation_input_tokens"], row["cache_creation_1h_input_tokens"]) == (
        3010,
        3000,
        2000,
    )


def test_a_cost_litellm_computed_as_a_float_is_kept_to_the_stored_places_not_refused(
    client: TestClient, tenant: TenantKeys, engine: Engine, real_payloads: dict[str, dict[str, Any]]
) -> None:
    """Refusing costs with more places than are stored applies to what a client states; LiteLLM's cost is a
    float it computed (1200 × 2.5e-07 + …), whose binary noise past the tenth place no one meant."""
    payload = {**real_payloads["success"], "response_cost": 0.00030000000000000003}

    assert post(client, tenant, [payload]).json() == {"accepted": 1, "duplicates": 0}
    assert only_event(engine, tenant)["reported_cost"] == Decimal("0.0003")
