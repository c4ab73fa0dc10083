"""Scheduled work: pull statements, reconcile the current month daily, close the previous month, deliver
alerts. Jobs persist in PostgreSQL (APScheduler's SQLAlchemy job store), so a run missed while no instance
was up runs at start-up; a PostgreSQL advisory lock per job makes sure only one of several running instances
does the work."""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from ledger.clock import Clock, SystemClock
from ledger.periods import Period
from ledger.settings import Settings
from ledger.tables import Tenant
from reports.alerts import deliver_due, queue_stale_source_alerts
from reports.monthly import send_monthly_report

log = logging.getLogger("tokenledger.scheduler")
FETCHABLE_SOURCES = ("openai", "anthropic", "openrouter")
MISFIRE_GRACE_SECONDS = 7 * 24 * 3600


@dataclass
class _Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock


_runtime: _Runtime | None = None


def periods_due(now: datetime, close_month_day: int) -> list[Period]:
    """The current month, and the previous one while it is still being finalized (providers bill late)."""
    current = Period.containing(now)
    return [current.previous(), current] if now.day <= close_month_day else [current]


def configured_sources(environ: dict[str, str] | None = None) -> list[str]:
    """Statement sources whose admin key is in the environment."""
    from importers.registry import importer_for

    environ = dict(os.environ) if environ is None else environ
    return [source for source in FETCHABLE_SOURCES if environ.get(importer_for(source).credential_env or "")]


def statement_owner(tenants: list[tuple[int, str]], named: str | None) -> tuple[int, str] | None:
    """The tenant whose statements the environment's admin keys fetch: the one named in the settings, or the
    only tenant there is. (One set of admin keys is one provider organization: it is never copied into
    several tenants.)"""
    if named:
        return next((tenant for tenant in tenants if tenant[1] == named), None)
    return tenants[0] if len(tenants) == 1 else None


def with_job_lock(engine: Engine, name: str, work: Callable[[], None]) -> bool:
    """Run `work` only if no other instance holds the job's advisory lock; False when skipped."""
    key = zlib.crc32(f"tokenledger:{name}".encode())
    with engine.connect() as conn:
        if not conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}):
            log.info("job %s is running in another instance; skipped here", name)
            return False
        try:
            work()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()
    return True


def _tenants(runtime: _Runtime) -> list[tuple[int, str]]:
    with runtime.sessions() as session:
        return [(tenant.id, tenant.name) for tenant in session.scalars(select(Tenant).order_by(Tenant.id))]


def pull_statements() -> None:
    runtime = _require_runtime()

    def work() -> None:
        from ledger.importing import fetch_documents, importer_named, openrouter_request_ids, parse_documents
        from ledger.statements import store_statements

        now = runtime.clock.now()
        sources = configured_sources()
        owner = statement_owner(_tenants(runtime), runtime.settings.statement_tenant)
        if sources and owner is None:
            log.warning(
                "admin keys are set for %s but the tenant they belong to is not known: name it with "
                "TOKENLEDGER_STATEMENT_TENANT",
                ", ".join(sources),
            )
        if owner is not None:
            tenant_id, name = owner
            for source in sources:
                importer = importer_named(source, None)
                for period in periods_due(now, runtime.settings.close_month_day):
                    try:
                        with runtime.sessions.begin() as session:
                            ids = openrouter_request_ids(session, tenant_id, period) if source == "openrouter" else ()
                            documents = fetch_documents(
                                importer, period, settings=runtime.settings, now=now, request_ids=ids
                            )
                            lines = parse_documents(importer, documents)
                            store_statements(
                                session,
                                tenant_id=tenant_id,
                                source=source,
                                period=period,
                                documents=documents,
                                lines=lines,
                                now=now,
                            )
                    except Exception:
                        log.exception("pulling %s statements for %s %s failed", source, name, period.label)
        for tenant_id, _ in _tenants(runtime):
            with runtime.sessions.begin() as session:
                queue_stale_source_alerts(session, tenant_id=tenant_id, now=now)

    with_job_lock(runtime.engine, "pull_statements", work)


def reconcile_due(trigger: str = "schedule") -> None:
    runtime = _require_runtime()

    def work() -> None:
        from ledger.reconciliation import run_reconciliation

        now = runtime.clock.now()
        for period in periods_due(now, runtime.settings.close_month_day):
            for tenant_id, _ in _tenants(runtime):
                run_reconciliation(
                    runtime.sessions,
                    tenant_id=tenant_id,
                    period=period,
                    settings=runtime.settings,
                    now=now,
                    trigger=trigger,
                )

    with_job_lock(runtime.engine, "reconcile", work)


def close_previous_month() -> None:
    """Reconcile the previous month one last time and send its monthly report."""
    runtime = _require_runtime()

    def work() -> None:
        from ledger.reconciliation import run_reconciliation

        now = runtime.clock.now()
        period = Period.containing(now).previous()
        for tenant_id, _ in _tenants(runtime):
            run_reconciliation(
                runtime.sessions,
                tenant_id=tenant_id,
                period=period,
                settings=runtime.settings,
                now=now,
                trigger="close",
            )
            with runtime.sessions.begin() as session:
                send_monthly_report(session, tenant_id, period, now)

    with_job_lock(runtime.engine, "close_month", work)


def deliver_alerts() -> None:
    runtime = _require_runtime()

    def work() -> None:
        with httpx.Client(timeout=10) as http:
            deliver_due(runtime.sessions, now=runtime.clock.now(), http=http)

    with_job_lock(runtime.engine, "deliver_alerts", work)


def _require_runtime() -> _Runtime:
    if _runtime is None:
        raise RuntimeError("the scheduler runtime is not configured")
    return _runtime


def start_scheduler(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], clock: Clock | None = None
) -> BackgroundScheduler:
    """Start the background scheduler with the persistent job store; jobs are (re)registered idempotently."""
    global _runtime
    _runtime = _Runtime(settings, engine, sessions, clock or SystemClock())
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename="scheduler_jobs")},
        job_defaults={"coalesce": True, "misfire_grace_time": MISFIRE_GRACE_SECONDS, "max_instances": 1},
        timezone="UTC",
    )
    hour_pull, hour_reconcile = settings.statement_pull_hour_utc, settings.reconcile_hour_utc
    jobs = {
        "pull_statements": (pull_statements, CronTrigger(hour=hour_pull, minute=0, timezone="UTC")),
        "reconcile_current_month": (reconcile_due, CronTrigger(hour=hour_reconcile, minute=0, timezone="UTC")),
        "close_previous_month": (
            close_previous_month,
            CronTrigger(day=settings.close_month_day, hour=hour_reconcile, minute=30, timezone="UTC"),
        ),
        "deliver_alerts": (deliver_alerts, IntervalTrigger(seconds=30)),
    }
    scheduler.start(paused=True)
    for job_id, (function, trigger) in jobs.items():
        stored = scheduler.get_job(job_id)
        if stored is None:
            scheduler.add_job(function, trigger, id=job_id)
        elif str(stored.trigger) != str(trigger):
            scheduler.reschedule_job(job_id, trigger=trigger)
        # else: keep the stored next run time, so a run missed while no instance was up runs now
    scheduler.resume()
    return scheduler
