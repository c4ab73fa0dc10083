"""The Python client: events reach TokenLedger in batches, and TokenLedger being slow, refusing or down never
blocks or fails the application, never grows memory without bound, and loses nothing it can keep."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from ledger.events.schema import EventIn, json_text
from ledger.integrations.client import TokenLedger
from tests.conftest import TenantKeys
from tests.integrations.harness import LedgerServer, free_port, only_event, stored_events, tokens_of
from tests.integrations.provider_mock import ProviderMock, Reply


def usage_event(**fields: Any) -> dict[str, Any]:
    event = {
        "occurred_at": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
        "provider": "openai",
        "request_model": "gpt-5.4-mini",
        "input_tokens": 1200,
        "output_tokens": 300,
    }
    return {**event, **fields}


def key_of(tenant: TenantKeys) -> str:
    return tenant.ingest["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def fake_ledger() -> Iterator[ProviderMock]:
    """A stand-in for the TokenLedger service that answers what a test scripts."""
    mock = ProviderMock()
    yield mock
    mock.close()


def test_recorded_events_are_stored_with_their_usage_normalized(
    ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    anthropic_usage = {"input_tokens": 40, "cache_read_input_tokens": 960, "output_tokens": 12}
    ledger.record(
        usage_event(
            event_id="a-1",
            provider="anthropic",
            request_model="claude-haiku-4-5",
            input_tokens=None,
            output_tokens=None,
            usage=anthropic_usage,
            reported_cost=Decimal("0.0235224"),
        )
    )

    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert tokens_of(row) == {
        "input_tokens": 1000,
        "output_tokens": 12,
        "cache_read_input_tokens": 960,
        "cache_creation_input_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert row["reported_cost"] == Decimal("0.0235224")
    assert ledger.sent == 1


def test_an_event_model_sends_only_the_fields_it_was_given(
    ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    usage = {"prompt_tokens": 500, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 256}}
    ledger.record(EventIn(occurred_at=datetime.now(UTC), provider="openai", request_model="gpt-5.4", usage=usage))

    assert ledger.flush(10)
    row = only_event(engine, tenant)
    assert (row["input_tokens"], row["cache_read_input_tokens"], row["output_tokens"]) == (500, 256, 20)
    assert row["event_id"]


def test_events_go_out_in_batches_of_at_most_batch_size(fake_ledger: ProviderMock) -> None:
    fake_ledger.script(*[Reply(202, {"accepted": 10, "duplicates": 0})] * 3)
    client = TokenLedger(fake_ledger.base_url, "tl_key", batch_size=10, flush_interval=5)

    for number in range(25):
        client.record(usage_event(event_id=f"e-{number}"))
    assert client.flush(10)

    assert [len(request.body) for request in fake_ledger.received] == [10, 10, 5]
    assert [event["event_id"] for request in fake_ledger.received for event in request.body] == [
        f"e-{number}" for number in range(25)
    ]
    assert fake_ledger.received[0].headers["authorization"] == "Bearer tl_key"
    client.close()


def test_an_event_without_an_id_gets_one_so_a_retried_batch_is_not_counted_twice(fake_ledger: ProviderMock) -> None:
    fake_ledger.script(Reply(503, {"error": {"code": "database_unavailable"}}), Reply(202, {"accepted": 1}))
    client = TokenLedger(fake_ledger.base_url, "tl_key", flush_interval=0.01, max_retry_delay=0.05)

    client.record(usage_event())
    assert client.flush(10)

    first, retry = fake_ledger.received
    assert first.body == retry.body
    assert len(first.body[0]["event_id"]) == 36  # a uuid4
    client.close()


def test_retry_after_is_honoured_on_429(fake_ledger: ProviderMock) -> None:
    fake_ledger.script(Reply(429, {"error": {"code": "rate_limited"}}, headers={"Retry-After": "1"}), Reply(202, {}))
    client = TokenLedger(fake_ledger.base_url, "tl_key", flush_interval=0.01, max_retry_delay=0.05)

    client.record(usage_event())
    assert client.flush(10)

    first, retry = fake_ledger.received
    assert retry.at - first.at >= 0.95
    client.close()


def test_a_refused_batch_is_dropped_once_with_a_warning_naming_the_problem(
    fake_ledger: ProviderMock, caplog: pytest.LogCaptureFixture
) -> None:
    problem = {"index": 0, "field": "usage.prompt_tokens", "message": "is required but missing"}
    refusal = {"error": {"code": "invalid_request", "message": "1 problem(s)", "details": [problem]}}
    fake_ledger.script(Reply(422, refusal))
    client = TokenLedger(fake_ledger.base_url, "tl_key", flush_interval=0.01)

    with caplog.at_level(logging.WARNING, logger="tokenledger.client"):
        client.record(usage_event())
        assert not client.flush(5)

    assert client.dropped == 1
    assert len(fake_ledger.received) == 1
    assert "HTTP 422" in caplog.text
    assert "usage.prompt_tokens" in caplog.text
    client.close()


def test_an_invalid_event_is_rejected_locally_without_raising(
    fake_ledger: ProviderMock, caplog: pytest.LogCaptureFixture
) -> None:
    client = TokenLedger(fake_ledger.base_url, "tl_key")

    with caplog.at_level(logging.WARNING, logger="tokenledger.client"):
        client.record({"provider": "openai", "request_model": "gpt-5.4", "input_tokens": -1})
        client.record(object())

    assert client.rejected == 2
    assert "occurred_at" in caplog.text
    assert "input_tokens" in caplog.text
    assert client.buffered == 0
    client.close()


def test_tokenledger_down_never_blocks_the_app_bounds_memory_and_delivery_resumes(
    database_url: str, engine: Engine, tenant: TenantKeys
) -> None:
    port = free_port()  # nothing listens there yet
    client = TokenLedger(
        f"http://127.0.0.1:{port}",
        key_of(tenant),
        batch_size=10,
        max_buffer=50,
        flush_interval=0.01,
        max_retry_delay=0.1,
    )

    started = time.monotonic()
    for number in range(200):
        client.record(usage_event(event_id=f"down-{number}"))
    recording_took = time.monotonic() - started
    time.sleep(0.3)  # a few failed attempts

    assert recording_took < 1.0
    assert client.buffered == 50
    assert client.dropped == 150
    server = LedgerServer(database_url, engine, port=port).start()
    try:
        assert client.flush(10)
    finally:
        server.stop()
        client.close()

    stored = {row["event_id"] for row in stored_events(engine, tenant)}
    assert len(stored) == 50
    assert {f"down-{number}" for number in range(160, 200)} <= stored  # the newest survive


def test_buffered_events_are_delivered_when_the_interpreter_exits(
    ledger_server: LedgerServer, engine: Engine, tenant: TenantKeys
) -> None:
    script = (
        "import sys, json\n"
        "from ledger.integrations.client import TokenLedger\n"
        "ledger = TokenLedger(sys.argv[1], sys.argv[2], flush_interval=3600, exit_timeout=30)\n"
        "ledger.record(json.loads(sys.argv[3]))\n"
    )
    event = json.dumps(usage_event(event_id="at-exit-1"))
    subprocess.run(
        [sys.executable, "-c", script, ledger_server.url, key_of(tenant), event],
        check=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )

    assert only_event(engine, tenant)["event_id"] == "at-exit-1"


def test_the_async_twin_records_and_flushes_without_blocking_the_loop(
    ledger: TokenLedger, engine: Engine, tenant: TenantKeys
) -> None:
    async def app() -> None:
        await ledger.arecord(usage_event(event_id="async-1"))
        assert await ledger.aflush(10)

    asyncio.run(app())

    assert only_event(engine, tenant)["event_id"] == "async-1"


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_money_is_written_as_an_exact_json_number(amount: Decimal) -> None:
    text = json_text({"reported_cost": amount})

    assert json.loads(text, parse_float=Decimal)["reported_cost"] == amount


SILENT_SERVER = """
import socket, sys, time
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(listener.getsockname()[1], flush=True)
held = []
while True:
    held.append(listener.accept()[0])  # accepts, reads nothing, answers nothing
