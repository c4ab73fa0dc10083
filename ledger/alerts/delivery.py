"""Delivering the outbox, each channel on its own worker: an alert due is claimed (`FOR UPDATE SKIP LOCKED`,
so deliverers never send the same row at once), sent with a signature made at that moment, and its outcome
recorded. A failure is retried with exponential backoff timed from the failed attempt (`rules.retry_delay`)
until `max_attempts`, then the row is marked failed with the last error; `alert_outbox` is the delivery
log."""

from __future__ import annotations

import os
import secrets
import smtplib
import ssl
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session, sessionmaker

from ledger.alerts import messages, rules
from ledger.alerts.channels import channel_named
from ledger.alerts.messages import Message
from ledger.alerts.outbox import queue_delivery_failure_alert, queue_message
from ledger.clock import Clock
from ledger.queries import sources
from ledger.service import log_redaction
from ledger.storage.tables import AlertChannel, AlertOutbox

HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SMTP_TIMEOUT_SECONDS = 20.0
LEASE = timedelta(minutes=2)
"""How far a claimed alert's next attempt moves while it is being sent (past any send's timeouts)."""
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
    channel: AlertChannel,
    message: Message,
    *,
    alert_id: int,
    now: datetime,
    http: httpx.Client,
    smtp: SmtpConnect,
    public_url: str | None = None,
) -> None:
    """Send one message over one channel; DeliveryError when the channel refuses it or cannot be reached."""
    config = channel.config
    url = messages.link(message, public_url)
    pack = messages.dispute_pack_link(message, public_url)
    if channel.kind in ("webhook", "slack"):
        log_redaction.register_url(str(config["url"]), whole_path=channel.kind == "slack")
    if channel.kind == "pagerduty":
        log_redaction.register(str(config["routing_key"]))
    try:
        if channel.kind == "webhook":
            body = messages.webhook_body(message, alert_id=alert_id, sent_at=now, url=url, pack=pack)
            _check(
                http.post(
                    config["url"],
                    content=body,
                    headers=messages.webhook_headers(config["secret"], body, now),
                    timeout=HTTP_TIMEOUT,
                )
            )
        elif channel.kind == "slack":
            _check(http.post(config["url"], json=messages.slack_body(message, url, pack), timeout=HTTP_TIMEOUT))
        elif channel.kind == "pagerduty":
            event = messages.pagerduty_body(
                message, routing_key=config["routing_key"], alert_id=alert_id, sent_at=now, url=url, pack=pack
            )
            _check(http.post(config["url"], json=event, timeout=HTTP_TIMEOUT))
        elif channel.kind == "email":
            email = messages.email_message(
                message, sender=config["from"], recipients=config["to"], now=now, url=url, pack=pack
            )
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


