"""What an alert says, and how each kind of channel receives it. Pure.

A `Message` is channel-neutral (title, plain text, facts, structured data, optional HTML and attachments)
and is what the outbox stores. At delivery it becomes:

- a signed webhook: a JSON body, with `X-TokenLedger-Signature: sha256=<hex HMAC-SHA256 of the exact body
  bytes, keyed with the channel's secret>` and `X-TokenLedger-Timestamp: <unix seconds>`; the body repeats
  the timestamp as `sent_at`, so it is covered by the signature;
- a Slack incoming-webhook body: `{"text": …, "blocks": […]}` — `text` is the notification fallback when
  blocks are present (https://api.slack.com/messaging/webhooks, "Sending messages using incoming
  webhooks"); a section's text is at most 3,000 characters, its fields at most 10 of 2,000 characters each
  (https://api.slack.com/reference/block-kit/blocks#section);
- an email: text/plain, with an HTML alternative and attachments when the message has them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from ledger.display import age, money, when
from ledger.queries.findings import finding_json
from ledger.queries.sources import RunLine
from ledger.storage.tables import Finding

SLACK_SECTION_LIMIT = 3_000
SLACK_FIELD_LIMIT = 2_000
SLACK_MAX_FIELDS = 10
SIGNATURE_HEADER = "X-TokenLedger-Signature"
TIMESTAMP_HEADER = "X-TokenLedger-Timestamp"


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    media_type: str
    content: str


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    title: str
    text: str
    severity: str | None = None
    facts: tuple[tuple[str, str], ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()

    def as_payload(self) -> dict[str, Any]:
        """The message as the outbox stores it (JSON)."""
        return {
            "topic": self.topic,
            "title": self.title,
            "text": self.text,
            "severity": self.severity,
            "facts": [list(fact) for fact in self.facts],
            "data": dict(self.data),
            "html": self.html,
            "attachments": [
                {"filename": a.filename, "media_type": a.media_type, "content": a.content} for a in self.attachments
            ],
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Message:
        return cls(
            topic=payload["topic"],
            title=payload["title"],
            text=payload["text"],
            severity=payload.get("severity"),
            facts=tuple((str(k), str(v)) for k, v in payload.get("facts", ())),
            data=payload.get("data") or {},
            html=payload.get("html"),
            attachments=tuple(Attachment(**a) for a in payload.get("attachments", ())),
        )


def finding_message(
    finding: Finding, *, tenant: str, previous_severity: str | None, previous_impact: Decimal | None
) -> Message:
    """A new or worsened finding (a spend spike has its own topic)."""
    scope = " / ".join(part for part in (finding.provider, finding.account, finding.model) if part) or "all usage"
    impact = money(finding.impact_usd)
    change = (
        "New finding."
        if previous_severity is None
        else f"Worse than before: was {previous_severity}, {money(previous_impact)}; now {finding.severity}, {impact}."
    )
    spike = finding.kind == "spend_spike"
    return Message(
        topic="spend_spike" if spike else "finding",
        title=f"[{finding.severity}] {'Spend spike' if spike else finding.kind.replace('_', ' ')}: {scope} ({impact})",
        text=f"{finding.summary}\n{change}",
        severity=finding.severity,
        facts=(
            ("Tenant", tenant),
            ("Kind", finding.kind),
            ("Severity", finding.severity),
            ("Scope", scope),
            ("Period", f"{when(finding.period_start)} – {when(finding.period_end)}"),
            ("Impact", impact),
            ("Status", finding.status),
            ("Finding", f"#{finding.id}"),
        ),
        data={
            "tenant": tenant,
            "finding": finding_json(finding),
            "fingerprint": finding.fingerprint,
            "previous_severity": previous_severity,
            "previous_impact_usd": None if previous_impact is None else str(previous_impact),
        },
    )


def finding_cleared_message(finding: Finding, *, tenant: str) -> Message:
    """A finding someone marked resolved: the channels alerted about it hear that it cleared."""
    scope = " / ".join(part for part in (finding.provider, finding.account, finding.model) if part) or "all usage"
    return Message(
        topic="finding_cleared",
        title=f"[cleared] {finding.kind.replace('_', ' ')}: {scope} ({money(finding.impact_usd)})",
        text=f"Finding #{finding.id} was marked resolved.\n{finding.summary}",
        severity="info",
        facts=(("Tenant", tenant), ("Kind", finding.kind), ("Scope", scope), ("Finding", f"#{finding.id}")),
        data={"tenant": tenant, "finding": finding_json(finding), "fingerprint": finding.fingerprint},
    )


_REPORT_PAGES = {"run_failed": "", "stale_source": "providers", "pull_failed": "providers", "test": "alerts"}


def link(message: Message, public_url: str | None) -> str | None:
    """Where the alert's subject is seen in the web report: a finding's own page, the monthly report of a
    period, else the page that shows the topic; None without a public URL."""
    if not public_url:
        return None
    finding = message.data.get("finding")
    if isinstance(finding, Mapping) and finding.get("id") is not None:
        return f"{public_url}/report/findings/{finding['id']}"
    if message.topic == "monthly_report" and message.data.get("period"):
        return f"{public_url}/report/monthly?period={message.data['period']}"
    return f"{public_url}/report/{_REPORT_PAGES.get(message.topic, '')}"


def dispute_pack_link(message: Message, public_url: str | None) -> str | None:
    """The download of an open finding's dispute pack (the report's finding page offers the same); None for any
    other alert, a cleared finding, or without a public URL."""
    finding = message.data.get("finding")
    if not public_url or message.topic == "finding_cleared" or not isinstance(finding, Mapping):
        return None
    return f"{public_url}/report/findings/{finding['id']}/dispute-pack" if finding.get("id") is not None else None


def run_failure_message(run: RunLine, *, tenant: str, period_label: str) -> Message:
    return Message(
        topic="run_failed",
        title=f"Reconciliation of {period_label} failed",
        text=f"The {run.trigger} run #{run.id} started {when(run.started_at)} failed: "
        f"{run.error or 'no error recorded'}",
        severity="critical",
        facts=(
            ("Tenant", tenant),
            ("Period", period_label),
            ("Run", f"#{run.id}"),
            ("Trigger", run.trigger),
            ("Started", when(run.started_at)),
        ),
        data={
            "tenant": tenant,
            "period": period_label,
            "run_id": run.id,
            "trigger": run.trigger,
            "started_at": run.started_at.isoformat(),
            "error": run.error,
        },
    )


def stale_source_message(
    source: str, last_import: datetime, *, tenant: str, now: datetime, max_age: timedelta
) -> Message:
    return Message(
        topic="stale_source",
        title=f"No {source} statement imported for {age(now - last_import)}",
        text=(
            f"The {source} statement was last imported {when(last_import)}, more than {age(max_age)} ago. "
            f"Check its import (tokenledger import {source} …) and the provider's admin key."
        ),
        severity="warning",
        facts=(("Tenant", tenant), ("Source", source), ("Last import", when(last_import))),
        data={"tenant": tenant, "source": source, "last_import": last_import.isoformat()},
    )


def pull_failed_message(source: str, period_label: str, error: str, *, tenant: str, now: datetime) -> Message:
    """A scheduled statement pull that failed (a refused admin key, an unreachable API): said at once, not
    after days of staleness."""
    return Message(
        topic="pull_failed",
        title=f"Pulling the {source} statement for {period_label} failed",
        text=f"The scheduled pull of {when(now)} failed: {error}",
        severity="critical",
        facts=(("Tenant", tenant), ("Source", source), ("Period", period_label), ("Error", error)),
        data={"tenant": tenant, "source": source, "period": period_label, "error": error},
    )


def delivery_failed_message(channel: str, topic: str, title: str, error: str, *, attempts: int, tenant: str) -> Message:
    """An alert given up on after its last attempt, told to the tenant's other channels."""
    return Message(
        topic="delivery_failed",
        title=f"Alert channel {channel} failed: an alert was not delivered",
        text=f"After {attempts} attempts, the {topic} alert {title!r} could not be sent over {channel}: {error}",
        severity="warning",
        facts=(("Tenant", tenant), ("Channel", channel), ("Alert", title), ("Last error", error)),
        data={"tenant": tenant, "channel": channel, "topic": topic, "error": error, "attempts": attempts},
    )