"""

RECORD_AND_EXIT = (
    "import atexit, json, sys, time\n"
    "from ledger.integrations.client import TokenLedger\n"
    "returned = []\n"
    "atexit.register(lambda: print(time.monotonic() - returned[0]))  # runs last: after the client's own\n"
    "ledger = TokenLedger(sys.argv[1], sys.argv[2], flush_interval=3600, exit_timeout=0.5, spill_dir=sys.argv[3])\n"
    "for event in json.loads(sys.argv[4]):\n"
    "    ledger.record(event)\n"
    "returned.append(time.monotonic())\n"
)


def run_and_exit(url: str, key: str, spill_dir: str, events: list[dict[str, Any]]) -> float:
    """An application process that records `events` and returns: the seconds its exit took (from the end of
    its script to the last exit handler)."""
    done = subprocess.run(
        [sys.executable, "-c", RECORD_AND_EXIT, url, key, spill_dir, json.dumps(events)],
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    return float(done.stdout.split()[-1])


def test_a_service_that_never_answers_does_not_hold_up_exit_and_the_next_process_sends_what_was_left(
    database_url: str, engine: Engine, tenant: TenantKeys, tmp_path: Any
) -> None:
    silent = subprocess.Popen([sys.executable, "-c", SILENT_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert silent.stdout is not None
        url = f"http://127.0.0.1:{silent.stdout.readline().strip()}"
        exit_took = run_and_exit(
            url, key_of(tenant), str(tmp_path), [usage_event(event_id=f"hung-{n}") for n in range(3)]
        )
    finally:
        silent.kill()
        silent.wait()
    spilled = [json.loads(line) for path in tmp_path.rglob("*.ndjson") for line in path.read_text().splitlines()]
    assert sorted(event["event_id"] for event in spilled) == ["hung-0", "hung-1", "hung-2"]
    assert stored_events(engine, tenant) == []
    assert exit_took < 5  # bounded by exit_timeout (0.5 s), not by the 10-second request timeout


def test_events_left_by_a_process_while_tokenledger_was_down_are_sent_by_the_next_one(
    database_url: str, engine: Engine, tenant: TenantKeys, tmp_path: Any
) -> None:
    port = free_port()  # nothing listens there yet
    url = f"http://127.0.0.1:{port}"
    run_and_exit(url, key_of(tenant), str(tmp_path), [usage_event(event_id=f"left-{n}") for n in range(3)])
    assert list(tmp_path.rglob("*.ndjson"))

    server = LedgerServer(database_url, engine, port=port).start()
    try:
        client = TokenLedger(url, key_of(tenant), flush_interval=0.01, spill_dir=tmp_path)
        client.record(usage_event(event_id="own-1"))
        assert client.flush(10)
        client.close()
    finally:
        server.stop()

    assert sorted(row["event_id"] for row in stored_events(engine, tenant)) == ["left-0", "left-1", "left-2", "own-1"]
    assert not list(tmp_path.rglob("*.ndjson"))
    assert client.sent == 4


def test_without_a_spill_folder_unsent_events_are_dropped_and_counted_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = TokenLedger(
        f"http://127.0.0.1:{free_port()}", "tl_key.secret", flush_interval=3600, max_retry_delay=0.05, spill_dir=None
    )
    for number in range(3):
        client.record(usage_event(event_id=f"lost-{number}"))

    with caplog.at_level(logging.WARNING, logger="tokenledger.client"):
        client.close(timeout=0.2)

    assert client.dropped == 3
    assert "dropped 3 event(s)" in caplog.text
