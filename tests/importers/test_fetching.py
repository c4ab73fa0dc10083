"""Fetching against a real HTTP server on 127.0.0.1: pagination, retries, Retry-After, refused keys."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from importers.anthropic import AnthropicImporter
from importers.base import AdminKeyRequired, FetchContext, FetchError, RawDocument
from importers.fetching import FetchClient
from importers.openai import OpenAIImporter
from importers.openrouter import OpenRouterImporter
from ledger.periods import Period

SECRET = "sk-admin-very-secret-0123456789"
OCTOBER = Period.month("2026-10")
EMPTY_OPENAI_PAGE = {"object": "page", "data": [], "has_more": False, "next_page": None}


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: EMPTY_OPENAI_PAGE)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering


@dataclass
class Request:
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]


class ProviderStub:
    """Answers GETs with the replies scripted for each path, in order; records every request."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.requests: list[Request] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                stub.requests.append(Request(url.path, parse_qsl(url.query), dict(self.headers.items())))
                queue = stub.replies.get(url.path) or [Reply(404, {"error": f"nothing scripted for {url.path}"})]
                reply = queue.pop(0)
                time.sleep(reply.delay)
                content = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(content)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test output is not a server log."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, path: str, *replies: Reply) -> None:
        self.replies.setdefault(path, []).extend(replies)


