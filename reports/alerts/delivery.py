"""Delivering the outbox: each due alert is locked (`FOR UPDATE SKIP LOCKED`, so deliverers never send the
same row twice), sent, and its outcome recorded in its own transaction. A failure is retried with
exponential backoff (`rules.retry_delay`) until `max_attempts`, then the row is marked failed with the
last error; `alert_outbox` is the delivery log."""

from __future__ import annotations

import os
import secrets
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ledger.tables import AlertChannel, AlertOutbox
from reports import sources
from reports.alerts import messages, rules
from reports.alerts.channels import channel_named
from reports.alerts.messages import Message
from reports.alerts.outbox import queue_message

HTTP_TIMEOUT_SECONDS = 10.0
SMTP_TIMEOUT_SECONDS = 20.0
SmtpConnect = Callable[[Mapping[str, Any]], smtplib.SMTP]


class DeliveryError(RuntimeError):
    """A channel did not accept an alert; the message says what it answered."""


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class SendOutcome:
    alert_id: int
    sent: bool
    error: str | None


def connect_smtp(config: Mapping[str, Any]) -> smtplib.SMTP:
    """An SMTP connection per the channel config: STARTTLS when asked, then login when a user is set (the
    password comes from the environment variable the config names)."""
    client = smtplib.SMTP(str(config["smtp_host"]), int(config["smtp_port"]), timeout=SMTP_TIMEOUT_SECONDS)
    try:
        if config.get("starttls"):
            client.starttls(context=ssl.create_default_context())
        if config.get("username"):
            variable = config.get("password_env") or ""
            password = os.environ.get(variable) if variable else ""
            if password is None:
                raise DeliveryError(f"set {variable} to the SMTP password of {config['username']}")
            client.login(str(config["username"]), password)
    except BaseException:
        client.close()
        raise
    return client


def send(
    channel: AlertChannel, message: Message, *, alert_id: int, now: datetime, http: httpx.Client, smtp: SmtpConnect
) -> None:
    """Send one message over one channel; DeliveryError when the channel refuses it or cannot be reached."""
    config = channel.config
    try:
        if channel.kind == "webhook":
            body = messages.webhook_body(message, alert_id=alert_id, sent_at=now)
            _check(
                http.post(
                    config["url"],
                    content=body,
                    headers=messages.webhook_headers(config["secret"], body, now),
                    timeout=HTTP_TIMEOUT_SECONDS,
                )
            )
        elif channel.kind == "slack":
            _check(http.post(config["url"], json=messages.slack_body(message), timeout=HTTP_TIMEOUT_SECONDS))
        elif channel.kind == "email":
            email = messages.email_message(message, sender=config["from"], recipients=config["to"], now=now)
            client = smtp(config)
            try:
                client.send_message(email)
            finally:
                client.quit()
        else:
            raise DeliveryError(f"unknown channel kind {channel.kind!r}")
    except httpx.HTTPError as error:
        raise DeliveryError(f"{type(error).__name__}: {error}") from error
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryError(f"SMTP {type(error).__name__}: {error}") from error


def deliver_due(
    session_factory: sessionmaker[Session],
    *,
    now: datetime,
    http: httpx.Client,
    smtp: SmtpConnect = connect_smtp,
    max_attempts: int = rules.MAX_ATTEMPTS,
    limit: int = 100,
    tenant_id: int | None = None,
) -> DeliveryStats:
    """Send up to `limit` alerts due at `now` (of one tenant, when given), each in its own transaction."""
    sent = retrying = failed = 0
    for _ in range(limit):
        with session_factory.begin() as session:
            due = select(AlertOutbox).where(AlertOutbox.status == "pending", AlertOutbox.next_attempt_at <= now)
            if tenant_id is not None:
                due = due.where(AlertOutbox.tenant_id == tenant_id)
            row = session.scalar(
                due.order_by(AlertOutbox.next_attempt_at, AlertOutbox.id).limit(1).with_for_update(skip_locked=True)
            )
            if row is None:
                break
            status = _attempt(session, row, now=now, http=http, smtp=smtp, max_attempts=max_attempts)
        sent += status == "sent"
        failed += status == "failed"
        retrying += status == "pending"
    return DeliveryStats(sent=sent, retrying=retrying, failed=failed)


def send_test(
    session: Session,
    *,
    tenant_id: int,
    channel_name: str,
    now: datetime,
    http: httpx.Client,
    smtp: SmtpConnect = connect_smtp,
) -> SendOutcome:
    """Send a test message over the channel right away (one attempt, logged in the outbox like any alert)."""
    channel = channel_named(session, tenant_id, channel_name)
    message = messages.test_message(channel.name, tenant=sources.tenant_name(session, tenant_id), now=now)
    alert_id = queue_message(
        session,
        tenant_id=tenant_id,
        channel=channel,
        key=f"test:{now.isoformat()}:{secrets.token_hex(4)}",
        message=message,
        now=now,
    )
    row = session.get_one(AlertOutbox, (tenant_id, alert_id))
    status = _attempt(session, row, now=now, http=http, smtp=smtp, max_attempts=1)
    return SendOutcome(alert_id=row.id, sent=status == "sent", error=row.last_error)


def _attempt(
    session: Session, row: AlertOutbox, *, now: datetime, http: httpx.Client, smtp: SmtpConnect, max_attempts: int
) -> str:
    """Try the row once and record the outcome on it; returns its new status."""
    channel = session.get(AlertChannel, (row.tenant_id, row.channel_id))
    row.attempts += 1
    try:
        if channel is None or not channel.enabled:
            raise DeliveryError("the channel was deleted or disabled")
        send(channel, Message.from_payload(row.payload), alert_id=row.id, now=now, http=http, smtp=smtp)
    except DeliveryError as error:
        row.last_error = str(error)[:1_000]
        if row.attempts >= max_attempts or channel is None or not channel.enabled:
            row.status = "failed"
        else:
            row.next_attempt_at = now + rules.retry_delay(row.attempts)
        return row.status
    row.status, row.sent_at, row.last_error = "sent", now, None
    return row.status


def _check(response: httpx.Response) -> None:
    if not response.is_success:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")
