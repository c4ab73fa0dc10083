"""Alert delivery latency with one receiver hung, against the same delivery with every receiver healthy.

A tenant has five webhook channels on local receivers; one of them never answers within the 10 s timeout.
Findings are stored and their alerts queued in one transaction, as a reconcile does, while the service's
scheduler runs (it leads alone on a fresh database and delivers as alerts fall due). The figure is the time
from that commit to the arrival of the last alert at each healthy receiver, and how old each request's
signed timestamp was when it arrived; the baseline is the same run without the hung receiver.

    python -m benchmarks.alert_delivery
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from benchmarks.common import fresh_database
from ledger.access import auth
from ledger.alerts import queue_finding_alert
from ledger.periods import Period
from ledger.service.scheduler import start_scheduler
from ledger.settings import Settings
from ledger.storage.database import create_db_engine, session_factory
from ledger.storage.tables import AlertChannel, Finding
from reports.monthly import send_monthly_report

HEALTHY = 4
FINDINGS = 10
HUNG_SECONDS = 15.0


@dataclass
class Receiver:
    url: str = ""
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    """(arrival time, signed `sent_at`) of each request."""


@contextmanager
def receiver(hang_seconds: float = 0.0) -> Iterator[Receiver]:
    state, release = Receiver(), threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.arrivals.append((time.time(), int(json.loads(body)["sent_at"])))
            release.wait(hang_seconds)
            try:
                self.send_response(200)
                self.end_headers()
            except OSError:
                pass

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def measure(url: str, *, with_hung: bool) -> tuple[float, float]:
    """Seconds from the commit to the last healthy arrival, and the oldest signature on arrival."""
    engine = create_db_engine(url, pool_size=8)
    sessions = session_factory(engine)
    name = f"bench-{secrets.token_hex(3)}"
    with sessions.begin() as session:
        tenant_id = auth.create_tenant(session, name).id
    settings = Settings(database_url=url)
    with receiver(HUNG_SECONDS) as hung, healthy_receivers(HEALTHY) as healthy:
        targets = ([hung] if with_hung else []) + healthy
        with sessions.begin() as session:
            for number, target in enumerate(targets):
                session.add(
                    AlertChannel(
                        tenant_id=tenant_id,
                        name=f"hook-{number}",
                        kind="webhook",
                        config={"url": target.url, "secret": secrets.token_urlsafe(16)},
                        min_severity="warning",
                        min_impact_usd=Decimal(0),
                        enabled=True,
                    )
                )
        scheduler = start_scheduler(settings, engine, sessions, send_monthly_report)
        while not scheduler.leading:
            time.sleep(0.05)
        now = datetime.now(UTC)
        october = Period.month("2026-10")
        with sessions.begin() as session:
            for number in range(FINDINGS):
                finding = Finding(
                    tenant_id=tenant_id,
                    fingerprint=secrets.token_hex(16),
                    kind="quantity_mismatch",
                    severity="critical",
                    status="open",
                    provider="openai",
                    account=f"proj_{number}",
                    model="gpt-5.4-mini",
                    period_start=october.start,
                    period_end=october.end,
                    impact_usd=Decimal(1000 + number),
                    evidence={},
                    summary="billed more than logged",
                    first_seen=now - timedelta(days=1),
                    last_seen=now,
                )
                session.add(finding)
                session.flush()
                queue_finding_alert(
                    session, tenant_id=tenant_id, finding=finding, previous_severity=None, previous_impact=None, now=now
                )
        committed = time.time()
        deadline = time.monotonic() + 300
        while any(len(target.arrivals) < FINDINGS for target in healthy) and time.monotonic() < deadline:
            time.sleep(0.02)
        arrivals = [arrival for target in healthy for arrival in target.arrivals]
        scheduler.shutdown(wait=False)
    engine.dispose()
    latest = max(at for at, _ in arrivals) - committed
    stalest = max(at - sent_at for at, sent_at in arrivals)
    return latest, stalest


@contextmanager
def healthy_receivers(count: int) -> Iterator[list[Receiver]]:
    with ExitStack() as stack:
        yield [stack.enter_context(receiver()) for _ in range(count)]


def main() -> None:
    url = fresh_database("tokenledger_bench_alerts")
    baseline, baseline_stale = measure(url, with_hung=False)
    hung, hung_stale = measure(url, with_hung=True)
    print(f"{FINDINGS} findings x {HEALTHY} healthy webhook channels; one more channel hangs {HUNG_SECONDS:.0f} s")
    for label, latest, stalest in (
        ("all receivers healthy (baseline)", baseline, baseline_stale),
        ("one receiver hung", hung, hung_stale),
    ):
        print(f"{label:>33}: last alert {latest:.2f} s after the commit; oldest signature {stalest:.1f} s on arrival")
    print(f"hung / baseline: {hung / baseline:.2f}")


if __name__ == "__main__":
    main()