class Deliverer:
    """Sends the outbox. Each channel with alerts due gets a worker of its own (at most `workers` at once) that
    sends them one by one, so a slow or hung receiver holds up only its own channel. An alert is claimed in a
    short transaction (its next attempt moved `LEASE` ahead: should this process die while sending, another
    sends it then), sent with a body signed at that moment, and its outcome recorded in a second transaction:
    no database connection is held while a receiver takes its time."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Clock,
        http: httpx.Client,
        smtp: SmtpConnect = connect_smtp,
        max_attempts: int = rules.MAX_ATTEMPTS,
        workers: int = 16,
        on_outcome: Callable[[str], None] | None = None,
        public_url: str | None = None,
    ) -> None:
        self._sessions, self._clock, self._http, self._smtp = sessions, clock, http, smtp
        self._public_url = public_url
        self._max_attempts = max_attempts
        self._on_outcome = on_outcome
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tokenledger-alerts")
        self._busy: set[tuple[int, int]] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def dispatch(self, tenant_id: int | None = None, limit: int = 100) -> list[Future[DeliveryStats]]:
        """Start a worker for each channel with alerts due and no worker yet; their futures."""
        if self._closed.is_set():
            return []
        now = self._clock.now()
        with self._sessions() as session:
            query = (
                select(AlertOutbox.tenant_id, AlertOutbox.channel_id)
                .where(AlertOutbox.status == "pending", AlertOutbox.next_attempt_at <= now)
                .distinct()
            )
            if tenant_id is not None:
                query = query.where(AlertOutbox.tenant_id == tenant_id)
            channels = [(row[0], row[1]) for row in session.execute(query)]
        started = []
        with self._lock:
            for channel in channels:
                if channel not in self._busy and not self._closed.is_set():
                    self._busy.add(channel)
                    started.append(self._pool.submit(self._drain, channel, limit))
        return started

    def close(self, wait: bool = True) -> None:
        """Stop: workers finish the alert they are sending (`wait`: and are waited for) and take no other."""
        with self._lock:
            self._closed.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _drain(self, channel: tuple[int, int], limit: int) -> DeliveryStats:
        outcomes: list[str] = []
        try:
            for _ in range(limit):
                if self._closed.is_set():
                    break
                outcome = self._deliver_next(*channel)
                if outcome is None:
                    break
                outcomes.append(outcome)
                if self._on_outcome is not None:
                    self._on_outcome("retrying" if outcome == "pending" else outcome)
        finally:
            with self._lock:
                self._busy.discard(channel)
        return DeliveryStats(
            sent=outcomes.count("sent"), retrying=outcomes.count("pending"), failed=outcomes.count("failed")
        )

    def _deliver_next(self, tenant_id: int, channel_id: int) -> str | None:
        """Claim, send and record the channel's next due alert; its new status, or None when none is due."""
        with self._sessions.begin() as session:
            row = session.scalar(
                select(AlertOutbox)
                .where(
                    AlertOutbox.tenant_id == tenant_id,
                    AlertOutbox.channel_id == channel_id,
                    AlertOutbox.status == "pending",
                    AlertOutbox.next_attempt_at <= self._clock.now(),
                )
                .order_by(AlertOutbox.next_attempt_at, AlertOutbox.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return None
            channel = session.get(AlertChannel, (tenant_id, channel_id))
            row.attempts += 1
            row.next_attempt_at = self._clock.now() + LEASE
            claimed = _Claim(row.id, row.attempts, Message.from_payload(row.payload))
            if channel is not None:
                session.expunge(channel)
        error, attempted_at = _try(
            channel, claimed, clock=self._clock, http=self._http, smtp=self._smtp, public_url=self._public_url
        )
        with self._sessions.begin() as session:
            row = session.get_one(AlertOutbox, (tenant_id, claimed.alert_id))
            return _record(row, error, attempted_at, claimed.attempts, self._max_attempts, channel)


@dataclass(frozen=True, slots=True)
class _Claim:
    alert_id: int
    attempts: int
    message: Message


def outbox_by_status(session: Session) -> dict[str, int]:
    """How many alerts the outbox holds, by status."""
    counted = session.execute(select(AlertOutbox.status, func.count()).group_by(AlertOutbox.status))
    return {status: count for status, count in counted.tuples()}


def deliver_due(
    session_factory: sessionmaker[Session],
    *,
    clock: Clock,
    http: httpx.Client,
    smtp: SmtpConnect = connect_smtp,
    max_attempts: int = rules.MAX_ATTEMPTS,
    limit: int = 100,
    tenant_id: int | None = None,
    public_url: str | None = None,
) -> DeliveryStats:
    """Send the alerts due now (of one tenant, when given; up to `limit` per channel), every channel at once,
    and wait for them."""
    deliverer = Deliverer(
        session_factory, clock=clock, http=http, smtp=smtp, max_attempts=max_attempts, public_url=public_url
    )
    try:
        results = [future.result() for future in deliverer.dispatch(tenant_id, limit)]
    finally:
        deliverer.close()
    return DeliveryStats(
        sent=sum(r.sent for r in results),
        retrying=sum(r.retrying for r in results),
        failed=sum(r.failed for r in results),
    )


def send_test(
    session: Session,
    *,
    tenant_id: int,
    channel_name: str,
    clock: Clock,
    http: httpx.Client,
    smtp: SmtpConnect = connect_smtp,
    public_url: str | None = None,
) -> SendOutcome:
    """Send a test message over the channel right away (one attempt, logged in the outbox like any alert)."""
    channel = channel_named(session, tenant_id, channel_name)
    now = clock.now()
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
    row.attempts += 1
    error, attempted_at = _try(
        channel, _Claim(row.id, row.attempts, message), clock=clock, http=http, smtp=smtp, public_url=public_url
    )
    status = _record(row, error, attempted_at, row.attempts, 1, channel)
    return SendOutcome(alert_id=row.id, sent=status == "sent", error=row.last_error)


def _try(
    channel: AlertChannel | None,
    claim: _Claim,
    *,
    clock: Clock,
    http: httpx.Client,
    smtp: SmtpConnect,
    public_url: str | None,
) -> tuple[str | None, datetime]:
    """Send once, signed and dated now; the error (None when sent) and when the attempt was made."""
    now = clock.now()
    try:
        if channel is None or not channel.enabled:
            raise DeliveryError("the channel was deleted or disabled")
        send(channel, claim.message, alert_id=claim.alert_id, now=now, http=http, smtp=smtp, public_url=public_url)
    except DeliveryError as error:
        return str(error)[:1_000], now
    return None, now


def _record(
    row: AlertOutbox,
    error: str | None,
    attempted_at: datetime,
    attempts: int,
    max_attempts: int,
    channel: AlertChannel | None,
) -> str:
    """Write an attempt's outcome on its row; the row's new status. The next attempt is timed from this one
    (`rules.retry_delay`)."""
    if error is None:
        row.status, row.sent_at, row.last_error = "sent", attempted_at, None
        return row.status
    row.last_error = error
    if attempts >= max_attempts or channel is None or not channel.enabled:
        row.status = "failed"
        if channel is not None and attempts >= max_attempts:
            session = object_session(row)
            if session is not None:
                queue_delivery_failure_alert(session, failed=row, channel_name=channel.name, now=attempted_at)
    else:
        row.next_attempt_at = attempted_at + rules.retry_delay(attempts)
    return row.status


def _check(response: httpx.Response) -> None:
    if not response.is_success:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")
