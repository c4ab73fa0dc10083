"""Delivering the outbox to real local servers: a webhook receiver on 127.0.0.1 that checks the signature,
a Slack-like receiver, and an SMTP server (aiosmtpd); retries with backoff, and giving up."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.alerts import DeliveryStats, deliver_due, queue_finding_alert, rules, send_test
from ledger.storage.database import session_factory
from ledger.storage.tables import AlertChannel, AlertOutbox
from reports.monthly import send_monthly_report
from tests import rows
from tests.clocks import FixedClock
from tests.conftest import make_tenant
from tests.http_receiver import http_receiver
from tests.months import Month, seed_october, tenant_id_of
from tests.rows import NOW, OCTOBER

SECRET = "whsec-test-0123456789"


@dataclass
class Receiver:
    """An HTTP server that answers POSTs with the next scripted status (then 200) and records them."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"upstream broke")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def text_of(part: EmailMessage) -> str:
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def alerts(engine: Engine, tenant_id: int) -> list[AlertOutbox]:
    with session_factory(engine)() as session:
        return list(
            session.scalars(select(AlertOutbox).where(AlertOutbox.tenant_id == tenant_id).order_by(AlertOutbox.id))
        )


def queue_one_finding(engine: Engine, kind: str, config: dict[str, Any], account: str = "proj_main") -> int:
    tenant_id = tenant_id_of(engine, make_tenant(engine).name)
    with session_factory(engine).begin() as session:
        rows.channel(session, tenant_id, kind=kind, config=config)
        finding = rows.finding(session, tenant_id, severity="critical", impact="1500", account=account)
        assert (
            queue_finding_alert(
                session, tenant_id=tenant_id, finding=finding, previous_severity=None, previous_impact=None, now=NOW
            )
            == 1
        )
    return tenant_id


def test_a_webhook_is_signed_with_the_channels_secret_and_retried_after_a_server_error(
    engine: Engine, receiver: Receiver, http: httpx.Client
) -> None:
    tenant_id = queue_one_finding(engine, "webhook", {"url": receiver.url, "secret": SECRET})
    receiver.statuses = [500]

    first = deliver_due(session_factory(engine), tenant_id=tenant_id, clock=FixedClock(NOW), http=http)
    (alert,) = alerts(engine, tenant_id)
    assert (first.sent, first.retrying, first.failed) == (0, 1, 0)
    assert (alert.status, alert.attempts, alert.last_error) == ("pending", 1, "HTTP 500: upstream broke")
    assert alert.next_attempt_at == NOW + timedelta(seconds=30)
    assert (
        deliver_due(
            session_factory(engine), tenant_id=tenant_id, clock=FixedClock(NOW + timedelta(seconds=10)), http=http
        ).retrying
        == 0
    )

    second = deliver_due(
        session_factory(engine), tenant_id=tenant_id, clock=FixedClock(NOW + timedelta(seconds=30)), http=http
    )
    (alert,) = alerts(engine, tenant_id)
    assert second.sent == 1
    assert (alert.status, alert.attempts, alert.last_error, alert.sent_at) == (
        "sent",
        2,
        None,
        NOW + timedelta(seconds=30),
    )

    assert len(receiver.requests) == 2
    headers, body = receiver.requests[-1]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-tokenledger-signature"], expected)
    sent = json.loads(body)
    assert (
        headers["x-tokenledger-timestamp"]
        == str(sent["sent_at"])
        == str(int((NOW + timedelta(seconds=30)).timestamp()))
    )
    assert headers["content-type"] == "application/json"
    assert (sent["id"], sent["topic"], sent["severity"]) == (alert.id, "finding", "critical")
    assert sent["data"]["finding"]["impact_usd"] == "1500"
    assert (
        deliver_due(session_factory(engine), tenant_id=tenant_id, clock=FixedClock(NOW + timedelta(hours=1)), http=http)
        == DeliveryStats()
    )


def test_an_alert_is_marked_failed_with_its_last_error_after_the_last_attempt(
    engine: Engine, receiver: Receiver, http: httpx.Client
) -> None:
    tenant_id = queue_one_finding(engine, "webhook", {"url": receiver.url, "secret": SECRET})
    receiver.statuses = [503] * 3
    moment = NOW
    for _ in range(3):
        deliver_due(session_factory(engine), tenant_id=tenant_id, clock=FixedClock(moment), http=http, max_attempts=3)
        moment += rules.LONGEST_RETRY
    (alert,) = alerts(engine, tenant_id)
    assert (alert.status, alert.attempts, alert.last_error, alert.sent_at) == (
        "failed",
        3,
        "HTTP 503: upstream broke",
        None,
    )
    assert (
        deliver_due(session_factory(engine), tenant_id=tenant_id, clock=FixedClock(moment), http=http)
        == type(deliver_due(session_factory(engine), clock=FixedClock(moment), http=http))()
    )