def budget_message(
    label: str, measure: str, threshold: int, figure: Decimal, amount: Decimal, period_label: str, *, tenant: str
) -> Message:
    """A budget whose actual spend (`measure` "spent") or month-end forecast ("forecast") reached `threshold`
    percent of it."""
    said = "spend" if measure == "spent" else "forecast month-end spend"
    return Message(
        topic="budget",
        title=f"Budget of {label}: {said} at {threshold}% ({money(figure)} of {money(amount)}, {period_label})",
        text=(
            f"The {period_label} {said} of {label} is {money(figure)}, {threshold}% or more of its monthly budget "
            f"of {money(amount)} (logged usage at catalog prices)."
        ),
        severity="critical" if threshold >= 100 else "warning",
        facts=(
            ("Tenant", tenant),
            ("Budget", label),
            ("Month", period_label),
            ("Spend" if measure == "spent" else "Forecast", money(figure)),
            ("Budget amount", money(amount)),
        ),
        data={
            "tenant": tenant,
            "budget": label,
            "period": period_label,
            "measure": measure,
            "threshold": threshold,
            "figure": str(figure),
            "amount": str(amount),
        },
    )


def test_message(channel: str, *, tenant: str, now: datetime) -> Message:
    return Message(
        topic="test",
        title=f"TokenLedger test alert for channel {channel}",
        text=f"This is a test of the alert channel {channel!r} of tenant {tenant}, sent {when(now)}.",
        facts=(("Tenant", tenant), ("Channel", channel)),
        data={"tenant": tenant, "channel": channel},
    )


