"""Scheduled work: which months are due, one instance at a time, a missed run caught up at start-up, a
failing run recorded where people can see it, and what the jobs do: pull the statements of the tenant the
admin keys belong to, and close a month with a last reconciliation and its report."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from importers.registry import importer_for
from ledger.events.schema import validate_events
from ledger.periods import Period
from ledger.reconciliation.run import run_reconciliation
from ledger.server import create_app
from ledger.service.scheduler import (
    TICK_SECONDS,
    ScheduledWork,
    configured_sources,
    periods_due,
    start_scheduler,
    statement_owner,
    with_job_lock,
)
from ledger.settings import Settings
from ledger.sink import rollup
from ledger.sink.ingest import partition_ddl
from ledger.storage.database import session_factory
from ledger.storage.tables import (
    AlertOutbox,
    DriftRow,
    ReconciliationRun,
    ScheduledJob,
    StatementLine,
    Tenant,
    UsageEvent,
)
from reports.monthly import send_monthly_report
from tests import rows
from tests.clocks import FixedClock
from tests.conftest import TenantKeys, make_tenant
from tests.events_factory import usage_event
from tests.openai_admin_api import ADMIN_KEY, OpenAIAdminApi
from tests.rows import channel

NOW = datetime(2026, 11, 2, tzinfo=UTC)


def test_the_previous_month_stays_due_until_the_close_day() -> None:
    assert periods_due(datetime(2026, 11, 3, tzinfo=UTC), close_month_day=5) == [
        Period.month("2026-10"),
        Period.month("2026-11"),
    ]
    assert periods_due(datetime(2026, 11, 6, tzinfo=UTC), close_month_day=5) == [Period.month("2026-11")]


def test_sources_are_pulled_only_when_their_admin_key_is_configured() -> None:
    assert configured_sources({}) == []
    assert configured_sources({"OPENAI_ADMIN_KEY": "sk-admin", "OPENROUTER_API_KEY": "sk-or"}) == [
        "openai",
        "openrouter",
    ]


def test_scheduled_pulls_fill_one_tenant_never_several() -> None:
    tenants = [(1, "acme"), (2, "globex")]
    assert statement_owner(tenants, "globex") == (2, "globex")
    assert statement_owner(tenants, None) is None
    assert statement_owner(tenants, "initech") is None
    assert statement_owner([(1, "acme")], None) == (1, "acme")


def test_only_one_instance_does_a_job_at_a_time(engine: Engine) -> None:
    holding, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def first() -> None:
        holding.set()
        release.wait(10)
        ran.append("first")

    thread = threading.Thread(target=with_job_lock, args=(engine, "test-job", first))
    thread.start()
    assert holding.wait(10)
    assert with_job_lock(engine, "test-job", lambda: ran.append("second")) is False
    release.set()
    thread.join(10)
    assert with_job_lock(engine, "test-job", lambda: ran.append("third")) is True
    assert ran == ["first", "third"]


def test_a_failing_run_is_recorded_with_its_error(engine: Engine, tenant: TenantKeys, settings: Settings) -> None:
    sessions = session_factory(engine)
    with sessions.begin() as session:
        tenant_id = session.scalar(sa.select(Tenant.id).where(Tenant.name == tenant.name))
        rows.unreadable_price(session, tenant_id)
    outcome = run_reconciliation(
        sessions,
        tenant_id=tenant_id,
        period=Period.month("2026-10"),
        settings=settings,
        now=datetime(2026, 11, 2, tzinfo=UTC),
        trigger="schedule",
    )
    assert outcome.status == "failed"
    with sessions() as session:
        run = session.get(ReconciliationRun, (tenant_id, outcome.run_id))
        assert run is not None
        assert run.status == "failed"
        assert run.finished_at is not None
        assert "every full moon" in (run.error or "")


def test_a_run_failing_in_the_database_records_the_servers_words_not_the_statement(
    engine: Engine, tenant: TenantKeys, settings: Settings
) -> None:
    """Usage stored before tokens were bounded per event: two events of 2^62 tokens sum past bigint in the
    drift rows. The run fails, and says so in a line, without a page of SQL and the tenant's figures."""
    sessions = session_factory(engine)
    with sessions.begin() as session:
        tenant_id = session.scalar(sa.select(Tenant.id).where(Tenant.name == tenant.name))
    events = [usage_event(occurred_at=f"2026-10-0{day}T12:00:00Z", api_key_id=f"key_{day}") for day in (1, 2)]
    rows = [row._replace(input_tokens=2**62) for row in validate_events(events, tenant_id=tenant_id, now=NOW)]
    with engine.begin() as conn:
        conn.execute(sa.text(partition_ddl(datetime(2026, 10, 1, tzinfo=UTC))))
        conn.execute(sa.insert(UsageEvent), [row._asdict() for row in rows])
        conn.exec_driver_sql(rollup.upsert_rollup("usage_events WHERE tenant_id = %(tenant)s"), {"tenant": tenant_id})

    outcome = run_reconciliation(
        sessions, tenant_id=tenant_id, period=Period.month("2026-10"), settings=settings, now=NOW, trigger="schedule"
    )

    assert outcome.status == "failed"
    assert outcome.error == "NumericValueOutOfRange: bigint out of range"


