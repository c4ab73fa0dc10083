"""Scheduled work, led by one replica per database.

Every replica runs an APScheduler `BackgroundScheduler` whose jobs live in memory (no shared job store, so
replicas starting together never collide over one); its jobs only trigger, and what they do is decided here.
The replica holding the PostgreSQL advisory lock `LEADER_LOCK` (on a connection of its own) leads; the others
try to take it every few seconds, so when the leader stops or dies, its connection closes, PostgreSQL releases
the lock and another replica takes over. Nothing is created at start-up but rows: any number of replicas may
start at the same instant. The leader

- runs the daily job at `TOKENLEDGER_STATEMENT_PULL_HOUR_UTC`: pull the statements, then reconcile the months
  due, then close the previous month once its close day has come, then alert the budgets reached. One job, in
  that order, so a reconcile always sees the statements pulled before it, however long the pull takes, after
  downtime too;
- delivers alerts as they fall due (`ledger.alerts.Deliverer`: each channel on a worker of its own).

`scheduled_jobs` holds the daily job's next run, advanced only once a run has finished: a run missed while no
replica was up, or cut short by its leader's death, is due when a leader next looks, and runs once however
many days were missed.
"""

from __future__ import annotations

import calendar
import logging
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from ledger.alerts import Deliverer, queue_budget_alerts, queue_stale_source_alerts
from ledger.alerts.outbox import queue_pull_failure_alert
from ledger.clock import Clock, SystemClock
from ledger.periods import Period
from ledger.service.metrics import SchedulerMetrics
from ledger.settings import Settings
from ledger.storage.database import CONNECT_ARGS
from ledger.storage.tables import ReconciliationRun, ScheduledJob, Tenant

log = logging.getLogger("tokenledger.scheduler")
FETCHABLE_SOURCES = ("openai", "anthropic", "openrouter")
LEADER_LOCK = 0x746C_6C64  # "tlld"
DAILY_JOB = "daily"
LEADERSHIP_RETRY_SECONDS = 2.0
TICK_SECONDS = 1.0
# The server notices a leader whose host vanished (no FIN, no RST) within ~25 s and releases its lock.
_OPTIONS = f"{CONNECT_ARGS['options']} -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"


def close_day(now: datetime, close_month_day: int) -> int:
    """The day of `now`'s month on which the previous month closes: `close_month_day`, or the month's last
    day when it is shorter (a close day of 31 closes on 28 February)."""
    return min(close_month_day, calendar.monthrange(now.year, now.month)[1])


def periods_due(now: datetime, close_month_day: int) -> list[Period]:
    """The current month, and the previous one until it closes (providers bill late)."""
    current = Period.containing(now)
    return [current.previous(), current] if now.day <= close_day(now, close_month_day) else [current]


def next_daily_run(after: datetime, hour: int) -> datetime:
    """The first `hour`:00 UTC strictly after `after`."""
    candidate = after.replace(hour=hour, minute=0, second=0, microsecond=0)
    return candidate if candidate > after else candidate + timedelta(days=1)


def daily_schedule(hour: int) -> str:
    return f"daily at {hour:02d}:00 UTC"


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
    """Run `work` only if no other process holds the job's advisory lock; False when skipped."""
    key = zlib.crc32(f"tokenledger:{name}".encode())
    with engine.connect() as conn:
        if not conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}):
            log.info("job %s is running in another process; skipped here", name)
            return False
        try:
            work()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()
    return True


MonthlyReportSender = Callable[[Session, int, Period, datetime], object]
"""Queues a tenant's report of a closed period (session, tenant id, period, now) in the caller's transaction; the
report itself is the `reports` package's (`reports.monthly.send_monthly_report`), handed in by the composition
root (`ledger.server`)."""


