"""Findings as people work with them: list with filters, read one with its history, change its status with a
note. Services take a session and never commit; the reconciler writes findings, this module only reads them
and records status changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session, defer

from ledger.display import plain_decimal
from ledger.errors import InvalidRequest, NotFound
from ledger.periods import Period
from ledger.reconcile.detectors import DETECTORS
from ledger.storage.tables import BIGINT_MAX, Finding, FindingChange

STATUSES = ("open", "acknowledged", "resolved", "disputed")
SEVERITIES = ("info", "warning", "critical")
"""Severity levels, least to most severe."""
MAX_NOTE_CHARS = 4_000
KINDS = tuple(detector.KIND for detector in DETECTORS)


def severity_rank(severity: str) -> int:
    """0 for info, 1 for warning, 2 for critical; an unknown level ranks below info."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


@dataclass(frozen=True, slots=True)
class FindingFilter:
    """Which findings to list; None means any. A period selects findings whose period overlaps it."""

    period: Period | None = None
    kind: str | None = None
    provider: str | None = None
    status: str | None = None
    severity: str | None = None

    def __post_init__(self) -> None:
        if self.provider is not None and "\x00" in self.provider:
            raise InvalidRequest("provider holds a NUL character")
        if self.kind is not None and self.kind not in KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.status is not None and self.status not in STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if self.severity is not None and self.severity not in SEVERITIES:
            raise InvalidRequest(f"severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")


_SEVERITY_ORDER = case({level: rank for rank, level in enumerate(SEVERITIES)}, value=Finding.severity, else_=-1)


def list_findings(
    session: Session, tenant_id: int, filters: FindingFilter, *, limit: int = 1_000, with_evidence: bool = True
) -> list[Finding]:
    """The tenant's findings that match, most severe and costly first (without loading their evidence when
    `with_evidence` is False: reading it then raises)."""
    query = select(Finding).where(Finding.tenant_id == tenant_id)
    if not with_evidence:
        query = query.options(defer(Finding.evidence, raiseload=True))
    if filters.period is not None:
        query = query.where(Finding.period_start < filters.period.end, Finding.period_end > filters.period.start)
    for column, value in (
        (Finding.kind, filters.kind),
        (Finding.provider, filters.provider),
        (Finding.status, filters.status),
        (Finding.severity, filters.severity),
    ):
        if value:
            query = query.where(column == value)
    query = query.order_by(_SEVERITY_ORDER.desc(), Finding.impact_usd.desc(), Finding.id).limit(limit)
    return list(session.scalars(query))


def get_finding(session: Session, tenant_id: int, finding_id: int, *, for_update: bool = False) -> Finding:
    """One finding of the tenant; another tenant's finding is NotFound, like a missing one."""
    if not 1 <= finding_id <= BIGINT_MAX:  # no such id can exist (and PostgreSQL would refuse to compare it)
        raise NotFound(f"no finding with id {finding_id}")
    query = select(Finding).where(Finding.tenant_id == tenant_id, Finding.id == finding_id)
    finding = session.scalar(query.with_for_update() if for_update else query)
    if finding is None:
        raise NotFound(f"no finding with id {finding_id}")
    return finding


def status_history(session: Session, tenant_id: int, finding_id: int) -> list[FindingChange]:
    """The finding's status changes, oldest first."""
    query = (
        select(FindingChange)
        .where(FindingChange.tenant_id == tenant_id, FindingChange.finding_id == finding_id)
        .order_by(FindingChange.changed_at, FindingChange.id)
    )
    return list(session.scalars(query))


def change_status(
    session: Session, tenant_id: int, finding_id: int, *, status: str, note: str | None, actor: str, now: datetime
) -> FindingChange:
    """Set the finding's status (and its note, when one is given) and record who did it, from what, and why."""
    if status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    note = note.strip() if note and note.strip() else None
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise InvalidRequest(f"note is {len(note)} characters; at most {MAX_NOTE_CHARS}")
    if note is not None and "\x00" in note:
        raise InvalidRequest("note holds a NUL character, which cannot be stored")
    finding = get_finding(session, tenant_id, finding_id, for_update=True)
    change = FindingChange(
        tenant_id=tenant_id,
        finding_id=finding.id,
        changed_at=now,
        from_status=finding.status,
        to_status=status,
        note=note,
        actor=actor,
    )
    was = finding.status
    finding.status = status
    if note is not None:
        finding.note = note
    session.add(change)
    session.flush()
    if status == "resolved" and was != "resolved":
        from ledger.alerts import queue_finding_cleared  # here: reports builds on this module

        queue_finding_cleared(session, tenant_id=tenant_id, finding=finding, now=now)
    return change


def finding_json(finding: Finding) -> dict[str, Any]:
    """A finding as the JSON API shows it: money as a decimal string, instants in ISO 8601."""
    return {
        "id": finding.id,
        "kind": finding.kind,
        "severity": finding.severity,
        "provider": finding.provider,
        "account": finding.account,
        "api_key_id": finding.api_key_id,
        "model": finding.model,
        "period_start": finding.period_start.isoformat(),
        "period_end": finding.period_end.isoformat(),
        "impact_usd": plain_decimal(finding.impact_usd),
        "evidence": finding.evidence,
        "summary": finding.summary,
        "status": finding.status,
        "note": finding.note,
        "first_seen": finding.first_seen.isoformat(),
        "last_seen": finding.last_seen.isoformat(),
    }


def change_json(change: FindingChange) -> dict[str, Any]:
    return {
        "changed_at": change.changed_at.isoformat(),
        "from_status": change.from_status,
        "to_status": change.to_status,
        "note": change.note,
        "actor": change.actor,
    }
