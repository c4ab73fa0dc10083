"""The entry point: match, detect, resolve overlaps, summarise drift. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter

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
    before it (the baseline of statistical detectors such as spend spikes)."""
    _check_inputs(logged, billed, history, period)
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


def _check_inputs(
    logged: Sequence[LoggedDay], billed: Sequence[BilledDay], history: Sequence[LoggedDay], period: Period
) -> None:
    days = frozenset(period.days())
    for name, rows, kind in (("logged", logged, LoggedDay), ("billed", billed, BilledDay)):
        if all(map(isinstance, rows, repeat(kind))) and days.issuperset(map(_day, rows)):
            continue  # the common case, in two C-level sweeps; else the first bad row is named
        for index, row in enumerate(rows):
            if not isinstance(row, kind):
                raise ReconcileInputError(f"{name}[{index}]: expected {kind.__name__}, got {type(row).__name__}")
            if row.day not in days:
                raise ReconcileInputError(f"{name}[{index}].day: {row.day} is outside the period {period.label}")
    for index, row in enumerate(history):
        if not isinstance(row, LoggedDay):
            raise ReconcileInputError(f"history[{index}]: expected LoggedDay, got {type(row).__name__}")
        if row.day >= period.start.date():
            raise ReconcileInputError(f"history[{index}].day: {row.day} is not before the period {period.label}")


_day = attrgetter("day")
