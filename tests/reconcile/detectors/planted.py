"""One realistic month for planting anomalies: three keys (gpt-5.4, gpt-5.4-mini, claude-sonnet-4-6) billed
exactly (`tests.reconcile.month`). A detector's test plants one anomaly on one key and checks that the finding
carries the right numbers and that the other keys stay clean."""

from __future__ import annotations

import json

from ledger.reconcile import Finding, LoggedDay, ReconcileResult
from tests.reconcile.month import month, statement

LOGGED = month()
BILLED = statement(LOGGED)
BY_DAY = {(r.day, r.api_key_id): r for r in LOGGED}


def only(result: ReconcileResult, kind: str) -> Finding:
    """The single finding of the run, which must be of `kind`: every other key stays clean."""
    assert [(f.kind, f.api_key_id) for f in result.findings] == [(kind, result.findings[0].api_key_id)]
    finding = result.findings[0]
    json.dumps(dict(finding.evidence))  # evidence is JSON as it stands
    return finding


def logged_of(key: str, day_from: int = 1, day_to: int = 31) -> list[LoggedDay]:
    return [r for r in LOGGED if r.api_key_id == key and day_from <= r.day.day <= day_to]
