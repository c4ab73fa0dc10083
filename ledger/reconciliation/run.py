"""Running the reconciler for a tenant and period: load logged usage (`ledger.queries.logged_days`) and
billed usage (`ledger.queries.billed_days`), run the pure detection core, and store drift rows and findings
(`ledger.reconciliation.store`). Each run is recorded in `reconciliation_runs`, failed ones included."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from ledger.periods import Period
from ledger.pricing.catalog import load_catalog
from ledger.pricing.model_aliases import ProbableAlias, apply_aliases, probable_aliases, with_probable_aliases
from ledger.pricing.prices import PriceCatalog, pricing_provider_of
from ledger.queries.billed_days import billed_days, billed_rows
from ledger.queries.logged_days import logged_days, segment_sums
from ledger.queries.logged_prices import hourly_models
from ledger.reconcile.model import BilledDay, LoggedDay, ReconcileResult, ReconcileSettings
from ledger.reconcile.reconciler import reconcile
from ledger.reconciliation.side_reader import side_reader
from ledger.reconciliation.store import queue_failure_alert, store_results
from ledger.settings import Settings
from ledger.storage.database import take_turns
from ledger.storage.tables import ReconciliationRun

log = logging.getLogger("tokenledger.reconcile")

HISTORY_DAYS = 28
"""Days before the period whose logged usage the detectors compare it with."""


def reconcile_settings(settings: Settings) -> ReconcileSettings:
    return ReconcileSettings(
        token_rel_tolerance=settings.tolerance_relative,
        token_abs_tolerance=settings.tolerance_tokens,
        money_rel_tolerance=settings.tolerance_relative,
        money_abs_tolerance=settings.tolerance_usd,
    )


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    status: str
    counts: dict[str, int]
    error: str | None
    result: ReconcileResult | None


def run_reconciliation(
    sessions: sessionmaker[Session],
    *,
    tenant_id: int,
    period: Period,
    settings: Settings,
    now: datetime,
    trigger: str = "manual",
) -> RunOutcome:
    """Reconcile and store the results in one transaction; the run row is committed either way. It finishes at
    `now` plus the time the run took (measured on the monotonic clock: `now` is when it started)."""
    began = time.monotonic()

    def finished_at() -> datetime:
        return now + timedelta(seconds=time.monotonic() - began)

    with sessions.begin() as session:
        run = ReconciliationRun(
            tenant_id=tenant_id,
            period_start=period.start,
            period_end=period.end,
            trigger=trigger,
            started_at=now,
            status="running",
            counts={},
        )
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        with sessions.begin() as session:
            _wait_for_other_runs(session, tenant_id, period)
            result = reconcile_period(session, tenant_id=tenant_id, period=period, settings=settings)
            counts = store_results(session, tenant_id=tenant_id, period=period, result=result, run_id=run_id, now=now)
            finished = session.get(ReconciliationRun, (tenant_id, run_id))
            assert finished is not None
            finished.status, finished.finished_at, finished.counts = "succeeded", finished_at(), counts
        return RunOutcome(run_id, "succeeded", counts, None, result)
    except Exception as error:
        log.exception("reconciliation of %s for tenant %s failed", period.label, tenant_id)
        message = failure_message(error)
        with sessions.begin() as session:
            failed = session.get(ReconciliationRun, (tenant_id, run_id))
            assert failed is not None
            failed.status, failed.finished_at, failed.error = "failed", finished_at(), message[:2000]
            queue_failure_alert(session, tenant_id, failed, now)
        return RunOutcome(run_id, "failed", {}, message, None)


def _wait_for_other_runs(session: Session, tenant_id: int, period: Period) -> None:
    """Runs of one tenant's period take turns (a transaction-scoped advisory lock): two at once, from the API,
    the CLI and the scheduler, would each replace the period's drift rows and collide. The second one waits,
    then reconciles what is there by then."""
    take_turns(session, "reconcile", tenant_id, period.start.isoformat(), period.end.isoformat())


def failure_message(error: Exception) -> str:
    """What a failed run records and shows: the error's own words; for a database error, the server's message
    without the statement and its parameters (a page of SQL, and the tenant's figures, belong in the log)."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        return f"{type(error.orig).__name__}: {str(error.orig).strip()}"
    return f"{type(error).__name__}: {error}"


def reconcile_period(session: Session, *, tenant_id: int, period: Period, settings: Settings) -> ReconcileResult:
    """Load both sides and run the detection core (no writes). The price segments' sums and the statement
    lines are read on a second connection while this one reads and folds the daily rollup: each read sees
    the data committed when it starts, as separate statements of one READ COMMITTED transaction would."""
    catalog = load_catalog(session, tenant_id)
    history_window = Period(period.start - timedelta(days=HISTORY_DAYS), period.end)
    hourly = hourly_models(session, tenant_id, history_window, catalog)
    with side_reader(session) as side:
        segment_rows = side.submit(segment_sums, tenant_id, history_window, catalog, hourly)
        billed = side.submit(billed_rows, tenant_id, period)
        logged_all = logged_days(session, tenant_id, history_window, catalog, hourly, segment_rows.result)
        billed_all = billed_days(billed.result())
    first_day = period.start.date()
    logged = [row for row in logged_all if row.day >= first_day]
    history = [row for row in logged_all if row.day < first_day]
    tolerances = reconcile_settings(settings)
    billed_all, probable = _resolve_labels(billed_all, logged, catalog, tolerances)
    result = reconcile(logged, billed_all, period=period, settings=tolerances, history=history)
    if not probable:
        return result
    notes: dict[tuple[str, str | None, str | None], str] = {
        (alias.provider, alias.account, alias.model): alias.note for alias in probable
    }
    drift = tuple(
        replace(row, note=note) if (note := notes.get((row.provider, row.account, row.model))) else row
        for row in result.drift
    )
    return replace(result, drift=drift)


def _resolve_labels(
    billed: list[BilledDay], logged: list[LoggedDay], catalog: PriceCatalog, tolerances: ReconcileSettings
) -> tuple[list[BilledDay], list[ProbableAlias]]:
    """Billed days with the tenant's aliases applied, and unmatched labels that are probably a logged model
    compared as that model (`ledger.pricing.model_aliases`)."""
    billed = apply_aliases(billed, catalog.aliases)
    logged_models = {(row.provider, model) for row in logged for model in (row.model, row.request_model)}
    unmatched = {
        (day.provider, day.model)
        for day in billed
        if day.model is not None
        and (day.provider, day.model) not in logged_models
        and catalog.resolve(pricing_provider_of(day.provider, day.model), day.model) is None
    }
    if not unmatched:
        return billed, []
    probable = probable_aliases(logged, billed, unmatched, tolerances)
    return with_probable_aliases(billed, probable), probable
