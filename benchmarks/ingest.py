"""Ingest throughput and latency, each against a baseline measured in the same run.

  (a) raw psycopg COPY of N events into usage_events            — the storage ceiling
  (b) HTTP batch ingest, batches of 1,000, of N other events     — ratio b/a
  (c) single-event POSTs at concurrency 32 for 20 s, p50/p99    — ratio c/d
  (d) a no-op POST route on the same app, same load              — the HTTP ceiling
and the peak RSS of the server process during (b). Last, where PostgreSQL's time goes when the service stores
a batch of 1,000 events like (b)'s: the COPY into the staging table and the storing statement's steps.

(c) and (d) run in interleaved slices (4 of 5 s each by default), so both see the same machine.

Usage: python -m benchmarks.ingest [--events 1000000] [--seconds 20] [--concurrency 32] [--slices 4]
(BENCH_WORKERS=N runs the server with N uvicorn worker processes; default 1.)
Uses TOKENLEDGER_DATABASE_URL's server (a fresh database `tokenledger_bench_ingest`) or an embedded one.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from benchmarks.common import LoadResult, conninfo, dumps, fresh_database, run_load, start_server, tenant_with_key
from ledger.events.schema import COLUMNS, validate_events
from ledger.server import create_app
from ledger.settings import get_settings
from ledger.sink import rollup
from ledger.sink.ingest import COLUMN_TYPES, COPY_STAGING, CREATE_STAGING, STORE_STAGED, partition_ddl

START = datetime(2026, 10, 1, tzinfo=UTC)


def event(prefix: str, n: int) -> dict[str, Any]:
    return {
        "event_id": f"{prefix}-{n}",
        "occurred_at": (START + timedelta(seconds=(n // 40) % 2_500_000)).isoformat(),
        "provider": ("openai", "anthropic", "google", "deepseek")[
            n % 4
        ],  # 4 providers × 5 scopes: 20 rollup keys an hour
        "account": f"proj_{n % 5}",
        "api_key_id": f"key_{n % 5}",
        "request_model": ("gpt-5.4-mini", "claude-sonnet-4-6", "gemini-2.5-flash", "deepseek-chat")[n % 4],
        "input_tokens": 800 + n % 3000,
        "output_tokens": 100 + n % 700,
        "cache_read_input_tokens": (n % 5) * 100,
        "finish_reason": "stop" if n % 50 else "length",
        "status_code": 200 if n % 97 else 429,
        "latency_ms": 300 + n % 4000,
        "stream": n % 3 == 0,
        "app": f"app-{n % 5}",
    }


def bench_app() -> FastAPI:
    """The service's app plus a no-op route that parses the body and answers like /v1/events."""
    app = create_app(get_settings())

    @app.post("/bench/noop")
    async def noop(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"accepted": 1, "duplicates": 0}, status_code=202)

    return app


class Bodies:
    """Request bodies rendered before the clock starts, so the load generator spends its CPU on sending:
    `patterns` varied bodies whose event ids get a unique prefix per request (a cheap bytes replace)."""

    MARK = b"@ID@"

    def __init__(self, patterns: int, events_per_body: int, *, single: bool = False) -> None:
        mark = self.MARK.decode()
        self.templates = [
            dumps(event(mark, n) if single else [event(mark, n * events_per_body + i) for i in range(events_per_body)])
            for n in range(patterns)
        ]

    def for_run(self, run: str) -> Callable[[int, int], bytes]:
        """Bodies for one run of the load: ids unique within the run and across runs."""

        def body(worker: int, n: int) -> bytes:
            return self.templates[n % len(self.templates)].replace(self.MARK, f"{run}-w{worker}-r{n}".encode())

        return body


def copy_baseline(url: str, tenant_id: int, count: int) -> float:
    """Raw binary COPY of validated rows, as the service's own staging COPY writes them."""
    items = [event("copy", n) for n in range(count)]
    rows = validate_events(items, tenant_id=tenant_id, now=datetime.now(UTC))
    with psycopg.connect(conninfo(url)) as conn:
        conn.execute(partition_ddl(START).encode())
        conn.commit()
        started = time.perf_counter()
        copy_sql = f"COPY usage_events ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        with conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
            copy.set_types(COLUMN_TYPES)
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - started


