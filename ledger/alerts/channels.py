"""Alert channels of a tenant: a signed webhook, a Slack incoming webhook, or email over SMTP. Services take
a session and never commit.

Config (the `alert_channels.config` JSON) per kind:
- webhook: `url`, `secret` (the shared HMAC key; generated when not given);
- slack: `url` (the incoming-webhook URL, itself a secret: never shown in full);
- email: `smtp_host`, `smtp_port`, `from`, `to` (list), `starttls`, and optionally `username` with
  `password_env`, the environment variable the deliverer reads the SMTP password from (never stored);
- pagerduty: `routing_key` (the Events API v2 integration key, a secret) and `url` (PagerDuty's endpoint
  unless given).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.alerts.rules import ROUTE_FIELDS
from ledger.errors import Conflict, InvalidRequest, NotFound
from ledger.queries.findings import KINDS as FINDING_KINDS
from ledger.queries.findings import SEVERITIES
from ledger.storage.tables import AlertChannel, AlertOutbox

KINDS = ("webhook", "slack", "email", "pagerduty")
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
"""PagerDuty's Events API v2 endpoint (https://developer.pagerduty.com/docs/events-API-v2/trigger-events)."""
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class ChannelOptions:
    """What `alerts add-channel` was given; `config()` checks it against the kind."""

    url: str | None = None
    secret: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    sender: str | None = None
    recipients: Sequence[str] = field(default_factory=tuple)
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None
    routing_key: str | None = None

    def config(self, kind: str) -> dict[str, Any]:
        if kind not in KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if kind == "pagerduty":
            if not self.routing_key or not self.routing_key.strip():
                raise InvalidRequest(
                    "a pagerduty channel needs --routing-key (the integration key of an Events API v2 integration)"
                )
            return {
                "url": _checked_url(self.url or PAGERDUTY_EVENTS_URL, kind),
                "routing_key": self.routing_key.strip(),
            }
        if kind in ("webhook", "slack"):
            url = _checked_url(self.url, kind)
            if kind == "slack":
                return {"url": url}
            return {"url": url, "secret": self.secret or secrets.token_urlsafe(32)}
        if not self.smtp_host:
            raise InvalidRequest("an email channel needs --smtp-host")
        if not self.sender or not _ADDRESS.match(self.sender):
            raise InvalidRequest(f"--from must be an email address, got {self.sender!r}")
        if not self.recipients:
            raise InvalidRequest("an email channel needs at least one --to address")
        for address in self.recipients:
            if not _ADDRESS.match(address):
                raise InvalidRequest(f"--to must be an email address, got {address!r}")
        port = self.smtp_port or (587 if self.starttls else 25)
        if not 0 < port < 65_536:
            raise InvalidRequest(f"--smtp-port must be 1-65535, got {port}")
        if self.password_env is not None and not _ENV_NAME.match(self.password_env):
            raise InvalidRequest(f"--smtp-password-env must name an environment variable, got {self.password_env!r}")
        if self.password_env and not self.username:
            raise InvalidRequest("--smtp-password-env needs --smtp-user")
        return {
            "smtp_host": self.smtp_host,
            "smtp_port": port,
            "from": self.sender,
            "to": list(self.recipients),
            "starttls": self.starttls,
            "username": self.username,
            "password_env": self.password_env,
        }


def add_channel(
    session: Session,
    *,
    tenant_id: int,
    name: str,
    kind: str,
    options: ChannelOptions,
    min_severity: str | None = None,
    min_impact_usd: Decimal = Decimal(0),
    route: Mapping[str, Sequence[str]] | None = None,
) -> AlertChannel:
    """A new channel. Without a minimum severity it takes warnings and above, or, when it sets a minimum
    impact, findings of any severity with that impact."""
    if not name.strip():
        raise InvalidRequest("a channel needs a --name")
    if min_severity is None:
        min_severity = "info" if min_impact_usd > 0 else "warning"
    if min_severity not in SEVERITIES:
        raise InvalidRequest(f"min severity must be one of {', '.join(SEVERITIES)}, got {min_severity!r}")
    if min_impact_usd < 0:
        raise InvalidRequest(f"min impact must not be negative, got {min_impact_usd}")
    unknown = set(route or {}) - set(ROUTE_FIELDS)
    if unknown:
        raise InvalidRequest(f"a route names {', '.join(ROUTE_FIELDS)}, not {', '.join(sorted(unknown))}")
    for kind_named in (route or {}).get("kinds", ()):
        if kind_named not in FINDING_KINDS:
            raise InvalidRequest(f"--finding-kind must be one of {', '.join(FINDING_KINDS)}, got {kind_named!r}")
    channel = AlertChannel(
        tenant_id=tenant_id,
        name=name.strip(),
        kind=kind,
        config=options.config(kind),
        min_severity=min_severity,
        min_impact_usd=min_impact_usd,
        enabled=True,
        route={field: sorted(set(values)) for field, values in (route or {}).items() if values},
    )
    with session.begin_nested():
        session.add(channel)
        try:
            session.flush()
        except IntegrityError as error:
            raise Conflict(f"the tenant already has a channel named {name!r}") from error
    return channel


