"""How the API treats requests it cannot serve as asked: a typo or an unset variable in a query is refused
with a message naming it (never a silently wider answer), and every error, the router's own included,
comes in the API's error envelope. The OpenAPI document lets /docs send a key."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantKeys


def error_of(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}, body
    error: dict[str, object] = body["error"]
    return error


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "/v1/events?peroid=2026-10",
            "unknown query parameter 'peroid'; this route takes account, api_key_id, app, cursor, limit, model",
        ),
        ("/v1/findings?period=2026-10&kind=paddng_tokens", "kind must be one of unlogged_usage, unbilled_usage"),
        ("/v1/findings?status=", "status must be one of open"),
        ("/v1/events?period=", "period must look like 2026-10, got ''"),
        ("/v1/events?period=0000-01", "period year must be 1970-9998, got '0000-01'"),
        ("/v1/usage?period=2026-10&period=2026-11", "query parameter 'period' is given more than once"),
        ("/v1/events?app=support%00bot", "query parameter 'app' holds a NUL character"),
        ("/v1/usage?since=1760000000&until=2026-11-01T00:00:00Z", "since must be an RFC 3339 instant"),
        ("/v1/usage?since=2026-10-01T00:00:00&until=2026-11-01T00:00:00Z", "since needs a UTC offset"),
        ("/v1/reconciliation?period=2026-13", "period month must be 01-12"),
    ],
)
def test_a_query_the_api_cannot_take_as_written_is_refused_naming_what_is_wrong(
    client: TestClient, tenant: TenantKeys, path: str, message: str
) -> None:
    response = client.get(path, headers=tenant.read)

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert message in str(error["message"])


def test_a_list_parameter_may_be_repeated(client: TestClient, tenant: TenantKeys) -> None:
    response = client.get("/v1/usage?period=2026-10&group_by=provider&group_by=model", headers=tenant.read)

    assert response.status_code == 200
    assert response.json()["group_by"] == ["provider", "model"]


def test_an_ingest_request_takes_no_query_parameters(client: TestClient, tenant: TenantKeys) -> None:
    event = {"occurred_at": "2026-10-05T00:00:00Z", "provider": "openai", "request_model": "gpt-5.4-mini"}

    response = client.post("/v1/events?dry_run=1", json=event, headers=tenant.ingest)

    assert response.status_code == 422
    assert "unknown query parameter 'dry_run'" in str(error_of(response)["message"])


def test_a_finding_id_beyond_what_the_database_holds_is_invalid_not_a_server_error(
    client: TestClient, tenant: TenantKeys
) -> None:
    too_big = 2**63

    assert client.get(f"/v1/findings/{too_big}", headers=tenant.read).status_code == 422
    assert client.get(f"/v1/findings/{too_big - 1}", headers=tenant.read).status_code == 404


def test_a_body_that_is_not_json_is_invalid_input(client: TestClient, tenant: TenantKeys) -> None:
    response = client.patch(
        "/v1/findings/1", content=b"{status: open", headers={**tenant.admin, "Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_request"


def test_the_routers_own_answers_use_the_error_envelope(client: TestClient, tenant: TenantKeys) -> None:
    missing = client.get("/v1/finding", headers=tenant.read)
    wrong_method = client.delete("/v1/findings/1", headers=tenant.admin)

    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert error_of(wrong_method)["code"] == "method_not_allowed"
    assert wrong_method.headers["allow"] == "GET, PATCH"


def test_the_openapi_document_declares_the_key_and_each_routes_errors(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    scheme = document["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    ingest = document["paths"]["/v1/events"]["post"]
    assert ingest["security"] == [{"apiKey": []}]
    assert set(ingest["requestBody"]["content"]) == {"application/json", "application/x-ndjson"}
    assert {"202", "401", "403", "413", "422", "503"} <= set(ingest["responses"])
    finding = document["paths"]["/v1/findings/{finding_id}"]["get"]
    assert finding["security"] == [{"apiKey": []}]
    assert finding["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    kinds = next(p for p in document["paths"]["/v1/findings"]["get"]["parameters"] if p["name"] == "kind")
    assert "padding_tokens" in kinds["schema"]["enum"]


def test_the_api_docs_need_no_cdn(client: TestClient) -> None:
    """Swagger UI and ReDoc come from the service itself: /docs works offline and behind CDN-blocking networks."""
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
        assert assets, page
        for asset in assets:
            assert asset.startswith("/"), asset
            assert client.get(asset).status_code == 200, asset
