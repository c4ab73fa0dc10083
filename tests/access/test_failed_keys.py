"""Wrong keys are throttled per client address: after a burst of failures an address gets 429 with
Retry-After, without a database lookup, while keys already verified keep working; sign-in counts too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ledger.server import create_app
from ledger.settings import Settings
from tests.conftest import TenantKeys

WRONG_KEY = {"Authorization": "Bearer tl_000000000000.not-a-secret"}


@pytest.fixture
def throttled(database_url: str, engine: Engine) -> Iterator[TestClient]:
    """The service with a burst of three failures per address, refilled at one a minute, and verified keys
    remembered (as they are by default)."""
    settings = Settings(
        database_url=database_url,
        scheduler_enabled=False,
        auth_cache_seconds=60,
        auth_failures_per_minute=1,
        auth_failure_burst=3,
    )
    with TestClient(create_app(settings, engine=engine)) as client:
        yield client


def test_an_address_sending_wrong_keys_is_refused_after_a_burst_while_a_verified_key_keeps_working(
    throttled: TestClient, tenant: TenantKeys
) -> None:
    assert throttled.get("/v1/events", headers=tenant.read).status_code == 200  # verified, remembered

    failures = [throttled.get("/v1/events", headers=WRONG_KEY) for _ in range(3)]
    refused = throttled.get("/v1/events", headers=WRONG_KEY)
    no_key = throttled.get("/v1/events")

    assert [answer.status_code for answer in failures] == [401, 401, 401]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_failed_authentications"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert no_key.status_code == 401  # a missing key costs no lookup: it is neither counted nor refused
    assert throttled.get("/v1/events", headers=tenant.read).status_code == 200


def test_another_address_is_not_throttled_for_the_first_ones_failures(
    throttled: TestClient, database_url: str, engine: Engine, tenant: TenantKeys
) -> None:
    for _ in range(4):
        throttled.get("/v1/events", headers=WRONG_KEY)
    assert throttled.get("/v1/events", headers=WRONG_KEY).status_code == 429

    elsewhere = TestClient(throttled.app, client=("192.0.2.7", 50000))
    assert elsewhere.get("/v1/events", headers=WRONG_KEY).status_code == 401
    assert elsewhere.get("/v1/events", headers=tenant.admin).status_code == 200


def test_wrong_keys_at_the_report_sign_in_are_throttled_too(throttled: TestClient) -> None:
    def attempt() -> int:
        form = throttled.get("/report/signin")
        token = form.text.split('name="token" value="')[1].split('"')[0]
        answer = throttled.post("/report/signin", data={"key": "tl_000000000000.nope", "token": token})
        return answer.status_code

    assert [attempt() for _ in range(4)] == [401, 401, 401, 429]
