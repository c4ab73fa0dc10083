"""The reconciler's detection core: pure functions from logged and billed days to findings, drift rows
and comparisons. See README.md in this package for the invariants."""

from ledger.reconcile.detectors import DETECTORS, Detector
from ledger.reconcile.fingerprint import fingerprint
from ledger.reconcile.model import (
    CATEGORIES,
    BilledDay,
    Comparison,
    DriftRow,
    Finding,
    FinishCounts,
    LoggedDay,
    LoggedTotals,
    ReconcileInputError,
    ReconcileResult,
    ReconcileSettings,
    Scope,
    TokenCounts,
    TruncationStats,
)
from ledger.reconcile.reconciler import reconcile

__all__ = [
    "CATEGORIES",
    "DETECTORS",
    "BilledDay",
    "Comparison",
    "Detector",
    "DriftRow",
    "Finding",
    "FinishCounts",
    "LoggedDay",
    "LoggedTotals",
    "ReconcileInputError",
    "ReconcileResult",
    "ReconcileSettings",
    "Scope",
    "TokenCounts",
    "TruncationStats",
    "fingerprint",
    "reconcile",
]
