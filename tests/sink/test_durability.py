"""Acknowledged means stored: through a crash of the server and an outage of the database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine, make_url

from ledger.server import create_app
from ledger.settings import Settings
from ledger.storage.database import create_db_engine
from tests.conftest import TenantKeys
from tests.events_factory import usage_event
from tests.tcp_proxy import TcpProxy


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("server did not become healthy")


def ids_in_database(engine: Engine, tenant: TenantKeys) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT e.event_id FROM usage_events e JOIN tenants t ON t.id = e.tenant_id WHERE t.name = :n"),
            {"n": tenant.name},
        )
        return {row[0] for row in rows}


def test_every_acknowledged_event_survives_a_kill_9_of_the_server(
    database_url: str, engine: Engine, tenant: TenantKeys
) -> None:
    port = free_port()
    # No scheduler: it would deliver the alerts other tests left in this shared database while the load runs.
    env = {
        **os.environ,
        "TOKENLEDGER_DATABASE_URL": database_url,
        "TOKENLEDGER_LOG_LEVEL": "warning",
        "TOKENLEDGER_SCHEDULER_ENABLED": "false",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "ledger.cli.main", "serve", "--port", str(port), "--no-migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    try:
        wait_until_healthy(base_url, server)

        def load(worker: int) -> None:
            with httpx.Client(base_url=base_url, headers=tenant.ingest, timeout=5) as http:
                n = 0
                while not stop.is_set():
                    batch = [usage_event(event_id=f"w{worker}-{n}-{i}") for i in range(1 + n % 5)]
                    n += 1
                    try:
                        response = http.post("/v1/events", json=batch)
                    except httpx.HTTPError:
                        return
                    if response.status_code == 202:
                        with lock:
                            acknowledged.update(event["event_id"] for event in batch)

        workers = [threading.Thread(target=load, args=(w,)) for w in range(8)]
        for worker in workers:
            worker.start()
        time.sleep(2.0)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
            server.wait()
    assert len(acknowledged) > 50, "the load did not get going before the kill"
    assert acknowledged <= ids_in_database(engine, tenant)


@pytest.fixture
def proxied(database_url: str) -> Iterator[tuple[TcpProxy, str]]:
    url = make_url(database_url)
    if not url.host or url.host.startswith("/") or "host" in url.query:
        pytest.skip("the outage test needs a TCP database URL (TOKENLEDGER_TEST_DATABASE_URL)")
    proxy = TcpProxy(url.host, url.port or 5432)
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.close()


def test_a_database_outage_answers_503_and_the_service_recovers_by_itself(
    proxied: tuple[TcpProxy, str], tenant: TenantKeys, engine: Engine
) -> None:
    proxy, url = proxied
    settings = Settings(database_url=url, auth_cache_seconds=60, scheduler_enabled=False)
    outage_engine = create_db_engine(url, pool_size=2)
    with TestClient(create_app(settings, engine=outage_engine)) as client:
        assert client.post("/v1/events", json=usage_event(event_id="before"), headers=tenant.ingest).status_code == 202
        proxy.cut()
        response = client.post("/v1/events", json=usage_event(event_id="during"), headers=tenant.ingest)
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert client.get("/readyz").status_code == 503
        proxy.restore()
        deadline = time.monotonic() + 20
        while (
            status := client.post("/v1/events", json=usage_event(event_id="after"), headers=tenant.ingest).status_code
        ) != 202:
            assert status == 503
            assert time.monotonic() < deadline, "the service did not recover"
            time.sleep(0.2)
    outage_engine.dispose()
    assert ids_in_database(engine, tenant) == {"before", "after"}


def test_a_frozen_database_answers_503_within_the_deadline_and_the_service_recovers_by_itself(
    proxied: tuple[TcpProxy, str], tenant: TenantKeys, engine: Engine
) -> None:
    """A database that stops answering without closing anything (paused with SIGSTOP, a hung host): requests
    get 503 with Retry-After at their deadline instead of hanging, and everything works again once it thaws."""
    proxy, url = proxied
    settings = Settings(database_url=url, auth_cache_seconds=0, scheduler_enabled=False, request_timeout_seconds=1)
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/events", json=usage_event(event_id="before"), headers=tenant.ingest).status_code == 202
        proxy.freeze()
        try:
            for request in (
                lambda: client.post("/v1/events", json=usage_event(event_id="during"), headers=tenant.ingest),
                lambda: client.get("/v1/usage", params={"period": "2026-10"}, headers=tenant.read),
                lambda: client.get("/readyz"),
            ):
                started = time.monotonic()
                response = request()
                assert response.status_code == 503
                assert response.headers["Retry-After"]
                assert time.monotonic() - started < 5
        finally:
            proxy.thaw()
        deadline = time.monotonic() + 30
        while (
            status := client.post("/v1/events", json=usage_event(event_id="after"), headers=tenant.ingest).status_code
        ) != 202:
            assert status == 503
            assert time.monotonic() < deadline, "the service did not recover"
            time.sleep(0.2)
    assert {"before", "after"} <= ids_in_database(engine, tenant)