def scheduled_work(settings: Settings, engine: Engine, now: datetime) -> ScheduledWork:
    """The scheduler's jobs as the service runs them, on a clock the test holds still."""
    return ScheduledWork(settings, engine, session_factory(engine), FixedClock(now), send_monthly_report)


def tenant_id_of(engine: Engine, tenant: TenantKeys) -> int:
    with engine.connect() as conn:
        found = conn.scalar(sa.select(Tenant.id).where(Tenant.name == tenant.name))
    assert found is not None
    return int(found)


def test_the_scheduled_pull_stores_the_admin_keys_month_for_their_tenant(
    engine: Engine, tenant: TenantKeys, settings: Settings, openai_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    for source in ("anthropic", "openrouter"):
        monkeypatch.delenv(importer_for(source).credential_env or "", raising=False)
    settings = settings.model_copy(update={"statement_tenant": tenant.name, "openai_base_url": openai_api})
    tenant_id = tenant_id_of(engine, tenant)

    def billed() -> list[tuple[object, ...]]:
        with engine.connect() as conn:
            return [
                tuple(row)
                for row in conn.execute(
                    sa.select(StatementLine.usage_type, sa.func.sum(StatementLine.quantity), sa.func.count())
                    .where(StatementLine.tenant_id == tenant_id, StatementLine.source == "openai")
                    .group_by(StatementLine.usage_type)
                    .order_by(StatementLine.usage_type)
                )
            ]

    work = scheduled_work(settings, engine, datetime(2026, 10, 20, 6, 0, tzinfo=UTC))  # October alone is due
    work.pull_statements()
    first = billed()
    work.pull_statements()  # the next day's pull replaces the month's lines, it does not add to them

    assert {row[0] for row in first} >= {"uncached_input", "cached_input", "output", "requests"}
    assert any("page=" in path for path in OpenAIAdminApi.seen), "the second usage page was not followed"
    assert billed() == first


def test_closing_a_month_reconciles_it_once_more_and_queues_its_report_once(
    engine: Engine, tenant: TenantKeys, settings: Settings
) -> None:
    tenant_id = tenant_id_of(engine, tenant)
    with session_factory(engine).begin() as session:
        ops = channel(session, tenant_id, name="ops")
        channel_id = ops.id

    work = scheduled_work(settings, engine, datetime(2026, 11, 5, 6, 30, tzinfo=UTC))
    work.close_previous_month()
    work.close_previous_month()  # a second instance's late run, or a retry: no second report

    with session_factory(engine)() as session:
        runs = session.scalars(
            sa.select(ReconciliationRun).where(
                ReconciliationRun.tenant_id == tenant_id, ReconciliationRun.trigger == "close"
            )
        ).all()
        reports = session.scalars(
            sa.select(AlertOutbox).where(AlertOutbox.tenant_id == tenant_id, AlertOutbox.channel_id == channel_id)
        ).all()
    assert [(run.period_start, run.status) for run in runs] == [(Period.month("2026-10").start, "succeeded")] * 2
    assert [report.dedupe_key for report in reports] == ["monthly_report:2026-10"]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def daily_runs(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(ScheduledJob.runs).where(ScheduledJob.name == "daily")) or 0)


def scheduled_reconciliations(engine: Engine) -> list[tuple[int, datetime]]:
    with engine.connect() as conn:
        return [
            (row.tenant_id, row.period_start)
            for row in conn.execute(
                sa.select(ReconciliationRun.tenant_id, ReconciliationRun.period_start)
                .where(ReconciliationRun.trigger == "schedule")
                .order_by(ReconciliationRun.tenant_id, ReconciliationRun.period_start)
            )
        ]


def test_replicas_started_at_once_elect_one_leader_which_runs_the_daily_job_once_and_a_successor_takes_over(
    fresh_engine: Engine, settings: Settings
) -> None:
    make_tenant(fresh_engine, "acme")
    clock = FixedClock(datetime(2026, 11, 20, 5, 59, tzinfo=UTC))
    sessions = session_factory(fresh_engine)
    with ThreadPoolExecutor(5) as starting:
        replicas = list(
            starting.map(
                lambda _: start_scheduler(settings, fresh_engine, sessions, send_monthly_report, clock), range(5)
            )
        )
    try:
        wait_until(lambda: sum(replica.leading for replica in replicas) == 1, "one replica leads")
        clock.advance(timedelta(minutes=1, seconds=1))  # 06:00:01, the pull hour
        wait_until(lambda: daily_runs(fresh_engine) == 1, "the daily job ran")
        time.sleep(2 * TICK_SECONDS)  # every replica has had its chance to run it again
        assert daily_runs(fresh_engine) == 1
        assert [period for _, period in scheduled_reconciliations(fresh_engine)] == [Period.month("2026-11").start]
        assert sum(replica.leading for replica in replicas) == 1

        (leader,) = [replica for replica in replicas if replica.leading]
        leader.shutdown()
        replicas.remove(leader)
        wait_until(lambda: sum(replica.leading for replica in replicas) == 1, "another replica took over")
        clock.advance(timedelta(days=1))
        wait_until(lambda: daily_runs(fresh_engine) == 2, "the successor ran the next day's job")
        assert len(scheduled_reconciliations(fresh_engine)) == 2
    finally:
        for replica in replicas:
            replica.shutdown()


