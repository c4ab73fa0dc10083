"""Silencing alerts: a finding, or every finding of a scope (kind, provider, account), muted until a date.
Services take a session and never commit; `silencing` is pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import InvalidRequest, NotFound
from ledger.queries.findings import KINDS, get_finding
from ledger.storage.tables import AlertSilence, Finding


@dataclass(frozen=True, slots=True)
class Scope:
    """What a silence covers: the fields given must all match."""

    fingerprint: str | None = None
    kind: str | None = None
    provider: str | None = None
    account: str | None = None


def silencing(silences: Iterable[AlertSilence], finding: Finding, now: datetime) -> AlertSilence | None:
    """The silence in force at `now` that covers the finding, if any."""
    values = {
        "fingerprint": finding.fingerprint,
        "kind": finding.kind,
        "provider": finding.provider,
        "account": finding.account,
    }
    for silence in silences:
        if silence.until > now and all(
            getattr(silence, field) is None or getattr(silence, field) == value for field, value in values.items()
        ):
            return silence
    return None


def silences_in_force(session: Session, tenant_id: int, now: datetime) -> list[AlertSilence]:
    query = select(AlertSilence).where(AlertSilence.tenant_id == tenant_id, AlertSilence.until > now)
    return list(session.scalars(query.order_by(AlertSilence.until, AlertSilence.id)))


def mute(
    session: Session,
    tenant_id: int,
    *,
    finding_id: int | None,
    scope: Scope,
    until: datetime,
    reason: str | None,
    now: datetime,
) -> AlertSilence:
    """Mute one finding (by id) or a scope until `until`."""
    if until <= now:
        raise InvalidRequest(f"--until must be in the future, got {until.isoformat()}")
    if finding_id is not None:
        if scope != Scope():
            raise InvalidRequest("mute either a --finding or a scope (--kind, --provider, --account), not both")
        scope = Scope(fingerprint=get_finding(session, tenant_id, finding_id).fingerprint)
    elif scope == Scope():
        raise InvalidRequest("name what to mute: --finding ID, or --kind, --provider and/or --account")
    if scope.kind is not None and scope.kind not in KINDS:
        raise InvalidRequest(f"--kind must be one of {', '.join(KINDS)}, got {scope.kind!r}")
    silence = AlertSilence(
        tenant_id=tenant_id,
        fingerprint=scope.fingerprint,
        kind=scope.kind,
        provider=scope.provider,
        account=scope.account,
        until=until,
        reason=reason,
        created_at=now,
    )
    session.add(silence)
    session.flush()
    return silence


def unmute(session: Session, tenant_id: int, silence_id: int) -> None:
    silence = session.get(AlertSilence, (tenant_id, silence_id))
    if silence is None:
        raise NotFound(f"no silence #{silence_id}")
    session.delete(silence)
    session.flush()