def test_an_unreachable_endpoint_is_a_retryable_error(engine: Engine, http: httpx.Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    tenant_id = queue_one_finding(engine, "webhook", {"url": f"http://127.0.0.1:{closed_port}/", "secret": SECRET})
    assert deliver_due(session_factory(engine), tenant_id=tenant_id, clock=FixedClock(NOW), http=http).retrying == 1
    (alert,) = alerts(engine, tenant_id)
    assert alert.last_error
    assert alert.last_error.startswith("ConnectError")


def test_slack_gets_a_text_fallback_and_blocks(engine: Engine, receiver: Receiver, http: httpx.Client) -> None:
    tenant_id = queue_one_finding(engine, "slack", {"url": receiver.url})
    assert deliver_due(session_factory(engine), tenant_id=tenant_id, clock=FixedClock(NOW), http=http).sent == 1
    headers, body = receiver.requests[0]
    sent = json.loads(body)
    assert "x-tokenledger-signature" not in headers
    assert sent["text"].startswith("[critical] quantity mismatch: openai / proj_main / gpt-5.4-mini (1,500.00 USD)")
    assert sent["blocks"][0] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": sent["blocks"][0]["text"]["text"]},
    }
    assert {"type": "mrkdwn", "text": "*Impact*\n1,500.00 USD"} in sent["blocks"][1]["fields"]


def test_email_goes_through_a_real_smtp_server(
    engine: Engine, smtp_server: tuple[Mailbox, int], http: httpx.Client
) -> None:
    mailbox, port = smtp_server
    tenant_id = queue_one_finding(
        engine,
        "email",
        {
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "from": "tokenledger@example.com",
            "to": ["ops@example.com", "finance@example.com"],
            "starttls": False,
        },
    )
    assert deliver_due(session_factory(engine), tenant_id=tenant_id, clock=FixedClock(NOW), http=http).sent == 1
    (message,) = mailbox.messages
    assert message["Subject"].startswith("[critical] quantity mismatch")
    assert message["To"] == "ops@example.com, finance@example.com"
    assert "Impact: 1,500.00 USD" in text_of(message)


def test_a_line_break_in_a_label_does_not_break_the_emails_subject(
    engine: Engine, smtp_server: tuple[Mailbox, int], http: httpx.Client
) -> None:
    """An account name is whatever the application sent; in a header, a line break would fail the delivery."""
    mailbox, port = smtp_server
    config = {"smtp_host": "127.0.0.1", "smtp_port": port, "from": "tl@example.com", "to": ["ops@example.com"]}
    tenant_id = queue_one_finding(engine, "email", {**config, "starttls": False}, account="proj\r\nBcc: x@y.z")

    assert deliver_due(session_factory(engine), tenant_id=tenant_id, clock=FixedClock(NOW), http=http).sent == 1
    (message,) = mailbox.messages
    unfolded = " ".join(message["Subject"].split())  # a long header is folded over lines (RFC 5322)
    assert unfolded == "[critical] quantity mismatch: openai / proj Bcc: x@y.z / gpt-5.4-mini (1,500.00 USD)"
    assert message["Bcc"] is None


def test_the_monthly_report_arrives_by_email_with_html_and_a_csv_attachment(
    engine: Engine, smtp_server: tuple[Mailbox, int], http: httpx.Client
) -> None:
    mailbox, port = smtp_server
    month: Month = seed_october(engine)
    with session_factory(engine).begin() as session:
        rows.channel(
            session,
            month.tenant_id,
            kind="email",
            config={
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "from": "tl@example.com",
                "to": ["finance@example.com"],
                "starttls": False,
            },
        )
        send_monthly_report(session, month.tenant_id, OCTOBER, NOW)
    assert deliver_due(session_factory(engine), tenant_id=month.tenant_id, clock=FixedClock(NOW), http=http).sent == 1
    (message,) = mailbox.messages
    parts = {part.get_content_type(): part for part in message.walk()}
    assert "Total (USD)" in text_of(parts["text/html"])
    attachment = parts["text/csv"]
    assert attachment.get_filename() == "tokenledger-2026-10.csv"
    assert text_of(attachment).startswith("provider,account,model,")


