"""The API does what its OpenAPI document (`/openapi.json`, rendered at `/docs`) says. Schemathesis generates
requests from the document, valid and invalid ones, sends them to a real server over HTTP and checks each
answer against the document: no server error, a documented status code, content type and headers, a body of
the documented shape, and invalid input refused.

One check is left out: that every request the document allows is accepted. Some rules span several
parameters (`since` goes with `until`; `period` excludes both) or several fields (`event_id` may be left out
only when `provider_request_id` is given), which OpenAPI cannot state; the API refuses such requests with
422, as its documentation says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from sqlalchemy.engine import Engine

from ledger.api import create_app
from ledger.settings import Settings
from tests.conftest import TenantKeys, make_tenant
from tests.integrations.harness import LedgerServer


@pytest.fixture(scope="module")
def server(database_url: str, engine: Engine) -> Iterator[LedgerServer]:
    running = LedgerServer(database_url, engine).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(server: LedgerServer, engine: Engine) -> TenantKeys:
    """A tenant whose month holds events and a reconciliation run, so listings answer with rows."""
    keys = make_tenant(engine)
    start = datetime.now(UTC).replace(day=1, hour=12, minute=0, second=0, microsecond=0)
    events = [
        {
            "event_id": f"contract-{n}",
            "occurred_at": (start + timedelta(minutes=n)).isoformat(),
            "provider": "openai",
            "account": "proj_main",
            "request_model": "gpt-5.4-mini",
            "input_tokens": 1_000 + n,
            "output_tokens": 200,
            "finish_reason": "stop",
            "app": "contract",
            "tags": {"team": "search"},
        }
        for n in range(20)
    ]
    assert httpx.post(f"{server.url}/v1/events", json=events, headers=keys.admin).status_code == 202
    assert httpx.post(f"{server.url}/v1/reconciliation/run", headers=keys.admin, timeout=30).status_code == 200
    return keys


@pytest.fixture(scope="module")
def api_document(server: LedgerServer) -> Any:
    document = create_app(Settings(database_url="postgresql+psycopg://unused/none")).openapi()
    return schemathesis.openapi.from_dict(document)


schema = schemathesis.pytest.from_fixture("api_document")


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_answer_is_what_the_openapi_document_says(
    case: schemathesis.Case, server: LedgerServer, admin: TenantKeys
) -> None:
    case.call_and_validate(base_url=server.url, headers=admin.admin, excluded_checks=[positive_data_acceptance])