def set_enabled(session: Session, tenant_id: int, name: str, *, enabled: bool) -> AlertChannel:
    """Enable or disable a channel; a disabled channel is queued nothing, and what was queued fails unsent."""
    channel = channel_named(session, tenant_id, name)
    channel.enabled = enabled
    session.flush()
    return channel


def remove_channel(session: Session, tenant_id: int, name: str, *, now: datetime) -> int:
    """Remove a channel; its deliveries stay in the log, and those still pending are marked failed. How many
    were pending."""
    channel = channel_named(session, tenant_id, name)
    abandoned = session.execute(
        update(AlertOutbox)
        .where(
            AlertOutbox.tenant_id == tenant_id,
            AlertOutbox.channel_id == channel.id,
            AlertOutbox.status == "pending",
        )
        .values(status="failed", last_error=f"the channel was removed {now.isoformat(timespec='seconds')}")
    )
    session.delete(channel)
    session.flush()
    return int(abandoned.rowcount)  # type: ignore[attr-defined]


def rotate_secret(session: Session, tenant_id: int, name: str, *, secret: str | None = None) -> str:
    """Give a webhook channel a new signing secret (generated unless given); the secret, to show once."""
    channel = channel_named(session, tenant_id, name)
    if channel.kind != "webhook":
        raise InvalidRequest(
            f"channel {name!r} is a {channel.kind} channel: only a webhook has a signing secret "
            f"(give a {channel.kind} channel a new URL or key by removing and adding it)"
        )
    new_secret = secret or secrets.token_urlsafe(32)
    channel.config = {**channel.config, "secret": new_secret}
    session.flush()
    return new_secret


def replay_failed(session: Session, tenant_id: int, name: str, *, now: datetime, since: datetime | None = None) -> int:
    """Queue again the channel's alerts that failed (queued since `since`, when given); how many."""
    channel = channel_named(session, tenant_id, name)
    if not channel.enabled:
        raise InvalidRequest(f"channel {name!r} is disabled: enable it first")
    replayed = session.execute(
        update(AlertOutbox)
        .where(
            AlertOutbox.tenant_id == tenant_id,
            AlertOutbox.channel_id == channel.id,
            AlertOutbox.status == "failed",
            AlertOutbox.created_at >= (since or datetime.min.replace(tzinfo=UTC)),
        )
        .values(status="pending", attempts=0, next_attempt_at=now, last_error=None)
    )
    return int(replayed.rowcount)  # type: ignore[attr-defined]


def channel_named(session: Session, tenant_id: int, name: str) -> AlertChannel:
    channel = session.scalar(select(AlertChannel).where(AlertChannel.tenant_id == tenant_id, AlertChannel.name == name))
    if channel is None:
        raise NotFound(f"no alert channel named {name!r}")
    return channel


def enabled_channels(session: Session, tenant_id: int) -> list[AlertChannel]:
    query = (
        select(AlertChannel)
        .where(AlertChannel.tenant_id == tenant_id, AlertChannel.enabled.is_(True))
        .order_by(AlertChannel.id)
    )
    return list(session.scalars(query))


def describe_target(channel: AlertChannel) -> str:
    """Where the channel delivers, without secrets: a webhook's scheme and host, an email's server and
    recipients."""
    config = channel.config
    if channel.kind == "email":
        return f"{', '.join(config.get('to', []))} via {config.get('smtp_host')}:{config.get('smtp_port')}"
    parts = urlsplit(str(config.get("url", "")))
    return f"{parts.scheme}://{parts.netloc}/…"


def _checked_url(url: str | None, kind: str) -> str:
    if not url:
        raise InvalidRequest(f"a {kind} channel needs --url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest(f"--url must be an http(s) URL, got {url!r}")
    return url
