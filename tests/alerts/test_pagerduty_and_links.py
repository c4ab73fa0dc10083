"""PagerDuty as a native channel (Events API v2: a finding triggers under its fingerprint and resolves when it
clears), every alert linking back to the web report at TOKENLEDGER_PUBLIC_URL, and the "cleared" message a
channel hears when a finding it was alerted about is resolved."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ledger.alerts import deliver_due, queue_finding_alert
from ledger.storage.database import session_factory
from tests import rows
from tests.clocks import FixedClock
from tests.conftest import TenantKeys
from tests.http_receiver import Receiver, http_receiver
from tests.months import sign_in, tenant_id_of

PUBLIC_URL = "https://tokenledger.example.com"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"
NOW = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    with http_receiver() as pagerduty, http_receiver() as webhook:
        pagerduty.url = pagerduty.url.replace("/hook", "/v2/enqueue")
        yield pagerduty, webhook


def deliver(engine: Engine, tenant_id: int, at: datetime | None = None) -> None:
    """Send what is due (by default now: the API queues at the service's clock)."""
    clock = FixedClock(at or datetime.now(UTC))
    with httpx.Client() as http:
        deliver_due(session_factory(engine), tenant_id=tenant_id, clock=clock, http=http, public_url=PUBLIC_URL)


def test_a_finding_triggers_a_pagerduty_alert_by_its_fingerprint_and_resolving_it_resolves_the_alert(
    engine: Engine, client: TestClient, tenant: TenantKeys, receivers: tuple[Receiver, Receiver]
) -> None:
    pagerduty, webhook = receivers
    pagerduty.statuses = [202, 202]  # PagerDuty accepts an event with 202
    tenant_id = tenant_id_of(engine, tenant.name)
    with session_factory(engine).begin() as session:
        rows.channel(session, tenant_id, name="pager", kind="pagerduty",
                     config={"url": pagerduty.url, "routing_key": ROUTING_KEY})  # fmt: skip
        rows.channel(session, tenant_id, name="hooks", config={"url": webhook.url, "secret": "s3cret"})
        finding = rows.finding(session, tenant_id, severity="critical", impact="1500")
        finding_id, fingerprint = finding.id, finding.fingerprint
        queue_finding_alert(
            session, tenant_id=tenant_id, finding=finding, previous_severity=None, previous_impact=None, now=NOW
        )
    deliver(engine, tenant_id, at=NOW)

    (trigger,) = [json.loads(request.body) for request in pagerduty.requests]
    page = f"{PUBLIC_URL}/report/findings/{finding_id}"
    assert trigger["routing_key"] == ROUTING_KEY
    assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", f"tokenledger:{fingerprint}")
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "tokenledger"
    assert trigger["payload"]["summary"].startswith("[critical] quantity mismatch: openai / proj_main")
    assert trigger["payload"]["timestamp"] == NOW.isoformat()
    pack = f"{page}/dispute-pack"
    assert trigger["links"] == [{"href": page, "text": "Open in TokenLedger"}, {"href": pack, "text": "Dispute pack"}]
    assert json.loads(webhook.requests[0].body)["url"] == page
    assert json.loads(webhook.requests[0].body)["dispute_pack_url"] == pack
    sign_in(client, tenant.read["Authorization"].removeprefix("Bearer "))
    download = client.get(pack.removeprefix(PUBLIC_URL))  # the link a person follows from the alert
    assert (download.status_code, download.headers["content-type"]) == (200, "application/zip")
    client.cookies.clear()

    changed = client.patch(
        f"/v1/findings/{finding_id}", json={"status": "resolved", "note": "credited"}, headers=tenant.admin
    )
    assert changed.status_code == 200, changed.text
    deliver(engine, tenant_id)

    resolve = json.loads(pagerduty.requests[1].body)
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": f"tokenledger:{fingerprint}"}
    cleared = json.loads(webhook.requests[1].body)
    assert (cleared["topic"], cleared["url"], cleared["dispute_pack_url"]) == ("finding_cleared", page, None)
    assert cleared["title"].startswith("[cleared] quantity mismatch")


def test_only_channels_alerted_about_a_finding_hear_that_it_cleared(
    engine: Engine, client: TestClient, tenant: TenantKeys, receivers: tuple[Receiver, Receiver]
) -> None:
    critical_only, everything = receivers
    tenant_id = tenant_id_of(engine, tenant.name)
    with session_factory(engine).begin() as session:
        rows.channel(session, tenant_id, name="critical", min_severity="critical",
                     config={"url": critical_only.url, "secret": "s1"})  # fmt: skip
        rows.channel(session, tenant_id, name="all", config={"url": everything.url, "secret": "s2"})
        finding = rows.finding(session, tenant_id, severity="warning", impact="20")
        finding_id = finding.id
        queue_finding_alert(
            session, tenant_id=tenant_id, finding=finding, previous_severity=None, previous_impact=None, now=NOW
        )
    assert client.patch(f"/v1/findings/{finding_id}", json={"status": "resolved"}, headers=tenant.admin).is_success
    deliver(engine, tenant_id)
    assert [json.loads(r.body)["topic"] for r in everything.requests] == ["finding", "finding_cleared"]
    assert critical_only.requests == []


def test_a_pagerduty_channel_needs_its_routing_key_and_never_shows_it(
    engine: Engine, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    from typer.testing import CliRunner

    from ledger.cli.main import app

    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    cli = CliRunner()
    refused = cli.invoke(app, ["alerts", "add-channel", "--tenant", tenant.name, "--name", "pd", "--kind", "pagerduty"])
    assert refused.exit_code == 1
    assert "needs --routing-key" in refused.output
    added = cli.invoke(app, ["alerts", "add-channel", "--tenant", tenant.name, "--name", "pd", "--kind", "pagerduty",
                             "--routing-key", ROUTING_KEY])  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = cli.invoke(app, ["alerts", "list", "--tenant", tenant.name])
    assert "https://events.pagerduty.com/…" in listed.output
    assert ROUTING_KEY not in added.output + listed.output