def webhook_body(
    message: Message, *, alert_id: int, sent_at: datetime, url: str | None = None, pack: str | None = None
) -> bytes:
    body = {
        "id": alert_id,
        "topic": message.topic,
        "title": message.title,
        "text": message.text,
        "severity": message.severity,
        "facts": dict(message.facts),
        "data": message.data,
        "url": url,
        "dispute_pack_url": pack,
        "sent_at": int(sent_at.timestamp()),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, body: bytes) -> str:
    """The `X-TokenLedger-Signature` value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(secret: str, body: bytes, sent_at: datetime) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(secret, body),
        TIMESTAMP_HEADER: str(int(sent_at.timestamp())),
    }


def slack_body(message: Message, url: str | None = None, pack: str | None = None) -> dict[str, Any]:
    """Every text is escaped for mrkdwn: labels come from statements and events (a project named
    `<!here>` must not ping the channel, nor `<https://…|click>` become a link). The links are ours."""
    title, text = slack_escape(message.title), slack_escape(message.text)
    if url:
        text = f"{text}\n<{slack_escape(url)}|Open in TokenLedger>"
    if pack:
        text = f"{text} · <{slack_escape(pack)}|Dispute pack>"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(f"*{title}*\n{text}")}},
    ]
    if message.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": _clip(f"*{slack_escape(name)}*\n{slack_escape(value)}", SLACK_FIELD_LIMIT),
                    }
                    for name, value in message.facts[:SLACK_MAX_FIELDS]
                ],
            }
        )
    return {"text": _clip(f"{title}\n{text}"), "blocks": blocks}


def slack_escape(text: str) -> str:
    """`&`, `<` and `>` as Slack asks them escaped in message text, so that none starts a mention, a link or
    a special command (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def email_message(
    message: Message,
    *,
    sender: str,
    recipients: Sequence[str],
    now: datetime,
    url: str | None = None,
    pack: str | None = None,
) -> EmailMessage:
    email = EmailMessage()
    # One line: a title quotes labels (account, model) that whoever sent usage chose, and a line break in a
    # header would fail the delivery.
    email["Subject"] = " ".join(message.title.split())
    email["From"] = sender
    email["To"] = ", ".join(recipients)
    email["Date"] = format_datetime(now)
    email["Message-ID"] = make_msgid(domain="tokenledger")
    facts = "\n".join(f"{name}: {value}" for name, value in message.facts)
    opened = (f"\nOpen in TokenLedger: {url}\n" if url else "") + (f"Dispute pack: {pack}\n" if pack else "")
    email.set_content(f"{message.text}\n\n{facts}\n{opened}" if facts else f"{message.text}\n{opened}")
    if message.html:
        email.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.media_type.partition("/")
        email.add_attachment(
            attachment.content.encode(), maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return email


PAGERDUTY_SEVERITIES = {"critical": "critical", "warning": "warning", "info": "info"}
PAGERDUTY_SUMMARY_LIMIT = 1_024
PAGERDUTY_DEDUP_LIMIT = 255


def pagerduty_body(
    message: Message,
    *,
    routing_key: str,
    alert_id: int,
    sent_at: datetime,
    url: str | None = None,
    pack: str | None = None,
) -> dict[str, Any]:
    """A PagerDuty Events API v2 alert event (https://developer.pagerduty.com/docs/events-API-v2/trigger-events,
    "Send an Alert Event"): a finding triggers under its fingerprint as `dedup_key`, and resolves under it when
    it clears; any other alert triggers on its own."""
    fingerprint = message.data.get("fingerprint")
    dedup_key = f"tokenledger:{fingerprint}" if fingerprint else f"tokenledger:alert:{alert_id}"
    if message.topic == "finding_cleared":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key[:PAGERDUTY_DEDUP_LIMIT]}
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key[:PAGERDUTY_DEDUP_LIMIT],
        "payload": {
            "summary": " ".join(message.title.split())[:PAGERDUTY_SUMMARY_LIMIT],
            "source": "tokenledger",
            "severity": PAGERDUTY_SEVERITIES.get(message.severity or "info", "info"),
            "timestamp": sent_at.isoformat(),
            "component": str(message.data.get("tenant") or "tokenledger"),
            "class": message.topic,
            "custom_details": {"text": message.text, **dict(message.facts)},
        },
        "client": "TokenLedger",
    }
    if url:
        body["links"] = [{"href": url, "text": "Open in TokenLedger"}]
        body["client_url"] = url
    if pack:
        body.setdefault("links", []).append({"href": pack, "text": "Dispute pack"})
    return body


def _clip(text: str, limit: int = SLACK_SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