@dataclass
class ScheduledWork:
    """What the jobs do, each reading the clock when it starts."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    monthly_report: MonthlyReportSender

    def tenants(self) -> list[tuple[int, str]]:
        with self.sessions() as session:
            return [(tenant.id, tenant.name) for tenant in session.scalars(select(Tenant).order_by(Tenant.id))]

    def daily(self) -> None:
        """Pull, then reconcile, then close, then alert the budgets reached: each step sees what the one before
        it committed."""
        now = self.clock.now()
        self.pull_statements()
        closing = self.tenants_to_close(now)
        to_close = Period.containing(now).previous()
        for period in periods_due(now, self.settings.close_month_day):
            skipped = closing if period == to_close else set()
            self.reconcile(period, [tenant for tenant, _ in self.tenants() if tenant not in skipped], "schedule")
        if closing:
            self.close_previous_month(closing)
        for tenant_id, _ in self.tenants():
            with self.sessions.begin() as session:
                queue_budget_alerts(session, tenant_id=tenant_id, now=self.clock.now())

    def pull_statements(self) -> None:
        from ledger.statements.importing import fetch_documents, importer_named, openrouter_request_ids, parse_documents
        from ledger.statements.store import store_statements

        now = self.clock.now()
        sources = configured_sources()
        owner = statement_owner(self.tenants(), self.settings.statement_tenant)
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
                for period in periods_due(now, self.settings.close_month_day):
                    try:
                        with self.sessions.begin() as session:
                            ids = openrouter_request_ids(session, tenant_id, period) if source == "openrouter" else ()
                            documents = fetch_documents(
                                importer, period, settings=self.settings, now=now, request_ids=ids
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
                    except Exception as error:
                        log.exception("pulling %s statements for %s %s failed", source, name, period.label)
                        said = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                        with self.sessions.begin() as session:
                            queue_pull_failure_alert(
                                session, tenant_id=tenant_id, source=source, period=period, error=said, now=now
                            )
        for tenant_id, _ in self.tenants():
            with self.sessions.begin() as session:
                queue_stale_source_alerts(session, tenant_id=tenant_id, now=now)

    def reconcile(self, period: Period, tenant_ids: list[int], trigger: str) -> None:
        from ledger.reconciliation.run import run_reconciliation

        for tenant_id in tenant_ids:
            run_reconciliation(
                self.sessions,
                tenant_id=tenant_id,
                period=period,
                settings=self.settings,
                now=self.clock.now(),
                trigger=trigger,
            )

    def tenants_to_close(self, now: datetime) -> set[int]:
        """Tenants whose previous month is due to close (its close day has come) and has not closed yet."""
        if now.day < close_day(now, self.settings.close_month_day):
            return set()
        period = Period.containing(now).previous()
        with self.sessions() as session:
            closed = set(
                session.scalars(
                    select(ReconciliationRun.tenant_id).where(
                        ReconciliationRun.period_start == period.start,
                        ReconciliationRun.trigger == "close",
                        ReconciliationRun.status == "succeeded",
                    )
                )
            )
        return {tenant for tenant, _ in self.tenants() if tenant not in closed}

    def close_previous_month(self, tenant_ids: set[int] | None = None) -> None:
        """Reconcile the previous month one last time and send its monthly report (of every tenant, or those
        given); the report is queued once however often this runs."""
        now = self.clock.now()
        period = Period.containing(now).previous()
        for tenant_id, _ in self.tenants():
            if tenant_ids is not None and tenant_id not in tenant_ids:
                continue
            self.reconcile(period, [tenant_id], "close")
            with self.sessions.begin() as session:
                self.monthly_report(session, tenant_id, period, now)


class Leadership:
    """The leader lock, held on a connection of the leader's own (outside the pool) for as long as it leads."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self._conn = conn

    @classmethod
    def try_take(cls, engine: Engine) -> Leadership | None:
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            conn = psycopg.connect(make_conninfo(url, **(CONNECT_ARGS | {"options": _OPTIONS})), autocommit=True)
        except psycopg.Error as error:
            log.warning("cannot reach the database to take the scheduler's lead: %s", error)
            return None
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
        if row is None or not row[0]:
            conn.close()
            return None
        return cls(conn)

    def held(self) -> bool:
        """Whether the lock's connection is still up (a lost connection has lost the lock)."""
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def release(self) -> None:
        self._conn.close()


