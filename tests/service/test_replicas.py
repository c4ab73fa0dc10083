"""Several replicas of the service on one database: any number may start at the same instant on a fresh
database, one of them leads the scheduling, and each piece of scheduled work is done once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ledger.alerts import queue_run_failure_alert
from ledger.server import create_app
from ledger.settings import Settings
from ledger.storage.database import create_db_engine, session_factory
from ledger.storage.tables import ReconciliationRun
from tests import rows
from tests.conftest import make_tenant
from tests.http_receiver import http_receiver
from tests.sink.test_durability import free_port, wait_until_healthy


def test_five_replicas_started_at_once_on_a_fresh_database_all_serve_and_deliver_an_alert_once(
    fresh_database: str, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOKENLEDGER_")}
    env |= {"TOKENLEDGER_DATABASE_URL": fresh_database, "TOKENLEDGER_SCHEDULER_ENABLED": "true"}
    ports = [free_port() for _ in range(5)]
    logs = [tmp_path / f"replica-{port}.log" for port in ports]
    replicas = [
        subprocess.Popen(
            [sys.executable, "-m", "ledger.cli.main", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        for port, log in zip(ports, logs, strict=True)
    ]
    engine = create_db_engine(fresh_database, pool_size=2)
    try:
        for port, replica, log in zip(ports, replicas, logs, strict=True):
            try:
                wait_until_healthy(f"http://127.0.0.1:{port}", replica)
            except AssertionError:
                raise AssertionError(log.read_text()[-3000:]) from None

        with http_receiver() as receiver:
            keys = make_tenant(engine, "acme")
            with session_factory(engine).begin() as session:
                tenant_id = session.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": keys.name})
                assert tenant_id is not None
                rows.channel(session, tenant_id, config={"url": receiver.url, "secret": "s3cret"})
                run = ReconciliationRun(
                    tenant_id=tenant_id,
                    period_start=datetime(2026, 10, 1, tzinfo=UTC),
                    period_end=datetime(2026, 11, 1, tzinfo=UTC),
                    trigger="schedule",
                    started_at=datetime.now(UTC),
                    finished_at=datetime.now(UTC),
                    status="failed",
                    counts={},
                    error="boom",
                )
                session.add(run)
                session.flush()
                assert queue_run_failure_alert(session, tenant_id=tenant_id, run=run, now=datetime.now(UTC)) == 1
            assert len(receiver.wait_for(1, timeout=40)) == 1, "the alert was not delivered"
            time.sleep(3)  # every replica has had its chance to deliver it again
            assert len(receiver.requests) == 1
        for replica, log in zip(replicas, logs, strict=True):
            assert replica.poll() is None, log.read_text()[-3000:]
            assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    finally:
        for replica in replicas:
            replica.terminate()
        for replica in replicas:
            try:
                replica.wait(timeout=30)
            except subprocess.TimeoutExpired:
                replica.kill()
        engine.dispose()


def test_five_app_lifespans_started_at_the_same_instant_on_a_new_database_all_start(
    fresh_engine: Engine, settings: Settings
) -> None:
    """The same start-up as five `serve` processes, lined up to the millisecond: each app's lifespan (which
    starts its scheduler) begins at once."""
    settings = settings.model_copy(update={"scheduler_enabled": True})
    apps = [TestClient(create_app(settings, engine=fresh_engine)) for _ in range(5)]
    lined_up = threading.Barrier(len(apps))

    def start(client: TestClient) -> TestClient:
        lined_up.wait()
        return client.__enter__()

    started: list[TestClient] = []
    try:
        with ThreadPoolExecutor(len(apps)) as starting:
            futures = [starting.submit(start, client) for client in apps]
            for future in futures:
                started.append(future.result())
        assert all(client.get("/healthz").status_code == 200 for client in started)
    finally:
        for client in started:
            client.__exit__(None, None, None)
