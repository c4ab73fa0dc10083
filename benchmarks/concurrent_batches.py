"""Concurrent batch senders on a fresh database: do their transactions deadlock, and is any batch refused?

Eight senders (threads) post batches of 1,000 events for 60 seconds. Each sender is an app of its own; half
of each batch falls in hours its earlier batches created and half in an hour it has not sent yet, of the other
of two days: the later one for half the senders, the earlier one for the others (backfills), so that
concurrent batches create and update rollup rows of the same days in opposite orders. Printed: batches
answered 202 and refused (503 or other), events per second, and the deadlocks PostgreSQL counted in the
database (`pg_stat_database.deadlocks`).

    python -m benchmarks.concurrent_batches [--seconds 60] [--senders 8] [--writers 2]

--writers sets the service's writer connections (TOKENLEDGER_WRITER_CONNECTIONS; 2 by default): the number
of batches it writes at once.

BENCH_CODE_ROOT=<a checkout> runs the server from another checkout (to measure a version before a change);
the database is migrated by this checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from benchmarks.common import ROOT, conninfo, free_port, fresh_database, tenant_with_key, wait_until_healthy
from benchmarks.hostile_bodies import SERVE

DAY_ONE = datetime(2026, 9, 1, tzinfo=UTC)


def batch(sender: int, number: int) -> bytes:
    """Half in an hour the sender's earlier batches created, half in an hour it has not sent yet: on the next
    day for even senders, on the previous one for odd ones. A sender starts a new app every 24 batches, when
    the other day's hours are all taken."""
    forward = sender % 2 == 0
    day_two = DAY_ONE + timedelta(days=1)
    known = DAY_ONE if forward else day_two + timedelta(hours=23)
    new = (day_two if forward else DAY_ONE) + timedelta(hours=number % 24)
    return json.dumps(
        [
            {
                "event_id": f"s{sender}-b{number}-{i}",
                "occurred_at": ((known if i % 2 else new) + timedelta(seconds=i)).isoformat(),
                "provider": "openai",
                "account": "proj_main",
                "request_model": "gpt-5.4-mini",
                "input_tokens": 1_000 + i,
                "output_tokens": 100,
                "app": f"app-{sender}-{number // 24}",
            }
            for i in range(1_000)
        ]
    ).encode()


def deadlocks(url: str) -> int:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        row = conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").fetchone()
        assert row is not None
        return int(row[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--writers", type=int, default=2)
    args = parser.parse_args()
    url = fresh_database("tokenledger_bench_concurrent")
    _, token = tenant_with_key(url)
    code_root = os.environ.get("BENCH_CODE_ROOT", str(ROOT))
    port = free_port()
    env = {
        **os.environ,
        "TOKENLEDGER_DATABASE_URL": url,
        "TOKENLEDGER_SCHEDULER_ENABLED": "false",
        "PYTHONPATH": code_root,
        "TOKENLEDGER_WRITER_CONNECTIONS": str(args.writers),
    }
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(port)], env=env, cwd=code_root)
    base_url = f"http://127.0.0.1:{port}"
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    try:
        wait_until_healthy(base_url, server)
        deadlocks_before = deadlocks(url)
        stop_at = time.monotonic() + args.seconds

        def send(sender: int) -> None:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
                number = 0
                while time.monotonic() < stop_at:
                    status = client.post("/v1/events", content=batch(sender, number)).status_code
                    with lock:
                        statuses[status] += 1
                    number += 1

        started = time.monotonic()
        threads = [threading.Thread(target=send, args=(sender,)) for sender in range(args.senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        counted = deadlocks(url) - deadlocks_before
    finally:
        server.terminate()
        server.wait(timeout=30)
    accepted = statuses.get(202, 0)
    print(f"server code: {code_root}")
    print(
        f"{args.senders} senders of 1,000-event batches for {elapsed:.0f} s on a fresh database, {args.writers} writers"
    )
    print(
        f"batches: {sum(statuses.values())}, answered 202: {accepted}, refused: {sum(statuses.values()) - accepted} "
        f"({dict(statuses)})"
    )
    print(f"events stored per second: {accepted * 1000 / elapsed:,.0f}")
    print(f"deadlocks PostgreSQL counted: {counted}")


if __name__ == "__main__":
    main()
