"""Reconciliation time for a month of 1M and 10M events, against a plain GROUP BY over the month's raw events
measured in the same run, and the reconcile step's peak memory.

For each size: events are generated (200 scopes: 4 providers × 2 models × 5 accounts × 5 keys) and loaded with
COPY into usage_events, the hourly rollup is built from the same events (as ingest would have), and daily
statement lines are written for every scope (a few percent off, so detectors have work). Then:

  baseline   SELECT … GROUP BY scope, day over the raw events of the month; the fastest of three runs before
             and three after the reconciliations
  reconcile  the full run: load the rollups, price them from the catalog, load statements, run every
             detector, store drift rows and findings; in a fresh child process (whose peak RSS is reported)
             set up as a running service is (engine connected, start-up objects frozen out of the garbage
             collector's way): cold (the process's first run) and warm (the median of five later runs, as the
             scheduler's are)

Targets: reconcile ≤ 0.35 × baseline at 1M events and ≤ 0.1 × at 10M (the run's Python work is per scope and
day, so it does not grow with the events), peak memory ≤ 500 MB.
Usage: python -m benchmarks.reconcile [--sizes 1000000 10000000]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import random
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta

import psutil
import psycopg
from sqlalchemy import text

from benchmarks.common import conninfo, fresh_database, tenant_with_key
from ledger.events.schema import COLUMNS, EventRow
from ledger.periods import Period
from ledger.pricing.catalog import base_layer
from ledger.reconciliation.run import run_reconciliation
from ledger.settings import Settings
from ledger.sink import rollup
from ledger.sink.ingest import partition_ddl
from ledger.storage.database import create_db_engine, session_factory

PERIOD = Period.month("2026-10")
WARM_RUNS = 5
TARGET_RATIO = {1_000_000: 0.35, 10_000_000: 0.1}
MODELS = {
    "openai": ("gpt-5.4", "gpt-5.4-mini"),
    "anthropic": ("claude-sonnet-4-6", "claude-haiku-4-5"),
    "google": ("gemini-2.5-pro", "gemini-2.5-flash"),
    "deepseek": ("deepseek-v4-flash", "deepseek-v4-pro"),
}
SCOPES = [
    (provider, model, f"acct_{a}", f"key_{provider}_{a}_{k}")
    for provider, models in MODELS.items()
    for model in models
    for a in range(5)
    for k in range(5)
]
BASELINE_SQL = """
SELECT provider, account, api_key_id, response_model, request_model, date_trunc('day', occurred_at) AS day,
       count(*), sum(input_tokens), sum(output_tokens), sum(cache_read_input_tokens),
       sum(cache_creation_input_tokens), sum(reasoning_tokens), count(*) FILTER (WHERE status_code >= 400),
       count(*) FILTER (WHERE finish_reason IS NULL)
