"""Scheduled work: which months are due, one instance at a time, a missed run caught up at start-up, and a
failing run recorded where people can see it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger.database import session_factory
from ledger.periods import Period
from ledger.reconciliation import run_reconciliation
from ledger.scheduler import configured_sources, periods_due, start_scheduler, statement_owner, with_job_lock
from ledger.settings import Settings
from ledger.tables import PriceOverride, ReconciliationRun, Tenant
from tests.conftest import TenantKeys


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
        session.add(
            PriceOverride(
                tenant_id=tenant_id,
                provider="openai",
                model="gpt-5.4",
                token_type="input",
                service_tier="standard",
                context_threshold=0,
                unit_price=1,
                unit="1M tokens",
                currency="USD",
                valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                valid_to=None,
                time_window="every full moon",
                source="corrupted by hand",
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
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


def test_a_run_missed_while_no_instance_was_up_runs_at_start_up(engine: Engine, settings: Settings) -> None:
    sessions = session_factory(engine)
    first = start_scheduler(settings, engine, sessions)
    job = first.get_job("reconcile_current_month")
    assert job is not None
    assert job.next_run_time > datetime.now(UTC)
    first.shutdown(wait=False)

    store = first._jobstores["default"]  # the persistent store: move the stored next run into the past
    stored = store.lookup_job("reconcile_current_month")
    stored.next_run_time = datetime.now(UTC) - timedelta(hours=2)
    store.update_job(stored)

    started = datetime.now(UTC)
    second = start_scheduler(settings, engine, sessions)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sessions() as session:
                caught_up = session.scalar(
                    sa.select(sa.func.count())
                    .select_from(ReconciliationRun)
                    .where(ReconciliationRun.trigger == "schedule", ReconciliationRun.started_at >= started)
                )
            if caught_up:
                break
            time.sleep(0.2)
        assert caught_up, "the missed reconciliation did not run at start-up"
        assert second.get_job("reconcile_current_month").next_run_time > datetime.now(UTC)
    finally:
        second.shutdown(wait=True)