def test_after_downtime_the_daily_job_runs_once_and_reconciles_only_once_its_slow_pull_has_finished(
    fresh_engine: Engine,
    settings: Settings,
    openai_api: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The service was down for two days at the pull hour. On start the overdue job runs once: it pulls (from
    a provider taking a second and a half an answer), and only then reconciles, so the month's drift shows
    what the statement pulled just now bills. The triggers that fire meanwhile start no second run, and say
    nothing of it in the log."""
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    for source in ("anthropic", "openrouter"):
        monkeypatch.delenv(importer_for(source).credential_env or "", raising=False)
    OpenAIAdminApi.delay_seconds = 1.5
    keys = make_tenant(fresh_engine, "acme")
    settings = settings.model_copy(
        update={"statement_tenant": keys.name, "openai_base_url": openai_api, "scheduler_enabled": True}
    )
    now = datetime(2026, 10, 20, 7, 30, tzinfo=UTC)
    with session_factory(fresh_engine).begin() as session:
        session.add(ScheduledJob(name="daily", schedule="daily at 06:00 UTC", next_run_at=now - timedelta(days=2)))

    caplog.set_level(logging.INFO)
    with TestClient(create_app(settings, engine=fresh_engine, clock=FixedClock(now))):
        wait_until(lambda: daily_runs(fresh_engine) == 1, "the overdue daily job ran", timeout=120)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING], caplog.text

    with fresh_engine.connect() as conn:
        billed = conn.scalar(
            sa.select(sa.func.sum(DriftRow.billed_tokens)).where(
                DriftRow.provider == "openai", DriftRow.period_start == Period.month("2026-10").start
            )
        )
        pulled = conn.scalar(
            sa.select(sa.func.count()).select_from(StatementLine).where(StatementLine.source == "openai")
        )
        job = conn.execute(sa.select(ScheduledJob)).one()
    assert pulled, "the pull stored nothing"
    assert billed, "the reconcile ran before the pull had committed the statement"
    assert scheduled_reconciliations(fresh_engine) == [
        (tenant_id_of(fresh_engine, keys), Period.month("2026-10").start)
    ]
    assert (job.runs, job.last_outcome, job.next_run_at) == (1, "succeeded", datetime(2026, 10, 21, 6, tzinfo=UTC))


def test_a_close_day_past_the_end_of_a_short_month_closes_on_its_last_day(
    fresh_engine: Engine, settings: Settings
) -> None:
    settings = settings.model_copy(update={"close_month_day": 31})
    assert periods_due(datetime(2027, 2, 27, 6, tzinfo=UTC), 31) == [Period.month("2027-01"), Period.month("2027-02")]
    assert periods_due(datetime(2027, 3, 1, 6, tzinfo=UTC), 31) == [Period.month("2027-02"), Period.month("2027-03")]
    tenant_id = tenant_id_of(fresh_engine, make_tenant(fresh_engine, "acme"))

    def closed() -> list[datetime]:
        with fresh_engine.connect() as conn:
            return list(
                conn.scalars(
                    sa.select(ReconciliationRun.period_start).where(
                        ReconciliationRun.tenant_id == tenant_id, ReconciliationRun.trigger == "close"
                    )
                )
            )

    scheduled_work(settings, fresh_engine, datetime(2027, 2, 27, 6, tzinfo=UTC)).daily()
    assert closed() == []
    scheduled_work(settings, fresh_engine, datetime(2027, 2, 28, 6, tzinfo=UTC)).daily()
    assert closed() == [Period.month("2027-01").start]
    scheduled_work(settings, fresh_engine, datetime(2027, 3, 1, 6, tzinfo=UTC)).daily()  # a later day: closed once
    assert closed() == [Period.month("2027-01").start]


def test_a_refused_admin_key_alerts_at_once(
    engine: Engine, tenant: TenantKeys, settings: Settings, openai_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-revoked")
    for source in ("anthropic", "openrouter"):
        monkeypatch.delenv(importer_for(source).credential_env or "", raising=False)
    settings = settings.model_copy(update={"statement_tenant": tenant.name, "openai_base_url": openai_api})
    tenant_id = tenant_id_of(engine, tenant)
    with session_factory(engine).begin() as session:
        channel(session, tenant_id, name="ops")

    scheduled_work(settings, engine, datetime(2026, 10, 20, 6, 0, tzinfo=UTC)).pull_statements()

    with session_factory(engine)() as session:
        (alert,) = session.scalars(
            sa.select(AlertOutbox).where(AlertOutbox.tenant_id == tenant_id, AlertOutbox.topic == "pull_failed")
        ).all()
    assert alert.payload["title"] == "Pulling the openai statement for 2026-10 failed"
    assert "admin key" in alert.payload["text"]
    assert "sk-admin-revoked" not in json.dumps(alert.payload)
