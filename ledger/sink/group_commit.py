"""Group commit: concurrent ingest requests are written together, in one transaction per batch, and each
request is answered only after the batch that holds it has committed.

The writer is a few tasks on the application's event loop (`connections`, two by default), each with a
database connection of its own. A free task takes the requests waiting, oldest first, up to `max_events`:
while batches are being written, the requests that arrive meanwhile gather, so under load batches grow by
themselves, and a lone request is written at once. Two connections let one batch commit while the next is
copied (large batches) or while requests are still being decoded; more would mostly wait on each other's
rollup row locks. Waiting on the database never blocks the loop, so requests keep being read and validated
while a batch commits. If a batch fails for a reason other than the database being down, each request is
retried alone, so one bad request never fails its neighbours."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ledger.errors import ServiceUnavailable
from ledger.events.schema import EventRow
from ledger.sink.ingest import AsyncConnection, PartitionKeeper, WriteResult, prepare_connection, write_events
from ledger.storage.database import Timeouts, connect_async

log = logging.getLogger("tokenledger.ingest")


@dataclass(slots=True)
class _Pending:
    rows: Sequence[EventRow]
    future: asyncio.Future[WriteResult]


@dataclass(frozen=True, slots=True)
class BatchStats:
    requests: int
    events: int
    commit_seconds: float


def is_conflict(error: BaseException) -> bool:
    """True for a transaction PostgreSQL rolled back to resolve a conflict with another (a deadlock, a
    serialization failure): nothing of it was written, and the same transaction again will do."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    # SQLSTATE 40001 serialization failure, 40P01 deadlock detected. (psycopg files DeadlockDetected under
    # OperationalError, beside the errors of a lost connection.)
    return isinstance(cause, psycopg.Error) and cause.sqlstate in ("40001", "40P01")


def is_unavailable(error: BaseException) -> bool:
    """True when the error means the database cannot be reached (as opposed to bad data, or a conflict with
    another transaction, which psycopg also files under OperationalError)."""
    if is_conflict(error):
        return False
    if isinstance(error, OperationalError | PoolTimeout | psycopg.OperationalError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


CONFLICT_RETRIES = 8
"""How often a batch PostgreSQL rolled back for a conflict is written again before the requests get 503."""


class _Lane:
    """One writer task's connection, opened on first use and again after it was lost."""

    def __init__(self, url: URL, timeouts: Timeouts | None) -> None:
        self._url = url
        self._timeouts = timeouts
        self._conn: AsyncConnection | None = None

    async def connection(self) -> AsyncConnection:
        if self._conn is None or self._conn.closed:
            conn = await connect_async(self._url, self._timeouts)
            try:
                await prepare_connection(conn)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


class GroupCommitWriter:
    def __init__(
        self,
        url: URL,
        *,
        max_wait_seconds: float = 0.0,
        max_events: int = 1_000,
        connections: int = 2,
        on_batch: Callable[[BatchStats], None] | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self._lanes = [_Lane(url, timeouts) for _ in range(connections)]
        self._max_wait = max_wait_seconds
        self._max_events = max_events
        self._on_batch = on_batch
        self._partitions = PartitionKeeper()
        self._pending: list[_Pending] = []
        self._arrived = asyncio.Event()  # replaced in start(): an Event belongs to the loop that first waits on it
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start writing; call it on the event loop that will submit (the application's lifespan)."""
        if not self._tasks:
            self._stopping = False
            self._arrived = asyncio.Event()
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._serve(lane)) for lane in self._lanes]

    async def stop(self) -> None:
        """Write what has been submitted, then close the connections."""
        if not self._tasks:
            return
        self._stopping = True
        self._arrived.set()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            self._tasks = []
            for lane in self._lanes:
                await lane.close()

    async def submit(self, rows: Sequence[EventRow]) -> WriteResult:
        """Write `rows`; return once they are committed (or raise ServiceUnavailable)."""
        if not self._tasks or self._stopping:
            raise ServiceUnavailable("the service is not accepting events (starting or shutting down)")
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(rows, future))
        self._arrived.set()
        return await future

    async def _serve(self, lane: _Lane) -> None:
        while True:
            await self._arrived.wait()
            if self._max_wait and self._pending and not self._stopping and not self._full():
                # Let the batch grow a little: one transaction (and WAL flush) for more requests costs PostgreSQL
                # about half as much per event under concurrent single-event load, for a fraction of a
                # millisecond of latency.
                await asyncio.sleep(self._max_wait)
            batch = self._next_batch()
            if not self._pending and not self._stopping:
                self._arrived.clear()
            if batch:
                try:
                    await self._write(lane, batch)
                except Exception as error:  # a bug here must not leave requests waiting forever
                    log.exception("writing a batch of %d requests failed", len(batch))
                    _settle_all(batch, error)
            elif self._stopping:
                return

    def _full(self) -> bool:
        """Whether the pending requests already make a whole batch (waiting would only delay it)."""
        events = 0
        for pending in self._pending:
            events += len(pending.rows)
            if events >= self._max_events:
                return True
        return False

    def _next_batch(self) -> list[_Pending]:
        """The oldest pending requests, up to `max_events` events (at least one request). Requests whose caller
        stopped waiting (its deadline passed: it was answered 503) are dropped: the client sends them again."""
        self._pending = [pending for pending in self._pending if not pending.future.done()]
        events = 0
        for taken, pending in enumerate(self._pending):
            events += len(pending.rows)
            if events > self._max_events and taken:
                break
        else:
            taken = len(self._pending)
        batch, self._pending = self._pending[:taken], self._pending[taken:]
        return batch

    async def _write(self, lane: _Lane, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            results = await self._write_together(lane, batch)
        except Exception as error:
            if is_unavailable(error) or len(batch) == 1:
                _settle_all(batch, error)
                return
            log.warning("batch of %d requests failed (%s); writing them one by one", len(batch), error)
            for pending in batch:
                try:
                    _settle(pending, (await self._write_together(lane, [pending]))[0])
                except Exception as single_error:
                    _settle_all([pending], single_error)
            return
        for pending, result in zip(batch, results, strict=True):
            _settle(pending, result)
        if self._on_batch:
            self._on_batch(BatchStats(len(batch), sum(len(p.rows) for p in batch), time.perf_counter() - started))

    async def _write_together(self, lane: _Lane, batch: list[_Pending]) -> list[WriteResult]:
        rows = [row for pending in batch for row in pending.rows]
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                conn = await lane.connection()
                await self._partitions.ensure(conn, (row.occurred_at for row in rows))
                result = await write_events(conn, rows)
                break
            except Exception as error:
                if is_unavailable(error):  # a fresh connection next time
                    await lane.close()
                if not is_conflict(error):
                    raise
                if attempt == CONFLICT_RETRIES:
                    raise ServiceUnavailable(
                        "the database is too busy with conflicting writes; retry shortly"
                    ) from error
                log.warning("batch of %d events rolled back for a conflict (%s); writing it again", len(rows), error)
                await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
        results, offset = [], 0
        for pending in batch:
            results.append(WriteResult(result.stored[offset : offset + len(pending.rows)]))
            offset += len(pending.rows)
        return results


def _settle(pending: _Pending, result: WriteResult) -> None:
    if not pending.future.done():
        pending.future.set_result(result)


def _settle_all(batch: list[_Pending], error: BaseException) -> None:
    if is_unavailable(error):
        error = ServiceUnavailable("the database is unreachable; retry shortly")
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(error)
