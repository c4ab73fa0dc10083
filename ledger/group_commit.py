"""Group commit: concurrent ingest requests are written together, in one transaction per batch, and each
request is answered only after the batch that holds it has committed. A batch forms while a writer waits
at most `max_wait` for more requests (or until `max_events`), so single-event traffic shares one fsync.
If a batch fails for a reason other than the database being down, each request is retried alone, so one
bad request never fails its neighbours."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ledger.errors import ServiceUnavailable
from ledger.events import EventRow
from ledger.ingest import PartitionKeeper, WriteResult, prepare_staging, write_events

log = logging.getLogger("tokenledger.ingest")


@dataclass(slots=True)
class _Pending:
    rows: Sequence[EventRow]
    future: asyncio.Future[WriteResult]
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class BatchStats:
    requests: int
    events: int
    commit_seconds: float


_STOP = object()


def is_unavailable(error: BaseException) -> bool:
    """True when the error means the database cannot be reached (as opposed to bad data)."""
    if isinstance(error, OperationalError | PoolTimeout):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


class GroupCommitWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        max_wait_seconds: float = 0.002,
        max_events: int = 5_000,
        threads: int = 2,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        self._engine = engine
        self._partitions = PartitionKeeper(engine)
        self._max_wait = max_wait_seconds
        self._max_events = max_events
        # queue.Queue, not SimpleQueue: with several writers waiting, SimpleQueue.get(timeout=…) can turn a
        # deadline that passed while another writer took the item into an infinite wait (CPython's
        # _queuemodule.c recomputes the timeout as a negative number of microseconds, which means "block"),
        # stranding the requests already in that writer's batch until the next request arrives.
        self._queue: queue.Queue[_Pending | object] = queue.Queue()
        self._on_batch = on_batch
        self._local = threading.local()  # each writer thread keeps one connection, staging table ready
        self._threads = [
            threading.Thread(target=self._run, name=f"tokenledger-writer-{n}", daemon=True) for n in range(threads)
        ]
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        if not self._started:
            return
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=10)
        self._started = False

    async def submit(self, rows: Sequence[EventRow]) -> WriteResult:
        """Write `rows`; return once they are committed (or raise ServiceUnavailable)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WriteResult] = loop.create_future()
        self._queue.put(_Pending(rows, future, loop))
        return await future

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            conn: Connection | None = getattr(self._local, "conn", None)
            if conn is not None:
                conn.close()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            assert isinstance(first, _Pending)
            batch = [first]
            events = len(first.rows)
            deadline = time.monotonic() + self._max_wait
            stop_after = False
            while events < self._max_events:
                remaining = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop_after = True
                    break
                assert isinstance(item, _Pending)
                batch.append(item)
                events += len(item.rows)
            self._write(batch)
            if stop_after:
                return

    def _write(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            results = self._write_together(batch)
        except Exception as error:
            if is_unavailable(error) or len(batch) == 1:
                _settle([(pending, None, error) for pending in batch])
                return
            log.warning("batch of %d requests failed (%s); writing them one by one", len(batch), error)
            for pending in batch:
                try:
                    _settle([(pending, self._write_together([pending])[0], None)])
                except Exception as single_error:
                    _settle([(pending, None, single_error)])
            return
        _settle([(pending, result, None) for pending, result in zip(batch, results, strict=True)])
        if self._on_batch:
            self._on_batch(BatchStats(len(batch), sum(len(p.rows) for p in batch), time.perf_counter() - started))

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self._engine.connect()
            try:
                prepare_staging(conn)
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def _write_together(self, batch: list[_Pending]) -> list[WriteResult]:
        rows = [row for pending in batch for row in pending.rows]
        self._partitions.ensure(row.occurred_at for row in rows)
        conn = self._connection()
        try:
            with conn.begin():
                result = write_events(conn, rows)
        except Exception as error:
            if is_unavailable(error):  # a fresh connection next time, through the pool's checks
                self._local.conn = None
                conn.invalidate()
                conn.close()
            raise
        results, offset = [], 0
        for pending in batch:
            results.append(WriteResult(result.stored[offset : offset + len(pending.rows)]))
            offset += len(pending.rows)
        return results


Outcome = tuple[_Pending, WriteResult | None, BaseException | None]


def _settle(outcomes: list[Outcome]) -> None:
    """Answer the requests: one wake-up of each event loop for the whole batch, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_set_outcomes, settled)


def _set_outcomes(outcomes: list[Outcome]) -> None:
    for pending, result, error in outcomes:
        if pending.future.done():
            continue
        if error is not None:
            if is_unavailable(error):
                error = ServiceUnavailable("the database is unreachable; retry shortly")
            pending.future.set_exception(error)
        else:
            pending.future.set_result(result)  # type: ignore[arg-type]
