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

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from sqlalchemy.engine import Engine

from ledger.server import create_app
from ledger.settings import Settings
from tests.conftest import TenantKeys, make_tenant
from tests.integrations.harness import LedgerServer


@pytest.fixture(scope="module")
def server(database_url: str, engine: Engine) -> Iterator[LedgerServer]:
    # Schemathesis sends a wrong key with each case to check the 401, all from one address: the throttling of
    # failed keys, which would answer 429 after a burst, has tests of its own (tests/access/test_failed_keys.py).
    running = LedgerServer(database_url, engine, auth_failures_per_minute=0).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(server: LedgerServer, engine: Engine) -> TenantKeys:
    """A tenant whose month holds events and a reconciliation run, so listings answer with rows."""
    keys = make_tenant(engine)
    start = datetime.now(UTC) - timedelta(hours=1)  # in the past whatever the day: the future is refused
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


DOCUMENT = create_app(Settings(database_url="postgresql+psycopg://unused/none")).openapi()
OPERATIONS = {
    operation.label: operation
    for operation in (result.ok() for result in schemathesis.openapi.from_dict(DOCUMENT).get_all_operations())
}


def _modes(label: str) -> list[GenerationMode]:
    """Valid requests for every operation; invalid ones where there is something to get wrong (parameters or a
    body; the key is sent with every request)."""
    operation = OPERATIONS[label]
    declared = DOCUMENT["paths"][operation.path][operation.method.lower()]
    takes_input = "parameters" in declared or "requestBody" in declared
    return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if takes_input else [GenerationMode.POSITIVE]


@pytest.mark.parametrize(
    ("label", "mode"),
    [(label, mode) for label in sorted(OPERATIONS) for mode in _modes(label)],
    ids=lambda value: value.value if isinstance(value, GenerationMode) else value,
)
def test_every_answer_is_what_the_openapi_document_says(
    label: str, mode: GenerationMode, server: LedgerServer, admin: TenantKeys
) -> None:
    @given(case=OPERATIONS[label].as_strategy(generation_mode=mode))
    @settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def answer_matches_the_document(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=server.url, headers=admin.admin, excluded_checks=[positive_data_acceptance])

    answer_matches_the_document()