class _SkippedRunFilter(logging.Filter):
    """APScheduler warns on every trigger that finds the job's one instance still running; a daily chain whose
    pull takes minutes is expected to, so those lines are dropped (other warnings pass)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


_TRIGGER_LOG = logging.getLogger("tokenledger.scheduler.triggers")
_TRIGGER_LOG.addFilter(_SkippedRunFilter())


class Scheduler:
    """APScheduler (a `BackgroundScheduler` with its jobs in memory, so replicas share no job table) triggers
    three jobs: every LEADERSHIP_RETRY_SECONDS this replica takes or checks the lead; every TICK_SECONDS,
    while it leads, it runs the daily chain when `scheduled_jobs` says it is due, and delivers the alerts due.
    One instance of each job at a time (`max_instances=1`), triggers missed meanwhile run once (`coalesce`)."""

    def __init__(self, work: ScheduledWork, *, metrics: SchedulerMetrics | None = None) -> None:
        self.work = work
        self.metrics = metrics or SchedulerMetrics()
        self._leadership: Leadership | None = None
        self._http = httpx.Client()
        self._deliverer = Deliverer(
            work.sessions,
            clock=work.clock,
            http=self._http,
            on_outcome=self.metrics.delivered,
            public_url=work.settings.public_url,
        )
        self._triggers = BackgroundScheduler(
            logger=_TRIGGER_LOG,
            timezone=UTC,
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
        self._triggers.add_job(
            self.keep_leadership,
            "interval",
            seconds=LEADERSHIP_RETRY_SECONDS,
            id="leadership",
            next_run_time=datetime.now(UTC),  # compete at once, then every few seconds
        )
        self._triggers.add_job(self.run_due_jobs, "interval", seconds=TICK_SECONDS, id="daily-chain")
        self._triggers.add_job(self.deliver, "interval", seconds=TICK_SECONDS, id="deliver-alerts")

    @property
    def leading(self) -> bool:
        return self._leadership is not None

    def start(self) -> Scheduler:
        self._triggers.start()
        return self

    def shutdown(self, wait: bool = True) -> None:
        self._triggers.shutdown(wait=wait)
        self._deliverer.close(wait=wait)
        if self._leadership is not None:
            self._leadership.release()
            self._leadership = None
        if wait:
            self._http.close()

    def keep_leadership(self) -> None:
        """Take the lead when it is free; notice when this replica lost it (its connection closed)."""
        try:
            if self._leadership is None:
                self._leadership = Leadership.try_take(self.work.engine)
                if self._leadership is not None:
                    log.info("this replica leads the scheduling")
                    self._register_jobs()
            elif not self._leadership.held():
                log.warning("lost the scheduler's lead (database connection closed)")
                self._leadership.release()
                self._leadership = None
        except Exception:
            log.exception("taking the scheduler's lead failed; trying again")

    def deliver(self) -> None:
        if self._leadership is None:
            return
        try:
            self._deliverer.dispatch()
        except Exception:
            log.exception("delivering alerts failed; trying again")

    def _register_jobs(self) -> None:
        """Insert the daily job, or move its next run when its hour was changed (a run already overdue stays
        due)."""
        now = self.work.clock.now()
        hour = self.work.settings.statement_pull_hour_utc
        schedule = daily_schedule(hour)
        with self.work.sessions.begin() as session:
            session.execute(
                insert(ScheduledJob)
                .values(name=DAILY_JOB, schedule=schedule, next_run_at=next_daily_run(now, hour))
                .on_conflict_do_nothing(index_elements=["name"])
            )
            session.execute(
                update(ScheduledJob)
                .where(
                    ScheduledJob.name == DAILY_JOB,
                    ScheduledJob.schedule != schedule,
                    ScheduledJob.next_run_at > now,
                )
                .values(schedule=schedule, next_run_at=next_daily_run(now, hour))
            )

    def run_due_jobs(self) -> None:
        """Run the daily chain if this replica leads and its row in `scheduled_jobs` is due."""
        if self._leadership is None:
            return
        try:
            now = self.work.clock.now()
            with self.work.sessions() as session:
                due = session.scalar(
                    select(ScheduledJob.name).where(ScheduledJob.name == DAILY_JOB, ScheduledJob.next_run_at <= now)
                )
            if due is not None:
                self._run(DAILY_JOB, self.work.daily)
        except Exception:
            log.exception("the scheduler failed; trying again")

    def _run(self, name: str, job: Callable[[], None]) -> None:
        started, began = self.work.clock.now(), time.monotonic()
        with self.work.sessions.begin() as session:
            session.execute(update(ScheduledJob).where(ScheduledJob.name == name).values(last_started_at=started))
        error: str | None = None

        def guarded() -> None:
            nonlocal error
            try:
                job()
            except Exception as failure:
                log.exception("scheduled job %s failed", name)
                error = f"{type(failure).__name__}: {failure}"[:1_000]

        if not with_job_lock(self.work.engine, name, guarded):
            return
        finished = self.work.clock.now()
        outcome = "failed" if error else "succeeded"
        self.metrics.job_ran(name, outcome, time.monotonic() - began)
        with self.work.sessions.begin() as session:
            session.execute(
                update(ScheduledJob)
                .where(ScheduledJob.name == name)
                .values(
                    next_run_at=next_daily_run(finished, self.work.settings.statement_pull_hour_utc),
                    last_finished_at=finished,
                    last_outcome=outcome,
                    last_error=error,
                    runs=ScheduledJob.runs + 1,
                )
            )


def start_scheduler(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    monthly_report: MonthlyReportSender,
    clock: Clock | None = None,
    metrics: SchedulerMetrics | None = None,
) -> Scheduler:
    """Start competing for the scheduler's lead (APScheduler's background thread; `shutdown()` stops it)."""
    if os.environ.get("TOKENLEDGER_RECONCILE_HOUR_UTC"):
        log.warning(
            "TOKENLEDGER_RECONCILE_HOUR_UTC is no longer used: the reconcile runs right after the pull, at "
            "TOKENLEDGER_STATEMENT_PULL_HOUR_UTC (%s:00 UTC)",
            settings.statement_pull_hour_utc,
        )
    work = ScheduledWork(settings, engine, sessions, clock or SystemClock(), monthly_report)
    return Scheduler(work, metrics=metrics).start()
