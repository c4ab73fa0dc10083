"""The entry point: check the inputs, match, detect, resolve overlaps, summarise drift. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.periods import Period
from ledger.reconcile.context import DetectionContext
from ledger.reconcile.detectors import DETECTORS
from ledger.reconcile.drift import drift_rows
from ledger.reconcile.matching import compare, merge_midnight_shifts
from ledger.reconcile.model import BilledDay, LoggedDay, ReconcileInputError, ReconcileResult, ReconcileSettings
from ledger.reconcile.overlaps import resolve_overlaps


def reconcile(
    logged: Sequence[LoggedDay],
    billed: Sequence[BilledDay],
    *,
    period: Period,
    settings: ReconcileSettings,
    history: Sequence[LoggedDay] = (),
) -> ReconcileResult:
    """Reconcile one period. `logged` and `billed` hold that period's days; `history` holds logged days
    before it (the baseline of statistical detectors such as spend spikes). Every row is checked here, once
    (`_checked_inputs`): a bad one raises `ReconcileInputError` naming it and its field."""
    logged, billed, history = _checked_inputs(logged, billed, history, period)
    comparisons = compare(logged, billed)
    context = DetectionContext(
        period=period,
        settings=settings,
        logged=tuple(logged),
        history=tuple(history),
        comparisons=tuple(comparisons),
        buckets=tuple(merge_midnight_shifts(comparisons, settings)),
    )
    findings = [finding for detector in DETECTORS for finding in detector.detect(context)]
    return ReconcileResult(
        findings=tuple(resolve_overlaps(findings)),
        drift=tuple(drift_rows(comparisons, logged, period)),
        comparisons=tuple(comparisons),
    )


def _checked_inputs(
    logged: Sequence[LoggedDay], billed: Sequence[BilledDay], history: Sequence[LoggedDay], period: Period
) -> tuple[list[LoggedDay], list[BilledDay], list[LoggedDay]]:
    """Every input row checked, once (`LoggedDay.checked`, `BilledDay.checked`), and its day in the period
    (history: before it); the first bad row is refused with its index and field named."""
    days = frozenset(period.days())
    first_day = period.start.date()
    checked_logged = []
    for index, row in enumerate(logged):
        _require_type(row, LoggedDay, f"logged[{index}]")
        checked_logged.append(row.checked())
        if row.day not in days:
            raise ReconcileInputError(f"logged[{index}].day: {row.day} is outside the period {period.label}")
    checked_billed = []
    for index, billed_row in enumerate(billed):
        _require_type(billed_row, BilledDay, f"billed[{index}]")
        checked_billed.append(billed_row.checked())
        if billed_row.day not in days:
            raise ReconcileInputError(f"billed[{index}].day: {billed_row.day} is outside the period {period.label}")
    checked_history = []
    for index, row in enumerate(history):
        _require_type(row, LoggedDay, f"history[{index}]")
        checked_history.append(row.checked())
        if row.day >= first_day:
            raise ReconcileInputError(f"history[{index}].day: {row.day} is not before the period {period.label}")
    return checked_logged, checked_billed, checked_history


def _require_type(row: object, kind: type, where: str) -> None:
    if not isinstance(row, kind):
        raise ReconcileInputError(f"{where}: expected {kind.__name__}, got {type(row).__name__}")
