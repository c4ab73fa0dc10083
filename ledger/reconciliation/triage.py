"""Triage: people's changes to a finding's status (acknowledged, resolved, disputed, open again), each with who
made it and why, kept as its history. Resolving a finding queues its "cleared" alert in the same transaction.
Services take a session and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ledger.alerts import queue_finding_cleared
from ledger.errors import InvalidRequest
from ledger.queries.findings import STATUSES, get_finding
from ledger.storage.tables import FindingChange

MAX_NOTE_CHARS = 4_000


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
        queue_finding_cleared(session, tenant_id=tenant_id, finding=finding, now=now)
    return change
