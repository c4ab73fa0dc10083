"""Queueing alerts: each function writes `alert_outbox` rows in the caller's transaction (the same one as the
alert's cause, so an alert exists exactly when its cause was committed) and returns how many it queued.
A row already queued with the same channel and dedupe key is left alone. Nothing here sends or commits;
`ledger.alerts.delivery` sends."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ledger.alerts import messages, rules
from ledger.alerts.budgets import budget_statuses
from ledger.alerts.channels import enabled_channels
from ledger.alerts.messages import Message
from ledger.alerts.silences import silences_in_force, silencing
from ledger.periods import Period
from ledger.queries import sources
from ledger.storage.tables import AlertChannel, AlertOutbox, Finding, ReconciliationRun


def queue_finding_alert(
    session: Session,
    *,
    tenant_id: int,
    finding: Finding,
    previous_severity: str | None,
    previous_impact: Decimal | None,
    now: datetime,
    channels: list[AlertChannel] | None = None,
) -> int:
    """Alert on a finding the reconciler just stored: when it is new (`previous_severity` None) or worse than
    before (for one acknowledged or disputed, past a higher threshold) and no silence covers it, to each
    channel whose thresholds and route it meets (of `channels`, when the caller has read them)."""
    seen_to = finding.status in rules.SEEN_TO
    if seen_to and previous_severity is not None:
        # Measured from the level last alerted, so that a finding creeping up a decade per run still alerts.
        alerted = rules.highest_alerted(_alerted_keys(session, tenant_id, finding.fingerprint))
        previous_severity, previous_impact = alerted or (previous_severity, previous_impact)
    if previous_severity is not None and not rules.worsened(
        finding.severity,
        finding.impact_usd,
        previous_severity=previous_severity,
        previous_impact=previous_impact,
        seen_to=seen_to,
    ):
        return 0
    if silencing(silences_in_force(session, tenant_id, now), finding, now) is not None:
        return 0
    chosen = [
        channel
        for channel in (enabled_channels(session, tenant_id) if channels is None else channels)
        if rules.finding_qualifies(
            finding.severity,
            finding.impact_usd,
            min_severity=channel.min_severity,
            min_impact_usd=channel.min_impact_usd,
        )
        and rules.routed(channel.route or {}, kind=finding.kind, provider=finding.provider, account=finding.account)
    ]
    if not chosen:
        return 0
    message = messages.finding_message(
        finding,
        tenant=sources.tenant_name(session, tenant_id),
        previous_severity=previous_severity,
        previous_impact=previous_impact,
    )
    key = rules.finding_key(finding.fingerprint, finding.severity, finding.impact_usd)
    return queue_to_channels(session, tenant_id, chosen, key, message, now)


def _alerted_keys(session: Session, tenant_id: int, fingerprint: str) -> list[str]:
    return list(
        session.scalars(
            select(AlertOutbox.dedupe_key).where(
                AlertOutbox.tenant_id == tenant_id,
                AlertOutbox.dedupe_key.startswith(f"finding:{fingerprint}:", autoescape=True),
            )
        )
    )


def queue_finding_cleared(session: Session, *, tenant_id: int, finding: Finding, now: datetime) -> int:
    """Tell each channel that was alerted about the finding that it cleared (a PagerDuty channel resolves
    its incident)."""
    alerted = set(
        session.scalars(
            select(AlertOutbox.channel_id).where(
                AlertOutbox.tenant_id == tenant_id,
                AlertOutbox.dedupe_key.startswith(f"finding:{finding.fingerprint}:", autoescape=True),
            )
        )
    )
    channels = [channel for channel in enabled_channels(session, tenant_id) if channel.id in alerted]
    if not channels:
        return 0
    message = messages.finding_cleared_message(finding, tenant=sources.tenant_name(session, tenant_id))
    return queue_to_channels(session, tenant_id, channels, rules.cleared_key(finding.fingerprint, now), message, now)


def queue_run_failure_alert(session: Session, *, tenant_id: int, run: ReconciliationRun, now: datetime) -> int:
    """Alert every channel once about a reconciliation run that failed (other runs queue nothing)."""
    if run.status != "failed":
        return 0
    line = sources.RunLine(
        id=run.id,
        trigger=run.trigger,
        started_at=run.started_at,
        finished_at=run.finished_at,
        status=run.status,
        counts=run.counts,
        error=run.error,
    )
    period = Period(run.period_start, run.period_end)
    message = messages.run_failure_message(
        line, tenant=sources.tenant_name(session, tenant_id), period_label=period.label
    )
    channels = enabled_channels(session, tenant_id)
    return queue_to_channels(session, tenant_id, channels, rules.run_failure_key(run.id), message, now)


def queue_stale_source_alerts(
    session: Session, *, tenant_id: int, now: datetime, max_age_days: int = rules.STALE_AFTER_DAYS
) -> int:
    """Alert every channel once per statement source whose latest import is older than `max_age_days`."""
    max_age = timedelta(days=max_age_days)
    stale = [line for line in sources.latest_imports(session, tenant_id) if now - line.imported_at > max_age]
    channels = enabled_channels(session, tenant_id) if stale else []
    queued = 0
    for line in stale:
        message = messages.stale_source_message(
            line.source, line.imported_at, tenant=sources.tenant_name(session, tenant_id), now=now, max_age=max_age
        )
        queued += queue_to_channels(
            session, tenant_id, channels, rules.stale_source_key(line.source, line.imported_at), message, now
        )
    return queued


def queue_pull_failure_alert(
    session: Session, *, tenant_id: int, source: str, period: Period, error: str, now: datetime
) -> int:
    """Alert every channel about a scheduled pull that failed, once per source, period and day."""
    message = messages.pull_failed_message(
        source, period.label, error, tenant=sources.tenant_name(session, tenant_id), now=now
    )
    key = f"pull_failed:{source}:{period.label}:{now.date().isoformat()}"
    return queue_to_channels(session, tenant_id, enabled_channels(session, tenant_id), key, message, now)


def queue_delivery_failure_alert(session: Session, *, failed: AlertOutbox, channel_name: str, now: datetime) -> int:
    """Tell the tenant's other channels that an alert was given up on (not for a test message, nor for such an
    alert itself, so that a broken channel cannot start a chain)."""
    if failed.topic in ("delivery_failed", "test"):
        return 0
    others = [channel for channel in enabled_channels(session, failed.tenant_id) if channel.id != failed.channel_id]
    message = messages.delivery_failed_message(
        channel_name,
        failed.topic,
        str(failed.payload.get("title", "")),
        failed.last_error or "",
        attempts=failed.attempts,
        tenant=sources.tenant_name(session, failed.tenant_id),
    )
    return queue_to_channels(session, failed.tenant_id, others, f"delivery_failed:{failed.id}", message, now)


def queue_message(
    session: Session, *, tenant_id: int, channel: AlertChannel, key: str, message: Message, now: datetime
) -> int | None:
    """Queue one message to one channel; the new row's id, or None when that key was already queued."""
    statement = (
        insert(AlertOutbox)
        .values(
            tenant_id=tenant_id,
            channel_id=channel.id,
            topic=message.topic,
            dedupe_key=key,
            payload=message.as_payload(),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "channel_id", "dedupe_key"])
        .returning(AlertOutbox.id)
    )
    return session.scalar(statement)


