"""`tokenledger demo`: populate a demo tenant through the real paths (HTTP ingest, importers, reconciler)
and keep serving it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import Engine, func, select, update

from importers.registry import importer_for
from ledger.access import auth
from ledger.clock import Clock, SystemClock
from ledger.demo.month import all_events, batched, build_statements, demo_period
from ledger.pricing.catalog import load_catalog
from ledger.reconciliation.run import RunOutcome, run_reconciliation
from ledger.server import create_app
from ledger.settings import Settings
from ledger.statements.importing import parse_documents
from ledger.statements.store import store_statements
from ledger.storage.database import session_factory
from ledger.storage.tables import ApiKey, Tenant

DEMO_TENANT = "demo"


@dataclass(frozen=True)
class DemoResult:
    tenant: str
    period: str
    events_sent: int
    statement_lines: int
    outcome: RunOutcome
    read_key: str
    admin_key: str
    ingest_key: str


class BackgroundServer:
    """The service's app under uvicorn in a thread of this process."""

    def __init__(self, settings: Settings, engine: Engine, host: str, port: int) -> None:
        config = uvicorn.Config(
            create_app(settings, engine=engine), host=host, port=port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="tokenledger-http", daemon=True)
        self.base_url = f"http://{host}:{port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server could not start on {self.base_url} (is the port in use?)")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def ensure_demo_tenant(engine: Engine, name: str = DEMO_TENANT) -> dict[str, str]:
    """The demo tenant (created once) and fresh keys of each role (keys are shown only when created); the keys
    an earlier demo run made are revoked, so a tenant keeps one active demo key per role however often it runs."""
    with session_factory(engine).begin() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.name == name))
        if tenant is None:
            auth.create_tenant(session, name)
        else:
            session.execute(
                update(ApiKey)
                .where(ApiKey.tenant_id == tenant.id, ApiKey.label == "demo", ApiKey.revoked_at.is_(None))
                .values(revoked_at=func.now())
            )
        return {role: auth.create_key(session, name, role, label="demo").token for role in auth.ROLES}


def populate(
    settings: Settings,
    engine: Engine,
    base_url: str,
    keys: dict[str, str],
    work_dir: Path,
    say: Callable[[str], None],
    *,
    tenant: str = DEMO_TENANT,
    scale: float = 1.0,
    clock: Clock | None = None,
) -> DemoResult:
    clock = clock or SystemClock()
    period = demo_period(clock.now())
    say(f"sending a month of usage ({period.label}) through POST /v1/events …")
    sent = 0
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {keys['ingest']}"}, timeout=60) as http:
        for batch in batched(all_events(period, scale=scale), 1_000):
            response = http.post("/v1/events", json=batch)
            response.raise_for_status()
            sent += len(batch)
    say(f"  {sent:,} events acknowledged")

    sessions = session_factory(engine)
    with sessions() as session:
        tenant_id = auth.tenant_by_name(session, tenant).id
        catalog = load_catalog(session, tenant_id)
    statements = build_statements(period, catalog, scale=scale)
    work_dir.mkdir(parents=True, exist_ok=True)
    total_lines = 0
    for source, documents in statements.by_source.items():
        lines = []
        for document in documents:
            if source == "csv":
                mapping = work_dir / f"{document.name.removesuffix('.csv')}.toml"
                mapping.write_text(statements.csv_mappings[document.name])
                importer = importer_for("csv", mapping=mapping)
            else:
                importer = importer_for(source)
            lines += parse_documents(importer, [document])
        with sessions.begin() as session:
            summary = store_statements(
                session,
                tenant_id=tenant_id,
                source=source,
                period=period,
                documents=documents,
                lines=lines,
                now=clock.now(),
            )
        total_lines += summary.lines
        say(f"  imported {source:<10} {summary.lines:>6,} statement lines from {summary.documents} documents")
    say("reconciling …")
    outcome = run_reconciliation(
        sessions, tenant_id=tenant_id, period=period, settings=settings, now=clock.now(), trigger="demo"
    )
    return DemoResult(tenant, period.label, sent, total_lines, outcome, keys["read"], keys["admin"], keys["ingest"])
