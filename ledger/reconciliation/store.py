"""Storing a run's results: the period's drift rows replaced, findings inserted or updated by fingerprint, and
alerts queued for findings that are new or worse and for failed runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from ledger.alerts import enabled_channels, queue_finding_alert, queue_run_failure_alert
from ledger.events.schema import json_text
from ledger.periods import Period
from ledger.reconcile.drift import per_account_and_model
from ledger.reconcile.model import DriftRow as DriftResult
from ledger.reconcile.model import Finding as FindingResult
from ledger.reconcile.model import ReconcileResult
from ledger.storage.tables import AlertChannel, DriftRow, Finding, ReconciliationRun


def store_results(
    session: Session, *, tenant_id: int, period: Period, result: ReconcileResult, run_id: int, now: datetime
) -> dict[str, int]:
    _store_drift(session, tenant_id, period, result.drift, now)
    created = _upsert_findings(session, tenant_id, result.findings, run_id, now)
    counts = {
        "findings": len(result.findings),
        "new_findings": created,
        "updated_findings": len(result.findings) - created,
        "drift_rows": len(result.drift),
        "comparisons": len(result.comparisons),
    }
    for finding in result.findings:
        counts[f"kind:{finding.kind}"] = counts.get(f"kind:{finding.kind}", 0) + 1
    return counts


def _store_drift(session: Session, tenant_id: int, period: Period, drift: Sequence[DriftResult], now: datetime) -> None:
    session.execute(delete(DriftRow).where(DriftRow.tenant_id == tenant_id, DriftRow.period_start == period.start))
    rows = [
        {
            "tenant_id": tenant_id,
            "period_start": period.start,
            "provider": row.provider,
            "account": row.account or "",
            "model": row.model or "",
            "period_end": period.end,
            "logged_tokens": row.logged_total_tokens,
            "billed_tokens": row.billed_total_tokens,
            "logged_by_category": dict(row.logged_tokens),
            "billed_by_category": dict(row.billed_tokens),
            "expected_cost": row.expected_cost,
            "billed_cost": row.billed_cost,
            "difference": row.difference,
            "percent": row.percent,
            "note": row.note or None,
            "currency": "USD",
            "computed_at": now,
        }
        for row in per_account_and_model(drift)
    ]
    if rows:  # one statement, its parameter sets sent in one pipeline by the driver
        session.execute(insert(DriftRow), rows)


def _json_rows(rows: list[dict[str, Any]]) -> str:
    """Rows for `_from_json_rows` as one JSON array: Decimals and datetimes as strings, which PostgreSQL reads
    into the columns' numeric and timestamptz types digit for digit."""
    return json_text([{name: _json_scalar(value) for name, value in row.items()} for row in rows])


def _json_scalar(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _from_json_rows(table: Any, columns: Sequence[str]) -> str:
    """INSERT … SELECT of `columns` of `table` from the JSON array parameter `:rows` (see `_json_rows`): one
    statement text whatever the number of rows, so it is parsed once per process, not once per run."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    typed = ", ".join(f"{name} {table.c[name].type.compile(dialect=dialect)}" for name in columns)
    names = ", ".join(columns)
    return (
        f"INSERT INTO {table.name} ({names}) SELECT {names} "
        f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS row({typed})"
    )


_FINDING_COLUMNS = [column.name for column in Finding.__table__.c if column.name not in ("id", "note")]
_KEPT_ON_UPDATE = ("tenant_id", "fingerprint", "status", "first_seen")
"""Insert a finding, or update the one with its fingerprint, keeping what a person set (status, and the note,
which is not written at all) and when it was first seen."""
_UPSERT_FINDINGS = text(
    _from_json_rows(Finding.__table__, _FINDING_COLUMNS)
    + " ON CONFLICT (tenant_id, fingerprint) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _FINDING_COLUMNS if name not in _KEPT_ON_UPDATE)
)
_UPSERT_FINDINGS_RETURNING = select(Finding).from_statement(text(_UPSERT_FINDINGS.text + " RETURNING findings.*"))
"""The same, returning the stored findings (for their alerts)."""


def _upsert_findings(
    session: Session, tenant_id: int, findings: Sequence[FindingResult], run_id: int, now: datetime
) -> int:
    """Insert new findings and update those with the same fingerprint (keeping the status a person gave
    them), in one statement. Queues an alert for each that is new or worse than before. Returns how many
    were new."""
    if not findings:
        return 0
    fingerprints = [finding.fingerprint for finding in findings]
    previous = {
        row.fingerprint: row
        for row in session.execute(
            select(Finding.fingerprint, Finding.severity, Finding.impact_usd).where(
                Finding.tenant_id == tenant_id, Finding.fingerprint.in_(fingerprints)
            )
        )
    }
    values = [
        {
            "tenant_id": tenant_id,
            "fingerprint": finding.fingerprint,
            "status": "open",
            "first_seen": now,
            "kind": finding.kind,
            "severity": finding.severity,
            "provider": finding.provider,
            "account": finding.account,
            "api_key_id": finding.api_key_id,
            "model": finding.model,
            "period_start": finding.period_start,
            "period_end": finding.period_end,
            "impact_usd": finding.impact_usd,
            "evidence": dict(finding.evidence),
            "summary": finding.summary,
            "last_seen": now,
            "last_run_id": run_id,
        }
        for finding in findings
    ]
    rows = {"rows": _json_rows(values)}
    channels = enabled_channels(session, tenant_id)
    if not channels:
        session.execute(_UPSERT_FINDINGS, rows)
    else:
        stored = {finding.fingerprint: finding for finding in session.scalars(_UPSERT_FINDINGS_RETURNING, rows)}
        for fingerprint in fingerprints:
            _queue_finding_alert(session, tenant_id, stored[fingerprint], previous.get(fingerprint), now, channels)
    return sum(fingerprint not in previous for fingerprint in fingerprints)


def _queue_finding_alert(
    session: Session, tenant_id: int, finding: Finding, previous: Any, now: datetime, channels: list[AlertChannel]
) -> None:
    queue_finding_alert(
        session,
        tenant_id=tenant_id,
        finding=finding,
        previous_severity=None if previous is None else previous.severity,
        previous_impact=None if previous is None else previous.impact_usd,
        now=now,
        channels=channels,
    )


def queue_failure_alert(session: Session, tenant_id: int, run: ReconciliationRun, now: datetime) -> None:
    queue_run_failure_alert(session, tenant_id=tenant_id, run=run, now=now)