def store_breakdown(url: str, tenant_id: int, batches: int = 5) -> dict[str, float]:
    """Where PostgreSQL's time goes when the service stores a batch of 1,000 events, in ms (medians over
    `batches` batches, each rolled back): the binary COPY into the staging table, then the storing statement's
    steps from EXPLAIN ANALYZE. Its data-modifying CTEs run nested: the rollup's scan of `stored` runs the
    events' insert, whose join reads the ids that the statement's own result already marked."""
    samples: dict[str, list[float]] = defaultdict(list)
    with psycopg.connect(conninfo(url)) as conn:
        conn.execute(CREATE_STAGING)
        conn.execute(f"SET {rollup.DAILY_ROLLUP_SETTING} = 'by_statement'")  # as the service's writer does
        conn.commit()  # the staging table outlives the batches rolled back below
        for number in range(batches):
            items = [event(f"explain-{number}", n) for n in range(1000)]
            rows = validate_events(items, tenant_id=tenant_id, now=datetime.now(UTC))
            with conn.cursor() as cursor:
                started = time.perf_counter()
                with cursor.copy(COPY_STAGING) as copy:
                    copy.set_types(COLUMN_TYPES)
                    for row in rows:
                        copy.write_row(row)
                copied = (time.perf_counter() - started) * 1000
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {STORE_STAGED}")
                plan = cursor.fetchall()[0][0][0]
            conn.rollback()
            steps = {node["Subplan Name"]: node["Actual Total Time"] for node in plan["Plan"]["Plans"]}
            samples["copy into the staging table"].append(copied)
            samples["mark the ids (insert, on conflict do nothing)"].append(steps["CTE new_ids"])
            samples["store the new events"].append(steps["CTE stored"])
            samples["fold them into the hourly rollup"].append(steps["CTE rolled_up"] - steps["CTE stored"])
            samples["fold them into the daily rollup"].append(
                steps["CTE rolled_up_daily"]
                - steps["CTE rolled_up"]
                + sum(trigger["Time"] for trigger in plan.get("Triggers", []))
            )
            samples["in all"].append(copied + plan["Execution Time"])
    return {step: statistics.median(times) for step, times in samples.items()}


def settle(url: str) -> None:
    """Vacuum and analyze what (b) wrote, so (c) is not measured against autovacuum catching up."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) usage_events, event_ids, usage_hourly, usage_daily")


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.05)


def one_event_per_request(
    base_url: str, headers: dict[str, str], args: argparse.Namespace
) -> tuple[LoadResult, LoadResult]:
    """POST single events from `args.concurrency` connections to /v1/events (c) and to the no-op route (d),
    `args.seconds` each, in `args.slices` interleaved slices after a one-second warm-up of each: the speed of
    a shared two-core machine drifts within a minute, and interleaving lets both see the same drift."""
    bodies = Bodies(1_000, 1, single=True)
    routes = {"(c) single POSTs": "/v1/events", "(d) no-op route": "/bench/noop"}
    for path in routes.values():
        run_load(base_url, path, headers, bodies.for_run(f"warm{path}"), concurrency=args.concurrency, seconds=1)
    slices: dict[str, list[LoadResult]] = {label: [] for label in routes}
    for number in range(args.slices):
        for label, path in routes.items():
            body = bodies.for_run(f"s{number}{path}")
            result = run_load(
                base_url, path, headers, body, concurrency=args.concurrency, seconds=args.seconds / args.slices
            )
            slices[label].append(result)
    totals = {label: LoadResult.combined(results) for label, results in slices.items()}
    for label, result in totals.items():
        per_slice = " ".join(f"{part.rate:,.0f}" for part in slices[label])
        print(
            f"{label:<20}  {result.requests:>10,} requests in {result.seconds:6.2f} s = {result.rate:>10,.0f} req/s   "
            f"p50 {result.p50:.1f} ms   p99 {result.percentile(0.99):.1f} ms   errors {result.errors}   "
            f"(slices: {per_slice})"
        )
    return totals["(c) single POSTs"], totals["(d) no-op route"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--slices", type=int, default=4, help="interleaved slices of (c) and (d)")
    args = parser.parse_args()

    url = fresh_database("tokenledger_bench_ingest")
    tenant_id, key = tenant_with_key(url)
    headers = {"Authorization": f"Bearer {key}"}

    copy_seconds = copy_baseline(url, tenant_id, args.events)
    copy_rate = args.events / copy_seconds
    print(f"(a) raw COPY          {args.events:>10,} events in {copy_seconds:7.2f} s = {copy_rate:>10,.0f} events/s")

    server = start_server(url, "benchmarks.ingest:bench_app")
    try:
        sampler = RssSampler(server.process.pid)
        sampler.start()
        batches = args.events // 1000
        bodies = Bodies(50, 1000)
        batch_result = run_load(
            server.base_url, "/v1/events", headers, bodies.for_run("batch"), concurrency=4, total=batches
        )
        sampler.running = False
        batch_rate = batch_result.requests * 1000 / batch_result.seconds
        print(
            f"(b) HTTP batches      {batch_result.requests * 1000:>10,} events in {batch_result.seconds:7.2f} s = "
            f"{batch_rate:>10,.0f} events/s   errors {batch_result.errors}   peak server RSS "
            f"{sampler.peak / 2**20:,.0f} MB"
        )

        settle(url)
        single, noop = one_event_per_request(server.base_url, headers, args)
    finally:
        server.stop()

    print()
    print(f"b/a = {batch_rate / copy_rate:.2f}   (target ≥ 0.5)")
    print(f"c/d = {single.rate / noop.rate:.2f}   (target ≥ 0.5)")
    print(f"p99 of single POSTs = {single.percentile(0.99):.1f} ms   (target ≤ 20 ms)")
    print(
        f"peak server RSS while ingesting {args.events:,} events = {sampler.peak / 2**20:,.0f} MB   (target ≤ 300 MB)"
    )

    print()
    print("PostgreSQL's time storing 1,000 events, as in (b) (median of 5 batches, each rolled back):")
    for step, milliseconds in store_breakdown(url, tenant_id).items():
        print(f"  {step:<46} {milliseconds:6.1f} ms")
    print(f"  (a) raw COPY of 1,000 events, for comparison   {copy_seconds / args.events * 1e6:6.1f} ms")


if __name__ == "__main__":
    main()
