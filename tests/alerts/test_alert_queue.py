"""Which alerts are queued, to which channels, and how they are told apart: rules as pure functions, and the
outbox written in the caller's transaction."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ledger.alerts import queue_finding_alert, queue_run_failure_alert, queue_stale_source_alerts, rules
from ledger.storage.database import session_factory
from ledger.storage.tables import AlertOutbox
from reports.monthly import send_monthly_report
from tests import rows
from tests.conftest import make_tenant
from tests.months import seed_october, tenant_id_of
from tests.rows import NOW, OCTOBER


@pytest.fixture
def tenant_id(engine: Engine, db_session: Session) -> int:
    return tenant_id_of(engine, make_tenant(engine).name)


def outbox(session: Session, tenant_id: int) -> list[AlertOutbox]:
    return list(session.scalars(select(AlertOutbox).where(AlertOutbox.tenant_id == tenant_id).order_by(AlertOutbox.id)))


def test_impact_brackets_are_decades_of_dollars() -> None:
    assert [rules.impact_bracket(Decimal(v)) for v in ("0", "0.99", "1", "9.99", "10", "999", "1000", "-250")] == [
        0,
        0,
        1,
        1,
        2,
        3,
        4,
        3,
    ]
    assert rules.impact_bracket(None) == 0


def test_a_finding_qualifies_by_its_severity_and_by_its_impact_when_a_threshold_is_set() -> None:
    assert rules.finding_qualifies("warning", Decimal(1), min_severity="warning", min_impact_usd=Decimal(0))
    assert not rules.finding_qualifies("info", Decimal(10_000), min_severity="warning", min_impact_usd=Decimal(0))
    assert rules.finding_qualifies("critical", Decimal(-500), min_severity="critical", min_impact_usd=Decimal(100))
    assert not rules.finding_qualifies("info", Decimal(500), min_severity="critical", min_impact_usd=Decimal(100))
    assert not rules.finding_qualifies("critical", Decimal(50), min_severity="critical", min_impact_usd=Decimal(100))


def test_a_route_takes_the_kinds_providers_and_accounts_it_names_and_any_where_it_names_none() -> None:
    scope = {"kind": "price_change", "provider": "openai", "account": "proj_web"}
    assert rules.routed({}, **scope)
    assert rules.routed({"providers": ["openai", "anthropic"], "kinds": ["price_change"]}, **scope)
    assert not rules.routed({"providers": ["anthropic"]}, **scope)
    assert not rules.routed({"kinds": ["quantity_mismatch"], "providers": ["openai"]}, **scope)
    assert not rules.routed({"accounts": ["proj_main"]}, **scope)


def test_a_finding_worsens_when_its_severity_rises_or_its_impact_reaches_a_higher_decade() -> None:
    assert rules.worsened("critical", Decimal(5), previous_severity="warning", previous_impact=Decimal(5))
    assert rules.worsened("warning", Decimal(150), previous_severity="warning", previous_impact=Decimal(95))
    assert not rules.worsened("warning", Decimal(99), previous_severity="warning", previous_impact=Decimal(11))
    assert not rules.worsened("info", Decimal(1_000), previous_severity="critical", previous_impact=Decimal(2_000))


@given(st.integers(min_value=1, max_value=100))
def test_retries_back_off_exponentially_up_to_an_hour(attempts: int) -> None:
    delay = rules.retry_delay(attempts)
    assert rules.FIRST_RETRY <= delay <= rules.LONGEST_RETRY
    assert rules.retry_delay(attempts + 1) >= delay
    assert rules.retry_delay(1) == timedelta(seconds=30)
    assert rules.retry_delay(2) == timedelta(seconds=60)


def test_a_new_finding_is_queued_to_each_channel_whose_threshold_it_meets(db_session: Session, tenant_id: int) -> None:
    warnings = rows.channel(db_session, tenant_id, name="warnings")
    rows.channel(db_session, tenant_id, name="critical-only", min_severity="critical")
    big_money = rows.channel(db_session, tenant_id, name="big-money", min_severity="critical", min_impact_usd="100")
    rows.channel(db_session, tenant_id, name="off", enabled=False)
    finding = rows.finding(db_session, tenant_id, severity="warning", impact="120.50")

    queued = queue_finding_alert(
        db_session, tenant_id=tenant_id, finding=finding, previous_severity=None, previous_impact=None, now=NOW
    )

    assert queued == 1
    alerts = outbox(db_session, tenant_id)
    assert [a.channel_id for a in alerts] == [warnings.id]
    assert big_money.id  # critical and at least 100 USD: this warning is neither
    assert {a.dedupe_key for a in alerts} == {f"finding:{finding.fingerprint}:warning:3"}
    assert alerts[0].topic == "finding"
    assert alerts[0].status == "pending"
    assert alerts[0].next_attempt_at == NOW
    assert alerts[0].payload["title"] == "[warning] quantity mismatch: openai / proj_main / gpt-5.4-mini (120.50 USD)"
    assert alerts[0].payload["data"]["finding"]["impact_usd"] == "120.5"


def test_an_unchanged_finding_is_not_alerted_again_and_a_worse_one_is(db_session: Session, tenant_id: int) -> None:
    rows.channel(db_session, tenant_id)
    finding = rows.finding(db_session, tenant_id, severity="warning", impact="120")
    assert (
        queue_finding_alert(
            db_session, tenant_id=tenant_id, finding=finding, previous_severity=None, previous_impact=None, now=NOW
        )
        == 1
    )
    assert (
        queue_finding_alert(
            db_session,
            tenant_id=tenant_id,
            finding=finding,
            previous_severity="warning",
            previous_impact=Decimal("110"),
            now=NOW,
        )
        == 0
    )
    finding.severity, finding.impact_usd = "critical", Decimal("1500")
    assert (
        queue_finding_alert(
            db_session,
            tenant_id=tenant_id,
            finding=finding,
            previous_severity="warning",
            previous_impact=Decimal("120"),
            now=NOW,
        )
        == 1
    )
    latest = outbox(db_session, tenant_id)[-1]
    assert latest.dedupe_key == f"finding:{finding.fingerprint}:critical:4"
    assert "Worse than before: was warning, 120.00 USD; now critical, 1,500.00 USD." in latest.payload["text"]


def test_a_level_already_alerted_is_not_alerted_twice_even_after_flapping(db_session: Session, tenant_id: int) -> None:
    rows.channel(db_session, tenant_id)
    finding = rows.finding(db_session, tenant_id, severity="critical", impact="500")
    assert (
        queue_finding_alert(
            db_session, tenant_id=tenant_id, finding=finding, previous_severity=None, previous_impact=None, now=NOW
        )
        == 1
    )
    assert (
        queue_finding_alert(
            db_session,
            tenant_id=tenant_id,
            finding=finding,
            previous_severity="warning",
            previous_impact=Decimal("500"),
            now=NOW,
        )
        == 0
    )


def test_a_spend_spike_has_its_own_topic(db_session: Session, tenant_id: int) -> None:
    rows.channel(db_session, tenant_id)
    spike = rows.finding(
        db_session,
        tenant_id,
        kind="spend_spike",
        severity="warning",
        impact="85",
        summary="spend of $95.00 on 2026-10-02 against a trailing median of $10.00",
    )
    assert (
        queue_finding_alert(
            db_session, tenant_id=tenant_id, finding=spike, previous_severity=None, previous_impact=None, now=NOW
        )
        == 1
    )
    (alert,) = outbox(db_session, tenant_id)
    assert alert.topic == "spend_spike"
    assert alert.payload["title"].startswith("[warning] Spend spike: openai")
    assert alert.payload["text"].startswith("spend of $95.00 on 2026-10-02")


def test_a_failed_run_alerts_every_channel_once_and_a_successful_one_never(db_session: Session, tenant_id: int) -> None:
    rows.channel(db_session, tenant_id, name="a", min_severity="critical")
    rows.channel(db_session, tenant_id, name="b")
    failed = rows.run(db_session, tenant_id, status="failed", error="statement source openai: HTTP 503")
    assert queue_run_failure_alert(db_session, tenant_id=tenant_id, run=failed, now=NOW) == 2
    assert queue_run_failure_alert(db_session, tenant_id=tenant_id, run=failed, now=NOW) == 0
    assert queue_run_failure_alert(db_session, tenant_id=tenant_id, run=rows.run(db_session, tenant_id), now=NOW) == 0
    alert = outbox(db_session, tenant_id)[0]
    assert alert.topic == "run_failed"
    assert alert.dedupe_key == f"run_failed:{failed.id}"
    assert "failed: statement source openai: HTTP 503" in alert.payload["text"]


def test_a_source_not_imported_for_n_days_alerts_once_per_stale_spell(db_session: Session, tenant_id: int) -> None:
    rows.channel(db_session, tenant_id)
    rows.statement_import(db_session, tenant_id, source="openai", imported_at=NOW - timedelta(days=5))
    rows.statement_import(db_session, tenant_id, source="anthropic", imported_at=NOW - timedelta(hours=20))
    assert queue_stale_source_alerts(db_session, tenant_id=tenant_id, now=NOW, max_age_days=3) == 1
    assert queue_stale_source_alerts(db_session, tenant_id=tenant_id, now=NOW + timedelta(days=1), max_age_days=3) == 0
    (alert,) = outbox(db_session, tenant_id)
    assert alert.topic == "stale_source"
    assert alert.payload["title"] == "No openai statement imported for 5 d 0 h"
    rows.statement_import(db_session, tenant_id, source="openai", imported_at=NOW + timedelta(days=1))
    assert queue_stale_source_alerts(db_session, tenant_id=tenant_id, now=NOW + timedelta(days=5), max_age_days=3) == 2


def test_nothing_is_queued_for_a_tenant_without_channels(db_session: Session, tenant_id: int) -> None:
    finding = rows.finding(db_session, tenant_id, severity="critical")
    assert (
        queue_finding_alert(
            db_session, tenant_id=tenant_id, finding=finding, previous_severity=None, previous_impact=None, now=NOW
        )
        == 0
    )
    assert outbox(db_session, tenant_id) == []


def test_an_alert_exists_only_if_its_cause_was_committed(engine: Engine) -> None:
    tenant = tenant_id_of(engine, make_tenant(engine).name)
    with session_factory(engine).begin() as session:
        rows.channel(session, tenant)
    with session_factory(engine)() as session:
        finding = rows.finding(session, tenant)
        queue_finding_alert(
            session, tenant_id=tenant, finding=finding, previous_severity=None, previous_impact=None, now=NOW
        )
        session.rollback()
    with session_factory(engine)() as session:
        assert outbox(session, tenant) == []


def test_the_monthly_report_is_queued_once_per_period_with_its_csv_and_html(engine: Engine) -> None:
    month = seed_october(engine)
    with session_factory(engine).begin() as session:
        rows.channel(
            session,
            month.tenant_id,
            name="mail",
            kind="email",
            config={
                "smtp_host": "127.0.0.1",
                "smtp_port": 25,
                "from": "tl@example.com",
                "to": ["finance@example.com"],
                "starttls": False,
            },
        )
        assert send_monthly_report(session, month.tenant_id, OCTOBER, NOW) == 1
        assert send_monthly_report(session, month.tenant_id, OCTOBER, NOW) == 0
        (alert,) = outbox(session, month.tenant_id)
    payload = alert.payload
    assert alert.topic == "monthly_report"
    assert alert.dedupe_key == "monthly_report:2026-10"
    assert payload["title"] == f"TokenLedger monthly report 2026-10 for {month.keys.name}"
    assert "USD: expected 2,710.25 USD, billed 2,532.50 USD, difference +120.50 USD (+5.02%)" in payload["text"]
    assert payload["data"]["totals"][0]["difference"] == "120.5"
    assert payload["attachments"][0]["filename"] == "tokenledger-2026-10.csv"
    assert payload["html"].startswith("<!doctype html>")


@pytest.mark.parametrize("status", ["acknowledged", "disputed"])
def test_a_finding_someone_is_dealing_with_re_alerts_only_past_a_higher_threshold(
    db_session: Session, tenant_id: int, status: str
) -> None:
    rows.channel(db_session, tenant_id)
    finding = rows.finding(db_session, tenant_id, severity="warning", impact="120", status=status)
    new = queue_finding_alert(
        db_session, tenant_id=tenant_id, finding=finding, previous_severity=None, previous_impact=None, now=NOW
    )
    assert new == 1

    def worse(impact: str, severity: str = "warning") -> int:
        previous_severity, previous_impact = finding.severity, finding.impact_usd
        finding.severity, finding.impact_usd = severity, Decimal(impact)
        return queue_finding_alert(
            db_session,
            tenant_id=tenant_id,
            finding=finding,
            previous_severity=previous_severity,
            previous_impact=previous_impact,
            now=NOW,
        )

    assert worse("1500") == 0  # a decade above the alert: an open finding would alert, one seen to does not
    assert worse("12000") == 1  # two decades above the level last alerted, however it got there
    assert worse("150000") == 0  # one decade above that
    assert worse("150000", severity="critical") == 1  # a rise in severity always alerts