FROM usage_events WHERE tenant_id = %s AND occurred_at >= %s AND occurred_at < %s
GROUP BY 1, 2, 3, 4, 5, 6
"""


def generate(tenant_id: int, count: int, seed: int) -> list[EventRow]:
    rng = random.Random(seed)
    seconds = int((PERIOD.end - PERIOD.start).total_seconds())
    received = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    for n in range(count):
        provider, model, account, key = SCOPES[n % len(SCOPES)]
        input_tokens = rng.randrange(200, 6_000)
        cached = input_tokens // 3 if n % 3 == 0 else 0
        rows.append(
            EventRow(
                tenant_id,
                PERIOD.start + timedelta(seconds=rng.randrange(seconds)),
                f"bench-{seed}-{n}",
                received,
                provider,
                account,
                key,
                model,
                model,
                input_tokens,
                rng.randrange(20, 1_200),
                cached,
                0,
                0,
                0,
                0,
                None,
                4_096,
                "stop" if n % 40 else "length",
                200 if n % 60 else 429,
                None if n % 60 else "rate_limit",
                rng.randrange(200, 9_000),
                None,
                False,
                None,
                None,
                "bench",
                None,
                None,
                None,
                None,
                None,
            )
        )
    return rows


def load(url: str, tenant_id: int, count: int) -> None:
    """COPY the events in chunks, then build the rollup from them with ingest's own rollup SQL."""
    chunk = 500_000
    with psycopg.connect(conninfo(url)) as conn:
        for start in range(0, count, chunk):
            rows = generate(tenant_id, min(chunk, count - start), seed=start)
            with conn.cursor() as cursor, cursor.copy(f"COPY usage_events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
        conn.execute(rollup.upsert_rollup("usage_events WHERE tenant_id = %s"), (tenant_id,))
        statements(conn, tenant_id)
        conn.commit()
        # As autovacuum would have by the time a month is reconciled (and so that it does not run during the
        # measurements, on the same two cores): statistics, hint bits and the visibility map.
        conn.autocommit = True
        for table in ("usage_events", "usage_hourly", "usage_daily", "statement_lines"):
            conn.execute(f"VACUUM (ANALYZE) {table}")


def statements(conn: psycopg.Connection[tuple[object, ...]], tenant_id: int) -> None:
    """Daily statement lines per scope from the rollup, input billed 2% high on one provider."""
    conn.execute(
        """
        INSERT INTO statement_documents (tenant_id, source, name, sha256, media_type, content, period_start,
                                         period_end, imported_at)
        VALUES (%s, 'csv', 'bench.csv', 'bench', 'text/csv', '', %s, %s, now())""",
        (tenant_id, PERIOD.start, PERIOD.end),
    )
    for usage_type, expression in (
        (
            "uncached_input",
            "sum(input_tokens - cache_read_input_tokens) * CASE WHEN provider = 'openai' THEN 1.02 ELSE 1 END",
        ),
        ("cached_input", "sum(cache_read_input_tokens)"),
        ("output", "sum(output_tokens)"),
        ("requests", "sum(requests)"),
    ):
        conn.execute(
            f"""
            INSERT INTO statement_lines (tenant_id, source, document_id, provider, account, api_key_id, model_raw,
                model, service_tier, period_start, period_end, usage_type, quantity, unit, amount, currency,
                request_id, final, import_period_start, location, raw)
            SELECT tenant_id, 'csv', 0, provider, account, api_key_id, response_model, response_model, NULL,
                   date_trunc('day', hour), date_trunc('day', hour) + interval '1 day', %s, round({expression}),
                   'tokens', NULL, NULL, NULL, true, %s, 'bench', '{{}}'::jsonb
            FROM usage_hourly WHERE tenant_id = %s
            GROUP BY tenant_id, provider, account, api_key_id, response_model, date_trunc('day', hour)""",
            (usage_type, PERIOD.start, tenant_id),
        )


def baseline(url: str, tenant_id: int) -> float:
    with psycopg.connect(conninfo(url)) as conn:
        started = time.perf_counter()
        rows = conn.execute(BASELINE_SQL, (tenant_id, PERIOD.start, PERIOD.end)).fetchall()
        elapsed = time.perf_counter() - started
    assert rows
    return elapsed


def reconcile_in_child(url: str, tenant_id: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Run the reconciliation in a fresh process and report its time and peak resident memory, sampled
    (getrusage's ru_maxrss would include the parent's, which a spawned process inherits across exec)."""
    process = psutil.Process()
    peak = [process.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    engine = create_db_engine(url, pool_size=2)
    with engine.connect() as conn:  # connected first, as a running service's engine is by the time a run comes
        conn.execute(text("SELECT 1"))
    # As the service's start-up does (the app's lifespan): the price data is read, and what lives as long as the
    # process is kept out of the collector's full passes, which would otherwise run one over every imported module
    # during the first run.
    base_layer()
    gc.collect()
    gc.freeze()
    times = []
    for _ in range(1 + WARM_RUNS):  # cold: the first run of a fresh process; warm: later runs, as the scheduler's are
        started = time.perf_counter()
        outcome = run_reconciliation(
            session_factory(engine),
            tenant_id=tenant_id,
            period=PERIOD,
            settings=Settings(database_url=url),
            now=datetime(2026, 11, 2, tzinfo=UTC),
            trigger="benchmark",
        )
        times.append(time.perf_counter() - started)
    done.set()
    sampler.join()
    peak[0] = max(peak[0], process.memory_info().rss)
    results.put((times, outcome.status, outcome.counts.get("findings", 0), outcome.error, peak[0] / 2**20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = parser.parse_args()
    url = fresh_database("tokenledger_bench_reconcile")
    engine = create_db_engine(url, pool_size=1)
    with engine.begin() as conn:
        conn.execute(text(partition_ddl(PERIOD.start)))
    engine.dispose()
    for size in args.sizes:
        tenant_id, _ = tenant_with_key(url)
        started = time.perf_counter()
        load(url, tenant_id, size)
        print(f"{size:>11,} events: loaded with COPY (+ rollup, statements) in {time.perf_counter() - started:6.1f} s")
        baselines = [baseline(url, tenant_id) for _ in range(3)]
        spawn = multiprocessing.get_context("spawn")
        queue = spawn.Queue()
        child = spawn.Process(target=reconcile_in_child, args=(url, tenant_id, queue))
        child.start()
        (cold, *warm_runs), status, findings, error, peak_mb = queue.get()
        child.join()
        baselines += [baseline(url, tenant_id) for _ in range(3)]  # before and after: the machine's speed drifts
        base, warm = min(baselines), statistics.median(warm_runs)
        print(
            f"{'':>11}  GROUP BY over raw events {base:7.2f} s (fastest of 6)   reconcile {cold:7.2f} s cold, "
            f"{warm:7.2f} s warm (median of {len(warm_runs)}; {min(warm_runs):.2f}–{max(warm_runs):.2f}) "
            f"({status}, {findings} findings{', ' + error if error else ''})"
        )
        print(
            f"{'':>11}  reconcile / GROUP BY = {cold / base:.3f} cold, {warm / base:.3f} warm  "
            f"(target ≤ {TARGET_RATIO.get(size, 0.35)})   "
            f"reconcile peak RSS {peak_mb:,.0f} MB (target ≤ 500 MB)"
        )


if __name__ == "__main__":
    main()