def test_a_test_message_is_sent_at_once_and_logged(engine: Engine, receiver: Receiver, http: httpx.Client) -> None:
    tenant_id = tenant_id_of(engine, make_tenant(engine).name)
    with session_factory(engine).begin() as session:
        rows.channel(session, tenant_id, name="hook", config={"url": receiver.url, "secret": SECRET})
        outcome = send_test(session, tenant_id=tenant_id, channel_name="hook", clock=FixedClock(NOW), http=http)
    assert outcome.sent
    assert outcome.error is None
    assert json.loads(receiver.requests[0][1])["topic"] == "test"
    receiver.statuses = [500]
    with session_factory(engine).begin() as session:
        failed = send_test(
            session, tenant_id=tenant_id, channel_name="hook", clock=FixedClock(NOW + timedelta(seconds=1)), http=http
        )
    assert (failed.sent, failed.error) == (False, "HTTP 500: upstream broke")
    assert [(a.topic, a.status) for a in alerts(engine, tenant_id)] == [("test", "sent"), ("test", "failed")]


def test_alerts_of_a_disabled_channel_fail_without_being_sent(
    engine: Engine, receiver: Receiver, http: httpx.Client
) -> None:
    tenant_id = queue_one_finding(engine, "webhook", {"url": receiver.url, "secret": SECRET})
    with session_factory(engine).begin() as session:
        for channel in session.scalars(select(AlertChannel).where(AlertChannel.tenant_id == tenant_id)):
            channel.enabled = False
    assert deliver_due(session_factory(engine), tenant_id=tenant_id, clock=FixedClock(NOW), http=http).failed == 1
    assert receiver.requests == []
    (alert,) = alerts(engine, tenant_id)
    assert alert.last_error == "the channel was deleted or disabled"


def test_labels_cannot_ping_a_slack_channel_or_plant_a_link(
    engine: Engine, receiver: Receiver, http: httpx.Client
) -> None:
    """A statement's project id is whatever the provider account's owner named it."""
    planted = "<!here> <https://evil.example|click> & co"
    tenant_id = queue_one_finding(engine, "slack", {"url": receiver.url}, account=planted)
    assert deliver_due(session_factory(engine), tenant_id=tenant_id, clock=FixedClock(NOW), http=http).sent == 1
    sent = json.loads(receiver.requests[0][1])
    texts = [sent["text"], sent["blocks"][0]["text"]["text"]] + [f["text"] for f in sent["blocks"][1]["fields"]]
    assert all("<" not in text and ">" not in text for text in texts), texts
    assert "&lt;!here&gt; &lt;https://evil.example|click&gt; &amp; co" in sent["text"]
    assert any("&lt;!here&gt;" in field["text"] for field in sent["blocks"][1]["fields"])


def test_an_alert_given_up_on_is_told_to_the_tenants_other_channels(engine: Engine, http: httpx.Client) -> None:
    with http_receiver() as broken, http_receiver() as working:
        broken.statuses = [503, 503]
        tenant_id = tenant_id_of(engine, make_tenant(engine).name)
        with session_factory(engine).begin() as session:
            rows.channel(session, tenant_id, name="broken", config={"url": broken.url, "secret": SECRET})
            rows.channel(session, tenant_id, name="working", config={"url": working.url, "secret": SECRET})
            finding = rows.finding(session, tenant_id, severity="critical", impact="1500")
            queue_finding_alert(
                session, tenant_id=tenant_id, finding=finding, previous_severity=None, previous_impact=None, now=NOW
            )
        for moment in (NOW, NOW + rules.LONGEST_RETRY):
            deliver_due(
                session_factory(engine), tenant_id=tenant_id, clock=FixedClock(moment), http=http, max_attempts=2
            )
        deliver_due(
            session_factory(engine), tenant_id=tenant_id, clock=FixedClock(NOW + rules.LONGEST_RETRY), http=http
        )
    topics = [json.loads(request.body)["topic"] for request in working.requests]
    assert topics == ["finding", "delivery_failed"]
    told = json.loads(working.requests[1].body)
    assert told["title"] == "Alert channel broken failed: an alert was not delivered"
    assert "HTTP 503: upstream broke" in told["text"]
    assert len(broken.requests) == 2  # and nothing about its own failure