@pytest.fixture
def stub() -> Iterator[ProviderStub]:
    provider = ProviderStub()
    thread = threading.Thread(target=provider.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield provider
    provider.server.shutdown()
    provider.server.server_close()
    thread.join()


class Sleeps(list[float]):
    """An injectable sleep that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def openai_page(next_page: str | None) -> dict[str, Any]:
    result = {"object": "organization.usage.completions.result", "input_tokens": 10, "output_tokens": 2}
    result |= {"num_model_requests": 1, "model": "gpt-5.4"}
    bucket = {"object": "bucket", "start_time": 1790812800, "end_time": 1790899200, "results": [result]}
    return {"object": "page", "data": [bucket], "has_more": next_page is not None, "next_page": next_page}


def fetch_openai(client: FetchClient) -> list[RawDocument]:
    return list(OpenAIImporter().fetch(OCTOBER, credential=SECRET, client=client, context=FetchContext()))


def test_openai_fetch_follows_every_page_of_usage_then_costs(stub: ProviderStub) -> None:
    stub.script("/v1/organization/usage/completions", Reply(body=openai_page("page_2")), Reply(body=openai_page(None)))
    stub.script("/v1/organization/costs", Reply())

    with FetchClient(f"{stub.url}/v1", sleep=Sleeps()) as client:
        documents = fetch_openai(client)

    assert [request.path for request in stub.requests] == [
        "/v1/organization/usage/completions",
        "/v1/organization/usage/completions",
        "/v1/organization/costs",
    ]
    window = [("start_time", "1790812800"), ("end_time", "1793491200"), ("bucket_width", "1d"), ("limit", "31")]
    assert stub.requests[0].query == window + [
        ("group_by[]", field) for field in ("project_id", "api_key_id", "model", "batch", "service_tier")
    ]
    assert stub.requests[1].query[-1] == ("page", "page_2")
    assert stub.requests[2].query == [*window, ("group_by[]", "project_id"), ("group_by[]", "line_item")]
    assert {request.headers["Authorization"] for request in stub.requests} == {f"Bearer {SECRET}"}
    assert documents[1].name == (
        "/v1/organization/usage/completions?start_time=1790812800&end_time=1793491200&bucket_width=1d&limit=31"
        "&group_by[]=project_id&group_by[]=api_key_id&group_by[]=model&group_by[]=batch&group_by[]=service_tier"
        "&page=page_2"
    )
    assert all(SECRET not in document.name for document in documents)
    assert [(document.source, document.media_type) for document in documents] == [("openai", "application/json")] * 3
    assert [len(OpenAIImporter().parse(document)) for document in documents] == [3, 3, 0]


def test_anthropic_fetch_sends_its_key_header_version_and_rfc3339_bounds(stub: ProviderStub) -> None:
    empty = {"data": [], "has_more": False, "next_page": None}
    stub.script("/v1/organizations/usage_report/messages", Reply(body=empty))
    stub.script("/v1/organizations/cost_report", Reply(body=empty))

    with FetchClient(stub.url) as client:
        documents = list(AnthropicImporter().fetch(OCTOBER, credential=SECRET, client=client, context=FetchContext()))

    assert len(documents) == 2
    usage, cost = stub.requests
    assert (usage.headers["x-api-key"], usage.headers["anthropic-version"]) == (SECRET, "2023-06-01")
    assert usage.query[:4] == [
        ("starting_at", "2026-10-01T00:00:00Z"),
        ("ending_at", "2026-11-01T00:00:00Z"),
        ("bucket_width", "1d"),
        ("limit", "31"),
    ]
    assert [value for key, value in cost.query if key == "group_by[]"] == ["workspace_id", "description"]


def test_openrouter_fetch_reads_completed_days_then_the_requested_generations(stub: ProviderStub) -> None:
    stub.script("/api/v1/activity", Reply(body={"data": []}), Reply(body={"data": []}))
    generation = {"id": "gen-1", "created_at": "2026-10-02T10:00:00Z", "total_cost": 0.01, "native_tokens_prompt": 5}
    stub.script("/api/v1/generation", Reply(body={"data": generation}))
    context = FetchContext(request_ids=("gen-1",), now=datetime(2026, 10, 3, 12, tzinfo=UTC))

    with FetchClient(f"{stub.url}/api/v1") as client:
        documents = list(OpenRouterImporter().fetch(OCTOBER, credential=SECRET, client=client, context=context))

    assert [(request.path, request.query) for request in stub.requests] == [
        ("/api/v1/activity", [("date", "2026-10-01")]),
        ("/api/v1/activity", [("date", "2026-10-02")]),
        ("/api/v1/generation", [("id", "gen-1")]),
    ]
    assert [OpenRouterImporter().identify(document) for document in documents] == [True, True, True]
    assert {line.request_id for line in OpenRouterImporter().parse(documents[2])} == {"gen-1"}


def test_rate_limits_and_server_errors_are_retried_with_retry_after_then_backoff(stub: ProviderStub) -> None:
    stub.script(
        "/v1/organization/costs",
        Reply(429, {"error": "slow down"}, {"Retry-After": "7"}),
        Reply(500, {"error": "oops"}),
        Reply(),
    )
    sleeps = Sleeps()

    with FetchClient(f"{stub.url}/v1", sleep=sleeps, backoff=1.0) as client:
        document = client.get("/organization/costs", [], headers={}, source="openai", credential_env=None)

    assert sleeps == [7.0, 2.0]
    assert json.loads(document.content) == EMPTY_OPENAI_PAGE
    assert len(stub.requests) == 3


def test_retry_after_as_an_http_date_waits_until_then_but_never_longer_than_the_cap(stub: ProviderStub) -> None:
    now = datetime(2026, 10, 1, 12, tzinfo=UTC)
    soon, much_later = (format_datetime(now + timedelta(seconds=s), usegmt=True) for s in (30, 3600))
    stub.script(
        "/v1/organization/costs",
        Reply(503, headers={"Retry-After": soon}),
        Reply(503, headers={"Retry-After": much_later}),
        Reply(),
    )
    sleeps = Sleeps()

    with FetchClient(f"{stub.url}/v1", sleep=sleeps, clock=lambda: now, max_wait=60.0) as client:
        client.get("/organization/costs", [], headers={}, source="openai", credential_env=None)

    assert sleeps == [30.0, 60.0]


def test_a_refused_key_asks_for_an_admin_key_by_variable_name_and_never_shows_the_key(stub: ProviderStub) -> None:
    stub.script("/v1/organization/usage/completions", Reply(401, {"error": {"message": f"Incorrect key {SECRET}"}}))

    with FetchClient(f"{stub.url}/v1", sleep=Sleeps()) as client, pytest.raises(AdminKeyRequired) as raised:
        fetch_openai(client)

    message = str(raised.value)
    assert message.startswith("an admin key is needed: set OPENAI_ADMIN_KEY")
    assert "GET /organization/usage/completions" in message
    assert SECRET not in message
    assert len(stub.requests) == 1, "a refused key is not retried"


def test_a_forbidden_anthropic_key_names_the_anthropic_variable(stub: ProviderStub) -> None:
    stub.script("/v1/organizations/usage_report/messages", Reply(403, {"error": "forbidden"}))

    with FetchClient(stub.url) as client, pytest.raises(AdminKeyRequired, match="set ANTHROPIC_ADMIN_KEY"):
        list(AnthropicImporter().fetch(OCTOBER, credential=SECRET, client=client, context=FetchContext()))


def test_a_provider_that_keeps_failing_is_given_up_after_the_last_attempt(stub: ProviderStub) -> None:
    stub.script("/v1/organization/costs", *[Reply(503)] * 3)
    sleeps = Sleeps()

    with FetchClient(f"{stub.url}/v1", sleep=sleeps, max_attempts=3) as client, pytest.raises(FetchError) as raised:
        client.get("/organization/costs", [], headers={}, source="openai", credential_env=None)

    assert str(raised.value) == "GET /organization/costs: HTTP 503 after 3 attempts"
    assert sleeps == [1.0, 2.0]


def test_an_unreachable_provider_is_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sleeps = Sleeps()

    with (
        FetchClient(f"http://127.0.0.1:{closed_port}", sleep=sleeps, max_attempts=2) as client,
        pytest.raises(FetchError, match=r"^GET /x: ConnectError after 2 attempts$"),
    ):
        client.get("/x", [], headers={"Authorization": f"Bearer {SECRET}"}, source="t", credential_env=None)

    assert sleeps == [1.0]


def test_a_rejected_request_quotes_the_error_body_without_the_credential(stub: ProviderStub) -> None:
    stub.script("/v1/organization/costs", Reply(400, {"error": {"message": f"bad group_by for key {SECRET}"}}))

    with FetchClient(f"{stub.url}/v1") as client, pytest.raises(FetchError) as raised:
        client.get(
            "/organization/costs", [], headers={"Authorization": f"Bearer {SECRET}"}, source="o", credential_env=None
        )

    assert "HTTP 400" in str(raised.value)
    assert "bad group_by for key [redacted]" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_the_progress_hook_hears_of_every_page(stub: ProviderStub) -> None:
    stub.script("/v1/organization/usage/completions", Reply(body=openai_page("p2")), Reply(body=openai_page(None)))
    stub.script("/v1/organization/costs", Reply())
    heard: list[tuple[str, int]] = []

    def hear(page: RawDocument, count: int) -> None:
        heard.append((page.name.split("?")[0], count))

    with FetchClient(f"{stub.url}/v1", progress=hear) as client:
        fetch_openai(client)

    assert heard == [
        ("/v1/organization/usage/completions", 1),
        ("/v1/organization/usage/completions", 2),
        ("/v1/organization/costs", 3),
    ]


def test_a_page_that_has_more_without_a_cursor_stops_the_fetch(stub: ProviderStub) -> None:
    broken = {"object": "page", "data": [], "has_more": True, "next_page": None}
    stub.script("/v1/organization/usage/completions", Reply(body=broken))

    with FetchClient(f"{stub.url}/v1") as client, pytest.raises(FetchError, match="has_more is true but next_page"):
        fetch_openai(client)


def test_a_provider_slower_than_the_timeout_is_retried_then_reported(stub: ProviderStub) -> None:
    stub.script("/v1/organization/costs", Reply(delay=0.3), Reply(delay=0.3))
    sleeps = Sleeps()

    with (
        FetchClient(f"{stub.url}/v1", timeout=0.05, sleep=sleeps, max_attempts=2) as client,
        pytest.raises(FetchError, match=r"^GET /organization/costs: ReadTimeout after 2 attempts$"),
    ):
        client.get("/organization/costs", [], headers={}, source="openai", credential_env=None)

    assert sleeps == [1.0]
