"""Input crafted to hurt: bodies that cost far more to refuse than to send, compressed bodies that hide more
than they show, text PostgreSQL cannot hold, and numbers that would be stored as something else than sent."""

from __future__ import annotations

import gzip
import json

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.conftest import TenantKeys
from tests.events_factory import usage_event


def stored_events(engine: Engine, tenant: TenantKeys) -> int:
    with engine.connect() as conn:
        return conn.scalar(
            sa.text("SELECT count(*) FROM usage_events e JOIN tenants t ON t.id = e.tenant_id WHERE t.name = :n"),
            {"n": tenant.name},
        )


def error_of(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["message"]


def test_every_member_of_a_multi_member_gzip_body_is_read(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    first = "\n".join(json.dumps(usage_event()) for _ in range(5)).encode() + b"\n"
    second = "\n".join(json.dumps(usage_event()) for _ in range(5)).encode()
    body = gzip.compress(first) + gzip.compress(second)  # `cat a.gz b.gz`: legal gzip, one stream of both
    headers = {**tenant.ingest, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    assert client.post("/v1/events", content=body, headers=headers).json() == {"accepted": 10, "duplicates": 0}
    assert stored_events(engine, tenant) == 10


def test_bytes_after_the_gzip_data_are_refused_and_nothing_is_stored(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    body = gzip.compress(json.dumps([usage_event() for _ in range(3)]).encode()) + b"trailing junk"
    headers = {**tenant.ingest, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, message = error_of(client.post("/v1/events", content=body, headers=headers))
    assert status == 400
    assert message.startswith("the body is not valid gzip after ")
    assert stored_events(engine, tenant) == 0


def test_a_body_of_more_events_than_allowed_is_refused_before_any_is_validated(
    client: TestClient, tenant: TenantKeys
) -> None:
    empty_objects = b"[" + b",".join([b"{}"] * 350_000) + b"]"  # 700 KB: a million problems if validated
    response = client.post(
        "/v1/events", content=empty_objects, headers={**tenant.ingest, "Content-Type": "application/json"}
    )
    assert error_of(response) == (413, "at most 10000 events per request; the body holds more")
    assert len(response.content) < 200

    ndjson = b"{}\n" * 350_000
    response = client.post(
        "/v1/events", content=ndjson, headers={**tenant.ingest, "Content-Type": "application/x-ndjson"}
    )
    assert error_of(response) == (413, "at most 10000 events per request; the body holds more")

    bomb = gzip.compress(b"[" + b",".join([b"{}"] * 3_400_000) + b"]")  # 10 MiB of {} in some 30 KB
    headers = {**tenant.ingest, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert len(bomb) < 100_000
    assert error_of(client.post("/v1/events", content=bomb, headers=headers))[0] == 413


def test_a_refusal_lists_the_first_hundred_problems_and_counts_the_rest(
    client: TestClient, tenant: TenantKeys, engine: Engine
) -> None:
    batch = [usage_event() for _ in range(9_000)] + [{}] * 1_000  # each {} misses three required fields
    response = client.post("/v1/events", json=batch, headers=tenant.ingest)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"] == "3000 problem(s) in the events; nothing was stored; the first 100 are listed"
    assert len(error["details"]) == 100
    assert error["details"][0] == {"index": 9000, "field": "occurred_at", "message": "Field required"}
    assert len(response.content) < 20_000
    assert stored_events(engine, tenant) == 0


def test_a_repeated_key_is_refused_whichever_way_the_body_comes(client: TestClient, tenant: TenantKeys) -> None:
    plain = json.dumps(usage_event(input_tokens=100))
    repeated = plain[:-1] + ', "input_tokens": 900}'  # which one would count?
    in_tags = json.dumps(usage_event(tags={"team": "a"})).replace('"team": "a"', '"team": "a", "team": "b"')
    with_cost = json.dumps(usage_event(reported_cost="0.5"))[:-1] + ', "reported_cost": 0.7}'  # the exact path
    spaced = json.dumps(usage_event())[:-1] + ', "app" : "other"}'
    for body, content_type in [
        (repeated, "application/json"),
        (f"[{plain}, {repeated}]", "application/json"),
        (in_tags, "application/json"),
        (with_cost, "application/json"),
        (spaced, "application/json"),
        (f"{plain}\n{repeated}\n", "application/x-ndjson"),
    ]:
        response = client.post("/v1/events", content=body, headers={**tenant.ingest, "Content-Type": content_type})
        assert response.status_code == 422, body
        (problem,) = response.json()["error"]["details"]
        assert problem["field"] == "body"
        assert "is given more than once in one object" in problem["message"], body


def test_a_body_that_is_not_json_by_its_content_type_is_415(client: TestClient, tenant: TenantKeys) -> None:
    event = json.dumps(usage_event())
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = client.post("/v1/events", content=event, headers={**tenant.ingest, "Content-Type": content_type})
        assert response.status_code == 415, content_type
        assert response.json()["error"]["code"] == "unsupported_media_type"
    for content_type in ("application/json; charset=utf-8", "application/x-ndjson", "application/cloudevents+json"):
        response = client.post(
            "/v1/events", content=json.dumps(usage_event()), headers={**tenant.ingest, "Content-Type": content_type}
        )
        assert response.status_code == 202, content_type


def test_a_lone_surrogate_is_refused_naming_where_it_is(client: TestClient, tenant: TenantKeys, engine: Engine) -> None:
    usage = '{"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "note\\ud800": "x"}'
    body = json.dumps(usage_event(input_tokens=None, output_tokens=None, cache_read_input_tokens=None))
    body = body[:-1] + f', "usage": {usage}}}'
    response = client.post("/v1/events", content=body, headers={**tenant.ingest, "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    (problem,) = response.json()["error"]["details"]
    assert problem["field"] == "usage.note\\ud800"
    assert "lone surrogate" in problem["message"]

    in_label = json.dumps(usage_event())[:-1] + ', "user": "a\\udfff"}'
    response = client.post(
        "/v1/events", content=in_label, headers={**tenant.ingest, "Content-Type": "application/json"}
    )
    assert [(p["field"], "lone surrogate" in p["message"]) for p in response.json()["error"]["details"]] == [
        ("user", True)
    ]
    pair = json.dumps(usage_event(user="\U0001f600"))  # an escaped surrogate pair is one character: stored
    assert (
        client.post(
            "/v1/events", content=pair, headers={**tenant.ingest, "Content-Type": "application/json"}
        ).status_code
        == 202
    )
    assert stored_events(engine, tenant) == 1


def test_a_cursor_with_text_postgresql_cannot_hold_is_a_422_naming_the_cursor(
    client: TestClient, tenant: TenantKeys
) -> None:
    import base64

    for event_id in ('"a\\u0000b"', '"a\\ud800"', "17"):
        cursor = base64.urlsafe_b64encode(f'["2026-10-05T14:03:11+00:00", {event_id}]'.encode()).decode()
        response = client.get("/v1/events", params={"period": "2026-10", "cursor": cursor}, headers=tenant.read)
        assert response.status_code == 422, (event_id, response.text)
        assert response.json()["error"]["details"][0]["field"] == "cursor"
    response = client.get("/v1/events?period=2026-10&cursor=%ED%A0%80", headers=tenant.read)  # UTF-8 of \ud800
    assert response.status_code == 422
