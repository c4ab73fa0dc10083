"""The group-commit writer: requests that arrive while a batch is written share the next commit, every request
is answered after its rows are committed, and one bad request fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

import pytest
from sqlalchemy import Engine, text

from ledger.errors import ServiceUnavailable
from ledger.events.schema import EventRow, validate_events
from ledger.sink.group_commit import BatchStats, GroupCommitWriter
from ledger.sink.ingest import PARAMETER_BATCH_ROWS
from tests.conftest import TenantKeys
from tests.events_factory import usage_event

T = TypeVar("T")


def tenant_id_of(engine: Engine, tenant: TenantKeys) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name}).scalar_one())


def rows(tenant_id: int, *event_ids: str, **fields: object) -> list[EventRow]:
    events = [usage_event(event_id=event_id, **fields) for event_id in event_ids]
    return validate_events(events, tenant_id=tenant_id, now=datetime.now(UTC))


def stored_ids(engine: Engine, tenant_id: int, pattern: str) -> set[str]:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT event_id FROM usage_events WHERE tenant_id = :tenant AND event_id LIKE :pattern"),
            {"tenant": tenant_id, "pattern": pattern},
        )
        return set(found.scalars())


def run_with_writer(
    engine: Engine, work: Callable[[GroupCommitWriter], Awaitable[T]], **options: object
) -> tuple[T, list[BatchStats]]:
    """Run `work` on a started writer, on a fresh event loop; return its result and the batches written."""
    batches: list[BatchStats] = []

    async def main() -> T:
        writer = GroupCommitWriter(engine.url, on_batch=batches.append, **options)  # type: ignore[arg-type]
        writer.start()
        try:
            return await work(writer)
        finally:
            await writer.stop()

    return asyncio.run(main()), batches


def test_closed_loop_clients_share_commits_and_every_request_is_answered_and_stored(
    engine: Engine, tenant: TenantKeys
) -> None:
    """32 clients each wait for their answer before sending again, as a busy ingest client does."""
    clients, rounds = 32, 30
    tenant_id = tenant_id_of(engine, tenant)

    async def load(writer: GroupCommitWriter) -> list[int]:
        async def client(number: int) -> int:
            accepted = 0
            for round_ in range(rounds):
                result = await asyncio.wait_for(writer.submit(rows(tenant_id, f"loop-{number}-{round_}")), 30)
                accepted += result.accepted
            return accepted

        return await asyncio.gather(*(client(number) for number in range(clients)))

    accepted, batches = run_with_writer(engine, load)

    assert accepted == [rounds] * clients
    assert len(stored_ids(engine, tenant_id, "loop-%")) == clients * rounds
    assert sum(batch.requests for batch in batches) == clients * rounds
    assert max(batch.requests for batch in batches) > 1, "requests that waited did not share a commit"
    assert len(batches) < clients * rounds


@pytest.mark.parametrize("size", [1, PARAMETER_BATCH_ROWS, PARAMETER_BATCH_ROWS + 1, 700])
def test_small_and_large_batches_store_the_same_and_count_repeats_as_duplicates(
    engine: Engine, tenant: TenantKeys, size: int
) -> None:
    """Small batches travel as one statement's parameters, large ones through COPY: the outcome is the same."""
    tenant_id = tenant_id_of(engine, tenant)
    ids = [f"size{size}-{n}" for n in range(size)]
    exact = Decimal("0.000123456789012345678901")  # a raw usage object keeps every digit of its numbers
    fields = {
        "occurred_at": "2026-10-07T11:05:00.123456+02:00",
        "provider": "openrouter",
        "usage": {"prompt_tokens": 1200, "completion_tokens": 80, "cost": exact},
        "tags": {"team": "search"},
        "reported_cost": "0.0000123456",
        "max_tokens": None,
    }

    async def twice(writer: GroupCommitWriter) -> tuple[int, int, int]:
        first = await writer.submit(rows(tenant_id, *ids, *ids[:1], **fields))
        again = await writer.submit(rows(tenant_id, *ids))
        return first.accepted, first.duplicates, again.duplicates

    (accepted, repeated, duplicates), _ = run_with_writer(engine, twice)

    assert (accepted, repeated, duplicates) == (size, 1, size)
    assert stored_ids(engine, tenant_id, f"size{size}-%") == set(ids)
    with engine.connect() as conn:
        tags, cost, max_tokens, raw_cost, occurred_at = conn.execute(
            text(
                "SELECT tags, reported_cost, max_tokens, usage_raw->>'cost', occurred_at FROM usage_events "
                "WHERE tenant_id = :t AND event_id = :id"
            ),
            {"t": tenant_id, "id": ids[-1]},
        ).one()
        requests = conn.execute(
            text("SELECT sum(requests) FROM usage_hourly WHERE tenant_id = :t"), {"t": tenant_id}
        ).scalar_one()
    assert (tags, str(cost), max_tokens, raw_cost) == ({"team": "search"}, "0.0000123456", None, str(exact))
    assert occurred_at == datetime(2026, 10, 7, 9, 5, 0, 123456, tzinfo=UTC)
    assert requests == size


