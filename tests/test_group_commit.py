"""Group commit under closed-loop load: every request is answered and stored, with several writers racing
for each request."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from ledger.events import validate_events
from ledger.group_commit import GroupCommitWriter
from tests.conftest import TenantKeys
from tests.events_factory import usage_event


def test_every_request_is_answered_when_several_writers_race_for_single_events(
    engine: Engine, tenant: TenantKeys
) -> None:
    """32 clients each wait for their answer before sending again, as a busy ingest client does: a request
    left behind in one writer's half-formed batch would never be followed by one that frees it."""
    clients, rounds = 32, 40
    now = datetime.now(UTC)
    with engine.connect() as conn:
        tenant_id = conn.execute(text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name}).scalar_one()
    writer = GroupCommitWriter(engine, max_wait_seconds=0.0005, threads=4)

    async def client(number: int) -> int:
        accepted = 0
        for round_ in range(rounds):
            rows = validate_events([usage_event(event_id=f"race-{number}-{round_}")], tenant_id=tenant_id, now=now)
            result = await asyncio.wait_for(writer.submit(rows), timeout=30)
            accepted += result.accepted
        return accepted

    async def load() -> list[int]:
        return await asyncio.gather(*(client(number) for number in range(clients)))

    writer.start()
    try:
        accepted = asyncio.run(load())
    finally:
        writer.stop()

    assert accepted == [rounds] * clients
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM usage_events WHERE tenant_id = :tenant AND event_id LIKE 'race-%'"),
            {"tenant": tenant_id},
        ).scalar_one()
    assert stored == clients * rounds
