"""What a small hostile body costs the service: bodies of empty objects (`[{},{},…]`, the cheapest way to make
a validator write a problem per field per item) of 1 MB and 3 MB, and 10 MiB of them gzip-compressed to a few
kilobytes. For each: the answer's status and size, the time to answer, the server's peak RSS, and the worst
latency another client saw meanwhile (one-event POSTs in a loop), against a baseline measured in the same run:
a valid batch of 1,000 events.

    python -m benchmarks.hostile_bodies

BENCH_CODE_ROOT=<a checkout> runs the server from another checkout of the code (to measure a version before a
change with the same script); the database and the load generator stay this checkout's.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psutil

from benchmarks.common import ROOT, free_port, fresh_database, tenant_with_key, wait_until_healthy

SERVE = (
    "import sys, uvicorn; from ledger.server import create_app; from ledger.settings import get_settings; "
    "uvicorn.run(create_app(get_settings()), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning', "
    "access_log=False)"
)


def event(n: int) -> dict[str, Any]:
    return {
        "event_id": f"bench-{n}-{time.time_ns()}",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "provider": "openai",
        "account": "proj_main",
        "request_model": "gpt-5.4-mini",
        "input_tokens": 1200,
        "output_tokens": 300,
        "app": "bench",
    }


def empty_objects(size: int) -> bytes:
    """A JSON array of `{}` items, `size` bytes long or a little more."""
    return b"[" + b",".join([b"{}"] * (size // 3 + 1)) + b"]"


class Watch(threading.Thread):
    """Samples the server's RSS and sends one-event POSTs in a loop, noting the slowest answer."""

    def __init__(self, pid: int, base_url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.base_url, self.headers = base_url, headers
        self.peak_rss = self.process.memory_info().rss
        self.slowest = 0.0
        self.running = True

    def run(self) -> None:
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=120) as client:
            n = 0
            while self.running:
                started = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):  # timed out: counted as the time waited
                    client.post("/v1/events", json=event(n))
                self.slowest = max(self.slowest, time.perf_counter() - started)
                n += 1
                time.sleep(0.02)
        sampler.join()

    def _sample(self) -> None:
        while self.running:
            self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)
            time.sleep(0.01)


def measure(
    pid: int, base_url: str, headers: dict[str, str], name: str, body: bytes, extra: dict[str, str]
) -> dict[str, Any]:
    watch = Watch(pid, base_url, headers)
    watch.start()
    time.sleep(0.2)
    started = time.perf_counter()
    response = httpx.post(
        f"{base_url}/v1/events",
        content=body,
        headers={**headers, "Content-Type": "application/json", **extra},
        timeout=600,
    )
    seconds = time.perf_counter() - started
    time.sleep(0.2)
    watch.running = False
    watch.join()
    return {
        "body": name,
        "sent_bytes": len(body),
        "status": response.status_code,
        "answer_bytes": len(response.content),
        "seconds": seconds,
        "peak_rss_mb": watch.peak_rss / 1e6,
        "rss_after_mb": psutil.Process(pid).memory_info().rss / 1e6,
        "other_client_worst_ms": watch.slowest * 1000,
    }


def main() -> None:
    url = fresh_database("tokenledger_bench_hostile")
    _, token = tenant_with_key(url)
    headers = {"Authorization": f"Bearer {token}"}
    code_root = os.environ.get("BENCH_CODE_ROOT", str(ROOT))
    port = free_port()
    env = {
        **os.environ,
        "TOKENLEDGER_DATABASE_URL": url,
        "TOKENLEDGER_SCHEDULER_ENABLED": "false",
        "PYTHONPATH": code_root,
    }
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(port)], env=env, cwd=code_root)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, server)
        print(f"server code: {code_root}")
        valid = json.dumps([event(n) for n in range(1_000)]).encode()
        cases = [
            ("baseline: 1,000 valid events", valid, {}),
            ("1 MB of {}", empty_objects(1_000_000), {}),
            ("3 MB of {}", empty_objects(3_000_000), {}),
            ("10 MiB of {}, gzip", gzip.compress(empty_objects(10 * 1024 * 1024 - 4)), {"Content-Encoding": "gzip"}),
        ]
        results = [measure(server.pid, base_url, headers, name, body, extra) for name, body, extra in cases]
    finally:
        server.terminate()
        server.wait(timeout=30)
    baseline = results[0]["seconds"]
    print(
        f"{'body':<30} {'sent':>10} {'status':>6} {'answer':>12} {'seconds':>8} {'x base':>7} "
        f"{'peak RSS MB':>11} {'RSS after':>9} {'other client worst ms':>21}"
    )
    for row in results:
        print(
            f"{row['body']:<30} {row['sent_bytes']:>10,} {row['status']:>6} {row['answer_bytes']:>12,} "
            f"{row['seconds']:>8.3f} {row['seconds'] / baseline:>7.2f} {row['peak_rss_mb']:>11.0f} "
            f"{row['rss_after_mb']:>9.0f} {row['other_client_worst_ms']:>21.1f}"
        )


if __name__ == "__main__":
    main()
