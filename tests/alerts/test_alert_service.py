"""The running service delivers alerts as they fall due: every channel on its own, so a hung receiver delays
nobody else; each request signed when it is sent; retries 30 s, 60 s, 120 s after the attempt that failed."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ledger.alerts import queue_finding_alert
from ledger.clock import Clock
from ledger.server import create_app
from ledger.service import log_redaction
from ledger.settings import Settings
from ledger.storage.database import session_factory
from ledger.storage.tables import AlertOutbox, ScheduledJob
from tests import rows
from tests.clocks import FixedClock
from tests.conftest import make_tenant
from tests.http_receiver import Receiver, http_receiver
from tests.months import tenant_id_of

FINDINGS = 5


@contextmanager
def service(settings: Settings, engine: Engine, clock: Clock | None = None) -> Iterator[TestClient]:
    """The service with its scheduler, alone on its database: it leads at once."""
    app = create_app(settings.model_copy(update={"scheduler_enabled": True}), engine=engine, clock=clock)
    with TestClient(app) as client:
        yield client


def queue_findings(engine: Engine, tenant_id: int, count: int, now: datetime) -> float:
    """What a reconcile does: store findings and queue their alerts in one transaction. When it committed
    (`time.time()`)."""
    with session_factory(engine).begin() as session:
        for number in range(count):
            finding = rows.finding(session, tenant_id, severity="critical", impact=f"{1000 + number}")
            queue_finding_alert(
                session, tenant_id=tenant_id, finding=finding, previous_severity=None, previous_impact=None, now=now
            )
    return time.time()


def test_a_hung_receiver_delays_no_other_channel_and_every_request_is_signed_when_sent(
    fresh_engine: Engine, settings: Settings
) -> None:
    tenant_id = tenant_id_of(fresh_engine, make_tenant(fresh_engine).name)
    with (
        http_receiver(delay_seconds=30) as hung,
        http_receiver() as hooks,
        http_receiver() as slack,
        service(settings, fresh_engine),
    ):
        with session_factory(fresh_engine).begin() as session:
            rows.channel(session, tenant_id, name="hung", config={"url": hung.url, "secret": "s1"})
            rows.channel(session, tenant_id, name="hooks", config={"url": hooks.url, "secret": "s2"})
            rows.channel(session, tenant_id, name="slack", kind="slack", config={"url": slack.url})
        committed = queue_findings(fresh_engine, tenant_id, FINDINGS, datetime.now(UTC))

        healthy: list[Receiver] = [hooks, slack]
        for receiver in healthy:
            assert len(receiver.wait_for(FINDINGS, timeout=10)) == FINDINGS
        latest = max(request.at for receiver in healthy for request in receiver.requests)
        print(f"healthy channels received all {2 * FINDINGS} alerts {latest - committed:.2f} s after the commit")
        assert latest - committed < 5
        assert len(hung.requests) == 1  # still waiting on its first answer
        for request in hooks.requests:
            signed_at = int(request.headers["x-tokenledger-timestamp"])
            assert signed_at == json.loads(request.body)["sent_at"]
            assert abs(request.at - signed_at) < 2


def test_a_failed_delivery_is_retried_30_then_60_then_120_seconds_after_each_attempt(
    fresh_engine: Engine, settings: Settings
) -> None:
    tenant_id = tenant_id_of(fresh_engine, make_tenant(fresh_engine).name)
    start = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    clock = FixedClock(start)
    with http_receiver() as hook, service(settings, fresh_engine, clock):
        hook.statuses = [503, 503, 503]
        with session_factory(fresh_engine).begin() as session:
            rows.channel(session, tenant_id, name="hook", config={"url": hook.url, "secret": "s1"})
        queue_findings(fresh_engine, tenant_id, 1, start)
        attempts_at = []
        for delay in (0, 30, 60, 120):
            clock.advance(timedelta(seconds=delay - 1) if delay else timedelta())
            if delay:
                time.sleep(1.5)  # a second early, nothing is sent
                assert len(hook.requests) == len(attempts_at)
                clock.advance(timedelta(seconds=1))
            hook.wait_for(len(attempts_at) + 1, timeout=5)
            assert len(hook.requests) == len(attempts_at) + 1
            attempts_at.append(int(json.loads(hook.requests[-1].body)["sent_at"]))
        gaps = [later - earlier for earlier, later in pairwise(attempts_at)]
        assert gaps == [30, 60, 120]
    with fresh_engine.connect() as conn:
        (status, attempts) = conn.execute(sa.select(AlertOutbox.status, AlertOutbox.attempts)).one()
    assert (status, attempts) == ("sent", 4)


def test_no_log_line_shows_a_slack_webhooks_secret(
    fresh_engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx logs each request's URL at info; a Slack webhook's URL is its secret."""
    tenant_id = tenant_id_of(fresh_engine, make_tenant(fresh_engine).name)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="httpx")
    with http_receiver() as slack, service(settings, fresh_engine):
        url = slack.url.replace("/hook", "/services/T0123ABCD/B0456EFGH/Xq9sEcReTwEbHoOk")
        with session_factory(fresh_engine).begin() as session:
            rows.channel(session, tenant_id, name="slack", kind="slack", config={"url": url})
        queue_findings(fresh_engine, tenant_id, 1, datetime.now(UTC))
        assert len(slack.wait_for(1, timeout=10)) == 1
    assert "HTTP Request: POST" in caplog.text
    assert "Xq9sEcReTwEbHoOk" not in caplog.text
    assert "/services/T0123ABCD/B0456EFGH/…" in caplog.text


def test_secret_shapes_are_redacted_from_any_text() -> None:
    line = (
        "GET https://user:hunter22@api.example.com/v1/x?page=2&api_key=abc123def&token=t0k3n "
        "Authorization: Bearer sk-admin-0123456789abcdefghij key tl_3f2a1b.c0ffeeSecretPart"
    )
    assert log_redaction.redact(line) == (
        "GET https://user:…@api.example.com/v1/x?page=2&api_key=…&token=… Authorization: Bearer … key tl_3f2a1b.…"
    )
    assert log_redaction.redact("sk-ant-admin01-" + "x" * 40) == "sk-ant-…"


def test_metrics_show_the_outbox_deliveries_by_outcome_and_job_runs(fresh_engine: Engine, settings: Settings) -> None:
    tenant_id = tenant_id_of(fresh_engine, make_tenant(fresh_engine).name)
    now = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)
    with session_factory(fresh_engine).begin() as session:
        session.add(ScheduledJob(name="daily", schedule="daily at 06:00 UTC", next_run_at=now - timedelta(minutes=30)))
    with http_receiver() as hook, service(settings, fresh_engine, FixedClock(now)) as client:
        hook.statuses = [503]
        with session_factory(fresh_engine).begin() as session:
            rows.channel(session, tenant_id, name="hook", config={"url": hook.url, "secret": "s1"})
        queue_findings(fresh_engine, tenant_id, 2, now)
        expected = [
            'tokenledger_alert_deliveries_total{outcome="sent"} 2.0',  # a finding, and October's monthly report
            'tokenledger_alert_deliveries_total{outcome="retrying"} 1.0',
            'tokenledger_alert_outbox{status="pending"} 1.0',
            'tokenledger_alert_outbox{status="sent"} 2.0',
            'tokenledger_job_runs_total{job="daily",outcome="succeeded"} 1.0',
            'tokenledger_job_seconds_count{job="daily"} 1.0',
        ]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            metrics = client.get("/metrics").text
            if all(line in metrics for line in expected):
                break
            time.sleep(0.2)
    assert [line for line in expected if line not in metrics] == [], metrics
