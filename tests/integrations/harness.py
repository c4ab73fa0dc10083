"""The test harness of the integrations: a real TokenLedger HTTP server on a free port, and readers of what
the database stored."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import Engine

from ledger.server import create_app
from ledger.settings import Settings
from tests.conftest import TenantKeys


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LedgerServer:
    """The TokenLedger app served by uvicorn in a thread, on 127.0.0.1:`port`."""

    def __init__(self, database_url: str, engine: Engine, port: int | None = None, **settings_given: Any) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = Settings(database_url=database_url, auth_cache_seconds=0, scheduler_enabled=False, **settings_given)
        config = uvicorn.Config(
            create_app(settings, engine=engine), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> LedgerServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError("the TokenLedger server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def stored_events(engine: Engine, tenant: TenantKeys) -> list[dict[str, Any]]:
    """Every event the database holds for the tenant, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT e.* FROM usage_events e JOIN tenants t ON t.id = e.tenant_id "
                "WHERE t.name = :name ORDER BY e.occurred_at, e.event_id"
            ),
            {"name": tenant.name},
        )
        return [dict(row._mapping) for row in rows]


def only_event(engine: Engine, tenant: TenantKeys) -> dict[str, Any]:
    events = stored_events(engine, tenant)
    assert len(events) == 1, f"expected one stored event, found {len(events)}: {events}"
    return events[0]


TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
)


def tokens_of(row: dict[str, Any]) -> dict[str, int]:
    return {column: row[column] for column in TOKEN_COLUMNS}
