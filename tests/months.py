"""Months shared by the report, API and alert tests (fixtures, loaded by tests/conftest.py): a tenant with a
reconciled October 2026 stored in the real database, and a browser-like sign-in to the web report."""

from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.demo.setup import DemoResult
from ledger.settings import Settings
from ledger.storage.database import session_factory
from ledger.storage.tables import Tenant
from tests import rows
from tests.conftest import TenantKeys, make_tenant
from tests.rows import OCTOBER

DEMO_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SERIES_EVIDENCE = {
    "expected": 1_200_000,
    "billed": 1_260_000,
    "difference": 60_000,
    "overcharge_usd": "120.50",
    "tolerance": {"token_rel_tolerance": "0.005", "token_abs_tolerance": 1000},
    "series": [
        {"day": "2026-10-01", "logged": 600_000, "billed": 630_000},
        {"day": "2026-10-02", "logged": 600_000, "billed": 630_000},
    ],
}


@dataclass(frozen=True)
class Month:
    """A tenant whose October 2026 was imported and reconciled."""

    keys: TenantKeys
    tenant_id: int
    finding_id: int
    spike_id: int

    def key(self, role: str) -> str:
        headers: dict[str, str] = getattr(self.keys, role)
        return headers["Authorization"].split(" ", 1)[1]


def tenant_id_of(engine: Engine, name: str) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(Tenant.id).where(Tenant.name == name)) or 0


def seed_october(engine: Engine) -> Month:
    keys = make_tenant(engine)
    tenant_id = tenant_id_of(engine, keys.name)
    with session_factory(engine).begin() as session:
        rows.drift_row(
            session,
            tenant_id,
            provider="openai",
            model="gpt-5.4-mini",
            logged=1_200_000,
            billed=1_260_000,
            expected="2400.00",
            billed_cost="2520.50",
        )
        rows.drift_row(
            session,
            tenant_id,
            provider="anthropic",
            model="claude-haiku-4-5",
            account="wrk_1",
            logged=500_000,
            billed=None,
            expected="310.25",
            billed_cost=None,
        )
        rows.drift_row(
            session,
            tenant_id,
            provider="openai",
            model="my-finetune",
            logged=40_000,
            billed=40_000,
            expected=None,
            billed_cost="12.00",
        )
        mismatch = rows.finding(session, tenant_id, evidence=SERIES_EVIDENCE, severity="critical")
        spike = rows.finding(
            session,
            tenant_id,
            kind="spend_spike",
            severity="warning",
            impact="85.00",
            summary="spend of $95.00 on 2026-10-02 against a trailing median of $10.00",
            evidence={
                "baseline": "10.00",
                "observed": "95.00",
                "peak_ratio": "9.5",
                "series": [{"day": "2026-10-02", "logged": "95.00", "billed": None, "baseline": "10.00"}],
            },
        )
        rows.finding(
            session,
            tenant_id,
            kind="missing_finish_reason",
            severity="info",
            impact="0",
            model=None,
            account=None,
            summary="3% of streams ended without a finish reason",
        )
        for day in range(1, 4):
            hour = OCTOBER.start + timedelta(days=day - 1, hours=14)
            rows.hourly(
                session,
                tenant_id,
                hour=hour,
                requests=100,
                input_tokens=400_000,
                output_tokens=0,
                latencies=[300] * 90 + [2_400] * 10,
                ttfts=[120] * 100,
                counts={
                    "error_rate_limit": 2,
                    "streamed": 50,
                    "streamed_missing_finish": 1,
                    "finish_length": 4,
                    "truncated_below_max": 1,
                },
            )
            rows.hourly(
                session,
                tenant_id,
                hour=hour,
                provider="openai",
                model="gpt-5.4",
                request_model="gpt-5.4-mini",
                requests=5,
                input_tokens=1_000,
                output_tokens=100,
            )
            rows.statement_line(session, tenant_id, day=date(2026, 10, day), quantity=420_000, amount="840.00")
        rows.statement_import(session, tenant_id)
        rows.run(session, tenant_id)
        return Month(keys=keys, tenant_id=tenant_id, finding_id=mismatch.id, spike_id=spike.id)


@pytest.fixture
def october(engine: Engine) -> Month:
    return seed_october(engine)


def sign_in(client: TestClient, key: str) -> None:
    """Sign in to the web report as a browser does: fetch the form, post it with its token."""
    form = client.get("/report/signin")
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token, form.text
    answer = client.post(
        "/report/signin", data={"key": key, "token": token[1], "next": "/report/"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match[1]


@pytest.fixture(scope="module")
def demo_month(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoResult]:
    """The demo's month (at a third of its size): usage through the ingest API, the providers' statements
    through the importers, reconciled; for the report tests that compare pages with the API."""
    from ledger.demo.setup import BackgroundServer, ensure_demo_tenant, populate
    from ledger.storage.database import create_db_engine

    settings = Settings(database_url=database_url, auth_cache_seconds=0, scheduler_enabled=False)
    engine = create_db_engine(database_url, pool_size=4)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = BackgroundServer(settings, engine, "127.0.0.1", port)
    server.start()
    try:
        tenant = f"demo-{secrets.token_hex(3)}"
        keys = ensure_demo_tenant(engine, tenant)
        yield populate(
            settings,
            engine,
            server.base_url,
            keys,
            tmp_path_factory.mktemp("demo"),
            lambda _: None,
            tenant=tenant,
            scale=0.3,
            clock=DemoClock(),
        )
    finally:
        server.stop()
        engine.dispose()


class DemoClock:
    def now(self) -> datetime:
        return DEMO_NOW
