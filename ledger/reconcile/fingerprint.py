"""Finding fingerprints: a stable hash of kind + scope + subject + period, so a re-run of the same period
updates a stored finding instead of adding a duplicate, and a different period or scope never collides."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from ledger.reconcile.model import DIMENSIONS, Scope


def fingerprint(kind: str, scope: Scope, subject: str, period_start: datetime, period_end: datetime) -> str:
    """Hex SHA-256 (32 chars) of the canonical JSON of the identifying fields; instants are compared in UTC."""
    payload = [
        kind,
        scope.provider,
        *(getattr(scope, name) for name in DIMENSIONS),
        subject,
        period_start.astimezone(UTC).isoformat(),
        period_end.astimezone(UTC).isoformat(),
    ]
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
