"""Concurrent writers never refuse each other's events: batches that create and update the same rollup rows at
once are stored, all of them, with rollups that add up to the events."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ledger.server import create_app
from ledger.settings import Settings
from tests.conftest import TenantKeys
from tests.events_factory import usage_event


def test_concurrent_batches_creating_new_rollup_rows_are_all_stored(
    settings: Settings, engine: Engine, tenant: TenantKeys
) -> None:
    day_one, day_two = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 9, 2, tzinfo=UTC)
    senders, batches_each = 4, 10

    def batch(sender: int, number: int) -> list[dict[str, object]]:
        """One app's usage: half in an hour its earlier batches already hold, half in an hour it has not sent
        yet, of the other day: for some senders the new hour is on the later day, for others (a backfill) on
        the earlier one, so concurrent batches create and update the same days' rollup rows in opposite
        orders."""
        forward = sender % 2 == 0
        known = day_one if forward else day_two + timedelta(hours=23)
        new = (day_two if forward else day_one) + timedelta(hours=number)
        return [
            usage_event(
                occurred_at=((known if i % 2 else new) + timedelta(seconds=i)).isoformat(),
                app=f"app-{sender}",
                input_tokens=1_000 + i,
            )
            for i in range(1_000)
        ]

    # Four writer connections in each of two service instances: eight transactions at a time.
    with (
        TestClient(create_app(settings.model_copy(update={"writer_connections": 4}), engine=engine)) as first,
        TestClient(create_app(settings.model_copy(update={"writer_connections": 4}), engine=engine)) as second,
    ):

        def send(sender: int) -> list[int]:
            client = first if sender % 2 else second
            return [
                client.post("/v1/events", json=batch(sender, n), headers=tenant.ingest).status_code
                for n in range(batches_each)
            ]

        with ThreadPoolExecutor(senders * 2) as pool:
            statuses = [status for sent in pool.map(send, range(senders * 2)) for status in sent]

    assert statuses == [202] * (senders * 2 * batches_each)
    with engine.connect() as conn:
        tenant_id = conn.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
        totals = [
            conn.execute(
                sa.text(f"SELECT {count}, sum(input_tokens) FROM {table} WHERE tenant_id = :t"), {"t": tenant_id}
            ).one()
            for count, table in (
                ("count(*)", "usage_events"),
                ("sum(requests)", "usage_hourly"),
                ("sum(requests)", "usage_daily"),
            )
        ]
    assert totals[0] == totals[1] == totals[2]
    assert totals[0][0] == senders * 2 * batches_each * 1_000


def test_a_batch_rolled_back_by_a_deadlock_is_written_again_not_refused(
    client: TestClient, engine: Engine, tenant: TenantKeys
) -> None:
    """Another transaction (a maintenance script, say) that locks the day's rollup row and then wants the hour's,
    while a batch holds the hour's and waits for the day's: PostgreSQL breaks the deadlock by rolling back the
    batch, which the service writes again instead of answering 503."""
    first = usage_event(occurred_at="2026-09-03T10:15:00Z")
    assert client.post("/v1/events", json=first, headers=tenant.ingest).status_code == 202
    second = usage_event(occurred_at="2026-09-03T10:45:00Z", input_tokens=2_000)
    with engine.connect() as conn, ThreadPoolExecutor(1) as pool:
        tenant_id = conn.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
        conn.commit()
        with conn.begin():
            conn.execute(sa.text("SELECT 1 FROM usage_daily WHERE tenant_id = :t FOR UPDATE"), {"t": tenant_id})
            sent = pool.submit(client.post, "/v1/events", json=second, headers=tenant.ingest)
            time.sleep(0.3)  # the batch now holds the hour's row and waits for the day's
            conn.execute(sa.text("UPDATE usage_hourly SET requests = requests WHERE tenant_id = :t"), {"t": tenant_id})
        response = sent.result(timeout=30)
        assert (response.status_code, response.json()) == (202, {"accepted": 1, "duplicates": 0}), response.text
        assert conn.execute(
            sa.text("SELECT sum(requests), sum(input_tokens) FROM usage_daily WHERE tenant_id = :t"), {"t": tenant_id}
        ).one() == (2, 1_200 + 2_000)