def test_a_request_the_database_refuses_fails_alone_and_its_batch_neighbours_are_stored(
    engine: Engine, tenant: TenantKeys
) -> None:
    tenant_id = tenant_id_of(engine, tenant)
    good = [rows(tenant_id, f"neighbour-{n}") for n in range(3)]
    # max_tokens is an integer column. Validation refuses 2^40 (a 422); a row built past it plays a request that
    # only the database refuses.
    bad = [row._replace(max_tokens=2**40) for row in rows(tenant_id, "neighbour-bad")]

    async def together(writer: GroupCommitWriter) -> list[object]:
        return await asyncio.gather(
            *(writer.submit(batch) for batch in [good[0], bad, *good[1:]]), return_exceptions=True
        )

    outcomes, batches = run_with_writer(engine, together)

    assert [getattr(outcome, "accepted", None) for outcome in outcomes] == [1, None, 1, 1]
    assert "out of range" in str(outcomes[1])
    assert stored_ids(engine, tenant_id, "neighbour-%") == {"neighbour-0", "neighbour-1", "neighbour-2"}
    assert batches == [], "a failed batch is retried request by request, not reported as one batch"


def test_a_batch_holds_at_most_max_events_unless_one_request_is_larger(engine: Engine, tenant: TenantKeys) -> None:
    tenant_id = tenant_id_of(engine, tenant)
    requests = [rows(tenant_id, *(f"cap-{n}-{i}" for i in range(size))) for n, size in enumerate([2, 2, 2, 5, 1])]

    async def together(writer: GroupCommitWriter) -> list[int]:
        results = await asyncio.gather(*(writer.submit(batch) for batch in requests))
        return [result.accepted for result in results]

    accepted, batches = run_with_writer(engine, together, max_events=4)

    assert accepted == [2, 2, 2, 5, 1]
    assert sorted(batch.events for batch in batches) == [1, 2, 4, 5]  # taken in order: 2+2, 2, 5, 1


def test_requests_arriving_while_a_batch_lingers_share_its_commit(engine: Engine, tenant: TenantKeys) -> None:
    tenant_id = tenant_id_of(engine, tenant)

    async def staggered(writer: GroupCommitWriter) -> list[int]:
        first = asyncio.ensure_future(writer.submit(rows(tenant_id, "linger-0")))
        await asyncio.sleep(0.01)  # well inside the batch's linger
        later = [writer.submit(rows(tenant_id, f"linger-{n}")) for n in range(1, 5)]
        return [result.accepted for result in await asyncio.gather(first, *later)]

    accepted, batches = run_with_writer(engine, staggered, max_wait_seconds=0.5, connections=1)

    assert accepted == [1] * 5
    assert [(batch.requests, batch.events) for batch in batches] == [(5, 5)]


def test_a_batch_that_is_already_full_does_not_linger(engine: Engine, tenant: TenantKeys) -> None:
    tenant_id = tenant_id_of(engine, tenant)
    whole = rows(tenant_id, *(f"full-{n}" for n in range(4)))

    async def one_full_request(writer: GroupCommitWriter) -> int:
        # Lingering would hold it an hour; a full batch is written at once.
        return (await asyncio.wait_for(writer.submit(whole), 30)).accepted

    accepted, batches = run_with_writer(engine, one_full_request, max_wait_seconds=3600, max_events=4)

    assert accepted == 4
    assert [(batch.requests, batch.events) for batch in batches] == [(1, 4)]


def test_stopping_writes_what_was_submitted_and_then_refuses_more(engine: Engine, tenant: TenantKeys) -> None:
    tenant_id = tenant_id_of(engine, tenant)

    async def main() -> tuple[int, BaseException | None]:
        writer = GroupCommitWriter(engine.url)
        writer.start()
        submitted = asyncio.ensure_future(writer.submit(rows(tenant_id, "last-one")))
        await asyncio.sleep(0)  # the request is queued; the writer has not run yet
        await writer.stop()
        try:
            await writer.submit(rows(tenant_id, "too-late"))
        except ServiceUnavailable as error:
            return (await submitted).accepted, error
        return (await submitted).accepted, None

    accepted, refusal = asyncio.run(main())

    assert accepted == 1
    assert isinstance(refusal, ServiceUnavailable)
    assert stored_ids(engine, tenant_id, "%-%") & {"last-one", "too-late"} == {"last-one"}


def test_the_writer_keeps_serving_after_an_unexpected_error_in_a_batch(engine: Engine, tenant: TenantKeys) -> None:
    tenant_id = tenant_id_of(engine, tenant)

    def broken_metrics(stats: BatchStats) -> None:
        raise RuntimeError("metrics backend gone")

    async def main() -> list[int]:
        writer = GroupCommitWriter(engine.url, on_batch=broken_metrics)
        writer.start()
        try:
            first = await asyncio.wait_for(writer.submit(rows(tenant_id, "after-error-1")), 30)
            second = await asyncio.wait_for(writer.submit(rows(tenant_id, "after-error-2")), 30)
            return [first.accepted, second.accepted]
        finally:
            await writer.stop()

    assert asyncio.run(main()) == [1, 1]
    assert stored_ids(engine, tenant_id, "after-error-%") == {"after-error-1", "after-error-2"}