PAGED_TOPICS = ("finding", "spend_spike", "finding_cleared", "run_failed", "stale_source", "pull_failed",
                "delivery_failed", "budget", "test")  # fmt: skip
"""What a PagerDuty channel hears: everything but the monthly report, which is nobody's incident."""


def queue_to_channels(
    session: Session, tenant_id: int, channels: list[AlertChannel], key: str, message: Message, now: datetime
) -> int:
    """Queue one message to each channel (that takes its topic); how many rows were new."""
    return sum(
        queue_message(session, tenant_id=tenant_id, channel=channel, key=key, message=message, now=now) is not None
        for channel in channels
        if channel.kind != "pagerduty" or message.topic in PAGED_TOPICS
    )


def queue_budget_alerts(session: Session, *, tenant_id: int, now: datetime) -> int:
    """Alert every channel when a budget's spend, or its month-end forecast, reaches 50, 80 or 100% in the month
    of `now`: the highest threshold reached, each threshold once per month and budget."""
    statuses = budget_statuses(session, tenant_id, now)
    channels = enabled_channels(session, tenant_id) if statuses else []
    period = Period.containing(now)
    queued = 0
    for status in statuses:
        for measure, threshold, figure in (
            ("spent", status.spent_threshold, status.spent),
            ("forecast", status.forecast_threshold, status.forecast),
        ):
            if threshold is None:
                continue
            message = messages.budget_message(
                status.label,
                measure,
                threshold,
                figure,
                status.amount,
                period.label,
                tenant=sources.tenant_name(session, tenant_id),
            )
            key = f"budget:{status.budget_id}:{period.label}:{measure}:{threshold}"
            queued += queue_to_channels(session, tenant_id, channels, key, message, now)
    return queued
